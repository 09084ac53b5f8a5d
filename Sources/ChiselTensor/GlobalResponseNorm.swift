import CChiselKernels
import ChiselBase
import Foundation

/// Global response normalisation (ConvNeXt V2, Woo et al. 2023), diffusers' `GlobalResponseNorm`
/// on N×H×W×C maps: `gx` is each channel's L2 norm over the positions of its sample,
/// `nx = gx / (mean_c(gx) + 1e-6)`, and the output `γ·(x·nx) + β + x`, computed here as one
/// per-channel scale and shift, `x·(γ·nx + 1) + β`.
public struct GlobalResponseNorm: Sendable {
    public let channels: Int
    public let gamma: [Float], beta: [Float]

    public init(channels: Int, gamma: [Float], beta: [Float]) throws {
        guard gamma.count == channels, beta.count == channels else {
            throw ChiselError(.model, "global response norm needs \(channels) gammas and betas, got \(gamma.count) and \(beta.count)")
        }
        self.channels = channels
        self.gamma = gamma
        self.beta = beta
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        var out = Tensor(uninitialized: x.shape)
        try out.data.withUnsafeMutableBufferPointer { dst in
            let target = dst.baseAddress
            try run(x) { source, scale, rows in
                chisel_scale_shift(source, target, Int64(channels), scale, beta, 0, Int64(rows.lowerBound),
                                   Int64(rows.upperBound))
            }
        }
        return out
    }

    /// The output in bfloat16, for a `.bf16` linear layer that follows.
    public func bf16(_ x: Tensor) throws -> HalfTensor {
        var out = HalfTensor(uninitialized: x.shape)
        try out.data.withUnsafeMutableBufferPointer { dst in
            let target = dst.baseAddress
            try run(x) { source, scale, rows in
                chisel_scale_shift_bf16(source, target, Int64(channels), scale, beta, 0, Int64(rows.lowerBound),
                                        Int64(rows.upperBound))
            }
        }
        return out
    }

    /// Computes each sample's scale and hands `write` the input, the scale and row ranges of the sample.
    private func run(_ x: Tensor, _ write: (UnsafePointer<Float>, [Float], Range<Int>) -> Void) throws {
        guard x.rank == 4, x.lastDimension == channels else {
            throw ChiselError(.internal, "global response norm expects N×H×W×\(channels), got \(x.shape)")
        }
        let batch = x.shape[0], positions = x.shape[1] * x.shape[2]
        KernelProfile.measure("global response norm") {
            x.data.withUnsafeBufferPointer { src in
                guard let source = src.baseAddress else { return }
                for b in 0..<batch {
                    let squares = ChannelSums.of(source + b * positions * channels, positions: positions,
                                                 channels: channels).squares
                    let norms = squares.map { Float($0.squareRoot()) }
                    let mean = Float(norms.reduce(0.0) { $0 + Double($1) } / Double(channels))
                    var scale = [Float](repeating: 0, count: channels)
                    for c in 0..<channels { scale[c] = gamma[c] * (norms[c] / (mean + 1e-6)) + 1 }
                    Parallel.forEachChunk(positions, minimumChunk: 64) { range in
                        write(source, scale, (b * positions + range.lowerBound)..<(b * positions + range.upperBound))
                    }
                }
            }
        }
    }
}

/// Per-channel sums and sums of squares of a positions × channels block, accumulated in Double
/// over parallel chunks (`chisel_channel_sums`).
enum ChannelSums {
    static func of(_ x: UnsafePointer<Float>, positions: Int, channels: Int) -> (sum: [Double], squares: [Double]) {
        let parts = Locked<[([Double], [Double])]>([])
        Parallel.forEachChunk(positions, minimumChunk: 256) { range in
            var sum = [Double](repeating: 0, count: channels), squares = sum
            sum.withUnsafeMutableBufferPointer { s in
                squares.withUnsafeMutableBufferPointer { q in
                    chisel_channel_sums(x, Int64(channels), Int64(range.lowerBound), Int64(range.upperBound),
                                        s.baseAddress, q.baseAddress)
                }
            }
            parts.withLock { $0.append((sum, squares)) }
        }
        var sum = [Double](repeating: 0, count: channels), squares = sum
        for part in parts.value {
            for c in 0..<channels {
                sum[c] += part.0[c]
                squares[c] += part.1[c]
            }
        }
        return (sum, squares)
    }
}
