import CChiselKernels
import ChiselBase

/// Root-mean-square normalisation over the last dimension (Zhang & Sennrich 2019), diffusers'
/// `RMSNorm`: `x · rsqrt(mean(x²) + ε)`, then `· weight` (and `+ bias`) when it has them.
public struct RMSNorm: RowNormalization {
    public let features: Int
    public let epsilon: Float
    /// nil without `elementwise_affine`.
    public let weight: [Float]?
    public let bias: [Float]?

    public init(features: Int, epsilon: Float, weight: [Float]?, bias: [Float]? = nil) throws {
        guard features > 0, weight.map({ $0.count == features }) ?? true, bias.map({ $0.count == features }) ?? true else {
            throw ChiselError(.model, "RMS norm of \(features) features got \(weight?.count ?? 0) weights and "
                              + "\(bias?.count ?? 0) biases")
        }
        self.features = features
        self.epsilon = epsilon
        self.weight = weight
        self.bias = bias
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try check(x)
        return KernelProfile.measure("rmsnorm") {
            var out = Tensor(uninitialized: x.shape)
            x.data.withUnsafeBufferPointer { src in
                out.data.withUnsafeMutableBufferPointer { dst in
                    guard let source = src.baseAddress, let target = dst.baseAddress else { return }
                    withAffine { gamma, beta in
                        Parallel.forEachChunk(x.rows, minimumChunk: 64) { range in
                            RowKernel.rms.run(source, target, features: features, gamma: gamma, beta: beta,
                                              epsilon: epsilon, rows: range)
                        }
                    }
                }
            }
            return out
        }
    }

    /// Normalises into bfloat16 for a `.bf16` layer that follows.
    public func bf16(_ x: Tensor) throws -> HalfTensor {
        try check(x)
        return KernelProfile.measure("rmsnorm") {
            var out = HalfTensor(uninitialized: x.shape)
            x.data.withUnsafeBufferPointer { src in
                out.data.withUnsafeMutableBufferPointer { dst in
                    guard let source = src.baseAddress, let target = dst.baseAddress else { return }
                    withAffine { gamma, beta in
                        Parallel.forEachChunk(x.rows, minimumChunk: 64) { range in
                            RowKernel.rms.run(source, target, features: features, gamma: gamma, beta: beta,
                                              epsilon: epsilon, rows: range)
                        }
                    }
                }
            }
            return out
        }
    }

    /// diffusers' `AdaLayerNormContinuous` with `norm_type="rms_norm"`: `norm(x) · (1 + scale) +
    /// shift` per sample, `modulation` N×2C with the scales first.
    public func modulated(by modulation: Tensor) throws -> ModulatedNorm {
        try ModulatedNorm(kind: .rms, features: features, epsilon: epsilon, weight: weight, bias: bias,
                          modulation: modulation)
    }

    private func check(_ x: Tensor) throws {
        guard x.lastDimension == features, x.rank >= 1 else {
            throw ChiselError(.internal, "RMS norm expects …×\(features), got \(x.shape)")
        }
    }

    private func withAffine(_ body: (UnsafePointer<Float>?, UnsafePointer<Float>?) -> Void) {
        func optional(_ values: [Float]?, _ inner: (UnsafePointer<Float>?) -> Void) {
            guard let values else { return inner(nil) }
            values.withUnsafeBufferPointer { inner($0.baseAddress) }
        }
        optional(weight) { gamma in optional(bias) { beta in body(gamma, beta) } }
    }
}
