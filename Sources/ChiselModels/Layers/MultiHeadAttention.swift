import ChiselBase
import ChiselTensor

/// diffusers' `Attention` (and CLIP's self-attention): q, k, v projections, multi-head scaled
/// dot-product attention, and an output projection whose result is added to `residual`.
///
/// The projections are fused: self-attention runs one matmul to a row of [q | k | v], cross-
/// attention one for q and one to [k | v] on the text; the attention kernel reads them in place.
final class MultiHeadAttention: Sendable {
    enum Projection: Sendable {
        case selfAttention(qkv: Linear)
        case crossAttention(q: Linear, kv: Linear)
    }

    let projection: Projection
    let toOut: Linear
    let heads: Int
    /// The precision of the score and value products: FP32 when `upcast_attention` asks for it.
    let precision: Precision

    /// Names are diffusers' (`to_q`, `to_k`, `to_v`, `to_out.0`) unless `names` gives others.
    /// `contextDim` nil means self-attention.
    init(_ w: ScopedWeights, queryDim: Int, contextDim: Int?, heads: Int, precision: Precision, upcast: Bool = false,
         names: (q: String, k: String, v: String, out: String) = ("to_q", "to_k", "to_v", "to_out.0")) throws {
        let sourceDim = contextDim ?? queryDim
        func weights(_ name: String, in inFeatures: Int) throws -> (weight: [Float], bias: [Float]?) {
            let shape = (try? w.shape("\(name).weight")) == [queryDim, inFeatures, 1, 1]
                ? [queryDim, inFeatures, 1, 1] : [queryDim, inFeatures]
            let weight = try w.floats("\(name).weight", shape: shape)
            let bias = w.contains("\(name).bias") ? try w.floats("\(name).bias", shape: [queryDim]) : nil
            return (weight, bias)
        }
        func fused(_ parts: [(weight: [Float], bias: [Float]?)], in inFeatures: Int) throws -> Linear {
            let bias: [Float]? = parts.allSatisfy { $0.bias == nil } ? nil
                : parts.flatMap { $0.bias ?? [Float](repeating: 0, count: queryDim) }
            return try Linear(inFeatures: inFeatures, outFeatures: queryDim * parts.count,
                              weights: parts.flatMap(\.weight), bias: bias, precision: precision)
        }
        let q = try weights(names.q, in: queryDim)
        let k = try weights(names.k, in: sourceDim)
        let v = try weights(names.v, in: sourceDim)
        if contextDim == nil {
            projection = .selfAttention(qkv: try fused([q, k, v], in: queryDim))
        } else {
            projection = .crossAttention(q: try fused([q], in: queryDim), kv: try fused([k, v], in: sourceDim))
        }
        toOut = try Load.linear(w, names.out, in: queryDim, out: queryDim, precision: precision)
        self.heads = heads
        self.precision = upcast ? .f32 : precision
    }

    /// `x` is N×L×C; `context` N×M×contextDim for cross-attention.
    func callAsFunction(_ x: Tensor, context: Tensor? = nil, residual: Tensor? = nil, causal: Bool = false) throws
        -> Tensor
    {
        try attend(context: context, residual: residual, causal: causal, project: { try $0(x) })
    }

    /// Attention over `norm(x)`: a `.bf16` projection reads the normalised rows in bfloat16.
    func callAsFunction(normalizing norm: some RowNormalization, _ x: Tensor, context: Tensor? = nil, residual: Tensor? = nil,
                        causal: Bool = false) throws -> Tensor {
        try attend(context: context, residual: residual, causal: causal, project: { try $0.afterNorm(norm, x) })
    }

    /// A cross-attention's keys and values for `context`, side by side (N×M×2C): the part of the
    /// attention that depends only on the context, to compute once for many queries.
    func keysAndValues(_ context: Tensor) throws -> Tensor {
        guard case .crossAttention(_, let kv) = projection else {
            throw ChiselError(.internal, "self-attention has no separate keys and values")
        }
        return try kv(context)
    }

    /// Cross-attention over `norm(x)` with keys and values from `keysAndValues`.
    func callAsFunction(normalizing norm: some RowNormalization, _ x: Tensor, keysAndValues: Tensor,
                        residual: Tensor? = nil) throws -> Tensor {
        try attend(context: nil, keysAndValues: keysAndValues, residual: residual, causal: false,
                   project: { try $0.afterNorm(norm, x) })
    }

    private func attend(context: Tensor?, keysAndValues: Tensor? = nil, residual: Tensor?, causal: Bool,
                        project: (Linear) throws -> Tensor) throws -> Tensor {
        let attended: Tensor
        switch projection {
        case .selfAttention(let qkv):
            attended = try Attention.compute(packedQKV: project(qkv), heads: heads, causal: causal, precision: precision)
        case .crossAttention(let q, let kv):
            guard let packed = try keysAndValues ?? context.map({ try kv($0) }) else {
                throw ChiselError(.internal, "cross-attention needs a context")
            }
            attended = try Attention.compute(q: project(q), packedKV: packed, heads: heads, precision: precision)
        }
        return try toOut(attended, adding: residual)
    }
}
