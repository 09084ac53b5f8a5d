import CChiselKernels
import ChiselBase

/// A depthwise 3×3 convolution with padding 1 (`nn.Conv2d(C, C, 3, padding=1, groups=C)`) on
/// N×H×W×C maps, in FP32 at every precision: it is a few multiply-adds per value, memory-bound,
/// and its rounding then matches the FP32 reference in `.bf16` networks too.
public struct DepthwiseConv2D: Sendable {
    public let channels: Int
    /// [9][C]: tap (dy·3 + dx), then channel, so channels are the kernel's vector lanes.
    let taps: [Float]
    let bias: [Float]?

    /// `weights` in PyTorch's C×1×3×3 order.
    public init(channels: Int, weights: [Float], bias: [Float]?) throws {
        guard weights.count == channels * 9, bias.map({ $0.count == channels }) ?? true else {
            throw ChiselError(.model, "depthwise convolution of \(channels) channels got \(weights.count) weights and "
                              + "\(bias?.count ?? 0) biases")
        }
        var taps = [Float](repeating: 0, count: 9 * channels)
        for c in 0..<channels {
            for t in 0..<9 { taps[t * channels + c] = weights[c * 9 + t] }
        }
        self.channels = channels
        self.taps = taps
        self.bias = bias
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.rank == 4, x.lastDimension == channels else {
            throw ChiselError(.internal, "depthwise convolution expects N×H×W×\(channels), got \(x.shape)")
        }
        let (n, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        var out = Tensor(uninitialized: x.shape)
        KernelProfile.measure("depthwise 3×3 \(channels) \(h)×\(w)") {
            x.data.withUnsafeBufferPointer { src in
                out.data.withUnsafeMutableBufferPointer { dst in
                    taps.withUnsafeBufferPointer { tp in
                        bias.withOptionalPointer { bp in
                            Parallel.forEachChunk(n * h) { rows in
                                chisel_depthwise_conv3x3(src.baseAddress, dst.baseAddress, Int64(h), Int64(w),
                                                         Int64(channels), tp.baseAddress, bp, Int64(rows.lowerBound),
                                                         Int64(rows.upperBound))
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
