import ChiselCore
import ChiselTensor
import Foundation

/// diffusers' `AutoencoderKL`: the Stable Diffusion VAE.
public final class AutoencoderKL: Sendable {
    public let config: VAEConfig
    let encoderIn: Conv2D
    let encoderBlocks: [(resnets: [ResnetBlock], downsample: Downsample?)]
    let encoderMid: MidBlock
    let encoderNorm: GroupNorm, encoderOut: Conv2D
    let quantConv: Linear?
    let postQuantConv: Linear?
    let decoderIn: Conv2D
    let decoderMid: MidBlock
    let decoderBlocks: [(resnets: [ResnetBlock], upsample: Upsample?)]
    let decoderNorm: GroupNorm, decoderOut: Conv2D

    /// ResNet, attention, ResNet at the lowest resolution.
    final class MidBlock: Sendable {
        let first: ResnetBlock, attention: VAEAttention?, second: ResnetBlock

        init(_ w: ScopedWeights, channels: Int, groups: Int, attention: Bool, precision: Precision) throws {
            first = try ResnetBlock(w.scoped("resnets.0."), in: channels, out: channels, groups: groups, epsilon: 1e-6,
                                    timeChannels: nil, precision: precision)
            self.attention = attention
                ? try VAEAttention(w.scoped("attentions.0."), channels: channels, groups: groups, precision: precision)
                : nil
            second = try ResnetBlock(w.scoped("resnets.1."), in: channels, out: channels, groups: groups, epsilon: 1e-6,
                                     timeChannels: nil, precision: precision)
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            var h = try first(x)
            if let attention { h = try attention(h) }
            return try second(h)
        }
    }

    /// Weights named as diffusers saves them (`encoder.…`, `decoder.…`, `quant_conv`, …).
    public init(config: VAEConfig, weights: any WeightStore, precision: Precision = .f32) throws {
        self.config = config
        let channels = config.blockOutChannels, groups = config.normGroups, latent = config.latentChannels
        let e = weights.scoped("encoder.")
        encoderIn = try Load.conv(e, "conv_in", in: config.inChannels, out: channels[0], kernel: 3, padding: 1,
                                  precision: precision)
        var blocks: [(resnets: [ResnetBlock], downsample: Downsample?)] = []
        var current = channels[0]
        for (i, out) in channels.enumerated() {
            let b = e.scoped("down_blocks.\(i).")
            var resnets: [ResnetBlock] = []
            for j in 0..<config.layersPerBlock {
                resnets.append(try ResnetBlock(b.scoped("resnets.\(j)."), in: current, out: out, groups: groups,
                                               epsilon: 1e-6, timeChannels: nil, precision: precision))
                current = out
            }
            let last = i == channels.count - 1
            blocks.append((resnets, last ? nil : try Downsample(b.scoped("downsamplers.0."), channels: out, padding: 0,
                                                                precision: precision)))
        }
        encoderBlocks = blocks
        let top = channels[channels.count - 1]
        encoderMid = try MidBlock(e.scoped("mid_block."), channels: top, groups: groups,
                                  attention: config.midBlockAttention, precision: precision)
        encoderNorm = try Load.groupNorm(e, "conv_norm_out", groups: groups, channels: top, epsilon: 1e-6)
        encoderOut = try Load.conv(e, "conv_out", in: top, out: 2 * latent, kernel: 3, padding: 1, precision: precision)
        quantConv = config.useQuantConv
            ? try Load.linear(weights, "quant_conv", in: 2 * latent, out: 2 * latent, precision: precision) : nil
        postQuantConv = config.usePostQuantConv
            ? try Load.linear(weights, "post_quant_conv", in: latent, out: latent, precision: precision) : nil

        let d = weights.scoped("decoder.")
        decoderIn = try Load.conv(d, "conv_in", in: latent, out: top, kernel: 3, padding: 1, precision: precision)
        decoderMid = try MidBlock(d.scoped("mid_block."), channels: top, groups: groups,
                                  attention: config.midBlockAttention, precision: precision)
        var up: [(resnets: [ResnetBlock], upsample: Upsample?)] = []
        current = top
        for (i, out) in channels.reversed().enumerated() {
            let b = d.scoped("up_blocks.\(i).")
            var resnets: [ResnetBlock] = []
            for j in 0...config.layersPerBlock {
                resnets.append(try ResnetBlock(b.scoped("resnets.\(j)."), in: current, out: out, groups: groups,
                                               epsilon: 1e-6, timeChannels: nil, precision: precision))
                current = out
            }
            let last = i == channels.count - 1
            up.append((resnets, last ? nil : try Upsample(b.scoped("upsamplers.0."), channels: out, precision: precision)))
        }
        decoderBlocks = up
        decoderNorm = try Load.groupNorm(d, "conv_norm_out", groups: groups, channels: channels[0], epsilon: 1e-6)
        decoderOut = try Load.conv(d, "conv_out", in: channels[0], out: config.outChannels, kernel: 3, padding: 1,
                                   precision: precision)
        // The VAE runs once per image, not once per step: its Winograd weights are made for each
        // run rather than kept (a few milliseconds per layer against about 120 MiB for SD's VAE).
        for conv in convolutions {
            conv.winograd.keptWeightBytes = 0
            conv.winograd.keptWeightBytesBF16 = 0
        }
    }

    /// Every convolution of the encoder and decoder.
    var convolutions: [Conv2D] {
        var all = [encoderIn, encoderOut, decoderIn, decoderOut]
        for block in encoderBlocks { all += block.resnets.flatMap(\.convolutions) + (block.downsample.map { [$0.conv] } ?? []) }
        for block in decoderBlocks { all += block.resnets.flatMap(\.convolutions) + (block.upsample.map { [$0.conv] } ?? []) }
        for mid in [encoderMid, decoderMid] { all += mid.first.convolutions + mid.second.convolutions }
        return all
    }

    /// The latent distribution of `image` (N×H×W×3 in [-1, 1]): its mean and standard deviation,
    /// N×h×w×latentChannels each, unscaled (multiply by `config.scalingFactor` for the UNet).
    public func encode(_ image: Tensor) throws -> (mean: Tensor, std: Tensor) {
        defer { Allocator.releaseWorkBuffers() }
        var h = try encoderIn(image)
        for block in encoderBlocks {
            for resnet in block.resnets { h = try resnet(h) }
            if let downsample = block.downsample { h = try downsample(h) }
        }
        h = try encoderOut.afterNorm(encoderNorm, encoderMid(h), silu: true)
        if let quantConv { h = try quantConv(h) }
        let latent = config.latentChannels
        var mean = Tensor(zeros: Array(h.shape.dropLast()) + [latent])
        var std = mean
        for row in 0..<h.rows {
            for c in 0..<latent {
                mean.data[row * latent + c] = h.data[row * 2 * latent + c]
                // DiagonalGaussianDistribution: log-variance clamped to [-30, 20].
                let logVariance = min(20, max(-30, h.data[row * 2 * latent + latent + c]))
                std.data[row * latent + c] = expf(0.5 * logVariance)
            }
        }
        return (mean, std)
    }

    /// The image (N×H×W×3, nominally [-1, 1]) for an unscaled latent.
    public func decode(_ latent: Tensor) throws -> Tensor {
        defer { Allocator.releaseWorkBuffers() }
        var h = latent
        if let postQuantConv { h = try postQuantConv(h) }
        h = try decoderMid(decoderIn(h))
        for block in decoderBlocks {
            for resnet in block.resnets { h = try resnet(h) }
            if let upsample = block.upsample { h = try upsample(h) }
        }
        return try decoderOut.afterNorm(decoderNorm, h, silu: true)
    }
}
