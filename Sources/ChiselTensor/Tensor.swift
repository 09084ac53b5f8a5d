import ChiselBase

/// A dense row-major float tensor.
///
/// Chisel keeps feature maps channels-last (N×H×W×C) and sequences as N×L×C: a 1×1 convolution,
/// a linear layer and attention then all read the same memory as a (N·H·W)×C matrix, with no
/// transposes between them.
public struct Tensor: Sendable, Equatable {
    public private(set) var shape: [Int]
    public var data: [Float]

    public init(shape: [Int], data: [Float]) throws {
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == data.count else {
            throw ChiselError(.internal, "tensor of shape \(shape) needs \(shape.reduce(1, *)) values, got \(data.count)")
        }
        self.shape = shape
        self.data = data
    }

    public init(zeros shape: [Int]) {
        self.shape = shape
        self.data = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    /// A tensor whose values are about to be overwritten: skips zero-filling, which for the
    /// large activations of a UNet costs as much as some of the kernels that write them.
    public init(uninitialized shape: [Int]) {
        self.shape = shape
        let count = shape.reduce(1, *)
        self.data = [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }

    public var count: Int { data.count }
    public var rank: Int { shape.count }
    /// The size of the last dimension (channels or features).
    public var lastDimension: Int { shape.last ?? 1 }
    /// The number of rows when the tensor is seen as a matrix of `lastDimension` columns.
    public var rows: Int { lastDimension == 0 ? 0 : count / lastDimension }

    /// The same values under another shape of the same size.
    public func reshaped(_ newShape: [Int]) throws -> Tensor { try Tensor(shape: newShape, data: data) }

    /// Converts N×C×H×W data (PyTorch's layout) to N×H×W×C.
    public static func fromNCHW(_ values: [Float], n: Int, c: Int, h: Int, w: Int) throws -> Tensor {
        guard values.count == n * c * h * w else {
            throw ChiselError(.internal, "\(values.count) values are not \(n)×\(c)×\(h)×\(w)")
        }
        var out = [Float](repeating: 0, count: values.count)
        for b in 0..<n {
            for ch in 0..<c {
                for y in 0..<h {
                    for x in 0..<w {
                        out[((b * h + y) * w + x) * c + ch] = values[((b * c + ch) * h + y) * w + x]
                    }
                }
            }
        }
        return try Tensor(shape: [n, h, w, c], data: out)
    }

    /// This N×H×W×C tensor's values in N×C×H×W order.
    public func toNCHW() throws -> [Float] {
        guard rank == 4 else { throw ChiselError(.internal, "toNCHW needs a 4-D tensor, got \(shape)") }
        let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3])
        var out = [Float](repeating: 0, count: count)
        for b in 0..<n {
            for y in 0..<h {
                for x in 0..<w {
                    for ch in 0..<c {
                        out[((b * c + ch) * h + y) * w + x] = data[((b * h + y) * w + x) * c + ch]
                    }
                }
            }
        }
        return out
    }
}
