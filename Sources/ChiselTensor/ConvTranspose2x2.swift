import ChiselBase

/// A transposed convolution with a 2×2 kernel and stride 2 (`nn.ConvTranspose2d(C, O, 2, stride=2)`)
/// on N×H×W×C maps, giving N×2H×2W×O. Each input position writes its own 2×2 output block, so it
/// is one matrix product C → 4·O (columns ordered dy, dx, o) followed by moving each row's two
/// halves (dy = 0, 1; 2·O values each) to their output rows.
public final class ConvTranspose2x2: Sendable {
    public let inChannels: Int, outChannels: Int
    let product: Linear

    public var precision: Precision { product.precision }

    /// `weights` in PyTorch's I×O×2×2 order; `bias` of `outChannels`.
    public init(inChannels: Int, outChannels: Int, weights: [Float], bias: [Float]?, precision: Precision) throws {
        guard weights.count == inChannels * outChannels * 4, bias.map({ $0.count == outChannels }) ?? true else {
            throw ChiselError(.model, "2×2 transposed convolution \(inChannels)→\(outChannels) got \(weights.count) "
                              + "weights and \(bias?.count ?? 0) biases")
        }
        var matrix = [Float](repeating: 0, count: weights.count)
        for i in 0..<inChannels {
            for o in 0..<outChannels {
                for tap in 0..<4 { matrix[(tap * outChannels + o) * inChannels + i] = weights[(i * outChannels + o) * 4 + tap] }
            }
        }
        self.inChannels = inChannels
        self.outChannels = outChannels
        product = try Linear(inFeatures: inChannels, outFeatures: 4 * outChannels, weights: matrix,
                             bias: bias.map { Array([[Float]](repeating: $0, count: 4).joined()) }, precision: precision)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try check(x.shape)
        return try scatter(product(x), shape: x.shape)
    }

    /// For a `.bf16` layer, bfloat16 input (from a norm's `bf16`).
    public func callAsFunction(_ x: HalfTensor) throws -> Tensor {
        try check(x.shape)
        return try scatter(product(x), shape: x.shape)
    }

    private func check(_ shape: [Int]) throws {
        guard shape.count == 4, shape[3] == inChannels else {
            throw ChiselError(.internal, "transposed convolution expects N×H×W×\(inChannels), got \(shape)")
        }
    }

    /// Row (b, y, x) of `blocks` holds output pixels (2y + dy, 2x + dx) for dy, dx in {0, 1}.
    private func scatter(_ blocks: Tensor, shape: [Int]) throws -> Tensor {
        let (n, h, w, o) = (shape[0], shape[1], shape[2], outChannels)
        var out = Tensor(uninitialized: [n, 2 * h, 2 * w, o])
        KernelProfile.measure("transposed conv scatter") {
            blocks.data.withUnsafeBufferPointer { src in
                out.data.withUnsafeMutableBufferPointer { dst in
                    guard let source = src.baseAddress, let target = dst.baseAddress else { return }
                    Parallel.forEachChunk(n * h, minimumChunk: 4) { rows in
                        for row in rows {
                            for dy in 0..<2 {
                                let outRow = target + (2 * row + dy) * 2 * w * o
                                for x in 0..<w {
                                    (outRow + x * 2 * o).update(from: source + ((row * w + x) * 2 + dy) * 2 * o, count: 2 * o)
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
