import ChiselCore
import ChiselTensor
import Foundation

/// diffusers' `UNet2DConditionModel` as Stable Diffusion 1.x and 2.x configure it.
public final class UNet2DConditionModel: Sendable {
    public let config: UNetConfig
    let timeLinear1: Linear, timeLinear2: Linear
    let convIn: Conv2D
    let down: [DownBlock]
    let midFirst: ResnetBlock, midTransformer: SpatialTransformer, midSecond: ResnetBlock
    let up: [UpBlock]
    let normOut: GroupNorm, convOut: Conv2D

    final class DownBlock: Sendable {
        let resnets: [ResnetBlock]
        let transformers: [SpatialTransformer]
        let downsample: Downsample?

        init(resnets: [ResnetBlock], transformers: [SpatialTransformer], downsample: Downsample?) {
            self.resnets = resnets
            self.transformers = transformers
            self.downsample = downsample
        }
    }

    final class UpBlock: Sendable {
        let resnets: [ResnetBlock]
        let transformers: [SpatialTransformer]
        let upsample: Upsample?

        init(resnets: [ResnetBlock], transformers: [SpatialTransformer], upsample: Upsample?) {
            self.resnets = resnets
            self.transformers = transformers
            self.upsample = upsample
        }
    }

    /// Weights named as diffusers saves them.
    public init(config: UNetConfig, weights: any WeightStore, precision: Precision = .f32) throws {
        self.config = config
        let channels = config.blockOutChannels
        let timeDim = channels[0] * 4
        let groups = config.normGroups, eps = config.normEpsilon, context = config.crossAttentionDim
        timeLinear1 = try Load.linear(weights, "time_embedding.linear_1", in: channels[0], out: timeDim, precision: precision)
        timeLinear2 = try Load.linear(weights, "time_embedding.linear_2", in: timeDim, out: timeDim, precision: precision)
        convIn = try Load.conv(weights, "conv_in", in: config.inChannels, out: channels[0], kernel: 3, padding: 1,
                               precision: precision)
        func transformer(_ w: ScopedWeights, _ c: Int, _ block: Int) throws -> SpatialTransformer {
            try SpatialTransformer(w, channels: c, contextDim: context, heads: config.heads[block],
                                   layers: config.transformerLayers[block], groups: groups, precision: precision,
                                   upcastAttention: config.upcastAttention)
        }

        var downBlocks: [DownBlock] = []
        var current = channels[0]
        for (i, out) in channels.enumerated() {
            let w = weights.scoped("down_blocks.\(i).")
            var resnets: [ResnetBlock] = [], transformers: [SpatialTransformer] = []
            for j in 0..<config.layersPerBlock {
                resnets.append(try ResnetBlock(w.scoped("resnets.\(j)."), in: current, out: out, groups: groups,
                                               epsilon: eps, timeChannels: timeDim, precision: precision))
                current = out
                if config.downBlocks[i] == .crossAttnDown {
                    transformers.append(try transformer(w.scoped("attentions.\(j)."), out, i))
                }
            }
            let last = i == channels.count - 1
            downBlocks.append(DownBlock(
                resnets: resnets, transformers: transformers,
                downsample: last ? nil : try Downsample(w.scoped("downsamplers.0."), channels: out,
                                                        padding: config.downsamplePadding, precision: precision)))
        }
        down = downBlocks

        let top = channels[channels.count - 1]
        let mid = weights.scoped("mid_block.")
        midFirst = try ResnetBlock(mid.scoped("resnets.0."), in: top, out: top, groups: groups, epsilon: eps,
                                   timeChannels: timeDim, precision: precision)
        midTransformer = try transformer(mid.scoped("attentions.0."), top, channels.count - 1)
        midSecond = try ResnetBlock(mid.scoped("resnets.1."), in: top, out: top, groups: groups, epsilon: eps,
                                    timeChannels: timeDim, precision: precision)

        var upBlocks: [UpBlock] = []
        let reversed = Array(channels.reversed())
        let reversedHeadsIndex = Array((0..<channels.count).reversed())
        current = top
        for (i, out) in reversed.enumerated() {
            let w = weights.scoped("up_blocks.\(i).")
            // Skip connections come from the matching down block, and the last one from the block before it.
            let skipChannels = reversed[min(i + 1, channels.count - 1)]
            var resnets: [ResnetBlock] = [], transformers: [SpatialTransformer] = []
            for j in 0...config.layersPerBlock {
                let skip = j == config.layersPerBlock ? skipChannels : out
                resnets.append(try ResnetBlock(w.scoped("resnets.\(j)."), in: current + skip, out: out, groups: groups,
                                               epsilon: eps, timeChannels: timeDim, precision: precision))
                current = out
                if config.upBlocks[i] == .crossAttnUp {
                    transformers.append(try transformer(w.scoped("attentions.\(j)."), out, reversedHeadsIndex[i]))
                }
            }
            let last = i == channels.count - 1
            upBlocks.append(UpBlock(resnets: resnets, transformers: transformers,
                                    upsample: last ? nil : try Upsample(w.scoped("upsamplers.0."), channels: out,
                                                                        precision: precision)))
        }
        up = upBlocks
        normOut = try Load.groupNorm(weights, "conv_norm_out", groups: groups, channels: channels[0], epsilon: eps)
        convOut = try Load.conv(weights, "conv_out", in: channels[0], out: config.outChannels, kernel: 3, padding: 1,
                                precision: precision)
    }

    /// diffusers' `get_timestep_embedding` of the timesteps (`SinusoidalEmbedding`), as wide as
    /// the first block, FP32 as in PyTorch.
    public func timestepEmbedding(_ timesteps: [Double]) -> Tensor {
        SinusoidalEmbedding.embed(timesteps.map { Float($0) }, dim: config.blockOutChannels[0],
                                  flipSinToCos: config.flipSinToCos, freqShift: config.freqShift)
    }

    /// The model output (noise, or v, as the scheduler config says) for `sample` (N×h×w×C latents),
    /// one timestep per sample, and `context` (N×L×crossAttentionDim text hidden states).
    public func callAsFunction(_ sample: Tensor, timesteps: [Double], context: Tensor) throws -> Tensor {
        defer { Allocator.releaseWorkBuffers() }
        guard sample.rank == 4, sample.shape[3] == config.inChannels else {
            throw ChiselError(.invalidParameter, "UNet expects N×h×w×\(config.inChannels) latents, got \(sample.shape)")
        }
        let batch = sample.shape[0]
        guard timesteps.count == batch || timesteps.count == 1 else {
            throw ChiselError(.invalidParameter, "\(timesteps.count) timesteps for a batch of \(batch)")
        }
        guard context.rank == 3, context.shape[0] == batch, context.shape[2] == config.crossAttentionDim else {
            throw ChiselError(.invalidParameter,
                              "text context must be \(batch)×L×\(config.crossAttentionDim), got \(context.shape)")
        }
        let steps = timesteps.count == 1 ? Array(repeating: timesteps[0], count: batch) : timesteps
        let temb = try Activation.silu(timeLinear2(Activation.silu(timeLinear1(timestepEmbedding(steps)))))

        var h = try convIn(sample)
        var skips = [h]
        for block in down {
            for (j, resnet) in block.resnets.enumerated() {
                h = try resnet(h, timeEmbedding: temb)
                if j < block.transformers.count { h = try block.transformers[j](h, context: context) }
                skips.append(h)
            }
            if let downsample = block.downsample {
                h = try downsample(h)
                skips.append(h)
            }
        }
        h = try midSecond(midTransformer(midFirst(h, timeEmbedding: temb), context: context), timeEmbedding: temb)

        for block in up {
            for (j, resnet) in block.resnets.enumerated() {
                guard let skip = skips.popLast() else {
                    throw ChiselError(.internal, "UNet ran out of skip connections")
                }
                h = try resnet(Ops.concatChannels(h, skip), timeEmbedding: temb)
                if j < block.transformers.count { h = try block.transformers[j](h, context: context) }
            }
            if let upsample = block.upsample, let next = skips.last {
                // Upsample to the next skip's size, so odd latent sizes line up as in diffusers.
                h = try upsample(h, size: (next.shape[1], next.shape[2]))
            }
        }
        return try convOut.afterNorm(normOut, h, silu: true)
    }
}
