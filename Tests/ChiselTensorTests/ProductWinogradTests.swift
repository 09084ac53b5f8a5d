import ChiselTensor
import Testing

/// The bf16-product Winograd, F(2×2, 3×3) with bfloat16 products (winograd_bf16.c), against the
/// float direct sum and against the layer's direct bf16 kernel, in every form a bf16 layer runs:
/// float or bfloat16 input, float output (plus a residual, with or without ReLU) or bfloat16.
@Suite struct ProductWinogradTests {
    /// Odd sizes (a last tile half outside), two images, 32 → 64 channels (the smallest it takes).
    static let (n, h, w, ci, co) = (2, 9, 7, 32, 64)

    static func layer() throws -> (Conv2D, Tensor, [Float], [Float]) {
        let x = try Tensor(shape: [n, h, w, ci], data: randomValues(n * h * w * ci, seed: 41))
        let weights = randomValues(co * ci * 9, seed: 42), bias = randomValues(co, seed: 43)
        let conv = try Conv2D(inChannels: ci, outChannels: co, kernel: 3, padding: 1, weights: weights, bias: bias,
                              precision: .bf16)
        conv.winograd = WinogradPolicy(bf16ProductPositions: 1)
        return (conv, x, weights, bias)
    }

    static func half(_ x: Tensor) -> HalfTensor {
        var out = HalfTensor(uninitialized: x.shape)
        out.data = x.data.map(BFloat16.bits)
        return out
    }

    @Test func matchesTheFloatSumToBFloat16Accuracy() throws {
        let (conv, x, weights, bias) = try Self.layer()
        let expected = KernelTests.naiveConv(x, weights: weights, bias: bias, outChannels: Self.co, kernel: 3, stride: 1,
                                             pads: (1, 1, 1, 1))
        let scale = expected.map(abs).max() ?? 1
        let y = try conv(x)
        #expect(y.shape == [Self.n, Self.h, Self.w, Self.co])
        // Products of bfloat16-rounded transformed values: errors of a few bf16 ulps of the output.
        #expect(maxDifference(y.data, expected) <= 0.02 * scale, "max |Δ| \(maxDifference(y.data, expected)) of \(scale)")
        conv.winograd = WinogradPolicy(bf16ProductPositions: 1 << 30)
        let direct = try conv(x)
        #expect(maxDifference(direct.data, expected) <= 0.02 * scale)
        // The two algorithms round differently, so where the Winograd one runs the results differ.
        if Conv2D.productWinogradSupported { #expect(direct.data != y.data) } else { #expect(direct.data == y.data) }
    }

    @Test func everyFormGivesTheSameSums() throws {
        let (conv, x, _, _) = try Self.layer()
        let halfX = Self.half(x)
        let widened = try Tensor(shape: x.shape, data: halfX.floats())
        let plain = try conv(widened)
        // bfloat16 input: the same values, so the same result.
        #expect(try conv(halfX).data == plain.data)
        // A residual is added after the bias; ReLU comes after that sum.
        let residual = try Tensor(shape: plain.shape, data: randomValues(plain.count, seed: 44))
        let added = zip(plain.data, residual.data).map(+)
        // Where bf16 is emulated, oneDNN's float kernel adds the residual into its running sum:
        // the same values up to the order of that last addition.
        let tolerance: Float = Precision.bf16Emulated ? 1e-5 * (added.map(abs).max() ?? 1) : 0
        #expect(maxDifference(try conv(widened, adding: residual).data, added) <= tolerance)
        #expect(maxDifference(try conv(halfX, adding: residual).data, added) <= tolerance)
        #expect(maxDifference(try conv.relu(halfX, adding: residual).data, added.map { max(0, $0) }) <= tolerance)
        // After a normalisation the layer takes its bfloat16 output, as a direct bf16 layer does.
        let norm = try GroupNorm(groups: 8, channels: Self.ci, epsilon: 1e-5, gamma: .init(repeating: 1, count: Self.ci),
                                 beta: .init(repeating: 0, count: Self.ci))
        #expect(try conv.afterNorm(norm, x, silu: true).data == conv(norm.bf16(x, silu: true)).data)
        // bfloat16 output, rounded to nearest even, with and without ReLU, from either input.
        #expect(try conv.halfOutput(halfX).data == plain.data.map(BFloat16.bits))
        #expect(try conv.halfOutput(widened, relu: true).data == plain.data.map { BFloat16.bits(max(0, $0)) })
    }

    @Test func layersItDoesNotTakeStayDirect() throws {
        // 48 output channels (not a multiple of 64): the layer's kernel is oneDNN's either way.
        let x = try Tensor(shape: [1, 8, 8, 32], data: randomValues(8 * 8 * 32, seed: 45))
        let weights = randomValues(48 * 32 * 9, seed: 46)
        let odd = try Conv2D(inChannels: 32, outChannels: 48, kernel: 3, padding: 1, weights: weights, bias: nil,
                             precision: .bf16)
        odd.winograd = WinogradPolicy(bf16ProductPositions: 1)
        let first = try odd(x)
        odd.winograd = WinogradPolicy(enabled: false)
        #expect(try odd(x).data == first.data)
        // Below bf16ProductPositions a layer it takes is direct too.
        let (conv, y, _, _) = try Self.layer()
        conv.winograd = WinogradPolicy(bf16ProductPositions: Self.n * Self.h * Self.w + 1)
        let small = try conv(y)
        conv.winograd = WinogradPolicy(enabled: false)
        #expect(try conv(y).data == small.data)
    }
}
