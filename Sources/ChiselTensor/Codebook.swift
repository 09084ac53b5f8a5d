import ChiselBase

/// A table of vectors (a VQ codebook) with nearest-entry search and lookup.
public struct Codebook: Sendable {
    public let count: Int, width: Int
    /// count × width.
    public let entries: [Float]
    /// Rows [e | 1 | ‖e‖²], the right-hand side of `torch.cdist`'s matrix-product form.
    let augmented: [Float]

    public init(entries: [Float], count: Int, width: Int) throws {
        guard count > 0, width > 0, entries.count == count * width else {
            throw ChiselError(.model, "a codebook of \(count)×\(width) got \(entries.count) values")
        }
        self.entries = entries
        self.count = count
        self.width = width
        var augmented = [Float](repeating: 1, count: count * (width + 2))
        for i in 0..<count {
            let entry = entries[(i * width)..<((i + 1) * width)]
            augmented.replaceSubrange((i * (width + 2))..<(i * (width + 2) + width), with: entry)
            augmented[i * (width + 2) + width + 1] = Self.squaredNorm(entry)
        }
        self.augmented = augmented
    }

    /// The index of the nearest entry to each row of `x` (…×width), by `torch.cdist` (p = 2)
    /// followed by `argmin` (ties to the lowest index), as diffusers' `VectorQuantizer.forward`
    /// does. With more than 25 rows or entries, torch computes `d² = [−2x, ‖x‖², 1]·[e, 1, ‖e‖²]ᵀ`
    /// in one matrix product (`_euclidean_dist`), clamps it at 0 and takes the square root, and
    /// so does this (an FP32 GEMM); otherwise `√Σ(x − e)²` per pair.
    public func nearest(_ x: Tensor) throws -> [Int32] {
        guard x.lastDimension == width else {
            throw ChiselError(.internal, "codebook search expects …×\(width), got \(x.shape)")
        }
        let rows = x.rows
        if rows <= 25 && count <= 25 { return directNearest(x) }
        var ids = [Int32](repeating: 0, count: rows)
        let k = width + 2, block = 256
        var left = [Float](repeating: 1, count: min(block, rows) * k)
        var squared = [Float](repeating: 0, count: min(block, rows) * count)
        try KernelProfile.measure("codebook search \(count)×\(width)") {
            for start in stride(from: 0, to: rows, by: block) {
                let n = min(block, rows - start)
                for r in 0..<n {
                    let z = x.data[((start + r) * width)..<((start + r + 1) * width)]
                    for (i, value) in z.enumerated() { left[r * k + i] = -2 * value }
                    left[r * k + width] = Self.squaredNorm(z)
                    left[r * k + width + 1] = 1
                }
                try left.withUnsafeBufferPointer { a in
                    try augmented.withUnsafeBufferPointer { b in
                        try squared.withUnsafeMutableBufferPointer { c in
                            guard let a0 = a.baseAddress, let b0 = b.baseAddress, let c0 = c.baseAddress else { return }
                            try GEMM.sgemm(.none, .transposed, m: n, n: count, k: k, a: a0, lda: k, b: b0, ldb: k,
                                           c: c0, ldc: count)
                        }
                    }
                }
                squared.withUnsafeBufferPointer { distances in
                    ids.withUnsafeMutableBufferPointer { out in
                        Parallel.forEachChunk(n, minimumChunk: 16) { range in
                            for r in range {
                                var best = Float.infinity, index = 0
                                for j in 0..<count {
                                    let distance = max(distances[r * count + j], 0).squareRoot()
                                    if distance < best { best = distance; index = j }
                                }
                                out[start + r] = Int32(index)
                            }
                        }
                    }
                }
            }
        }
        return ids
    }

    /// `torch.cdist`'s direct form for small inputs: the root of the summed squared differences.
    func directNearest(_ x: Tensor) -> [Int32] {
        (0..<x.rows).map { r in
            var best = Float.infinity, index = 0
            for j in 0..<count {
                var sum: Float = 0
                for i in 0..<width {
                    let difference = x.data[r * width + i] - entries[j * width + i]
                    sum += difference * difference
                }
                let distance = sum.squareRoot()
                if distance < best { best = distance; index = j }
            }
            return Int32(index)
        }
    }

    /// The entries for `ids`, as `shape` (whose last dimension is the width).
    public func lookup(_ ids: [Int32], shape: [Int]) throws -> Tensor {
        guard shape.last == width, shape.reduce(1, *) == ids.count * width else {
            throw ChiselError(.internal, "\(ids.count) codebook entries do not make \(shape)")
        }
        var out = Tensor(uninitialized: shape)
        for (p, id) in ids.enumerated() {
            guard id >= 0, Int(id) < count else {
                throw ChiselError(.invalidParameter, "token id \(id) is outside the codebook of \(count)")
            }
            out.data.replaceSubrange((p * width)..<((p + 1) * width),
                                     with: entries[(Int(id) * width)..<((Int(id) + 1) * width)])
        }
        return out
    }

    /// `pow(2).sum(-1)` in FP32.
    static func squaredNorm(_ values: ArraySlice<Float>) -> Float { values.reduce(0) { $0 + $1 * $1 } }
}
