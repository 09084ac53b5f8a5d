import ChiselCore
import Foundation

/// Multi-head scaled dot-product attention, `softmax(Q·Kᵀ/√d)·V` per head (Vaswani et al. 2017),
/// computed a block of queries at a time so the full score matrix never exists: a 64×64 latent
/// has 4096 tokens, and all of its scores for 8 heads would take 512 MiB.
public enum Attention {
    /// Queries per block: the score buffer holds `blockSize × keys` floats.
    public static let blockSize = 256

    /// `q` is N×Lq×C, `k` and `v` N×Lk×C, with C split into `heads` heads of C/heads features.
    /// With `causal`, query i only sees keys 0…i (CLIP's text encoder).
    public static func compute(q: Tensor, k: Tensor, v: Tensor, heads: Int, causal: Bool = false) throws -> Tensor {
        guard q.rank == 3, k.rank == 3, v.rank == 3, q.shape[0] == k.shape[0], k.shape == v.shape,
            q.shape[2] == k.shape[2], heads > 0, q.shape[2] % heads == 0
        else {
            throw ChiselError(.internal, "attention shapes q \(q.shape), k \(k.shape), v \(v.shape) with \(heads) heads")
        }
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
                                        let qBlock = q0 + (b * queries + start) * channels + headOffset
                                        let kHead = k0 + b * keys * channels + headOffset
                                        let vHead = v0 + b * keys * channels + headOffset
                                        // S = Q_block · Kᵀ · scale   (rows × keys)
                                        try GEMM.sgemm(.none, .transposed, m: rows, n: keys, k: d, alpha: scale,
                                                       a: qBlock, lda: channels, b: kHead, ldb: channels,
                                                       c: s0, ldc: keys)
                                        softmaxRows(s0, rows: rows, columns: keys, causalFrom: causal ? start : nil)
                                        // O_block = P · V   (rows × d), written into the head's columns.
                                        try GEMM.sgemm(.none, .none, m: rows, n: d, k: keys, a: s0, lda: keys,
                                                       b: vHead, ldb: channels,
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

    /// Softmax of each row in place; with `causalFrom`, row r (query `causalFrom + r`) masks
    /// keys after its own position.
    static func softmaxRows(_ s: UnsafeMutablePointer<Float>, rows: Int, columns: Int, causalFrom: Int?) {
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
