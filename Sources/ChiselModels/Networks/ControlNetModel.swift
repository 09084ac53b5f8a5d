import ChiselBase
import ChiselTensor
import Foundation

/// diffusers' `ControlNetModel` (Zhang et al. 2023): a trainable copy of a UNet's encoder that
/// reads a control image (edges, depth, pose, a tile of the photo) and returns residuals for
/// the UNet's skip connections and mid block.
public final class ControlNetModel: Sendable {
    public let config: ControlNetConfig
    let encoder: UNetEncoder
    /// `controlnet_cond_embedding`: conv_in, then per width a 3×3 conv and a strided 3×3 conv,
    /// SiLU after each, then the zero-initialised conv_out to the UNet's first width.
    let embedding: [Conv2D]
    let embeddingOut: Conv2D
    /// The zero-initialised 1×1 convolutions on each skip connection and on the mid block.
    let zeroConvs: [Conv2D]
    let midConv: Conv2D

    /// Weights named as diffusers saves a ControlNetModel.
    public init(config: ControlNetConfig, weights: any WeightStore, precision: Precision = .f32) throws {
        self.config = config
        encoder = try UNetEncoder(config: config.unet, weights: weights, precision: precision)
        let widths = config.embeddingChannels
        var convs = [try Load.conv(weights, "controlnet_cond_embedding.conv_in", in: config.conditioningChannels, out: widths[0],
                                   kernel: 3, padding: 1, precision: precision)]
        for i in 0..<(widths.count - 1) {
            convs.append(try Load.conv(weights, "controlnet_cond_embedding.blocks.\(2 * i)", in: widths[i], out: widths[i],
                                       kernel: 3, padding: 1, precision: precision))
            convs.append(try Load.conv(weights, "controlnet_cond_embedding.blocks.\(2 * i + 1)", in: widths[i], out: widths[i + 1],
                                       kernel: 3, stride: 2, padding: 1, precision: precision))
        }
        embedding = convs
        let channels = config.unet.blockOutChannels
        embeddingOut = try Load.conv(weights, "controlnet_cond_embedding.conv_out", in: widths[widths.count - 1], out: channels[0],
                                     kernel: 3, padding: 1, precision: precision)
        // One per skip connection: conv_in's output, each ResNet's, each downsampler's.
        var skipChannels = [channels[0]]
        for (i, out) in channels.enumerated() {
            skipChannels += Array(repeating: out, count: config.unet.layersPerBlock)
            if i < channels.count - 1 { skipChannels.append(out) }
        }
        zeroConvs = try skipChannels.enumerated().map { i, c in
            try Load.conv(weights, "controlnet_down_blocks.\(i)", in: c, out: c, kernel: 1, precision: precision)
        }
        let top = channels[channels.count - 1]
        midConv = try Load.conv(weights, "controlnet_mid_block", in: top, out: top, kernel: 1, precision: precision)
    }

    /// The residuals for `sample` (N×h×w×C latents, scaled as the UNet takes them) at
    /// `timesteps`, with `context` (N×L×width) and the control image `condition`
    /// (N×H×W×conditioning_channels, channels-last, H = h × `config.downscale`), multiplied by
    /// `scale`, or in guess mode by 10^(−1 + i/n) × `scale` from the first skip (0.1) to the mid
    /// block (1), as diffusers' `ControlNetModel.forward`. A global-pool ControlNet's residuals
    /// are each one value per channel, spread over the image.
    public func callAsFunction(_ sample: Tensor, timesteps: [Double], context: Tensor, condition: Tensor, scale: Float,
                               guessMode: Bool = false, added: (textEmbeds: Tensor, timeIds: [[Double]])? = nil) throws -> ControlResiduals {
        defer { Allocator.releaseWorkBuffers() }
        let unet = config.unet
        guard sample.rank == 4, sample.shape[3] == unet.inChannels else {
            throw ChiselError(.invalidParameter, "the ControlNet expects N×h×w×\(unet.inChannels) latents, got \(sample.shape)")
        }
        let batch = sample.shape[0]
        let expected = [batch, sample.shape[1] * config.downscale, sample.shape[2] * config.downscale, config.conditioningChannels]
        guard condition.shape == expected else {
            throw ChiselError(.invalidParameter, "the ControlNet's control image must be \(expected) for latents \(sample.shape), got \(condition.shape)")
        }
        guard context.rank == 3, context.shape[0] == batch, context.shape[2] == unet.crossAttentionDim else {
            throw ChiselError(.invalidParameter, "the ControlNet's text context must be \(batch)×L×\(unet.crossAttentionDim), got \(context.shape)")
        }
        let temb = try encoder.timeEmbedding(batch: batch, timesteps: timesteps, timestepCondition: nil, added: added)
        var image = condition
        if config.bgr { image = Self.reversingChannels(image) }
        for conv in embedding { image = Activation.silu(try conv(image)) }
        let h = try embeddingOut(image, adding: try encoder.convIn(sample))
        let (deepest, skips, _) = try encoder.downPath(h, timeEmbedding: temb, context: context)
        let mid = try encoder.midBlock(deepest, timeEmbedding: temb, context: context)
        var down = try zip(skips, zeroConvs).map { try $1($0) }
        var midResidual = try midConv(mid)
        let guess = guessMode || config.globalPool
        if guess && !config.globalPool {
            let n = down.count
            for i in down.indices { down[i] = Ops.scale(down[i], by: Self.guessScale(i, of: n) * scale) }
            midResidual = Ops.scale(midResidual, by: scale)
        } else {
            down = down.map { Ops.scale($0, by: scale) }
            midResidual = Ops.scale(midResidual, by: scale)
        }
        if config.globalPool {
            down = down.map(Self.spatialMean)
            midResidual = Self.spatialMean(midResidual)
        }
        return ControlResiduals(down: down, mid: midResidual)
    }

    /// `torch.logspace(-1, 0, n + 1)[i]` in FP32: guess mode's weight of skip `i` of `n`.
    static func guessScale(_ i: Int, of n: Int) -> Float {
        let step = Float(1) / Float(n)
        return powf(10, -1 + Float(i) * step)
    }

    static func reversingChannels(_ x: Tensor) -> Tensor {
        var out = x
        let c = x.shape[3]
        for p in 0..<(x.data.count / c) {
            for k in 0..<c { out.data[p * c + k] = x.data[p * c + c - 1 - k] }
        }
        return out
    }

    /// Each sample's per-channel mean, written back over the whole image (what a UNet adding
    /// the N×1×1×C mean would broadcast).
    static func spatialMean(_ x: Tensor) -> Tensor {
        var out = x
        let (n, pixels, c) = (x.shape[0], x.shape[1] * x.shape[2], x.shape[3])
        for b in 0..<n {
            var sums = [Double](repeating: 0, count: c)
            for p in 0..<pixels {
                for k in 0..<c { sums[k] += Double(x.data[(b * pixels + p) * c + k]) }
            }
            for p in 0..<pixels {
                for k in 0..<c { out.data[(b * pixels + p) * c + k] = Float(sums[k] / Double(pixels)) }
            }
        }
        return out
    }
}
