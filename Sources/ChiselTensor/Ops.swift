import CChiselKernels
import ChiselBase

/// Small tensor operations that have no weights.
public enum Ops {
    /// Element-wise sum of two tensors of one shape.
    public static func add(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try KernelProfile.measure("add") {
        guard a.shape == b.shape else { throw ChiselError(.internal, "cannot add \(a.shape) and \(b.shape)") }
        var out = a
        out.data.withUnsafeMutableBufferPointer { o in
            b.data.withUnsafeBufferPointer { q in
                Parallel.forEachChunk(o.count, minimumChunk: 16384) { range in
                    for i in range { o[i] += q[i] }
                }
            }
        }
        return out
    }
    }

    /// `a · b` where `b` is broadcast over every row: `a` is N×…×C and `b` N×C (per-sample
    /// channel vectors, e.g. a time embedding), added to each position of its sample.
    public static func addPerSample(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try KernelProfile.measure("add per sample") {
        guard b.rank == 2, a.shape[0] == b.shape[0], a.lastDimension == b.shape[1] else {
            throw ChiselError(.internal, "cannot broadcast \(b.shape) over \(a.shape)")
        }
        var out = a
        let channels = a.lastDimension
        let rowsPerSample = a.rows / a.shape[0]
        out.data.withUnsafeMutableBufferPointer { o in
            b.data.withUnsafeBufferPointer { vector in
                Parallel.forEachChunk(a.rows, minimumChunk: 256) { range in
                    for row in range {
                        let base = row * channels, sample = (row / rowsPerSample) * channels
                        for c in 0..<channels { o[base + c] += vector[sample + c] }
                    }
                }
            }
        }
        return out
    }
    }

    /// Channel concatenation of N×H×W×C tensors.
    public static func concatChannels(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try KernelProfile.measure("concat") {
        guard a.rank == b.rank, a.shape.dropLast() == b.shape.dropLast() else {
            throw ChiselError(.internal, "cannot concatenate \(a.shape) and \(b.shape) along channels")
        }
        let ca = a.lastDimension, cb = b.lastDimension
        var out = Tensor(uninitialized: Array(a.shape.dropLast()) + [ca + cb])
        for row in 0..<a.rows {
            out.data.replaceSubrange((row * (ca + cb))..<(row * (ca + cb) + ca), with: a.data[(row * ca)..<((row + 1) * ca)])
            out.data.replaceSubrange((row * (ca + cb) + ca)..<((row + 1) * (ca + cb)), with: b.data[(row * cb)..<((row + 1) * cb)])
        }
        return out
    }
    }

    /// Nearest-neighbour resize of N×H×W×C to `height`×`width` (`F.interpolate(mode="nearest")`:
    /// source index ⌊dst · in / out⌋).
    public static func upsampleNearest(_ x: Tensor, height: Int, width: Int) throws -> Tensor {
        try KernelProfile.measure("upsample") {
        guard x.rank == 4 else { throw ChiselError(.internal, "upsample expects N×H×W×C, got \(x.shape)") }
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var out = Tensor(uninitialized: [n, height, width, c])
        out.data.withUnsafeMutableBufferPointer { o in
            x.data.withUnsafeBufferPointer { s in
                Parallel.forEachChunk(n * height) { range in
                    for row in range {
                        let (b, y) = row.quotientAndRemainder(dividingBy: height)
                        let sy = y * h / height
                        for xx in 0..<width {
                            let sx = xx * w / width
                            let src = ((b * h + sy) * w + sx) * c
                            let dst = ((b * height + y) * width + xx) * c
                            for ch in 0..<c { o[dst + ch] = s[src + ch] }
                        }
                    }
                }
            }
        }
        return out
    }
    }

    /// GEGLU (Shazeer 2020): each row's first half times the exact GELU of its second half.
    public static func gatedGELU(_ x: Tensor) throws -> Tensor {
        var out = Tensor(uninitialized: try gatedShape(x))
        gatedRows(x, into: &out.data, chisel_geglu)
        return out
    }

    /// GEGLU into bfloat16, for a `.bf16` linear layer that follows.
    public static func gatedGELUHalf(_ x: Tensor) throws -> HalfTensor {
        var out = HalfTensor(uninitialized: try gatedShape(x))
        gatedRows(x, into: &out.data, chisel_geglu_bf16)
        return out
    }

    private static func gatedShape(_ x: Tensor) throws -> [Int] {
        guard x.lastDimension % 2 == 0 else { throw ChiselError(.internal, "GEGLU needs an even width, got \(x.shape)") }
        return Array(x.shape.dropLast()) + [x.lastDimension / 2]
    }

    private static func gatedRows<Element>(
        _ x: Tensor, into out: inout [Element],
        _ kernel: (UnsafePointer<Float>?, UnsafeMutablePointer<Element>?, Int64, Int64, Int64) -> Void
    ) {
        let width = Int64(x.lastDimension / 2)
        x.data.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { o in
                guard let src = s.baseAddress, let dst = o.baseAddress else { return }
                Parallel.forEachChunk(x.rows, minimumChunk: 16) { range in
                    kernel(src, dst, width, Int64(range.lowerBound), Int64(range.upperBound))
                }
            }
        }
    }

    /// Scales every value.
    public static func scale(_ x: Tensor, by factor: Float) -> Tensor {
        var out = x
        for i in out.data.indices { out.data[i] *= factor }
        return out
    }
}
