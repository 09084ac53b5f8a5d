import ChiselTensor
import Testing

/// The folded nearest ×2 upsampling + 3×3 convolution against the two steps computed directly.
@Suite struct UpsampleConvTests {
    /// Nearest ×2 then a zero-padded 3×3 convolution, summed in Double.
    static func reference(_ x: [Float], n: Int, h: Int, w: Int, c: Int, out: Int, weights: [Float],
                          bias: [Float]) -> [Float] {
        var result = [Float](repeating: 0, count: n * 4 * h * w * out)
        for b in 0..<n { for y in 0..<(2 * h) { for xx in 0..<(2 * w) { for o in 0..<out {
            var sum = Double(bias[o])
            for ky in 0..<3 { for kx in 0..<3 {
                let uy = y + ky - 1, ux = xx + kx - 1
                guard uy >= 0, uy < 2 * h, ux >= 0, ux < 2 * w else { continue }
                let source = ((b * h + uy / 2) * w + ux / 2) * c
                for i in 0..<c { sum += Double(x[source + i]) * Double(weights[((o * c + i) * 3 + ky) * 3 + kx]) }
            } }
            result[((b * 2 * h + y) * 2 * w + xx) * out + o] = Float(sum)
        } } } }
        return result
    }

    @Test(arguments: [Precision.f32, .bf16])
    func matchesUpsamplingThenConvolving(precision: Precision) throws {
        // A batch of two, odd and unequal sides, channel counts that are not vector multiples.
        let (n, h, w, c, out) = (2, 5, 3, 6, 7)
        let x = randomValues(n * h * w * c, seed: 41)
        let weights = randomValues(out * c * 9, seed: 42, scale: 0.5)
        let bias = randomValues(out, seed: 43)
        let fused = try UpsampleConv2D(inChannels: c, outChannels: out, weights: weights, bias: bias,
                                       precision: precision)
        let y = try fused(Tensor(shape: [n, h, w, c], data: x))
        #expect(y.shape == [n, 2 * h, 2 * w, out])
        let expected = Self.reference(x, n: n, h: h, w: w, c: c, out: out, weights: weights, bias: bias)
        let scale = expected.map(abs).max() ?? 1
        // FP32: rounding only. bf16: input and folded taps rounded to bfloat16 (8 bits).
        let bound: Float = precision == .f32 ? 2e-6 : 3e-2
        #expect(maxDifference(y.data, expected) <= bound * scale)
    }

    @Test func refusesAnotherWidth() throws {
        let fused = try UpsampleConv2D(inChannels: 4, outChannels: 4, weights: randomValues(144, seed: 1), bias: nil,
                                       precision: .f32)
        #expect(throws: (any Error).self) { try fused(Tensor(zeros: [1, 2, 2, 3])) }
        #expect(throws: (any Error).self) {
            try UpsampleConv2D(inChannels: 4, outChannels: 4, weights: [1, 2], bias: nil, precision: .f32)
        }
    }
}
