import ChiselTensor
import Testing

/// Winograd convolutions (kept or per-run weights, whole or in bands) against the direct sum.
@Suite struct WinogradTests {
    struct Case: CustomStringConvertible, Sendable {
        var n: Int, h: Int, w: Int, inChannels: Int, outChannels: Int
        var keep: Bool, bandPositions: Int, residual: Bool, bias: Bool
        var description: String {
            "n\(n) \(h)×\(w) \(inChannels)→\(outChannels) \(keep ? "kept" : "per-run") bands \(bandPositions)"
                + (residual ? " +residual" : "") + (bias ? "" : " no bias")
        }
    }

    static let cases: [Case] = [
        // A batch is never banded.
        Case(n: 2, h: 10, w: 9, inChannels: 8, outChannels: 12, keep: true, bandPositions: 16, residual: false, bias: true),
        // One image in bands of 4 rows: first, middle ones and a shorter last band.
        Case(n: 1, h: 23, w: 11, inChannels: 16, outChannels: 16, keep: false, bandPositions: 44, residual: true, bias: true),
        // Two bands of 5 rows (no middle band), kept weights, no bias.
        Case(n: 1, h: 10, w: 8, inChannels: 5, outChannels: 7, keep: true, bandPositions: 40, residual: true, bias: false),
        // Too small to band.
        Case(n: 1, h: 6, w: 13, inChannels: 32, outChannels: 3, keep: false, bandPositions: 1 << 20, residual: false, bias: true),
    ]

    @Test(arguments: cases)
    func winogradMatchesTheDirectSum(c: Case) throws {
        let x = try Tensor(shape: [c.n, c.h, c.w, c.inChannels], data: randomValues(c.n * c.h * c.w * c.inChannels, seed: 11))
        let weights = randomValues(c.outChannels * c.inChannels * 9, seed: 12)
        let bias = c.bias ? randomValues(c.outChannels, seed: 13) : nil
        let conv = try Conv2D(inChannels: c.inChannels, outChannels: c.outChannels, kernel: 3, padding: 1,
                              weights: weights, bias: bias, precision: .f32)
        conv.winograd = WinogradPolicy(minimumPositions: 1, keptWeightBytes: c.keep ? 1 << 30 : 0,
                                       bandPositions: c.bandPositions)
        #expect(try conv.usesWinograd(batch: c.n, height: c.h, width: c.w, residual: c.residual) == Conv2D.winogradSupported)
        var expected = KernelTests.naiveConv(x, weights: weights, bias: bias, outChannels: c.outChannels, kernel: 3,
                                             stride: 1, pads: (1, 1, 1, 1))
        var y: Tensor
        if c.residual {
            let residual = try Tensor(shape: [c.n, c.h, c.w, c.outChannels], data: randomValues(expected.count, seed: 14))
            expected = zip(expected, residual.data).map(+)
            y = try conv(x, adding: residual)
        } else {
            y = try conv(x)
        }
        // F(4×4, 3×3) rounds differently from a direct sum; its error stays a few float ulps of
        // the output's size.
        let scale = expected.map(abs).max() ?? 1
        #expect(y.shape == [c.n, c.h, c.w, c.outChannels])
        #expect(maxDifference(y.data, expected) <= 2e-6 * scale, "max |Δ| \(maxDifference(y.data, expected)), max |y| \(scale)")
        // Per-run weights are made again each call; the result does not change.
        let again = c.residual ? y : try conv(x)
        #expect(again.data == y.data)
    }

    @Test func offOrTooSmallStaysDirect() throws {
        let weights = randomValues(4 * 4 * 9, seed: 1)
        let conv = try Conv2D(inChannels: 4, outChannels: 4, kernel: 3, padding: 1, weights: weights, bias: nil,
                              precision: .f32)
        conv.winograd = WinogradPolicy(enabled: false, minimumPositions: 1)
        #expect(try conv.usesWinograd(batch: 1, height: 16, width: 16) == false)
        let small = try Conv2D(inChannels: 4, outChannels: 4, kernel: 3, padding: 1, weights: weights, bias: nil,
                               precision: .f32)
        small.winograd = WinogradPolicy(minimumPositions: 257)
        #expect(try small.usesWinograd(batch: 1, height: 16, width: 16) == false)
        #expect(try small.usesWinograd(batch: 2, height: 16, width: 16) == Conv2D.winogradSupported)
        let bf16 = try Conv2D(inChannels: 4, outChannels: 4, kernel: 3, padding: 1, weights: weights, bias: nil,
                              precision: .bf16)
        bf16.winograd = WinogradPolicy(minimumPositions: 1)
        #expect(try bf16.usesWinograd(batch: 2, height: 16, width: 16) == false)
    }

    /// Where allowed, a bf16 layer's Winograd kernel multiplies its bfloat16-rounded weights in FP32: it matches
    /// the direct sum over those weights to float accuracy, inputs unrounded, also when it is fed
    /// a normalisation's bfloat16 output.
    @Test func bf16LayersRunFP32WinogradOnTheirRoundedWeights() throws {
        let (n, h, w, ci, co) = (2, 12, 10, 16, 8)
        let x = try Tensor(shape: [n, h, w, ci], data: randomValues(n * h * w * ci, seed: 21))
        let weights = randomValues(co * ci * 9, seed: 22), bias = randomValues(co, seed: 23)
        let conv = try Conv2D(inChannels: ci, outChannels: co, kernel: 3, padding: 1, weights: weights, bias: bias,
                              precision: .bf16)
        conv.winograd = WinogradPolicy(minimumPositions: 1, keptWeightBytesBF16: 1 << 30)
        #expect(try conv.usesWinograd(batch: n, height: h, width: w) == Conv2D.winogradSupported)
        let rounded = weights.map { BFloat16.float(BFloat16.bits($0)) }
        let expected = KernelTests.naiveConv(x, weights: rounded, bias: bias, outChannels: co, kernel: 3, stride: 1,
                                             pads: (1, 1, 1, 1))
        let scale = expected.map(abs).max() ?? 1
        let y = try conv(x)
        if Conv2D.winogradSupported {
            #expect(maxDifference(y.data, expected) <= 2e-6 * scale)
        }
        // From a bfloat16 normalisation output, the kernel widens the input and gives the same.
        let norm = try GroupNorm(groups: 4, channels: ci, epsilon: 1e-5, gamma: .init(repeating: 1, count: ci),
                                 beta: .init(repeating: 0, count: ci))
        let viaHalf = try conv(norm.bf16(x, silu: false))
        let viaFloat = try conv(Tensor(shape: x.shape, data: norm.bf16(x, silu: false).floats()))
        #expect(viaHalf.data == viaFloat.data)
    }

    @Test func policyKeepsOnlySmallTransformedWeights() {
        let policy = WinogradPolicy()
        #expect(policy.mode(inChannels: 320, outChannels: 320, positions: 2 * 64 * 64) == .kept)
        #expect(policy.mode(inChannels: 640, outChannels: 320, positions: 2 * 64 * 64) == .transient)
        #expect(policy.mode(inChannels: 640, outChannels: 640, positions: 2 * 32 * 32) == .direct)
        #expect(WinogradPolicy(enabled: false).mode(inChannels: 8, outChannels: 8, positions: 1 << 20) == .direct)
    }
}
