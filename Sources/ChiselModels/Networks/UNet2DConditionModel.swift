import ChiselBase
import ChiselTensor
import Foundation

/// diffusers' `UNet2DConditionModel` as Stable Diffusion 1.x, 2.x and XL configure it.
public final class UNet2DConditionModel: Sendable {
    public let config: UNetConfig
    let timeLinear1: Linear, timeLinear2: Linear
    /// `time_embedding.cond_proj`: the guidance embedding's projection (LCM UNets).
    let timeCondition: Linear?
    /// SDXL's `add_embedding` (linear_1, SiLU, linear_2) of the pooled text embedding and the
    /// sinusoidal embeddings of the size (or aesthetic-score) conditioning.
    let addEmbedding: (Linear, Linear)?
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
        timeCondition = try config.timeConditionDim.map {
            try Load.linear(weights, "time_embedding.cond_proj", in: $0, out: channels[0], precision: precision)
        }
        addEmbedding = try config.textTime.map { textTime in
            (try Load.linear(weights, "add_embedding.linear_1", in: textTime.inputDim, out: timeDim, precision: precision),
             try Load.linear(weights, "add_embedding.linear_2", in: timeDim, out: timeDim, precision: precision))
        }
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

    /// diffusers' `get_guidance_scale_embedding` of `w` (the pipelines pass guidance − 1): the
    /// sinusoids of 1000·w, sines then cosines, as wide as `time_cond_proj_dim`.
    public static func guidanceEmbedding(_ w: [Double], dim: Int) -> Tensor {
        let half = dim / 2
        var out = Tensor(zeros: [w.count, dim])
        let step = Float(log(10000.0)) / Float(max(1, half - 1))
        for (b, value) in w.enumerated() {
            let scaled = Float(value) * 1000  // torch: tensor(w) * 1000 in float32
            for i in 0..<half {
                let angle = scaled * expf(Float(i) * -step)
                out.data[b * dim + i] = sinf(angle)
                out.data[b * dim + half + i] = cosf(angle)
            }
        }
        return out
    }

    /// The model output (noise, or v, as the scheduler config says) for `sample` (N×h×w×C latents),
    /// one timestep per sample, and `context` (N×L×crossAttentionDim text hidden states).
    /// `timestepCondition` (N×time_cond_proj_dim, `guidanceEmbedding`) is required by UNets with
    /// a guidance embedding and refused by others.
    ///
    /// SDXL's UNets (`textTime`) take `added`: the pooled text embedding (N×width) and the
    /// micro-conditioning values per sample (N×6: original size, crop corner and target size, or
    /// N×5 for the refiner: original size, crop corner and aesthetic score), as diffusers'
    /// `added_cond_kwargs` `text_embeds` and `time_ids`.
    public func callAsFunction(_ sample: Tensor, timesteps: [Double], context: Tensor,
                               timestepCondition: Tensor? = nil, added: (textEmbeds: Tensor, timeIds: [[Double]])? = nil) throws -> Tensor {
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
        var embedded = timestepEmbedding(steps)
        switch (timeCondition, timestepCondition) {
        case (let projection?, let condition?):
            guard condition.shape == [batch, config.timeConditionDim ?? 0] else {
                throw ChiselError(.invalidParameter, "the guidance embedding must be \(batch)×\(config.timeConditionDim ?? 0), got \(condition.shape)")
            }
            let projected = try projection(condition)
            for i in embedded.data.indices { embedded.data[i] += projected.data[i] }
        case (nil, nil):
            break
        case (nil, _?):
            throw ChiselError(.invalidParameter, "this UNet takes no guidance embedding (no time_cond_proj_dim)")
        case (_?, nil):
            throw ChiselError(.invalidParameter, "this UNet (time_cond_proj_dim \(config.timeConditionDim ?? 0)) needs a guidance embedding")
        }
        var temb = try timeLinear2(Activation.silu(timeLinear1(embedded)))
        switch (addEmbedding, added, config.textTime) {
        case (let (linear1, linear2)?, let added?, let textTime?):
            let perSample = added.timeIds.first?.count ?? 0
            let width = added.textEmbeds.shape.last ?? 0
            guard added.timeIds.count == batch, added.timeIds.allSatisfy({ $0.count == perSample }),
                  added.textEmbeds.shape == [batch, width], width + perSample * textTime.timeDim == textTime.inputDim else {
                throw ChiselError(.invalidParameter, "SDXL's added conditioning must be \(batch) pooled embeddings and \(batch) rows "
                                  + "of size values making \(textTime.inputDim) features, got \(added.textEmbeds.shape) and "
                                  + "\(added.timeIds.count)×\(perSample)")
            }
            let values = added.timeIds.flatMap { $0.map { Float($0) } }
            let sinusoids = SinusoidalEmbedding.embed(values, dim: textTime.timeDim, flipSinToCos: config.flipSinToCos,
                                                      freqShift: config.freqShift)
            var features = Tensor(zeros: [batch, textTime.inputDim])
            let timeWidth = perSample * textTime.timeDim
            for b in 0..<batch {
                let row = b * textTime.inputDim
                features.data.replaceSubrange(row..<(row + width), with: added.textEmbeds.data[(b * width)..<((b + 1) * width)])
                features.data.replaceSubrange((row + width)..<(row + width + timeWidth),
                                              with: sinusoids.data[(b * timeWidth)..<((b + 1) * timeWidth)])
            }
            let addition = try linear2(Activation.silu(linear1(features)))
            for i in temb.data.indices { temb.data[i] += addition.data[i] }
        case (nil, nil, _):
            break
        case (nil, _?, _):
            throw ChiselError(.invalidParameter, "this UNet takes no added conditioning (it is not an SDXL UNet)")
        default:
            throw ChiselError(.invalidParameter, "this SDXL UNet needs the pooled text embedding and the size conditioning")
        }
        temb = Activation.silu(temb)

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
