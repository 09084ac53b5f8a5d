import ChiselBase
import Foundation

/// A nearest-neighbour ×2 upsampling followed by a 3×3, stride-1, padding-1 convolution
/// (diffusers' `Upsample2D` with `interpolate` and a convolution), computed without the
/// upsampled map.
///
/// Each output pixel (2i + py, 2j + px) sees a 3×3 window of the upsampled map that covers only
/// a 2×2 window of the input, so each of the four phases (py, px) is a 2×2 convolution of the
/// input whose taps are sums of the 3×3 kernel's: for rows, phase 0 takes tap 0 from input row
/// i − 1 and taps 1 + 2 from row i; phase 1 takes taps 0 + 1 from row i and tap 2 from row i + 1
/// (the same for columns). The four phases run as one 2×2 convolution with padding 1 and four
/// times the output channels, whose (H + 1) × (W + 1) result holds phase (py, px) of output
/// pixel (2i + py, 2j + px) at position (i + py, j + px); a copy interleaves them.
///
/// That is 16 multiplications per output value instead of 36, the same sums in another order:
/// in FP32 the results differ from the two-step form by rounding only; in bfloat16 the summed
/// taps are rounded to bfloat16 once more.
public final class UpsampleConv2D: Sendable {
    public let inChannels: Int, outChannels: Int
    public let precision: Precision
    let phases: Conv2D

    /// `weights` of the 3×3 convolution in PyTorch's O×I×3×3 order; `bias` of `outChannels`.
    public init(inChannels: Int, outChannels: Int, weights: [Float], bias: [Float]?, precision: Precision) throws {
        guard weights.count == outChannels * inChannels * 9 else {
            throw ChiselError(.model, "upsampling convolution weights have \(weights.count) values, expected "
                              + "\(outChannels)×\(inChannels)×3×3")
        }
        if let bias, bias.count != outChannels {
            throw ChiselError(.model, "upsampling convolution bias has \(bias.count) values, expected \(outChannels)")
        }
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.precision = precision
        // Which 3×3 taps fall on 2×2 tap a of phase p, along one axis.
        let taps = [[[0], [1, 2]], [[0, 1], [2]]]
        var folded = [Float](repeating: 0, count: 4 * outChannels * inChannels * 4)
        for py in 0..<2 {
            for px in 0..<2 {
                let phase = py * 2 + px
                for o in 0..<outChannels {
                    for i in 0..<inChannels {
                        let source = (o * inChannels + i) * 9
                        let target = ((phase * outChannels + o) * inChannels + i) * 4
                        for a in 0..<2 {
                            for b in 0..<2 {
                                var sum: Float = 0
                                for ky in taps[py][a] {
                                    for kx in taps[px][b] { sum += weights[source + ky * 3 + kx] }
                                }
                                folded[target + a * 2 + b] = sum
                            }
                        }
                    }
                }
            }
        }
        let phaseBias = bias.map { b in (0..<4).flatMap { _ in b } }
        phases = try Conv2D(inChannels: inChannels, outChannels: 4 * outChannels, kernel: 2, padding: 1,
                            weights: folded, bias: phaseBias, precision: precision)
    }

    /// The N×2H×2W×outChannels result for an N×H×W×inChannels input.
    public func callAsFunction(_ input: Tensor) throws -> Tensor {
        guard input.rank == 4, input.shape[3] == inChannels else {
            throw ChiselError(.internal, "upsampling convolution expects N×H×W×\(inChannels), got \(input.shape)")
        }
        let (n, h, w) = (input.shape[0], input.shape[1], input.shape[2])
        let stacked = try phases(input)
        return KernelProfile.measure("upsample interleave") {
            let c = outChannels
            var out = Tensor(uninitialized: [n, 2 * h, 2 * w, c])
            let rowStride = (w + 1) * 4 * c, imageStride = (h + 1) * rowStride
            stacked.data.withUnsafeBufferPointer { s in
                out.data.withUnsafeMutableBufferPointer { o in
                    guard let source = s.baseAddress, let target = o.baseAddress else { return }
                    Parallel.forEachChunk(n * 2 * h, minimumChunk: 4) { rows in
                        for row in rows {
                            let (b, y) = row.quotientAndRemainder(dividingBy: 2 * h)
                            let (i, py) = y.quotientAndRemainder(dividingBy: 2)
                            let sourceRow = source + b * imageStride + (i + py) * rowStride
                            var destination = target + row * 2 * w * c
                            for x in 0..<(2 * w) {
                                let (j, px) = x.quotientAndRemainder(dividingBy: 2)
                                let from = sourceRow + (j + px) * 4 * c + (py * 2 + px) * c
                                destination.update(from: from, count: c)
                                destination += c
                            }
                        }
                    }
                }
            }
            return out
        }
    }
}
