import ChiselBase

extension Ops {
    /// Classifier-free guidance, `uncond + scale · (cond − uncond)` element-wise, in the order
    /// diffusers writes it (Ho & Salimans 2022): `x` is 2N×…, the unconditional samples first, and
    /// the result N×….
    public static func guided(_ x: Tensor, scale: Float) throws -> Tensor {
        guard x.rank >= 1, x.shape[0] % 2 == 0, x.shape[0] > 0 else {
            throw ChiselError(.internal, "guidance needs an even batch of unconditional then conditional samples, got \(x.shape)")
        }
        return try Tensor(shape: [x.shape[0] / 2] + x.shape.dropFirst(), data: guided(x.data, scale: scale))
    }

    /// Classifier-free guidance on flat values: the first half unconditional, the second
    /// conditional, `uncond + scale · (cond − uncond)` — the one place the formula is written,
    /// for the UNet's noise, aMUSEd's logits and Mask-Predict's scores alike.
    public static func guided(_ values: [Float], scale: Float) -> [Float] {
        let half = values.count / 2
        return [Float](unsafeUninitializedCapacity: half) { dst, initialized in
            KernelProfile.measure("guidance") {
                values.withUnsafeBufferPointer { src in
                    Parallel.forEachChunk(half, minimumChunk: 16384) { range in
                        for i in range { dst[i] = src[i] + scale * (src[half + i] - src[i]) }
                    }
                }
            }
            initialized = half
        }
    }

    /// diffusers' `rescale_noise_cfg` (Lin et al. 2024, §3.4): the guided prediction's standard
    /// deviation matched to the conditional one's (`positive`), mixed with it by `rescale` φ.
    /// Deviations are over every element (one sample), unbiased as torch.std.
    public static func rescaledGuidance(_ guided: [Float], positive: ArraySlice<Float>, rescale: Float) -> [Float] {
        guard rescale > 0 else { return guided }
        func std(_ x: some Collection<Float>) -> Float {
            let mean = x.reduce(0, +) / Float(x.count)
            let variance = x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(max(1, x.count - 1))
            return variance.squareRoot()
        }
        let ratio = std(positive) / max(std(guided), 1e-12)
        return guided.map { rescale * ($0 * ratio) + (1 - rescale) * $0 }
    }

    /// The batch repeated: [x; x; …] along the first dimension (`Tensor.repeat(times, 1, …)`).
    public static func repeatedBatch(_ x: Tensor, times: Int) throws -> Tensor {
        guard x.rank >= 1, times >= 1 else { throw ChiselError(.internal, "cannot repeat \(x.shape) \(times) times") }
        return try Tensor(shape: [x.shape[0] * times] + x.shape.dropFirst(),
                          data: Array([[Float]](repeating: x.data, count: times).joined()))
    }
}
