import ChiselBase
import ChiselTensor

/// diffusers' `BasicTransformerBlock` with `norm_type="ada_norm_continuous"`, as `UVit2DModel`
/// builds it: self-attention, cross-attention to the text and a GEGLU feed-forward, each after
/// an `AdaLayerNormContinuous` and added back. The first two norms are RMSNorms, the third a
/// mean-subtracting LayerNorm (with a bias only under `use_bias`); each norm's scale and shift
/// come from a linear map of SiLU(conditioning), and the three maps run as one product.
final class AdaNormTransformerBlock: Sendable {
    let modulation: Linear
    let norm1: RMSNorm, selfAttention: MultiHeadAttention
    let norm2: RMSNorm, crossAttention: MultiHeadAttention
    let norm3: LayerNorm, geglu: Linear, feedForwardOut: Linear
    let dim: Int

    init(_ w: ScopedWeights, config: UVit2DConfig, precision: Precision) throws {
        let d = config.hiddenSize, eps = config.layerNormEpsilon, affine = config.elementwiseAffine
        dim = d
        modulation = try Load.fusedLinear(w, ["norm1.linear", "norm2.linear", "norm3.linear"], in: d, out: 2 * d,
                                          precision: precision)
        norm1 = try Load.rmsNorm(w, "norm1.norm", features: d, epsilon: eps, affine: affine)
        selfAttention = try MultiHeadAttention(w.scoped("attn1."), queryDim: d, contextDim: nil, heads: config.heads,
                                               precision: precision)
        norm2 = try Load.rmsNorm(w, "norm2.norm", features: d, epsilon: eps, affine: affine)
        crossAttention = try MultiHeadAttention(w.scoped("attn2."), queryDim: d, contextDim: d, heads: config.heads,
                                                precision: precision)
        norm3 = try Load.layerNorm(w, "norm3.norm", features: d, epsilon: eps, affine: affine)
        geglu = try Load.linear(w, "ff.net.0.proj", in: d, out: 2 * config.intermediateSize, precision: precision)
        feedForwardOut = try Load.linear(w, "ff.net.2", in: config.intermediateSize, out: d, precision: precision)
    }

    /// What a layer takes from the conditioning, the same at every step: its three modulated
    /// norms and the cross-attention's keys and values of the text.
    struct Prepared: Sendable {
        let norm1: ModulatedNorm, norm2: ModulatedNorm, norm3: ModulatedNorm
        let keysAndValues: Tensor
    }

    /// `condition` is SiLU of the conditioning vector, N×D; `context` the projected text, N×S×D.
    func prepare(condition: Tensor, context: Tensor) throws -> Prepared {
        let all = try modulation(condition)
        func part(_ k: Int) throws -> Tensor { try Self.columns(all, from: 2 * dim * k, count: 2 * dim) }
        return Prepared(norm1: try norm1.modulated(by: part(0)), norm2: try norm2.modulated(by: part(1)),
                        norm3: try norm3.modulated(by: part(2)), keysAndValues: try crossAttention.keysAndValues(context))
    }

    /// `x` is N×L×D.
    func callAsFunction(_ x: Tensor, _ prepared: Prepared) throws -> Tensor {
        var h = try selfAttention(normalizing: prepared.norm1, x, residual: x)
        h = try crossAttention(normalizing: prepared.norm2, h, keysAndValues: prepared.keysAndValues, residual: h)
        let projected = try geglu.afterNorm(prepared.norm3, h)
        if feedForwardOut.precision == .bf16 {
            let gated = try KernelProfile.measure("geglu") { try Ops.gatedGELUHalf(projected) }
            return try feedForwardOut(gated, adding: h)
        }
        return try feedForwardOut(TransformerBlock.gatedGELU(projected), adding: h)
    }

    /// Columns [from, from + count) of each row of an N×K matrix.
    static func columns(_ m: Tensor, from: Int, count: Int) throws -> Tensor {
        let width = m.lastDimension
        var out = Tensor(uninitialized: [m.rows, count])
        for r in 0..<m.rows {
            out.data.replaceSubrange((r * count)..<((r + 1) * count), with: m.data[(r * width + from)..<(r * width + from + count)])
        }
        return out
    }
}
