import ChiselBase
import ChiselTensor

/// diffusers' `Downsample2D` with a convolution: 3×3, stride 2. The UNet pads 1 on every side;
/// the VAE encoder pads only bottom and right (`padding=0` plus an explicit (0, 1, 0, 1) pad).
final class Downsample: Sendable {
    let conv: Conv2D
    let asymmetric: Bool

    init(_ w: ScopedWeights, channels: Int, padding: Int, precision: Precision) throws {
        conv = try Load.conv(w, "conv", in: channels, out: channels, kernel: 3, stride: 2, padding: padding,
                             precision: precision)
        asymmetric = padding == 0
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        asymmetric ? try conv(x, padding: (0, 0, 1, 1)) : try conv(x)
    }
}

/// diffusers' `Upsample2D` with a convolution: nearest-neighbour resize, then a 3×3 convolution.
/// A decoder that always doubles (the VAEs') runs both as one `UpsampleConv2D`, which does less
/// than half the multiplications, where the convolution would not use Winograd: in bfloat16, or
/// without float Winograd. An FP32 Winograd 3×3 on the resized map measured as fast as the
/// folded 2×2 form at 512² (SD's VAE: 0.63 s against 0.74 s for 512 channels, 0.72 s against
/// 0.72 s for 256), so FP32 keeps it. The UNet, whose skips can ask for odd sizes, resizes first.
final class Upsample: Sendable {
    private enum Kernel {
        case resizeThenConvolve(Conv2D)
        case doubling(UpsampleConv2D)
    }
    private let kernel: Kernel

    init(_ w: ScopedWeights, channels: Int, precision: Precision, alwaysDoubles: Bool = false) throws {
        if alwaysDoubles, precision == .bf16 || !Conv2D.winogradSupported || !Conv2D.winograd.enabled {
            let weights = try w.floats("conv.weight", shape: [channels, channels, 3, 3])
            let bias = w.contains("conv.bias") ? try w.floats("conv.bias", shape: [channels]) : nil
            kernel = .doubling(try UpsampleConv2D(inChannels: channels, outChannels: channels, weights: weights,
                                                  bias: bias, precision: precision))
        } else {
            kernel = .resizeThenConvolve(try Load.conv(w, "conv", in: channels, out: channels, kernel: 3, padding: 1,
                                                       precision: precision))
        }
    }

    /// The convolutions whose Winograd policy a network may set (the doubling form has none that
    /// could use it).
    var convolutions: [Conv2D] {
        switch kernel {
        case .resizeThenConvolve(let conv): [conv]
        case .doubling: []
        }
    }

    /// Resizes to `size` (the matching skip connection's), or doubles when nil.
    func callAsFunction(_ x: Tensor, size: (height: Int, width: Int)? = nil) throws -> Tensor {
        let target = size ?? (x.shape[1] * 2, x.shape[2] * 2)
        switch kernel {
        case .resizeThenConvolve(let conv):
            return try conv(Ops.upsampleNearest(x, height: target.height, width: target.width))
        case .doubling(let fused):
            guard x.rank == 4, target == (x.shape[1] * 2, x.shape[2] * 2) else {
                throw ChiselError(.internal, "this upsampler only doubles, asked for \(target) from \(x.shape)")
            }
            return try fused(x)
        }
    }
}
