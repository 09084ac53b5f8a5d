import CDNNL
import ChiselBase

/// Row-major FP32 matrix products on oneDNN's GEMM, which picks its AVX-512 kernels on this CPU
/// by itself. (oneDNN 2.6 has no bf16 GEMM function; bf16 products go through its matmul
/// primitive.)
///
/// `C = alpha · op(A) · op(B) + beta · C` with `op(A)` of M×K and `op(B)` of K×N, as BLAS
/// `sgemm` in row-major order.
public enum GEMM {
    public enum Transpose: Sendable {
        case none, transposed
        var flag: CChar { self == .none ? CChar(UInt8(ascii: "N")) : CChar(UInt8(ascii: "T")) }
    }

    /// FP32 × FP32 → FP32.
    public static func sgemm(_ transA: Transpose = .none, _ transB: Transpose = .none, m: Int, n: Int, k: Int,
                             alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) throws {
        let status = dnnl_sgemm(transA.flag, transB.flag, dnnl_dim_t(m), dnnl_dim_t(n), dnnl_dim_t(k), alpha,
                                a, dnnl_dim_t(lda), b, dnnl_dim_t(ldb), beta, c, dnnl_dim_t(ldc))
        try check(status, "sgemm \(m)×\(k)·\(k)×\(n)")
    }

    static func check(_ status: dnnl_status_t, _ what: String) throws {
        guard status == dnnl_success else {
            throw ChiselError(.internal, "oneDNN \(what) failed with status \(status.rawValue)")
        }
    }
}
