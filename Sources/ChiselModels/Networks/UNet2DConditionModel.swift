import ChiselBase
import ChiselTensor
import Foundation

/// diffusers' `UNet2DConditionModel` as Stable Diffusion 1.x, 2.x and XL configure it.
public final class UNet2DConditionModel: Sendable {
    public let config: UNetConfig
    /// Time embedding, conv_in, down and mid blocks (what a ControlNet copies).
    let encoder: UNetEncoder
    let up: [UpBlock]
    let normOut: GroupNorm, convOut: Conv2D

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
        encoder = try UNetEncoder(config: config, weights: weights, precision: precision)
        let timeDim = encoder.timeDim
        let groups = config.normGroups, eps = config.normEpsilon
        let top = channels[channels.count - 1]
        var current = top
        var upBlocks: [UpBlock] = []
        let reversed = Array(channels.reversed())
        let reversedHeadsIndex = Array((0..<channels.count).reversed())
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
                    transformers.append(try UNetEncoder.transformer(config, w.scoped("attentions.\(j)."), out,
                                                                    reversedHeadsIndex[i], precision))
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
    ///
    /// `control` adds a ControlNet's (or several ControlNets' summed) residuals to the skip
    /// connections and the mid block's output, as diffusers' `down_block_additional_residuals`
    /// and `mid_block_additional_residual`; `adapter`, T2I-Adapters' features (diffusers'
    /// `down_intrablock_additional_residuals`, `UNetEncoder.downPath`), one left over after the
    /// down blocks being added to the mid block's output when its shape fits (SDXL's adapters).
    /// `cache` runs DeepCache's cheap steps; `tokenMerging`, ToMe in the self-attention of the
    /// levels it names.
    public func callAsFunction(_ sample: Tensor, timesteps: [Double], context: Tensor,
                               timestepCondition: Tensor? = nil, added: (textEmbeds: Tensor, timeIds: [[Double]])? = nil,
                               control: ControlResiduals? = nil, adapter: [Tensor] = [], cache: UNetCache? = nil,
                               tokenMerging: TokenMerging? = nil) throws -> Tensor {
        defer { Allocator.releaseWorkBuffers() }
        let merging = tokenMerging.flatMap { $0.ratio > 0 && sample.rank == 4
            ? TokenMerging.Scope(settings: $0, latentTokens: sample.shape[1] * sample.shape[2]) : nil }
        if let cache, cache.reuse, let deep = cache.feature(batch: sample.shape[0]) {
            return try shallow(sample, timesteps: timesteps, context: context, timestepCondition: timestepCondition, added: added,
                               deep: deep, merging: merging)
        }
        guard sample.rank == 4, sample.shape[3] == config.inChannels else {
            throw ChiselError(.invalidParameter, "UNet expects N×h×w×\(config.inChannels) latents, got \(sample.shape)")
        }
        let batch = sample.shape[0]
        guard context.rank == 3, context.shape[0] == batch, context.shape[2] == config.crossAttentionDim else {
            throw ChiselError(.invalidParameter,
                              "text context must be \(batch)×L×\(config.crossAttentionDim), got \(context.shape)")
        }
        let temb = try encoder.timeEmbedding(batch: batch, timesteps: timesteps, timestepCondition: timestepCondition, added: added)
        var (h, skips, left) = try encoder.downPath(encoder.convIn(sample), timeEmbedding: temb, context: context, adapter: adapter,
                                                     merging: merging)
        h = try encoder.midBlock(h, timeEmbedding: temb, context: context, merging: merging)
        if let feature = left.first, feature.shape == h.shape { h = try Ops.add(h, feature) }
        if let control {
            guard control.down.count == skips.count, zip(control.down, skips).allSatisfy({ $0.shape == $1.shape }),
                  control.mid.shape == h.shape else {
                throw ChiselError(.invalidParameter, "the ControlNet's residuals (\(control.down.map(\.shape)), mid \(control.mid.shape)) "
                                  + "do not match this UNet's blocks (\(skips.map(\.shape)), mid \(h.shape))")
            }
            for i in skips.indices { skips[i] = try Ops.add(skips[i], control.down[i]) }
            h = try Ops.add(h, control.mid)
        }

        for (b, block) in up.enumerated() {
            for (j, resnet) in block.resnets.enumerated() {
                guard let skip = skips.popLast() else {
                    throw ChiselError(.internal, "UNet ran out of skip connections")
                }
                if let cache, b == up.count - 1, j == block.resnets.count - 2 { cache.store(h) }
                h = try resnet(Ops.concatChannels(h, skip), timeEmbedding: temb)
                if j < block.transformers.count { h = try block.transformers[j](h, context: context, merging: merging) }
            }
            if let upsample = block.upsample, let next = skips.last {
                // Upsample to the next skip's size, so odd latent sizes line up as in diffusers.
                h = try upsample(h, size: (next.shape[1], next.shape[2]))
            }
        }
        return try convOut.afterNorm(normOut, h, silu: true)
    }

    /// DeepCache's cheap step (Ma et al. 2024, its shallowest branch): only `conv_in`, the first
    /// ResNet (and transformer) of the first down block, and the last two layers of the last up
    /// block run; the rest of the network is replaced by `deep`, the hidden state a full step
    /// left entering the last up block's second-to-last layer.
    func shallow(_ sample: Tensor, timesteps: [Double], context: Tensor, timestepCondition: Tensor?,
                 added: (textEmbeds: Tensor, timeIds: [[Double]])?, deep: Tensor, merging: TokenMerging.Scope?) throws -> Tensor {
        let batch = sample.shape[0]
        guard context.rank == 3, context.shape[0] == batch else {
            throw ChiselError(.invalidParameter, "text context must be \(batch)×L×\(config.crossAttentionDim), got \(context.shape)")
        }
        let temb = try encoder.timeEmbedding(batch: batch, timesteps: timesteps, timestepCondition: timestepCondition, added: added)
        let first = encoder.down[0]
        let s0 = try encoder.convIn(sample)
        var s1 = try first.resnets[0](s0, timeEmbedding: temb)
        if !first.transformers.isEmpty { s1 = try first.transformers[0](s1, context: context, merging: merging) }
        guard let last = up.last, last.resnets.count >= 2 else {
            throw ChiselError(.internal, "the UNet's last up block has fewer than two layers")
        }
        var h = deep
        for (j, skip) in [(last.resnets.count - 2, s1), (last.resnets.count - 1, s0)] {
            h = try last.resnets[j](Ops.concatChannels(h, skip), timeEmbedding: temb)
            if j < last.transformers.count { h = try last.transformers[j](h, context: context, merging: merging) }
        }
        return try convOut.afterNorm(normOut, h, silu: true)
    }
}

/// What DeepCache keeps between a denoising loop's steps: the UNet's deep features from the
/// last full step, and whether the next call may reuse them (`reuse`) or must run in full and
/// keep new ones.
public final class UNetCache: @unchecked Sendable {
    /// Set by the loop before each call.
    public var reuse = false
    private var deep: Tensor?

    public init() {}

    func store(_ feature: Tensor) { deep = feature }

    /// The kept features for a batch of `rows`: as kept, or their second half when the loop has
    /// dropped guidance's negative half since; nil when there are none to fit.
    func feature(batch rows: Int) -> Tensor? {
        guard let deep else { return nil }
        if deep.shape[0] == rows { return deep }
        guard deep.shape[0] == 2 * rows else { return nil }
        let half = deep.data.count / 2
        return try? Tensor(shape: [rows] + deep.shape.dropFirst(), data: Array(deep.data[half...]))
    }
}

/// What ControlNets add to a UNet: one residual per skip connection (channels-last, as the
/// UNet's) and one for the mid block's output.
public struct ControlResiduals: Sendable {
    public var down: [Tensor]
    public var mid: Tensor

    public init(down: [Tensor], mid: Tensor) {
        self.down = down
        self.mid = mid
    }

    /// The element-wise sum of two ControlNets' residuals (diffusers' MultiControlNetModel).
    public func adding(_ other: ControlResiduals) throws -> ControlResiduals {
        guard other.down.count == down.count else {
            throw ChiselError(.invalidParameter, "ControlNets with \(down.count) and \(other.down.count) residuals cannot be combined")
        }
        return ControlResiduals(down: try zip(down, other.down).map { try Ops.add($0, $1) }, mid: try Ops.add(mid, other.mid))
    }
}
