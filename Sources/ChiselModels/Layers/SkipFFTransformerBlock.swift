import ChiselTensor

/// diffusers' `SkipFFTransformerBlock`: two cross-attentions to the text (no self-attention, no
/// feed-forward), each after an RMSNorm (ε fixed at 1e-6, always with a weight) and added back.
/// When the text is wider than the block, it is first mapped by `kv_mapper` after a SiLU.
final class SkipFFTransformerBlock: Sendable {
    let contextMapper: Linear?
    let norm1: RMSNorm, attention1: MultiHeadAttention
    let norm2: RMSNorm, attention2: MultiHeadAttention

    init(_ w: ScopedWeights, channels: Int, heads: Int, contextDim: Int, precision: Precision) throws {
        contextMapper = contextDim == channels ? nil
            : try Load.linear(w, "kv_mapper", in: contextDim, out: channels, precision: precision)
        norm1 = try Load.rmsNorm(w, "norm1", features: channels, epsilon: 1e-6, affine: true)
        attention1 = try MultiHeadAttention(w.scoped("attn1."), queryDim: channels, contextDim: channels, heads: heads,
                                            precision: precision)
        norm2 = try Load.rmsNorm(w, "norm2", features: channels, epsilon: 1e-6, affine: true)
        attention2 = try MultiHeadAttention(w.scoped("attn2."), queryDim: channels, contextDim: channels, heads: heads,
                                            precision: precision)
    }

    /// Both attentions' keys and values of the text (`context`, the projected text, N×S×contextDim).
    func prepare(context: Tensor) throws -> (Tensor, Tensor) {
        let mapped = try contextMapper.map { try $0(Activation.silu(context)) } ?? context
        return (try attention1.keysAndValues(mapped), try attention2.keysAndValues(mapped))
    }

    /// `x` is N×L×C.
    func callAsFunction(_ x: Tensor, _ prepared: (Tensor, Tensor)) throws -> Tensor {
        let h = try attention1(normalizing: norm1, x, keysAndValues: prepared.0, residual: x)
        return try attention2(normalizing: norm2, h, keysAndValues: prepared.1, residual: h)
    }
}
