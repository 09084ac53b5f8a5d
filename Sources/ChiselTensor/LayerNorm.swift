import CChiselKernels
import ChiselBase
import Foundation

/// Layer normalisation over the last dimension (`torch.nn.LayerNorm`).
public struct LayerNorm: Sendable {
    public let features: Int
    public let epsilon: Float
    public let gamma: [Float], beta: [Float]

    public init(features: Int, epsilon: Float, gamma: [Float], beta: [Float]) throws {
        guard gamma.count == features, beta.count == features else {
            throw ChiselError(.model, "layer norm needs \(features) scales and shifts, got \(gamma.count) and \(beta.count)")
        }
        self.features = features
        self.epsilon = epsilon
        self.gamma = gamma
        self.beta = beta
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try KernelProfile.measure("layernorm") { try unprofiled(x) }
    }

    /// Normalises into bfloat16 for a `.bf16` linear layer that follows.
    public func bf16(_ x: Tensor) throws -> HalfTensor {
        guard x.lastDimension == features else {
            throw ChiselError(.internal, "layer norm expects …×\(features), got \(x.shape)")
        }
        return KernelProfile.measure("layernorm") {
            var out = HalfTensor(uninitialized: x.shape)
            x.data.withUnsafeBufferPointer { src in
                out.data.withUnsafeMutableBufferPointer { dst in
                    guard let source = src.baseAddress, let target = dst.baseAddress else { return }
                    Parallel.forEachChunk(x.rows, minimumChunk: 64) { range in
                        chisel_layer_norm_bf16(source, target, Int64(features), gamma, beta, epsilon,
                                               Int64(range.lowerBound), Int64(range.upperBound))
                    }
                }
            }
            return out
        }
    }

    private func unprofiled(_ x: Tensor) throws -> Tensor {
        guard x.lastDimension == features else {
            throw ChiselError(.internal, "layer norm expects …×\(features), got \(x.shape)")
        }
        var out = Tensor(uninitialized: x.shape)
        x.data.withUnsafeBufferPointer { src in
            out.data.withUnsafeMutableBufferPointer { dst in
                guard let source = src.baseAddress, let target = dst.baseAddress else { return }
                Parallel.forEachChunk(x.rows, minimumChunk: 64) { range in
                    chisel_layer_norm(source, target, Int64(features), gamma, beta, epsilon, Int64(range.lowerBound),
                                      Int64(range.upperBound))
                }
            }
        }
        return out
    }
}
