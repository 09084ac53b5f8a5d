import ChiselTensor
import Foundation

/// diffusers' `BasicTransformerBlock` as Stable Diffusion uses it: self-attention, cross-attention
/// to the text, and a GEGLU feed-forward, each after a LayerNorm and added back to its input.
final class TransformerBlock: Sendable {
    let norm1: LayerNorm, selfAttention: MultiHeadAttention
    let norm2: LayerNorm, crossAttention: MultiHeadAttention
    let norm3: LayerNorm, geglu: Linear, feedForwardOut: Linear

    init(_ w: ScopedWeights, dim: Int, contextDim: Int, heads: Int, precision: Precision, upcastAttention: Bool) throws {
        norm1 = try Load.layerNorm(w, "norm1", features: dim, epsilon: 1e-5)
        selfAttention = try MultiHeadAttention(w.scoped("attn1."), queryDim: dim, contextDim: nil, heads: heads,
                                               precision: precision, upcast: upcastAttention)
        norm2 = try Load.layerNorm(w, "norm2", features: dim, epsilon: 1e-5)
        crossAttention = try MultiHeadAttention(w.scoped("attn2."), queryDim: dim, contextDim: contextDim, heads: heads,
                                                precision: precision, upcast: upcastAttention)
        norm3 = try Load.layerNorm(w, "norm3", features: dim, epsilon: 1e-5)
        geglu = try Load.linear(w, "ff.net.0.proj", in: dim, out: dim * 8, precision: precision)
        feedForwardOut = try Load.linear(w, "ff.net.2", in: dim * 4, out: dim, precision: precision)
    }

    /// `merging` runs the self-attention on merged tokens (ToMe), planned on this block's input.
    func callAsFunction(_ x: Tensor, context: Tensor, merging: TokenMerging.InNetwork? = nil) throws -> Tensor {
        var h: Tensor
        if let merging, let plan = try merging.settings.plan(x, height: merging.height, width: merging.width) {
            let attended = try selfAttention(plan.merge(norm1(x)))
            h = try Ops.add(x, plan.unmerge(attended))
        } else {
            h = try selfAttention(normalizing: norm1, x, residual: x)
        }
        h = try crossAttention(normalizing: norm2, h, context: context, residual: h)
        let projected = try geglu.afterNorm(norm3, h)
        if feedForwardOut.precision == .bf16 {
            let gated = try KernelProfile.measure("geglu") { try Ops.gatedGELUHalf(projected) }
            return try feedForwardOut(gated, adding: h)
        }
        return try feedForwardOut(Self.gatedGELU(projected), adding: h)
    }

    /// GEGLU (Shazeer 2020): the projection's first half times GELU of its second half.
    static func gatedGELU(_ x: Tensor) throws -> Tensor {
        try KernelProfile.measure("geglu") { try Ops.gatedGELU(x) }
    }
}

/// diffusers' `Transformer2DModel` for SD: GroupNorm, projection in (1×1 conv or linear — the
/// same thing on channels-last data), transformer blocks over the H·W tokens, projection out,
/// added to the input.
final class SpatialTransformer: Sendable {
    let norm: GroupNorm
    let projectIn: Linear, projectOut: Linear
    let blocks: [TransformerBlock]

    /// `upcastAttention` (SD 2.1's `upcast_attention`) computes the attention products in FP32.
    init(_ w: ScopedWeights, channels: Int, contextDim: Int, heads: Int, layers: Int, groups: Int,
         precision: Precision, upcastAttention: Bool) throws {
        norm = try Load.groupNorm(w, "norm", groups: groups, channels: channels, epsilon: 1e-6)
        projectIn = try Load.linear(w, "proj_in", in: channels, out: channels, precision: precision)
        projectOut = try Load.linear(w, "proj_out", in: channels, out: channels, precision: precision)
        blocks = try (0..<layers).map {
            try TransformerBlock(w.scoped("transformer_blocks.\($0)."), dim: channels, contextDim: contextDim,
                                 heads: heads, precision: precision, upcastAttention: upcastAttention)
        }
    }

    /// `merging`: ToMe's settings and the latent's token count, for the blocks to merge at
    /// the levels the settings name.
    func callAsFunction(_ x: Tensor, context: Tensor, merging: TokenMerging.Scope? = nil) throws -> Tensor {
        let (n, h, width, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var tokens = try projectIn(norm(x)).reshaped([n, h * width, c])
        let merge = merging.flatMap { $0.settings.applies(tokens: h * width, latentTokens: $0.latentTokens) ? $0 : nil }
            .map { TokenMerging.InNetwork(settings: $0.settings, height: h, width: width) }
        for block in blocks { tokens = try block(tokens, context: context, merging: merge) }
        return try projectOut(tokens.reshaped([n, h, width, c]), adding: x)
    }
}

/// The VAE's single-head self-attention over all positions, with its own GroupNorm and a
/// residual connection (diffusers' `Attention` with `norm_num_groups` and `residual_connection`).
final class VAEAttention: Sendable {
    let norm: GroupNorm
    let attention: MultiHeadAttention

    init(_ w: ScopedWeights, channels: Int, groups: Int, precision: Precision) throws {
        norm = try Load.groupNorm(w, "group_norm", groups: groups, channels: channels, epsilon: 1e-6)
        attention = try MultiHeadAttention(w, queryDim: channels, contextDim: nil, heads: 1, precision: precision)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let (n, h, width, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let tokens = try norm(x).reshaped([n, h * width, c])
        return try attention(tokens, residual: x.reshaped([n, h * width, c])).reshaped([n, h, width, c])
    }
}
