import CChiselKernels
import ChiselBase
import Foundation

/// Multi-head scaled dot-product attention, `softmax(Q·Kᵀ/√d)·V` per head (Vaswani et al. 2017),
/// computed a block of queries at a time so the full score matrix never exists: a 64×64 latent
/// has 4096 tokens, and all of its scores for 8 heads would take 512 MiB.
public enum Attention {
    /// Whether the CPU has AVX-512 BF16 for the bfloat16 kernel (else `.bf16` runs the FP32 one).
    public static let bf16Supported = chisel_attention_bf16_supported() != 0

    /// Queries per block: the score buffer holds `blockSize × keys` floats.
    public static let blockSize = 256

    /// Attention over a fused projection: `qkv` is N×L×3C with queries, keys and values side by
    /// side in each row (one matmul instead of three, and no copies to split them).
    public static func compute(packedQKV qkv: Tensor, heads: Int, causal: Bool = false, precision: Precision = .f32)
        throws -> Tensor
    {
        guard qkv.rank == 3, qkv.shape[2] % 3 == 0 else {
            throw ChiselError(.internal, "packed attention expects N×L×3C, got \(qkv.shape)")
        }
        let c = qkv.shape[2] / 3
        return try strided(q: qkv, qOffset: 0, k: qkv, kOffset: c, v: qkv, vOffset: 2 * c, batch: qkv.shape[0],
                           queries: qkv.shape[1], keys: qkv.shape[1], channels: c, heads: heads, causal: causal,
                           precision: precision)
    }

    /// Queries N×Lq×C against keys and values packed side by side in `kv` (N×Lk×2C).
    public static func compute(q: Tensor, packedKV kv: Tensor, heads: Int, precision: Precision = .f32) throws -> Tensor {
        guard q.rank == 3, kv.rank == 3, kv.shape[0] == q.shape[0], kv.shape[2] == 2 * q.shape[2] else {
            throw ChiselError(.internal, "attention shapes q \(q.shape), packed kv \(kv.shape)")
        }
        return try strided(q: q, qOffset: 0, k: kv, kOffset: 0, v: kv, vOffset: q.shape[2], batch: q.shape[0],
                           queries: q.shape[1], keys: kv.shape[1], channels: q.shape[2], heads: heads, causal: false,
                           precision: precision)
    }

    /// `q` is N×Lq×C, `k` and `v` N×Lk×C, with C split into `heads` heads of C/heads features.
    /// With `causal`, query i only sees keys 0…i (CLIP's text encoder). Runs the fused kernel of
    /// `chisel_attention` (blocks of 64 queries against blocks of 256 keys, online softmax),
    /// its work items spread over the cores.
    public static func compute(q: Tensor, k: Tensor, v: Tensor, heads: Int, causal: Bool = false,
                               precision: Precision = .f32) throws -> Tensor {
        guard q.rank == 3, k.rank == 3, v.rank == 3, q.shape[0] == k.shape[0], k.shape == v.shape,
            q.shape[2] == k.shape[2], heads > 0, q.shape[2] % heads == 0
        else {
            throw ChiselError(.internal, "attention shapes q \(q.shape), k \(k.shape), v \(v.shape) with \(heads) heads")
        }
        return try strided(q: q, qOffset: 0, k: k, kOffset: 0, v: v, vOffset: 0, batch: q.shape[0], queries: q.shape[1],
                           keys: k.shape[1], channels: q.shape[2], heads: heads, causal: causal, precision: precision)
    }

    /// The fused kernel on row-major buffers whose rows may hold more than one of q, k, v: each
    /// starts `offset` floats into its rows, and rows are as long as their tensor's last dimension.
    static func strided(q: Tensor, qOffset: Int, k: Tensor, kOffset: Int, v: Tensor, vOffset: Int, batch: Int,
                        queries: Int, keys: Int, channels: Int, heads: Int, causal: Bool, precision: Precision) throws
        -> Tensor
    {
        guard heads > 0, channels % heads == 0 else {
            throw ChiselError(.internal, "\(heads) heads do not divide \(channels) channels")
        }
        let d = channels / heads
        let scale = 1 / Float(d).squareRoot()
        var out = Tensor(uninitialized: [batch, queries, channels])
        let items = Int(chisel_attention_items(Int64(batch), Int64(heads), Int64(queries), Int64(Parallel.cores)))
        let failures = Locked(0)
        KernelProfile.measure("attention \(queries)×\(keys)×\(channels)") { q.data.withUnsafeBufferPointer { qp in
            k.data.withUnsafeBufferPointer { kp in
                v.data.withUnsafeBufferPointer { vp in
                    out.data.withUnsafeMutableBufferPointer { op in
                        guard let q0 = qp.baseAddress, let k0 = kp.baseAddress, let v0 = vp.baseAddress else { return }
                        let kernel = precision == .bf16 && bf16Supported ? chisel_attention_bf16 : chisel_attention
                        Parallel.forEachChunk(items) { range in
                            let status = kernel(
                                q0 + qOffset, k0 + kOffset, v0 + vOffset, op.baseAddress, Int64(batch),
                                Int64(heads), Int64(queries), Int64(keys), Int64(d), Int64(q.lastDimension),
                                Int64(k.lastDimension), Int64(v.lastDimension), Int64(channels), scale, causal ? 1 : 0,
                                Int64(Parallel.cores), Int64(range.lowerBound), Int64(range.upperBound))
                            if status != 0 { failures.withLock { $0 += 1 } }
                        }
                    }
                }
            }
        } }
        guard failures.value == 0 else { throw ChiselError(.internal, "attention could not allocate its scratch memory") }
        return out
    }

    /// The reference path: score blocks from FP32 GEMM calls and a separate softmax, kept to
    /// check the fused kernel against.
    public static func computeUnfused(q: Tensor, k: Tensor, v: Tensor, heads: Int, causal: Bool = false) throws -> Tensor {
        let (batch, queries, channels) = (q.shape[0], q.shape[1], q.shape[2])
        let keys = k.shape[1]
        let d = channels / heads
        let scale = 1 / Float(d).squareRoot()
        var out = Tensor(zeros: q.shape)
        var scores = [Float](repeating: 0, count: min(blockSize, queries) * keys)
        try q.data.withUnsafeBufferPointer { qp in
            try k.data.withUnsafeBufferPointer { kp in
                try v.data.withUnsafeBufferPointer { vp in
                    try out.data.withUnsafeMutableBufferPointer { op in
                        try scores.withUnsafeMutableBufferPointer { sp in
                            guard let q0 = qp.baseAddress, let k0 = kp.baseAddress, let v0 = vp.baseAddress,
                                let o0 = op.baseAddress, let s0 = sp.baseAddress
                            else { return }
                            for b in 0..<batch {
                                for h in 0..<heads {
                                    let headOffset = h * d
                                    for start in stride(from: 0, to: queries, by: blockSize) {
                                        let rows = min(blockSize, queries - start)
                                        try GEMM.sgemm(.none, .transposed, m: rows, n: keys, k: d, alpha: scale,
                                                       a: q0 + (b * queries + start) * channels + headOffset,
                                                       lda: channels, b: k0 + b * keys * channels + headOffset,
                                                       ldb: channels, c: s0, ldc: keys)
                                        softmaxRows(s0, rows: rows, columns: keys, causalFrom: causal ? start : nil)
                                        try GEMM.sgemm(.none, .none, m: rows, n: d, k: keys, a: s0, lda: keys,
                                                       b: v0 + b * keys * channels + headOffset, ldb: channels,
                                                       c: o0 + (b * queries + start) * channels + headOffset,
                                                       ldc: channels)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Softmax of each row in place, formed as PyTorch's CPU kernel forms it: e = exp(x − max),
    /// p = e · (1/Σe); with `causalFrom`, row r (query `causalFrom + r`) masks keys after its
    /// own position.
    public static func softmaxRows(_ s: UnsafeMutablePointer<Float>, rows: Int, columns: Int, causalFrom: Int? = nil) {
        let scores = UnsafeMutableBufferPointer(start: s, count: rows * columns)
        Parallel.forEachChunk(rows, minimumChunk: 8) { range in
            for r in range {
                let row = r * columns
                let visible = causalFrom.map { min(columns, $0 + r + 1) } ?? columns
                var peak = -Float.infinity
                for j in 0..<visible { peak = max(peak, scores[row + j]) }
                var sum: Float = 0
                for j in 0..<visible {
                    let e = expf(scores[row + j] - peak)
                    scores[row + j] = e
                    sum += e
                }
                let inv = 1 / sum
                for j in 0..<visible { scores[row + j] *= inv }
                for j in visible..<columns { scores[row + j] = 0 }
            }
        }
    }
}
