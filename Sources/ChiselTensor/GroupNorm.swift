import ChiselCore
import Foundation

/// Group normalisation over channels-last feature maps (Wu & He 2018; `torch.nn.GroupNorm`):
/// each group of channels is normalised over its channels and all positions, then scaled and
/// shifted per channel. Statistics accumulate in Double.
public struct GroupNorm: Sendable {
    public let groups: Int, channels: Int
    public let epsilon: Float
    public let gamma: [Float], beta: [Float]

    public init(groups: Int, channels: Int, epsilon: Float, gamma: [Float], beta: [Float]) throws {
        guard groups > 0, channels % groups == 0 else {
            throw ChiselError(.model, "\(channels) channels cannot be split into \(groups) groups")
        }
        guard gamma.count == channels, beta.count == channels else {
            throw ChiselError(.model, "group norm needs \(channels) scales and shifts, got \(gamma.count) and \(beta.count)")
        }
        self.groups = groups
        self.channels = channels
        self.epsilon = epsilon
        self.gamma = gamma
        self.beta = beta
    }

    /// Normalises `x` (N×…×C); with `silu`, applies SiLU after the affine step, as the
    /// norm → SiLU pairs of ResNet blocks do.
    public func callAsFunction(_ x: Tensor, silu: Bool = false) throws -> Tensor {
        guard x.lastDimension == channels, x.rank >= 2 else {
            throw ChiselError(.internal, "group norm expects N×…×\(channels), got \(x.shape)")
        }
        let batch = x.shape[0]
        let positions = x.count / (batch * channels)
        let perGroup = channels / groups
        var out = x
        var mean = [Float](repeating: 0, count: batch * groups)
        var scale = [Float](repeating: 0, count: batch * groups)
        x.data.withUnsafeBufferPointer { src in
            mean.withUnsafeMutableBufferPointer { meanOut in
                scale.withUnsafeMutableBufferPointer { scaleOut in
                    Parallel.forEachChunk(batch * groups) { range in
                        for item in range {
                            let (b, g) = item.quotientAndRemainder(dividingBy: groups)
                            var sum = 0.0, squares = 0.0
                            for p in 0..<positions {
                                let base = (b * positions + p) * channels + g * perGroup
                                var s: Float = 0, q: Float = 0
                                for c in 0..<perGroup {
                                    let v = src[base + c]
                                    s += v
                                    q += v * v
                                }
                                sum += Double(s)
                                squares += Double(q)
                            }
                            let n = Double(positions * perGroup)
                            let m = sum / n
                            let variance = max(0, squares / n - m * m)
                            meanOut[item] = Float(m)
                            scaleOut[item] = Float(1 / (variance + Double(epsilon)).squareRoot())
                        }
                    }
                }
            }
        }
        out.data.withUnsafeMutableBufferPointer { data in
            Parallel.forEachChunk(batch * positions, minimumChunk: 64) { range in
                for row in range {
                    let b = row / positions
                    let base = row * channels
                    for c in 0..<channels {
                        let g = b * groups + c / perGroup
                        var v = (data[base + c] - mean[g]) * scale[g] * gamma[c] + beta[c]
                        if silu { v = v / (1 + expf(-v)) }
                        data[base + c] = v
                    }
                }
            }
        }
        return out
    }
}
