import ChiselTensor

/// diffusers' `Attention` (and CLIP's self-attention): q, k, v projections, multi-head scaled
/// dot-product attention, and an output projection whose result is added to `residual`.
final class MultiHeadAttention: Sendable {
    let toQ: Linear, toK: Linear, toV: Linear, toOut: Linear
    let heads: Int

    /// Names are diffusers' (`to_q`, `to_k`, `to_v`, `to_out.0`) unless `names` gives others.
    init(_ w: ScopedWeights, queryDim: Int, contextDim: Int, heads: Int, precision: Precision,
         names: (q: String, k: String, v: String, out: String) = ("to_q", "to_k", "to_v", "to_out.0")) throws {
        toQ = try Load.linear(w, names.q, in: queryDim, out: queryDim, precision: precision)
        toK = try Load.linear(w, names.k, in: contextDim, out: queryDim, precision: precision)
        toV = try Load.linear(w, names.v, in: contextDim, out: queryDim, precision: precision)
        toOut = try Load.linear(w, names.out, in: queryDim, out: queryDim, precision: precision)
        self.heads = heads
    }

    /// `x` is N×L×C; `context` N×M×contextDim (self-attention when nil).
    func callAsFunction(_ x: Tensor, context: Tensor? = nil, residual: Tensor? = nil, causal: Bool = false) throws
        -> Tensor
    {
        let source = context ?? x
        let attended = try Attention.compute(q: toQ(x), k: toK(source), v: toV(source), heads: heads, causal: causal)
        return try toOut(attended, adding: residual)
    }
}
