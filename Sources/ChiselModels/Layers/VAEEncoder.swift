import ChiselTensor

/// diffusers' `Encoder` (autoencoders/vae.py) with `DownEncoderBlock2D`s: a 3×3 convolution in,
/// ResNet blocks with a stride-2 downsampling (padded bottom and right) after every level but the
/// last, the mid block, GroupNorm → SiLU → a 3×3 convolution to `outChannels` (twice the latent
/// channels for `AutoencoderKL`'s `double_z`, the latent channels for `VQModel`).
final class VAEEncoder: Sendable {
    let convIn: Conv2D
    let blocks: [(resnets: [ResnetBlock], downsample: Downsample?)]
    let mid: VAEMidBlock
    let norm: GroupNorm, convOut: Conv2D

    init(_ w: ScopedWeights, inChannels: Int, blockOutChannels channels: [Int], layersPerBlock: Int, groups: Int,
         outChannels: Int, midBlockAttention: Bool, precision: Precision) throws {
        convIn = try Load.conv(w, "conv_in", in: inChannels, out: channels[0], kernel: 3, padding: 1, precision: precision)
        var blocks: [(resnets: [ResnetBlock], downsample: Downsample?)] = []
        var current = channels[0]
        for (i, out) in channels.enumerated() {
            let b = w.scoped("down_blocks.\(i).")
            var resnets: [ResnetBlock] = []
            for j in 0..<layersPerBlock {
                resnets.append(try ResnetBlock(b.scoped("resnets.\(j)."), in: current, out: out, groups: groups,
                                               epsilon: 1e-6, timeChannels: nil, precision: precision))
                current = out
            }
            let last = i == channels.count - 1
            blocks.append((resnets, last ? nil : try Downsample(b.scoped("downsamplers.0."), channels: out, padding: 0,
                                                                precision: precision)))
        }
        self.blocks = blocks
        let top = channels[channels.count - 1]
        mid = try VAEMidBlock(w.scoped("mid_block."), channels: top, groups: groups, attention: midBlockAttention,
                              precision: precision)
        norm = try Load.groupNorm(w, "conv_norm_out", groups: groups, channels: top, epsilon: 1e-6)
        convOut = try Load.conv(w, "conv_out", in: top, out: outChannels, kernel: 3, padding: 1, precision: precision)
    }

    var convolutions: [Conv2D] {
        [convIn, convOut] + mid.convolutions
            + blocks.flatMap { $0.resnets.flatMap(\.convolutions) + ($0.downsample.map { [$0.conv] } ?? []) }
    }

    func callAsFunction(_ image: Tensor) throws -> Tensor {
        var h = try convIn(image)
        for block in blocks {
            for resnet in block.resnets { h = try resnet(h) }
            if let downsample = block.downsample { h = try downsample(h) }
        }
        return try convOut.afterNorm(norm, mid(h), silu: true)
    }
}
