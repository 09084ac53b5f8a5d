import CChiselKernels
import ChiselBase

/// A normalisation of each row over the last dimension that can hand a `.bf16` layer its output
/// in bfloat16 (`Linear.afterNorm`, `MultiHeadAttention`'s pre-norm).
public protocol RowNormalization: Sendable {
    func callAsFunction(_ x: Tensor) throws -> Tensor
    func bf16(_ x: Tensor) throws -> HalfTensor
}

extension LayerNorm: RowNormalization {
    /// diffusers' `AdaLayerNormContinuous` around this norm: `norm(x) · (1 + scale) + shift` per
    /// sample, `modulation` N×2C with the scales first (`emb.chunk(2, dim=1)`).
    public func modulated(by modulation: Tensor) throws -> ModulatedNorm {
        try ModulatedNorm(kind: .layer, features: features, epsilon: epsilon, weight: gamma, bias: beta,
                          modulation: modulation)
    }
}

/// The row kernels shared by the row normalisations: `chisel_layer_norm` and `chisel_rms_norm`
/// (and their bfloat16 forms) take the same arguments.
enum RowKernel: Sendable {
    case layer, rms

    func run(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, features: Int, gamma: UnsafePointer<Float>?,
             beta: UnsafePointer<Float>?, epsilon: Float, rows: Range<Int>) {
        let (n, r0, r1) = (Int64(features), Int64(rows.lowerBound), Int64(rows.upperBound))
        switch self {
        case .layer: chisel_layer_norm(x, out, n, gamma, beta, epsilon, r0, r1)
        case .rms: chisel_rms_norm(x, out, n, gamma, beta, epsilon, r0, r1)
        }
    }

    func run(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<UInt16>, features: Int,
             gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?, epsilon: Float, rows: Range<Int>) {
        let (n, r0, r1) = (Int64(features), Int64(rows.lowerBound), Int64(rows.upperBound))
        switch self {
        case .layer: chisel_layer_norm_bf16(x, out, n, gamma, beta, epsilon, r0, r1)
        case .rms: chisel_rms_norm_bf16(x, out, n, gamma, beta, epsilon, r0, r1)
        }
    }

    /// Runs `body` over `rows` rows in parallel chunks, each chunk cut at sample boundaries
    /// (`rowsPerSample` rows per sample) and given its sample index.
    static func perSample(rows: Int, rowsPerSample: Int, _ body: (Int, Range<Int>) -> Void) {
        Parallel.forEachChunk(rows, minimumChunk: 64) { range in
            var row = range.lowerBound
            while row < range.upperBound {
                let sample = row / rowsPerSample
                let end = min(range.upperBound, (sample + 1) * rowsPerSample)
                body(sample, row..<end)
                row = end
            }
        }
    }
}
