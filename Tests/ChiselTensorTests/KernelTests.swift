@_exported import ChiselTestSupport
import ChiselCore
import ChiselTensor
import Foundation
import Testing


func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
}

@Suite struct KernelTests {
    /// Direct convolution in Double over N×H×W×C input and OIHW weights.
    static func naiveConv(_ x: Tensor, weights: [Float], bias: [Float]?, outChannels: Int, kernel: Int, stride: Int,
                          pads: (Int, Int, Int, Int)) -> [Float] {
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = (h + pads.0 + pads.2 - kernel) / stride + 1, ow = (w + pads.1 + pads.3 - kernel) / stride + 1
        var out = [Float](repeating: 0, count: n * oh * ow * outChannels)
        for b in 0..<n { for y in 0..<oh { for xx in 0..<ow { for o in 0..<outChannels {
            var sum = Double(bias?[o] ?? 0)
            for i in 0..<c { for ky in 0..<kernel { for kx in 0..<kernel {
                let sy = y * stride + ky - pads.0, sx = xx * stride + kx - pads.1
                guard sy >= 0, sy < h, sx >= 0, sx < w else { continue }
                sum += Double(x.data[((b * h + sy) * w + sx) * c + i]) * Double(weights[((o * c + i) * kernel + ky) * kernel + kx])
            } } }
            out[((b * oh + y) * ow + xx) * outChannels + o] = Float(sum)
        } } } }
        return out
    }

    @Test(arguments: [(3, 1, 1), (1, 1, 0), (3, 2, 1)])
    func convolutionMatchesDirectSum(kernel: Int, stride: Int, padding: Int) throws {
        let (n, h, w, ci, co) = (2, 9, 7, 5, 6)
        let x = try Tensor(shape: [n, h, w, ci], data: randomValues(n * h * w * ci, seed: 1))
        let weights = randomValues(co * ci * kernel * kernel, seed: 2), bias = randomValues(co, seed: 3)
        let conv = try Conv2D(inChannels: ci, outChannels: co, kernel: kernel, stride: stride, padding: padding,
                              weights: weights, bias: bias, precision: .f32)
        let y = try conv(x)
        let expected = Self.naiveConv(x, weights: weights, bias: bias, outChannels: co, kernel: kernel, stride: stride,
                                      pads: (padding, padding, padding, padding))
        #expect(y.shape == [n, (h + 2 * padding - kernel) / stride + 1, (w + 2 * padding - kernel) / stride + 1, co])
        #expect(maxDifference(y.data, expected) < 1e-5)
        // Accumulating into a residual, and a second call reusing the cached primitive.
        let residual = try Tensor(shape: y.shape, data: randomValues(y.count, seed: 4))
        let summed = try conv(x, adding: residual)
        #expect(maxDifference(summed.data, zip(expected, residual.data).map(+)) < 1e-5)
        #expect(try conv(x).data == y.data)
    }

    @Test func asymmetricPaddingAndBF16() throws {
        let x = try Tensor(shape: [1, 8, 8, 4], data: randomValues(256, seed: 5))
        let weights = randomValues(3 * 4 * 9, seed: 6)
        let conv = try Conv2D(inChannels: 4, outChannels: 3, kernel: 3, stride: 2, weights: weights, bias: nil,
                              precision: .f32)
        let y = try conv(x, padding: (0, 0, 1, 1))
        #expect(y.shape == [1, 4, 4, 3])
        let expected = Self.naiveConv(x, weights: weights, bias: nil, outChannels: 3, kernel: 3, stride: 2, pads: (0, 0, 1, 1))
        #expect(maxDifference(y.data, expected) < 1e-5)
        let half = try Conv2D(inChannels: 4, outChannels: 3, kernel: 3, stride: 2, weights: weights, bias: nil,
                              precision: .bf16)
        let yh = try half(x, padding: (0, 0, 1, 1))
        let error = maxDifference(yh.data, expected)
        #expect(error < 0.05 && error > 0)
    }

    @Test(arguments: Precision.allCases)
    func linearMatchesNaiveProduct(precision: Precision) throws {
        let (rows, inF, outF) = (13, 24, 10)
        let x = try Tensor(shape: [1, rows, inF], data: randomValues(rows * inF, seed: 7))
        let weights = randomValues(outF * inF, seed: 8), bias = randomValues(outF, seed: 9)
        let layer = try Linear(inFeatures: inF, outFeatures: outF, weights: weights, bias: bias, precision: precision)
        let y = try layer(x)
        var expected = [Float](repeating: 0, count: rows * outF)
        for r in 0..<rows { for o in 0..<outF {
            var sum = Double(bias[o])
            for i in 0..<inF { sum += Double(x.data[r * inF + i]) * Double(weights[o * inF + i]) }
            expected[r * outF + o] = Float(sum)
        } }
        #expect(y.shape == [1, rows, outF])
        #expect(maxDifference(y.data, expected) < (precision == .f32 ? 1e-5 : 0.05))
    }

    @Test func groupNormMatchesDefinition() throws {
        let (n, h, w, c, groups) = (2, 3, 4, 8, 4)
        let x = try Tensor(shape: [n, h, w, c], data: randomValues(n * h * w * c, seed: 10, scale: 3))
        let gamma = randomValues(c, seed: 11), beta = randomValues(c, seed: 12)
        let norm = try GroupNorm(groups: groups, channels: c, epsilon: 1e-5, gamma: gamma, beta: beta)
        let y = try norm(x), ys = try norm(x, silu: true)
        for b in 0..<n { for g in 0..<groups {
            var values: [Double] = []
            for p in 0..<(h * w) { for ch in (g * 2)..<(g * 2 + 2) { values.append(Double(x.data[(b * h * w + p) * c + ch])) } }
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
            for p in 0..<(h * w) { for ch in (g * 2)..<(g * 2 + 2) {
                let i = (b * h * w + p) * c + ch
                let expected = (Double(x.data[i]) - mean) / (variance + 1e-5).squareRoot() * Double(gamma[ch]) + Double(beta[ch])
                #expect(abs(Double(y.data[i]) - expected) < 1e-5)
                #expect(abs(Double(ys.data[i]) - expected / (1 + exp(-expected))) < 1e-5)
            } }
        } }
    }

    /// A `.bf16` convolution fed bfloat16 straight from the norm gives what it gives on the FP32
    /// norm output it would convert itself.
    @Test func normIntoBF16ConvolutionMatchesConvertingItself() throws {
        let (n, h, w, c) = (2, 6, 5, 32)
        let x = try Tensor(shape: [n, h, w, c], data: randomValues(n * h * w * c, seed: 40, scale: 2))
        let norm = try GroupNorm(groups: 8, channels: c, epsilon: 1e-5, gamma: randomValues(c, seed: 41),
                                 beta: randomValues(c, seed: 42))
        let conv = try Conv2D(inChannels: c, outChannels: 16, kernel: 3, padding: 1,
                              weights: randomValues(16 * c * 9, seed: 43), bias: randomValues(16, seed: 44), precision: .bf16)
        let direct = try conv.afterNorm(norm, x, silu: true)
        let converted = try conv(norm(x, silu: true))
        #expect(maxDifference(direct.data, converted.data) < 1e-5)
        let half = try norm.bf16(x, silu: true).floats()
        #expect(maxDifference(half, try norm(x, silu: true).data) < 0.02)
        // The vector bfloat16 stores round to nearest even exactly as BFloat16.bits does.
        #expect(try norm.bf16(x, silu: false).data == norm(x, silu: false).data.map(BFloat16.bits))
    }

    /// The all-bfloat16 middle of a `.bf16` ResNet block (conv → norm in bfloat16) stays within
    /// bfloat16 rounding of the FP32 computation.
    @Test func bfloat16ConvolutionOutputAndNormInput() throws {
        let (n, h, w, c) = (1, 7, 6, 32)
        let x = try Tensor(shape: [n, h, w, c], data: randomValues(n * h * w * c, seed: 60, scale: 2))
        let weights = randomValues(c * c * 9, seed: 61, scale: 0.2), bias = randomValues(c, seed: 62)
        let half = try Conv2D(inChannels: c, outChannels: c, kernel: 3, padding: 1, weights: weights, bias: bias, precision: .bf16)
        let full = try Conv2D(inChannels: c, outChannels: c, kernel: 3, padding: 1, weights: weights, bias: bias, precision: .f32)
        let norm = try GroupNorm(groups: 8, channels: c, epsilon: 1e-5, gamma: randomValues(c, seed: 63), beta: randomValues(c, seed: 64))
        let out = try half.halfOutput(norm.bf16(x, silu: true))
        #expect(out.shape == [n, h, w, c])
        let reference = try full(norm(x, silu: true))
        let scale = reference.data.map(abs).max() ?? 1
        let error = maxDifference(out.floats(), reference.data) / scale
        #expect(error < 0.03 && error > 0, "relative error \(error)")
        let normalized = try norm.bf16(out, silu: false).floats()
        let expected = try norm(Tensor(shape: out.shape, data: out.floats()), silu: false).data
        #expect(maxDifference(normalized, expected) < 0.05)
        #expect(throws: ChiselError.self) { try full.halfOutput(norm.bf16(x)) }
    }

    /// A `.bf16` linear layer fed bfloat16 from the layer norm or from GEGLU gives what it gives on
    /// the FP32 values it would convert itself.
    @Test func bfloat16InputsToLinearLayersMatchConvertingThemselves() throws {
        let (rows, n, out) = (19, 37, 24)
        let x = try Tensor(shape: [1, rows, n], data: randomValues(rows * n, seed: 50, scale: 3))
        let norm = try LayerNorm(features: n, epsilon: 1e-5, gamma: randomValues(n, seed: 51), beta: randomValues(n, seed: 52))
        let layer = try Linear(inFeatures: n, outFeatures: out, weights: randomValues(out * n, seed: 53),
                               bias: randomValues(out, seed: 54), precision: .bf16)
        #expect(maxDifference(try layer.afterNorm(norm, x).data, try layer(norm(x)).data) < 1e-5)
        #expect(maxDifference(try norm.bf16(x).floats(), try norm(x).data) < 0.02)
        let wide = try Tensor(shape: [1, rows, 2 * n], data: randomValues(rows * 2 * n, seed: 55, scale: 3))
        let half = try Ops.gatedGELUHalf(wide)
        #expect(half.shape == [1, rows, n])
        #expect(maxDifference(half.floats(), try Ops.gatedGELU(wide).data) < 0.05)
        let second = try Linear(inFeatures: n, outFeatures: out, weights: randomValues(out * n, seed: 56), bias: nil,
                                precision: .bf16)
        #expect(maxDifference(try second(half).data, try second(Ops.gatedGELU(wide)).data) < 1e-4)
    }

    /// 16 features (whole vectors) and 37 (a masked tail).
    @Test(arguments: [16, 37])
    func layerNormMatchesDefinition(features n: Int) throws {
        let x = try Tensor(shape: [2, 3, n], data: randomValues(6 * n, seed: 13, scale: 2))
        let gamma = randomValues(n, seed: 14), beta = randomValues(n, seed: 15)
        let y = try LayerNorm(features: n, epsilon: 1e-5, gamma: gamma, beta: beta)(x)
        for row in 0..<6 {
            let values = (0..<n).map { Double(x.data[row * n + $0]) }
            let mean = values.reduce(0, +) / Double(n)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
            for i in 0..<n {
                let expected = (values[i] - mean) / (variance + 1e-5).squareRoot() * Double(gamma[i]) + Double(beta[i])
                #expect(abs(Double(y.data[row * n + i]) - expected) < 1e-5)
            }
        }
    }

    static func naiveAttention(q: Tensor, k: Tensor, v: Tensor, heads: Int, causal: Bool) -> [Float] {
        let (batch, lq, c) = (q.shape[0], q.shape[1], q.shape[2]), lk = k.shape[1], d = c / heads
        var out = [Float](repeating: 0, count: q.count)
        for b in 0..<batch { for h in 0..<heads { for i in 0..<lq {
            var scores = [Double](repeating: -.infinity, count: lk)
            for j in 0..<lk where !causal || j <= i {
                var s = 0.0
                for t in 0..<d { s += Double(q.data[(b * lq + i) * c + h * d + t]) * Double(k.data[(b * lk + j) * c + h * d + t]) }
                scores[j] = s / Double(d).squareRoot()
            }
            let peak = scores.max() ?? 0
            let e = scores.map { exp($0 - peak) }
            let total = e.reduce(0, +)
            for t in 0..<d {
                var sum = 0.0
                for j in 0..<lk { sum += e[j] / total * Double(v.data[(b * lk + j) * c + h * d + t]) }
                out[(b * lq + i) * c + h * d + t] = Float(sum)
            }
        } } }
        return out
    }

    /// Heads of 80 (more than one pass of 64 columns), 40 (SD 1.5's), 20 and 16 features.
    @Test(arguments: [false, true], [1, 2, 4, 5])
    func attentionMatchesDefinitionAcrossBlocks(causal: Bool, heads: Int) throws {
        // 300 queries and keys span several blocks of the fused kernel (64 queries, 256 keys) and
        // of the unfused one (256 queries); 77 keys test cross-attention; head size 20 is not a
        // multiple of the vector width. One image of 5 heads is split into query ranges so
        // that the items divide among the cores (2 parts a head on two cores).
        let (batch, lq, c) = (heads == 5 ? 1 : 2, 300, 80)
        let lk = causal ? lq : 277
        let q = try Tensor(shape: [batch, lq, c], data: randomValues(batch * lq * c, seed: 16))
        let k = try Tensor(shape: [batch, lk, c], data: randomValues(batch * lk * c, seed: 17))
        let v = try Tensor(shape: [batch, lk, c], data: randomValues(batch * lk * c, seed: 18))
        let expected = Self.naiveAttention(q: q, k: k, v: v, heads: heads, causal: causal)
        let fused = try Attention.compute(q: q, k: k, v: v, heads: heads, causal: causal)
        #expect(maxDifference(fused.data, expected) < 1e-5)
        let unfused = try Attention.computeUnfused(q: q, k: k, v: v, heads: heads, causal: causal)
        #expect(maxDifference(unfused.data, expected) < 1e-5)
        // bfloat16 products: inputs rounded to 8 significant bits; outputs here are at most ~1.
        let half = try Attention.compute(q: q, k: k, v: v, heads: heads, causal: causal, precision: .bf16)
        let halfError = maxDifference(half.data, expected)
        #expect(halfError < 0.03, "bf16 error \(halfError)")
        if Attention.bf16Supported { #expect(halfError > 1e-6) }
    }

    @Test func packedProjectionsMatchSeparateOnes() throws {
        let (batch, l, c, m) = (2, 70, 24, 9)
        let q = try Tensor(shape: [batch, l, c], data: randomValues(batch * l * c, seed: 30))
        let k = try Tensor(shape: [batch, l, c], data: randomValues(batch * l * c, seed: 31))
        let v = try Tensor(shape: [batch, l, c], data: randomValues(batch * l * c, seed: 32))
        var packed = Tensor(zeros: [batch, l, 3 * c])
        for row in 0..<(batch * l) {
            for i in 0..<c {
                packed.data[row * 3 * c + i] = q.data[row * c + i]
                packed.data[row * 3 * c + c + i] = k.data[row * c + i]
                packed.data[row * 3 * c + 2 * c + i] = v.data[row * c + i]
            }
        }
        for causal in [false, true] {
            let expected = Self.naiveAttention(q: q, k: k, v: v, heads: 3, causal: causal)
            #expect(maxDifference(try Attention.compute(packedQKV: packed, heads: 3, causal: causal).data, expected) < 1e-5)
        }
        let kc = try Tensor(shape: [batch, m, c], data: randomValues(batch * m * c, seed: 33))
        let vc = try Tensor(shape: [batch, m, c], data: randomValues(batch * m * c, seed: 34))
        var kv = Tensor(zeros: [batch, m, 2 * c])
        for row in 0..<(batch * m) {
            for i in 0..<c {
                kv.data[row * 2 * c + i] = kc.data[row * c + i]
                kv.data[row * 2 * c + c + i] = vc.data[row * c + i]
            }
        }
        let expected = Self.naiveAttention(q: q, k: kc, v: vc, heads: 3, causal: false)
        #expect(maxDifference(try Attention.compute(q: q, packedKV: kv, heads: 3).data, expected) < 1e-5)
    }

    @Test func upsampleConcatAndLayoutConversions() throws {
        let x = try Tensor(shape: [1, 2, 3, 2], data: (0..<12).map(Float.init))
        let up = try Ops.upsampleNearest(x, height: 4, width: 6)
        #expect(up.shape == [1, 4, 6, 2])
        #expect(Array(up.data[0..<8]) == [0, 1, 0, 1, 2, 3, 2, 3])
        #expect(Array(up.data[12..<14]) == [0, 1])  // row 1 repeats row 0
        let cat = try Ops.concatChannels(x, Ops.scale(x, by: -1))
        #expect(cat.shape == [1, 2, 3, 4])
        #expect(Array(cat.data[0..<8]) == [0, 1, -0, -1, 2, 3, -2, -3])
        let nchw = (0..<24).map(Float.init)
        let t = try Tensor.fromNCHW(nchw, n: 1, c: 2, h: 3, w: 4)
        #expect(Array(t.data[0..<4]) == [0, 12, 1, 13])
        #expect(try t.toNCHW() == nchw)
    }

    @Test func gatedGELUMatchesItsFormula() throws {
        // 2 rows of 2×37 values: the width is not a multiple of the vector width.
        let x = try Tensor(shape: [2, 74], data: randomValues(148, seed: 21, scale: 4))
        let y = try Ops.gatedGELU(x)
        #expect(y.shape == [2, 37])
        for row in 0..<2 { for i in 0..<37 {
            let a = Double(x.data[row * 74 + i]), b = Double(x.data[row * 74 + 37 + i])
            #expect(abs(Double(y.data[row * 37 + i]) - a * 0.5 * b * (1 + erf(b / 2.0.squareRoot()))) < 2e-6)
        } }
    }

    @Test func activationsMatchTheirFormulas() throws {
        let x = try Tensor(shape: [21], data: [-3, -0.5, 0, 0.7, 4, -90, 90, 1e-3] + randomValues(13, seed: 22, scale: 6))
        for (activation, formula) in [
            (Activation.silu, { (v: Double) in v / (1 + exp(-v)) }),
            (.gelu, { (v: Double) in 0.5 * v * (1 + erf(v / 2.0.squareRoot())) }),
            (.quickGelu, { (v: Double) in v / (1 + exp(-1.702 * v)) }),
        ] {
            let y = activation(x)
            for (a, b) in zip(y.data, x.data) { #expect(abs(Double(a) - formula(Double(b))) < 1e-6) }
        }
    }
}

/// The element-wise activations against their definitions, on whatever vector path this CPU
/// takes (AVX-512, AVX2 or scalar), lengths that leave a tail and values from deep negative to
/// large: SiLU, erf GELU, CLIP's quick GELU, and GEGLU (the first half times GELU of the second).
struct ActivationKernelTests {
    static func values(_ n: Int) -> [Float] { (0..<n).map { Float($0 % 97) * 0.37 - 18 + Float($0 % 7) * 0.011 } }

    @Test(arguments: [Activation.silu, .gelu, .quickGelu])
    func activationsMatchTheirDefinitions(kind: Activation) throws {
        let x = Self.values(1003)
        let out = kind(try Tensor(shape: [x.count], data: x)).data
        for (v, y) in zip(x, out) {
            let d = Double(v)
            let expected: Double = switch kind {
            case .silu: d / (1 + exp(-d))
            case .gelu: 0.5 * d * (1 + erf(d / 2.0.squareRoot()))
            case .quickGelu: d / (1 + exp(-1.702 * d))
            }
            #expect(abs(Double(y) - expected) <= 2e-6 * max(1, abs(expected)), "\(kind) of \(v): \(y) vs \(expected)")
        }
    }

    @Test func gatedGELUMatchesItsDefinition() throws {
        let (rows, width) = (3, 45)
        let x = Self.values(rows * 2 * width)
        let out = try Ops.gatedGELU(try Tensor(shape: [rows, 2 * width], data: x)).data
        for r in 0..<rows {
            for c in 0..<width {
                let a = Double(x[r * 2 * width + c]), b = Double(x[r * 2 * width + width + c])
                let expected = a * 0.5 * b * (1 + erf(b / 2.0.squareRoot()))
                #expect(abs(Double(out[r * width + c]) - expected) <= 2e-6 * max(1, abs(expected)), "row \(r) column \(c)")
            }
        }
    }
}
