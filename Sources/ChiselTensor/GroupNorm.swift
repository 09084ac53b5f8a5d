import CChiselKernels
import ChiselBase
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
        try KernelProfile.measure("groupnorm") { try unprofiled(x, silu: silu) }
    }

    /// Normalises into bfloat16 for a `.bf16` convolution that follows (the ResNet blocks' norm →
    /// SiLU → conv), saving the convolution's own conversion of a FP32 input.
    public func bf16(_ x: Tensor, silu: Bool = false) throws -> HalfTensor {
        try KernelProfile.measure("groupnorm") {
            var out = HalfTensor(uninitialized: x.shape)
            try apply(x) { source, row0, rows, scale, shift in
                out.data.withUnsafeMutableBufferPointer { dst in
                    guard let target = dst.baseAddress else { return }
                    Parallel.forEachChunk(rows, minimumChunk: 64) { range in
                        chisel_scale_shift_bf16(source, target + row0 * channels, Int64(channels), scale, shift,
                                                silu ? 1 : 0, Int64(range.lowerBound), Int64(range.upperBound))
                    }
                }
            }
            return out
        }
    }

    /// Normalises bfloat16 input into bfloat16 (a `.bf16` ResNet block's middle).
    public func bf16(_ x: HalfTensor, silu: Bool = false) throws -> HalfTensor {
        guard x.shape.last == channels, x.rank >= 2 else {
            throw ChiselError(.internal, "group norm expects N×…×\(channels), got \(x.shape)")
        }
        return KernelProfile.measure("groupnorm") {
            var out = HalfTensor(uninitialized: x.shape)
            let batch = x.shape[0]
            let positions = x.data.count / (batch * channels)
            x.data.withUnsafeBufferPointer { src in
                out.data.withUnsafeMutableBufferPointer { dst in
                    guard let source = src.baseAddress, let target = dst.baseAddress else { return }
                    for b in 0..<batch {
                        let sample = source + b * positions * channels
                        let (scale, shift) = coefficients(positions: positions) { range, sum, squares in
                            chisel_channel_sums_half(sample, Int64(channels), Int64(range.lowerBound),
                                                     Int64(range.upperBound), sum, squares)
                        }
                        let output = target + b * positions * channels
                        Parallel.forEachChunk(positions, minimumChunk: 64) { range in
                            chisel_scale_shift_half(sample, output, Int64(channels), scale, shift, silu ? 1 : 0,
                                                    Int64(range.lowerBound), Int64(range.upperBound))
                        }
                    }
                }
            }
            return out
        }
    }

    /// Per-channel scale and shift of one sample from its channel sums, which `sums` adds up for
    /// a range of positions into the two arrays it is given.
    private func coefficients(positions: Int,
                              sums: (Range<Int>, UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>) -> Void)
        -> (scale: [Float], shift: [Float])
    {
        let perGroup = channels / groups
        let parts = Locked<[([Double], [Double])]>([])
        Parallel.forEachChunk(positions, minimumChunk: 256) { range in
            var sum = [Double](repeating: 0, count: channels), squares = sum
            sum.withUnsafeMutableBufferPointer { s in
                squares.withUnsafeMutableBufferPointer { q in
                    if let sp = s.baseAddress, let qp = q.baseAddress { sums(range, sp, qp) }
                }
            }
            parts.withLock { $0.append((sum, squares)) }
        }
        var scale = [Float](repeating: 0, count: channels), shift = scale
        let partials = parts.value
        for g in 0..<groups {
            var sum = 0.0, squares = 0.0
            for part in partials {
                for c in (g * perGroup)..<((g + 1) * perGroup) {
                    sum += part.0[c]
                    squares += part.1[c]
                }
            }
            let n = Double(positions * perGroup)
            let mean = sum / n
            let inverse = 1 / (max(0, squares / n - mean * mean) + Double(epsilon)).squareRoot()
            for c in (g * perGroup)..<((g + 1) * perGroup) {
                let k = Double(gamma[c]) * inverse
                scale[c] = Float(k)
                shift[c] = Float(Double(beta[c]) - mean * k)
            }
        }
        return (scale, shift)
    }

    private func unprofiled(_ x: Tensor, silu: Bool) throws -> Tensor {
        var out = Tensor(uninitialized: x.shape)
        try apply(x) { source, row0, rows, scale, shift in
            out.data.withUnsafeMutableBufferPointer { dst in
                guard let target = dst.baseAddress else { return }
                Parallel.forEachChunk(rows, minimumChunk: 64) { range in
                    chisel_scale_shift(source, target + row0 * channels, Int64(channels), scale, shift, silu ? 1 : 0,
                                       Int64(range.lowerBound), Int64(range.upperBound))
                }
            }
        }
        return out
    }

    /// Computes each sample's per-channel scale and shift, and hands them to `write` with the
    /// sample's rows (a pointer to its first value, its first row index, and its row count).
    private func apply(_ x: Tensor, _ write: (UnsafePointer<Float>, Int, Int, [Float], [Float]) -> Void) throws {
        guard x.lastDimension == channels, x.rank >= 2 else {
            throw ChiselError(.internal, "group norm expects N×…×\(channels), got \(x.shape)")
        }
        let batch = x.shape[0]
        let positions = x.count / (batch * channels)
        x.data.withUnsafeBufferPointer { src in
            guard let source = src.baseAddress else { return }
            for b in 0..<batch {
                let sample = source + b * positions * channels
                let (scale, shift) = coefficients(positions: positions) { range, sum, squares in
                    chisel_channel_sums(sample, Int64(channels), Int64(range.lowerBound), Int64(range.upperBound),
                                        sum, squares)
                }
                write(sample, b * positions, positions, scale, shift)
            }
        }
    }
}
