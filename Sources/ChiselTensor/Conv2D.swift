import CChiselKernels
import ChiselBase

/// A 2-D convolution on channels-last feature maps, run by a oneDNN primitive.
///
/// Primitives depend on the input size, so one is built the first time a size is seen, then
/// reused. The weights live only on the C side, in the kernels' layout (and in bfloat16 for
/// `.bf16`): a prototype kernel built at initialisation owns them, and the kernels for other
/// sizes share or reorder its copy, so a layer costs its weights once.
public final class Conv2D: @unchecked Sendable {
    public let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int
    public let precision: Precision
    /// When this layer's kernels use Winograd (`Conv2D.winograd` when it was made); kernels
    /// already built keep theirs.
    public var winograd: WinogradPolicy {
        get { policy.withLock { $0 } }
        set { policy.withLock { $0 = newValue } }
    }
    private let policy = Locked(Conv2D.winograd)
    private let prototype: OpaquePointer
    /// The bf16-product Winograd's transformed weights, for layers it takes (see WinogradPolicy).
    private let productWinograd: OpaquePointer?
    private let lock = Locked<[Key: OpaquePointer]>([:])

    private struct Key: Hashable {
        var n: Int, h: Int, w: Int
        var top: Int, left: Int, bottom: Int, right: Int
        var accumulate: Bool
        var halfOutput: Bool = false
        var relu: Bool = false
    }

    /// `weights` in PyTorch's O×I×kH×kW order; `bias` of `outChannels`.
    public init(inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                weights: [Float], bias: [Float]?, precision: Precision) throws {
        guard weights.count == outChannels * inChannels * kernel * kernel else {
            throw ChiselError(.model, "convolution weights have \(weights.count) values, expected "
                              + "\(outChannels)×\(inChannels)×\(kernel)×\(kernel)")
        }
        if let bias, bias.count != outChannels {
            throw ChiselError(.model, "convolution bias has \(bias.count) values, expected \(outChannels)")
        }
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.precision = precision
        let side = Int64(max(kernel, 16))
        var error = [CChar](repeating: 0, count: 256)
        let made = weights.withUnsafeBufferPointer { wp in
            bias.withOptionalPointer { bp in
                chisel_conv_create(1, Int64(inChannels), side, side, Int64(outChannels), Int64(kernel), Int64(kernel),
                                   Int64(stride), Int64(padding), Int64(padding), Int64(padding), Int64(padding),
                                   precision == .bf16 ? 1 : 0, 0, 0, 0, 0, 0, wp.baseAddress, bp, nil, &error, error.count)
            }
        }
        guard let made else { throw ChiselError(.internal, "cannot build a convolution kernel: \(cMessage(error))") }
        prototype = made
        let rule = Conv2D.winograd
        if rule.enabled, precision == .bf16, kernel == 3, stride == 1, padding == 1, inChannels % 32 == 0,
           outChannels % 64 == 0, 16 * inChannels * outChannels * 2 <= rule.bf16ProductWeightBytes
        {
            // NULL where the CPU lacks AVX-512 BF16 (or memory runs out): the layer stays direct.
            productWinograd = weights.withUnsafeBufferPointer { wp in
                bias.withOptionalPointer { bp in
                    chisel_wino16_create(wp.baseAddress, bp, Int64(inChannels), Int64(outChannels))
                }
            }
        } else {
            productWinograd = nil
        }
    }

    deinit {
        lock.withLock { cache in
            for pointer in cache.values { chisel_conv_destroy(pointer) }
        }
        chisel_conv_destroy(prototype)
        chisel_wino16_destroy(productWinograd)
    }

    /// The bf16-product Winograd for an n × h × w input with these paddings, where the layer
    /// has one and the input is large enough for it.
    private func productWinograd(n: Int, h: Int, w: Int, pads: (Int, Int, Int, Int)) -> OpaquePointer? {
        guard let productWinograd, pads == (1, 1, 1, 1) else { return nil }
        let rule = winograd
        return rule.enabled && n * h * w >= rule.bf16ProductPositions ? productWinograd : nil
    }

    /// Runs the bf16-product Winograd over the cores: `src` is n×h×w×inChannels (bfloat16 when
    /// `halfInput`), `dst` n×h×w×outChannels (bfloat16 when `halfOutput`; added to with `accumulate`).
    private func runProductWinograd(_ kernel: OpaquePointer, n: Int, h: Int, w: Int, halfInput: Bool,
                                    src: UnsafeRawPointer, halfOutput: Bool, dst: UnsafeMutableRawPointer,
                                    accumulate: Bool, relu: Bool) throws {
        let rows = Int(chisel_wino16_rows(Int64(n), Int64(h)))
        let failures = Locked(0)
        let (source, destination) = (Unchecked(value: src), Unchecked(value: dst))
        KernelProfile.measure("conv 3×3 \(inChannels)→\(outChannels) \(h)×\(w) winograd bf16") {
            Parallel.forEachChunk(rows) { range in
                let status = chisel_wino16_run(kernel, source.value, halfInput ? 1 : 0, Int64(n), Int64(h), Int64(w),
                                               destination.value, halfOutput ? 1 : 0, accumulate ? 1 : 0, relu ? 1 : 0,
                                               Int64(range.lowerBound), Int64(range.upperBound))
                if status != 0 { failures.withLock { $0 += 1 } }
            }
        }
        guard failures.value == 0 else { throw ChiselError(.internal, "convolution could not allocate its scratch memory") }
    }

    /// The float output of the bf16-product Winograd (the residual's copy, or fresh), or nil
    /// where the layer does not take it for this input.
    /// `values` are the input's (Float, or UInt16 bfloat16 bits).
    private func productWinogradFloat<Element>(_ values: [Element], shape: [Int], residual: Tensor?, relu: Bool = false,
                                               pads: (Int, Int, Int, Int)? = nil) throws -> Tensor? {
        guard shape.count == 4, shape[3] == inChannels,
              let kernel = productWinograd(n: shape[0], h: shape[1], w: shape[2],
                                           pads: pads ?? (padding, padding, padding, padding)) else { return nil }
        let outShape = [shape[0], shape[1], shape[2], outChannels]
        if let residual, residual.shape != outShape {
            throw ChiselError(.internal, "residual \(residual.shape) does not match convolution output \(outShape)")
        }
        var output = residual ?? Tensor(uninitialized: outShape)
        try values.withUnsafeBytes { src in
            try output.data.withUnsafeMutableBytes { dst in
                guard let source = src.baseAddress, let base = dst.baseAddress else { return }
                try runProductWinograd(kernel, n: shape[0], h: shape[1], w: shape[2], halfInput: Element.self == UInt16.self,
                                       src: source, halfOutput: false, dst: base, accumulate: residual != nil, relu: relu)
            }
        }
        return output
    }

    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + 2 * padding - kernel) / stride + 1, (width + 2 * padding - kernel) / stride + 1)
    }

    /// Convolves `input` (N×H×W×C); with `residual`, returns `conv(input) + residual`.
    public func callAsFunction(_ input: Tensor, adding residual: Tensor? = nil) throws -> Tensor {
        try callAsFunction(input, padding: (padding, padding, padding, padding), adding: residual)
    }

    /// `conv(SiLU?(norm(x)))` (+ residual): a `.bf16` convolution takes the normalised values
    /// in bfloat16 straight from the normalisation.
    public func afterNorm(_ norm: GroupNorm, _ x: Tensor, silu: Bool, adding residual: Tensor? = nil) throws -> Tensor {
        // The bf16-product Winograd reads bfloat16 as a direct kernel does (and needs no oneDNN
        // kernel for this size); oneDNN's float Winograd reads floats.
        if precision == .bf16, x.rank == 4,
           try productWinograd(n: x.shape[0], h: x.shape[1], w: x.shape[2], pads: (padding, padding, padding, padding)) != nil
            || !usesWinograd(batch: x.shape[0], height: x.shape[1], width: x.shape[2], residual: residual != nil)
        {
            return try self(norm.bf16(x, silu: silu), adding: residual)
        }
        return try self(norm(x, silu: silu), adding: residual)
    }

    /// Convolves a bfloat16 input (from `GroupNorm.bf16`); only for `.bf16` convolutions.
    public func callAsFunction(_ input: HalfTensor, adding residual: Tensor? = nil) throws -> Tensor {
        if let result = try productWinogradFloat(input.data, shape: input.shape, residual: residual) {
            return result
        }
        if input.rank == 4,
           try usesWinograd(batch: input.shape[0], height: input.shape[1], width: input.shape[2], residual: residual != nil)
        {
            // A Winograd kernel takes float input.
            return try self(Tensor(shape: input.shape, data: input.floats()), adding: residual)
        }
        return try run(shape: input.shape, pads: (padding, padding, padding, padding), residual: residual) { primitive, dst, error in
            input.data.withUnsafeBufferPointer { src in chisel_conv_run_bf16(primitive, src.baseAddress, dst, error, 256) }
        }
    }

    /// Convolves with explicit (top, left, bottom, right) padding, as asymmetric downsampling needs.
    public func callAsFunction(_ input: Tensor, padding pads: (Int, Int, Int, Int), adding residual: Tensor? = nil)
        throws -> Tensor
    {
        if let result = try productWinogradFloat(input.data, shape: input.shape, residual: residual, pads: pads) {
            return result
        }
        return try run(shape: input.shape, pads: pads, residual: residual) { primitive, dst, error in
            input.data.withUnsafeBufferPointer { src in chisel_conv_run(primitive, src.baseAddress, dst, error, 256) }
        }
    }

    private func label(_ h: Int, _ w: Int, _ primitive: OpaquePointer) -> String {
        "conv \(kernel)×\(kernel) \(inChannels)→\(outChannels) \(h)×\(w)"
            + (chisel_conv_is_winograd(primitive) != 0 ? " winograd" : "")
    }

    /// The kernel for `key`, built (sharing the prototype's weights) on first use.
    private func kernelFor(_ key: Key) throws -> OpaquePointer {
        try lock.withLock { cache -> OpaquePointer in
            if let existing = cache[key] { return existing }
            var error = [CChar](repeating: 0, count: 256)
            let oh = (key.h + key.top + key.bottom - kernel) / stride + 1
            let ow = (key.w + key.left + key.right - kernel) / stride + 1
            let rule = winograd
            let winograd = key.halfOutput || key.relu || kernel != 3 || stride != 1 ? .direct
                : rule.mode(inChannels: inChannels, outChannels: outChannels, positions: key.n * oh * ow,
                            precision: precision)
            let bandRows = key.n == 1 ? max(4, rule.bandPositions / max(ow, 1)) : 0
            let made = chisel_conv_create(Int64(key.n), Int64(inChannels), Int64(key.h), Int64(key.w), Int64(outChannels),
                                          Int64(kernel), Int64(kernel), Int64(stride), Int64(key.top), Int64(key.left),
                                          Int64(key.bottom), Int64(key.right), precision == .bf16 ? 1 : 0,
                                          key.accumulate ? 1 : 0, key.halfOutput ? 1 : 0, winograd.rawValue, key.relu ? 1 : 0,
                                          Int64(bandRows), nil, nil,
                                          prototype, &error, error.count)
            guard let made else {
                throw ChiselError(.internal, "cannot build a convolution kernel: \(cMessage(error))")
            }
            cache[key] = made
            return made
        }
    }

    /// Whether this layer's kernel for a batch × height × width input (with or without a residual
    /// to add) is a Winograd one; builds the kernel if it is not built yet.
    public func usesWinograd(batch: Int, height: Int, width: Int, residual: Bool = false) throws -> Bool {
        let primitive = try kernelFor(Key(n: batch, h: height, w: width, top: padding, left: padding, bottom: padding,
                                          right: padding, accumulate: residual))
        return chisel_conv_is_winograd(primitive) != 0
    }

    /// Convolves bfloat16 into bfloat16, for a `.bf16` convolution whose output only feeds a
    /// normalisation (the first convolution of a ResNet block without a time embedding) or, with
    /// `relu` (max(0, ·) of the result, fused into the kernel), the next convolution (TAESD's blocks).
    public func halfOutput(_ input: HalfTensor, relu: Bool = false) throws -> HalfTensor {
        if let result = try productWinogradHalf(input.data, shape: input.shape, relu: relu) {
            return result
        }
        return try halfOutput(shape: input.shape, relu: relu) { primitive, dst, error in
            input.data.withUnsafeBufferPointer { src in chisel_conv_run_half(primitive, src.baseAddress, dst, error, 256) }
        }
    }

    /// Convolves float input into bfloat16 (`.bf16` only); with `relu`, max(0, ·) of the result.
    public func halfOutput(_ input: Tensor, relu: Bool = false) throws -> HalfTensor {
        if let result = try productWinogradHalf(input.data, shape: input.shape, relu: relu) {
            return result
        }
        return try halfOutput(shape: input.shape, relu: relu) { primitive, dst, error in
            input.data.withUnsafeBufferPointer { src in chisel_conv_run_to_half(primitive, src.baseAddress, dst, error, 256) }
        }
    }

    /// The bfloat16 output of the bf16-product Winograd, or nil where the layer does not take it.
    private func productWinogradHalf<Element>(_ values: [Element], shape: [Int], relu: Bool) throws -> HalfTensor? {
        guard shape.count == 4, shape[3] == inChannels,
              let kernel = productWinograd(n: shape[0], h: shape[1], w: shape[2], pads: (padding, padding, padding, padding))
        else { return nil }
        var output = HalfTensor(uninitialized: [shape[0], shape[1], shape[2], outChannels])
        try values.withUnsafeBytes { src in
            try output.data.withUnsafeMutableBytes { dst in
                guard let source = src.baseAddress, let base = dst.baseAddress else { return }
                try runProductWinograd(kernel, n: shape[0], h: shape[1], w: shape[2], halfInput: Element.self == UInt16.self,
                                       src: source, halfOutput: true, dst: base, accumulate: false, relu: relu)
            }
        }
        return output
    }

    private func halfOutput(shape: [Int], relu: Bool,
                            execute: (OpaquePointer, UnsafeMutablePointer<UInt16>?, UnsafeMutablePointer<CChar>) -> Int32)
        throws -> HalfTensor
    {
        guard precision == .bf16, shape.count == 4, shape[3] == inChannels else {
            throw ChiselError(.internal, "bfloat16 output needs a .bf16 convolution and N×H×W×\(inChannels) input")
        }
        let (n, h, w) = (shape[0], shape[1], shape[2])
        let (oh, ow) = outputSize(height: h, width: w)
        var output = HalfTensor(uninitialized: [n, oh, ow, outChannels])
        let primitive = try kernelFor(Key(n: n, h: h, w: w, top: padding, left: padding, bottom: padding, right: padding,
                                          accumulate: false, halfOutput: true, relu: relu))
        try runKernel(label(h, w, primitive), what: "convolution", output: &output.data) { execute(primitive, $0, $1) }
        return output
    }

    /// `max(0, conv(input) + residual)` on bfloat16 input (`.bf16` only), the ReLU fused into
    /// the kernel.
    public func relu(_ input: HalfTensor, adding residual: Tensor?) throws -> Tensor {
        guard precision == .bf16 else { throw ChiselError(.internal, "a bfloat16 input needs a .bf16 convolution") }
        if let result = try productWinogradFloat(input.data, shape: input.shape, residual: residual, relu: true) {
            return result
        }
        return try run(shape: input.shape, pads: (padding, padding, padding, padding), residual: residual, relu: true) {
            primitive, dst, error in
            input.data.withUnsafeBufferPointer { src in chisel_conv_run_bf16(primitive, src.baseAddress, dst, error, 256) }
        }
    }

    /// Finds or builds the kernel for this input shape and runs `execute` with it, the output
    /// buffer and an error buffer.
    private func run(shape: [Int], pads: (Int, Int, Int, Int), residual: Tensor?, relu: Bool = false,
                     execute: (OpaquePointer, UnsafeMutablePointer<Float>?, UnsafeMutablePointer<CChar>) -> Int32)
        throws -> Tensor
    {
        guard shape.count == 4, shape[3] == inChannels else {
            throw ChiselError(.internal, "convolution expects N×H×W×\(inChannels), got \(shape)")
        }
        let (n, h, w) = (shape[0], shape[1], shape[2])
        let oh = (h + pads.0 + pads.2 - kernel) / stride + 1
        let ow = (w + pads.1 + pads.3 - kernel) / stride + 1
        let outShape = [n, oh, ow, outChannels]
        var output: Tensor
        if let residual {
            guard residual.shape == outShape else {
                throw ChiselError(.internal, "residual \(residual.shape) does not match convolution output \(outShape)")
            }
            output = residual
        } else {
            output = Tensor(uninitialized: outShape)
        }
        let primitive = try kernelFor(Key(n: n, h: h, w: w, top: pads.0, left: pads.1, bottom: pads.2, right: pads.3,
                                          accumulate: residual != nil, relu: relu))
        try runKernel(label(h, w, primitive), what: "convolution", output: &output.data) { execute(primitive, $0, $1) }
        return output
    }
}

extension Optional where Wrapped == [Float] {
    /// A pointer to the elements, or nil, for C calls that take an optional array.
    func withOptionalPointer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .some(let array): array.withUnsafeBufferPointer { body($0.baseAddress) }
        case .none: body(nil)
        }
    }
}

/// A pointer carried into the parallel loop's closures (each chunk writes its own rows).
private struct Unchecked<T>: @unchecked Sendable { let value: T }
