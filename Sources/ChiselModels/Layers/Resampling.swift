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
final class Upsample: Sendable {
    let conv: Conv2D

    init(_ w: ScopedWeights, channels: Int, precision: Precision) throws {
        conv = try Load.conv(w, "conv", in: channels, out: channels, kernel: 3, padding: 1, precision: precision)
    }

    /// Resizes to `size` (the matching skip connection's), or doubles when nil.
    func callAsFunction(_ x: Tensor, size: (height: Int, width: Int)? = nil) throws -> Tensor {
        let target = size ?? (x.shape[1] * 2, x.shape[2] * 2)
        return try conv(Ops.upsampleNearest(x, height: target.height, width: target.width))
    }
}
