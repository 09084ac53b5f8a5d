import ChiselCore
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

    private func unprofiled(_ x: Tensor) throws -> Tensor {
        guard x.lastDimension == features else {
            throw ChiselError(.internal, "layer norm expects …×\(features), got \(x.shape)")
        }
        var out = x
        let n = features
        out.data.withUnsafeMutableBufferPointer { data in
            Parallel.forEachChunk(x.rows, minimumChunk: 16) { range in
                for row in range {
                    let base = row * n
                    var sum = 0.0
                    for i in 0..<n { sum += Double(data[base + i]) }
                    let mean = sum / Double(n)
                    var squares = 0.0
                    for i in 0..<n {
                        let d = Double(data[base + i]) - mean
                        squares += d * d
                    }
                    let inv = Float(1 / (squares / Double(n) + Double(epsilon)).squareRoot())
                    let m = Float(mean)
                    for i in 0..<n { data[base + i] = (data[base + i] - m) * inv * gamma[i] + beta[i] }
                }
            }
        }
        return out
    }
}
