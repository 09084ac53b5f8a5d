import ChiselTensor

/// diffusers' `Decoder` (autoencoders/vae.py) with `UpDecoderBlock2D`s and group norms: a 3×3
/// convolution in, the mid block, `layers_per_block + 1` ResNet blocks per level from the widest
/// down with a nearest ×2 upsampling and 3×3 convolution after every level but the last, then
/// GroupNorm → SiLU → a 3×3 convolution to the image channels.
final class VAEDecoder: Sendable {
    let convIn: Conv2D
    let mid: VAEMidBlock
    let blocks: [(resnets: [ResnetBlock], upsample: Upsample?)]
    let norm: GroupNorm, convOut: Conv2D

    init(_ w: ScopedWeights, latentChannels: Int, blockOutChannels channels: [Int], layersPerBlock: Int, groups: Int,
         outChannels: Int, midBlockAttention: Bool, precision: Precision) throws {
        let top = channels[channels.count - 1]
        convIn = try Load.conv(w, "conv_in", in: latentChannels, out: top, kernel: 3, padding: 1, precision: precision)
        mid = try VAEMidBlock(w.scoped("mid_block."), channels: top, groups: groups, attention: midBlockAttention,
                              precision: precision)
        var blocks: [(resnets: [ResnetBlock], upsample: Upsample?)] = []
        var current = top
        for (i, out) in channels.reversed().enumerated() {
            let b = w.scoped("up_blocks.\(i).")
            var resnets: [ResnetBlock] = []
            for j in 0...layersPerBlock {
                resnets.append(try ResnetBlock(b.scoped("resnets.\(j)."), in: current, out: out, groups: groups,
                                               epsilon: 1e-6, timeChannels: nil, precision: precision))
                current = out
            }
            let last = i == channels.count - 1
            blocks.append((resnets, last ? nil : try Upsample(b.scoped("upsamplers.0."), channels: out, precision: precision,
                                                                 alwaysDoubles: true)))
        }
        self.blocks = blocks
        norm = try Load.groupNorm(w, "conv_norm_out", groups: groups, channels: channels[0], epsilon: 1e-6)
        convOut = try Load.conv(w, "conv_out", in: channels[0], out: outChannels, kernel: 3, padding: 1,
                                precision: precision)
    }

    var convolutions: [Conv2D] {
        [convIn, convOut] + mid.convolutions
            + blocks.flatMap { $0.resnets.flatMap(\.convolutions) + ($0.upsample?.convolutions ?? []) }
    }

    func callAsFunction(_ latent: Tensor) throws -> Tensor {
        var h = try mid(convIn(latent))
        for block in blocks {
            for resnet in block.resnets { h = try resnet(h) }
            if let upsample = block.upsample { h = try upsample(h) }
        }
        return try convOut.afterNorm(norm, h, silu: true)
    }

}
