import ChiselBase

/// A layer or RMS norm followed by a per-sample scale and shift, as diffusers'
/// `AdaLayerNormContinuous` computes `norm(x) · (1 + scale) + shift`. The modulation is folded
/// into each sample's affine step (γ' = γ·(1 + scale), β' = β·(1 + scale) + shift), so the whole
/// thing is one pass of the norm's row kernel.
public struct ModulatedNorm: RowNormalization {
    public let features: Int
    public let batch: Int
    let kind: RowKernel
    let epsilon: Float
    /// batch × features each.
    let gamma: [Float], beta: [Float]

    init(kind: RowKernel, features: Int, epsilon: Float, weight: [Float]?, bias: [Float]?, modulation: Tensor) throws {
        guard modulation.rank == 2, modulation.shape[1] == 2 * features else {
            throw ChiselError(.internal, "a modulation of \(features) features must be N×\(2 * features), got \(modulation.shape)")
        }
        let batch = modulation.shape[0]
        var gamma = [Float](repeating: 0, count: batch * features), beta = gamma
        for b in 0..<batch {
            let row = b * 2 * features
            for i in 0..<features {
                let factor = 1 + modulation.data[row + i]
                gamma[b * features + i] = (weight?[i] ?? 1) * factor
                beta[b * features + i] = (bias?[i] ?? 0) * factor + modulation.data[row + features + i]
            }
        }
        self.kind = kind
        self.features = features
        self.batch = batch
        self.epsilon = epsilon
        self.gamma = gamma
        self.beta = beta
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try check(x)
        var out = Tensor(uninitialized: x.shape)
        run(x, &out.data)
        return out
    }

    public func bf16(_ x: Tensor) throws -> HalfTensor {
        try check(x)
        var out = HalfTensor(uninitialized: x.shape)
        run(x, &out.data)
        return out
    }

    private func check(_ x: Tensor) throws {
        guard x.rank >= 2, x.shape[0] == batch, x.lastDimension == features else {
            throw ChiselError(.internal, "modulated norm for \(batch)×…×\(features) got \(x.shape)")
        }
    }

    private func run(_ x: Tensor, _ out: inout [Float]) {
        KernelProfile.measure(kind == .rms ? "rmsnorm" : "layernorm") {
            x.data.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    gamma.withUnsafeBufferPointer { g in
                        beta.withUnsafeBufferPointer { b in
                            guard let source = src.baseAddress, let target = dst.baseAddress, let g0 = g.baseAddress,
                                let b0 = b.baseAddress
                            else { return }
                            RowKernel.perSample(rows: x.rows, rowsPerSample: x.rows / batch) { sample, rows in
                                kind.run(source, target, features: features, gamma: g0 + sample * features,
                                         beta: b0 + sample * features, epsilon: epsilon, rows: rows)
                            }
                        }
                    }
                }
            }
        }
    }

    private func run(_ x: Tensor, _ out: inout [UInt16]) {
        KernelProfile.measure(kind == .rms ? "rmsnorm" : "layernorm") {
            x.data.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    gamma.withUnsafeBufferPointer { g in
                        beta.withUnsafeBufferPointer { b in
                            guard let source = src.baseAddress, let target = dst.baseAddress, let g0 = g.baseAddress,
                                let b0 = b.baseAddress
                            else { return }
                            RowKernel.perSample(rows: x.rows, rowsPerSample: x.rows / batch) { sample, rows in
                                kind.run(source, target, features: features, gamma: g0 + sample * features,
                                         beta: b0 + sample * features, epsilon: epsilon, rows: rows)
                            }
                        }
                    }
                }
            }
        }
    }
}
