import ChiselBase
import ChiselTensor

/// diffusers' `UVitBlock`: an optional 2×2 stride-2 downsampling (RMSNorm, then a convolution),
/// ConvNeXt blocks alternating with `SkipFFTransformerBlock`s over the positions as tokens, and
/// an optional 2×2 stride-2 transposed-convolution upsampling (RMSNorm first).
final class UVitBlock: Sendable {
    let downsample: (norm: RMSNorm, conv: Conv2D)?
    let resBlocks: [ConvNextBlock]
    let attentionBlocks: [SkipFFTransformerBlock]
    let upsample: (norm: RMSNorm, conv: ConvTranspose2x2)?

    init(_ w: ScopedWeights, config: UVit2DConfig, downsample: Bool, upsample: Bool, precision: Precision) throws {
        let c = config.blockOutChannels, eps = config.layerNormEpsilon, affine = config.elementwiseAffine
        self.downsample = downsample
            ? (try Load.rmsNorm(w, "downsample.norm", features: c, epsilon: eps, affine: affine),
               try Load.conv(w, "downsample.conv", in: c, out: c, kernel: 2, stride: 2, precision: precision))
            : nil
        resBlocks = try (0..<config.resBlocks).map {
            try ConvNextBlock(w.scoped("res_blocks.\($0)."), channels: c, conditionDim: config.hiddenSize, epsilon: eps,
                              affine: affine, precision: precision)
        }
        attentionBlocks = try (0..<config.resBlocks).map {
            try SkipFFTransformerBlock(w.scoped("attention_blocks.\($0)."), channels: c, heads: config.blockHeads,
                                       contextDim: config.hiddenSize, precision: precision)
        }
        if upsample {
            let conv = try ConvTranspose2x2(
                inChannels: c, outChannels: c, weights: w.floats("upsample.conv.weight", shape: [c, c, 2, 2]),
                bias: w.contains("upsample.conv.bias") ? w.floats("upsample.conv.bias", shape: [c]) : nil,
                precision: precision)
            self.upsample = (try Load.rmsNorm(w, "upsample.norm", features: c, epsilon: eps, affine: affine), conv)
        } else {
            self.upsample = nil
        }
    }

    /// The ConvNeXt blocks' modulations and the attention blocks' keys and values: what the block
    /// takes from the conditioning, the same at every step.
    struct Prepared: Sendable {
        let modulations: [Tensor]
        let keysAndValues: [(Tensor, Tensor)]
    }

    /// `condition` is SiLU of the conditioning vector; `context` the projected text.
    func prepare(condition: Tensor, context: Tensor) throws -> Prepared {
        Prepared(modulations: try resBlocks.map { try $0.modulation(condition: condition) },
                 keysAndValues: try attentionBlocks.map { try $0.prepare(context: context) })
    }

    /// `x` is N×H×W×C (H and W even when downsampling). With `repeats` > 1, `x` holds N/repeats
    /// samples that each stand for `repeats` samples of `prepared` (a guidance batch whose halves
    /// share their tokens): what does not depend on the conditioning, up to the first
    /// modulation, runs once for them.
    func callAsFunction(_ x: Tensor, _ prepared: Prepared, repeats: Int = 1) throws -> Tensor {
        var h = x
        if let downsample {
            // Even sides: diffusers' zero padding of the bottom row and right column is never read.
            h = downsample.conv.precision == .bf16
                ? try downsample.conv(downsample.norm.bf16(h)) : try downsample.conv(downsample.norm(h))
        }
        for (i, (res, attention)) in zip(resBlocks, attentionBlocks).enumerated() {
            if i == 0 && repeats > 1 {
                h = try Ops.modulate(Ops.repeatedBatch(res.unmodulated(h), times: repeats), by: prepared.modulations[i])
            } else {
                h = try res(h, modulation: prepared.modulations[i])
            }
            let (n, height, width, c) = (h.shape[0], h.shape[1], h.shape[2], h.shape[3])
            h = try attention(h.reshaped([n, height * width, c]), prepared.keysAndValues[i]).reshaped([n, height, width, c])
        }
        if repeats > 1 && resBlocks.isEmpty { h = try Ops.repeatedBatch(h, times: repeats) }
        if let upsample {
            h = upsample.conv.precision == .bf16
                ? try upsample.conv(upsample.norm.bf16(h)) : try upsample.conv(upsample.norm(h))
        }
        return h
    }
}
