import ChiselBase

extension Ops {
    /// Classifier-free guidance, `uncond + scale · (cond − uncond)` element-wise, in the order
    /// diffusers writes it (Ho & Salimans 2022): `x` is 2N×…, the unconditional samples first, and
    /// the result N×….
    public static func guided(_ x: Tensor, scale: Float) throws -> Tensor {
        guard x.rank >= 1, x.shape[0] % 2 == 0, x.shape[0] > 0 else {
            throw ChiselError(.internal, "guidance needs an even batch of unconditional then conditional samples, got \(x.shape)")
        }
        let half = x.count / 2
        var out = Tensor(uninitialized: [x.shape[0] / 2] + x.shape.dropFirst())
        KernelProfile.measure("guidance") {
            x.data.withUnsafeBufferPointer { src in
                out.data.withUnsafeMutableBufferPointer { dst in
                    Parallel.forEachChunk(half, minimumChunk: 16384) { range in
                        for i in range { dst[i] = src[i] + scale * (src[half + i] - src[i]) }
                    }
                }
            }
        }
        return out
    }

    /// The batch repeated: [x; x; …] along the first dimension (`Tensor.repeat(times, 1, …)`).
    public static func repeatedBatch(_ x: Tensor, times: Int) throws -> Tensor {
        guard x.rank >= 1, times >= 1 else { throw ChiselError(.internal, "cannot repeat \(x.shape) \(times) times") }
        return try Tensor(shape: [x.shape[0] * times] + x.shape.dropFirst(),
                          data: Array([[Float]](repeating: x.data, count: times).joined()))
    }
}
