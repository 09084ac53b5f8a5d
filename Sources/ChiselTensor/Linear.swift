import CChiselKernels
import ChiselBase

/// A linear layer `y = x·Wᵀ + b` over the last dimension, run by a oneDNN matmul primitive
/// (one per row count, built on first use). As with `Conv2D`, a prototype kernel owns the
/// weights in the kernels' layout and the others share them.
public final class Linear: @unchecked Sendable {
    public let inFeatures: Int, outFeatures: Int
    public let precision: Precision
    private let prototype: OpaquePointer
    private let lock = Locked<[Key: OpaquePointer]>([:])

    private struct Key: Hashable {
        var rows: Int, accumulate: Bool
    }

    /// `weights` in PyTorch's out×in order.
    public init(inFeatures: Int, outFeatures: Int, weights: [Float], bias: [Float]?, precision: Precision) throws {
        guard weights.count == inFeatures * outFeatures else {
            throw ChiselError(.model, "linear weights have \(weights.count) values, expected \(outFeatures)×\(inFeatures)")
        }
        if let bias, bias.count != outFeatures {
            throw ChiselError(.model, "linear bias has \(bias.count) values, expected \(outFeatures)")
        }
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.precision = precision
        var error = [CChar](repeating: 0, count: 256)
        let made = weights.withUnsafeBufferPointer { wp in
            bias.withOptionalPointer { bp in
                chisel_matmul_create(64, Int64(inFeatures), Int64(outFeatures), precision == .bf16 ? 1 : 0, 0,
                                     wp.baseAddress, bp, nil, &error, error.count)
            }
        }
        guard let made else { throw ChiselError(.internal, "cannot build a matmul kernel: \(cMessage(error))") }
        prototype = made
    }

    deinit {
        lock.withLock { cache in
            for pointer in cache.values { chisel_matmul_destroy(pointer) }
        }
        chisel_matmul_destroy(prototype)
    }

    /// Applies the layer to every row; with `residual`, returns `layer(input) + residual`.
    public func callAsFunction(_ input: Tensor, adding residual: Tensor? = nil) throws -> Tensor {
        guard input.lastDimension == inFeatures else {
            throw ChiselError(.internal, "linear layer expects \(inFeatures) features, got \(input.shape)")
        }
        return try run(rows: input.rows, shape: input.shape, residual: residual) { primitive, dst, error in
            input.data.withUnsafeBufferPointer { src in chisel_matmul_run(primitive, src.baseAddress, dst, error, 256) }
        }
    }

    /// Applies a `.bf16` layer to bfloat16 rows (from `LayerNorm.bf16` or `Ops.gatedGELUHalf`).
    public func callAsFunction(_ input: HalfTensor, adding residual: Tensor? = nil) throws -> Tensor {
        guard input.shape.last == inFeatures else {
            throw ChiselError(.internal, "linear layer expects \(inFeatures) features, got \(input.shape)")
        }
        return try run(rows: input.data.count / inFeatures, shape: input.shape, residual: residual) { primitive, dst, error in
            input.data.withUnsafeBufferPointer { src in chisel_matmul_run_bf16(primitive, src.baseAddress, dst, error, 256) }
        }
    }

    /// `layer(norm(x))` (+ residual): a `.bf16` layer takes the normalised rows in bfloat16
    /// straight from the normalisation.
    public func afterNorm(_ norm: some RowNormalization, _ x: Tensor, adding residual: Tensor? = nil) throws -> Tensor {
        if precision == .bf16 { return try self(norm.bf16(x), adding: residual) }
        return try self(norm(x), adding: residual)
    }

    private func run(rows: Int, shape: [Int], residual: Tensor?,
                     execute: (OpaquePointer, UnsafeMutablePointer<Float>?, UnsafeMutablePointer<CChar>) -> Int32)
        throws -> Tensor
    {
        let outShape = Array(shape.dropLast()) + [outFeatures]
        var output: Tensor
        if let residual {
            guard residual.shape == outShape else {
                throw ChiselError(.internal, "residual \(residual.shape) does not match linear output \(outShape)")
            }
            output = residual
        } else {
            output = Tensor(uninitialized: outShape)
        }
        guard rows > 0 else { return output }
        let key = Key(rows: rows, accumulate: residual != nil)
        let primitive = try lock.withLock { cache -> OpaquePointer in
            if let existing = cache[key] { return existing }
            var error = [CChar](repeating: 0, count: 256)
            let made = chisel_matmul_create(Int64(rows), Int64(inFeatures), Int64(outFeatures), precision == .bf16 ? 1 : 0,
                                            residual != nil ? 1 : 0, nil, nil, prototype, &error, error.count)
            guard let made else {
                throw ChiselError(.internal, "cannot build a matmul kernel: \(cMessage(error))")
            }
            cache[key] = made
            return made
        }
        try runKernel("linear \(inFeatures)→\(outFeatures) ×\(rows)", what: "matmul", output: &output.data) {
            execute(primitive, $0, $1)
        }
        return output
    }
}
