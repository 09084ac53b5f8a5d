import ChiselBase
import ChiselTensor
import Foundation

/// The half of diffusers' `UNet2DConditionModel` that a ControlNet copies: the timestep (and
/// SDXL's added) embedding, `conv_in`, the down blocks and the mid block. The UNet and
/// `ControlNetModel` both run it, under the same weight names.
final class UNetEncoder: Sendable {
    let config: UNetConfig
    let timeLinear1: Linear, timeLinear2: Linear
    /// `time_embedding.cond_proj`: the guidance embedding's projection (LCM UNets).
    let timeCondition: Linear?
    /// SDXL's `add_embedding` (linear_1, SiLU, linear_2) of the pooled text embedding and the
    /// sinusoidal embeddings of the size (or aesthetic-score) conditioning.
    let addEmbedding: (Linear, Linear)?
    let convIn: Conv2D
    let down: [DownBlock]
    let midFirst: ResnetBlock, midTransformer: SpatialTransformer, midSecond: ResnetBlock

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

    /// The width of the time embedding the ResNets take.
    var timeDim: Int { config.blockOutChannels[0] * 4 }

    init(config: UNetConfig, weights: any WeightStore, precision: Precision) throws {
        self.config = config
        let channels = config.blockOutChannels
        let timeDim = channels[0] * 4
        let groups = config.normGroups, eps = config.normEpsilon
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
        var blocks: [DownBlock] = []
        var current = channels[0]
        for (i, out) in channels.enumerated() {
            let w = weights.scoped("down_blocks.\(i).")
            var resnets: [ResnetBlock] = [], transformers: [SpatialTransformer] = []
            for j in 0..<config.layersPerBlock {
                resnets.append(try ResnetBlock(w.scoped("resnets.\(j)."), in: current, out: out, groups: groups,
                                               epsilon: eps, timeChannels: timeDim, precision: precision))
                current = out
                if config.downBlocks[i] == .crossAttnDown {
                    transformers.append(try Self.transformer(config, w.scoped("attentions.\(j)."), out, i, precision))
                }
            }
            let last = i == channels.count - 1
            blocks.append(DownBlock(
                resnets: resnets, transformers: transformers,
                downsample: last ? nil : try Downsample(w.scoped("downsamplers.0."), channels: out,
                                                        padding: config.downsamplePadding, precision: precision)))
        }
        down = blocks
        let top = channels[channels.count - 1]
        let mid = weights.scoped("mid_block.")
        midFirst = try ResnetBlock(mid.scoped("resnets.0."), in: top, out: top, groups: groups, epsilon: eps,
                                   timeChannels: timeDim, precision: precision)
        midTransformer = try Self.transformer(config, mid.scoped("attentions.0."), top, channels.count - 1, precision)
        midSecond = try ResnetBlock(mid.scoped("resnets.1."), in: top, out: top, groups: groups, epsilon: eps,
                                    timeChannels: timeDim, precision: precision)
    }

    /// The spatial transformer of block `block` (its heads and depth), at `channels`.
    static func transformer(_ config: UNetConfig, _ w: ScopedWeights, _ channels: Int, _ block: Int,
                            _ precision: Precision) throws -> SpatialTransformer {
        try SpatialTransformer(w, channels: channels, contextDim: config.crossAttentionDim, heads: config.heads[block],
                               layers: config.transformerLayers[block], groups: config.normGroups, precision: precision,
                               upcastAttention: config.upcastAttention)
    }

    /// SiLU of the time embedding the ResNets take: the timestep's sinusoids through
    /// `time_embedding`, plus the guidance embedding's projection (LCM) and SDXL's added
    /// embedding where the config has them.
    func timeEmbedding(batch: Int, timesteps: [Double], timestepCondition: Tensor?,
                       added: (textEmbeds: Tensor, timeIds: [[Double]])?) throws -> Tensor {
        guard timesteps.count == batch || timesteps.count == 1 else {
            throw ChiselError(.invalidParameter, "\(timesteps.count) timesteps for a batch of \(batch)")
        }
        let steps = timesteps.count == 1 ? Array(repeating: timesteps[0], count: batch) : timesteps
        var embedded = SinusoidalEmbedding.embed(steps.map { Float($0) }, dim: config.blockOutChannels[0],
                                                 flipSinToCos: config.flipSinToCos, freqShift: config.freqShift)
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
            throw ChiselError(.invalidParameter, "this network takes no added conditioning (it is not an SDXL one)")
        default:
            throw ChiselError(.invalidParameter, "this SDXL network needs the pooled text embedding and the size conditioning")
        }
        return Activation.silu(temb)
    }

    /// The down blocks from `h` (after `conv_in`): the mid block's input and every skip
    /// connection, `h` first, as diffusers' `down_block_res_samples`.
    ///
    /// `adapter` holds a T2I-Adapter's features, taken in order as diffusers'
    /// `down_intrablock_additional_residuals`: a block with attention adds the next one to the
    /// output of its last ResNet–transformer pair (before the skip and the downsampler), a block
    /// without adds it to its output (its last skip too: diffusers adds in place). What is left
    /// is returned for the mid block.
    /// `merging` merges tokens in the transformers at the levels it names (ToMe).
    func downPath(_ input: Tensor, timeEmbedding temb: Tensor, context: Tensor,
                  adapter: [Tensor] = [], merging: TokenMerging.Scope? = nil) throws -> (Tensor, [Tensor], ArraySlice<Tensor>) {
        var h = input
        var skips = [h]
        var pending = adapter[...]
        for block in down {
            let attends = !block.transformers.isEmpty
            for (j, resnet) in block.resnets.enumerated() {
                h = try resnet(h, timeEmbedding: temb)
                if j < block.transformers.count { h = try block.transformers[j](h, context: context, merging: merging) }
                if attends, j == block.resnets.count - 1, let feature = pending.popFirst() { h = try Self.adding(h, feature) }
                skips.append(h)
            }
            if let downsample = block.downsample {
                h = try downsample(h)
                skips.append(h)
            }
            if !attends, let feature = pending.popFirst() {
                h = try Self.adding(h, feature)
                skips[skips.count - 1] = h
            }
        }
        return (h, skips, pending)
    }

    /// `h + feature`, naming both shapes when they differ (an adapter made for another UNet).
    static func adding(_ h: Tensor, _ feature: Tensor) throws -> Tensor {
        guard h.shape == feature.shape else {
            throw ChiselError(.invalidParameter, "the T2I-Adapter's feature \(feature.shape) does not fit the UNet's block output \(h.shape)")
        }
        return try Ops.add(h, feature)
    }

    func midBlock(_ h: Tensor, timeEmbedding temb: Tensor, context: Tensor, merging: TokenMerging.Scope? = nil) throws -> Tensor {
        try midSecond(midTransformer(midFirst(h, timeEmbedding: temb), context: context, merging: merging), timeEmbedding: temb)
    }
}
