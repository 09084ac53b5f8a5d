import ChiselTensor
import Testing

@Suite struct GEMMTests {
    /// A deterministic pseudo-random matrix in [-1, 1).
    static func matrix(_ rows: Int, _ columns: Int, seed: UInt64) -> [Float] { randomValues(rows * columns, seed: seed) }


    static func naive(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, transA: Bool, transB: Bool) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k {
                    let x = transA ? a[p * m + i] : a[i * k + p]
                    let y = transB ? b[j * k + p] : b[p * n + j]
                    sum += Double(x) * Double(y)
                }
                c[i * n + j] = sum
            }
        }
        return c
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func sgemmMatchesNaiveProduct(transA: Bool, transB: Bool) throws {
        let m = 37, n = 29, k = 53
        let a = Self.matrix(m, k, seed: 1), b = Self.matrix(k, n, seed: 2)
        var c = [Float](repeating: 0, count: m * n)
        try a.withUnsafeBufferPointer { pa in
            try b.withUnsafeBufferPointer { pb in
                try c.withUnsafeMutableBufferPointer { pc in
                    try GEMM.sgemm(transA ? .transposed : .none, transB ? .transposed : .none, m: m, n: n, k: k,
                                   a: pa.baseAddress!, lda: transA ? m : k, b: pb.baseAddress!, ldb: transB ? k : n,
                                   c: pc.baseAddress!, ldc: n)
                }
            }
        }
        let expected = Self.naive(a, b, m: m, n: n, k: k, transA: transA, transB: transB)
        let worst = zip(c, expected).map { abs(Double($0) - $1) }.max() ?? 0
        #expect(worst < 1e-4)
    }

    @Test func bfloat16RoundsToNearestEven() {
        #expect(BFloat16.bits(1.0) == 0x3F80)
        #expect(BFloat16.bits(Float(bitPattern: 0x3F80_8000)) == 0x3F80)  // tie → even
        #expect(BFloat16.bits(Float(bitPattern: 0x3F81_8000)) == 0x3F82)  // tie → even (up)
        #expect(BFloat16.bits(Float(bitPattern: 0x3F80_8001)) == 0x3F81)
        #expect(BFloat16.float(BFloat16.bits(-2.5)) == -2.5)
        #expect(BFloat16.float(BFloat16.bits(.nan)).isNaN)
    }
}
