import ChiselCore
import ChiselTensor
import Foundation
import Testing

/// The kernel-layer pieces aMUSEd's networks add, against direct Double formulas of diffusers'
/// definitions.
@Suite struct UVitKernelTests {
    static func rms(_ x: [Float], rows: Int, features: Int, epsilon: Double, weight: [Float]?) -> [Double] {
        var out = [Double](repeating: 0, count: x.count)
        for r in 0..<rows {
            let row = x[(r * features)..<((r + 1) * features)].map(Double.init)
            let inverse = 1 / (row.map { $0 * $0 }.reduce(0, +) / Double(features) + epsilon).squareRoot()
            for i in 0..<features { out[r * features + i] = row[i] * inverse * Double(weight?[i] ?? 1) }
        }
        return out
    }

    static func close(_ a: [Float], _ b: [Double], tolerance: Double) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs(Double($0) - $1) <= tolerance * max(1, abs($1)) }
    }

    @Test(arguments: [7, 16, 37, 768])
    func rmsNormMatchesItsDefinition(features: Int) throws {
        let rows = 5
        let x = try Tensor(shape: [1, rows, features], data: randomValues(rows * features, seed: 3, scale: 2))
        let weight = randomValues(features, seed: 4)
        for w in [weight, nil] {
            let norm = try RMSNorm(features: features, epsilon: 1e-6, weight: w)
            let expected = Self.rms(x.data, rows: rows, features: features, epsilon: 1e-6, weight: w)
            #expect(Self.close(try norm(x).data, expected, tolerance: 1e-5))
            #expect(Self.close(try norm.bf16(x).floats(), expected, tolerance: 1 / 128))
        }
    }

    /// AdaLayerNormContinuous: norm(x)·(1 + scale) + shift per sample, scale first.
    @Test func modulatedNormsScaleAndShiftEachSample() throws {
        let (batch, rows, d) = (2, 3, 20)
        let x = try Tensor(shape: [batch, rows, d], data: randomValues(batch * rows * d, seed: 5, scale: 3))
        let modulation = try Tensor(shape: [batch, 2 * d], data: randomValues(batch * 2 * d, seed: 6))
        let weight = randomValues(d, seed: 7), bias = randomValues(d, seed: 8)
        let layer = try LayerNorm(features: d, epsilon: 1e-6, gamma: weight, beta: bias)
        let rms = try RMSNorm(features: d, epsilon: 1e-6, weight: weight)
        for (plain, modulated) in [(try layer(x), try layer.modulated(by: modulation)), (try rms(x), try rms.modulated(by: modulation))] {
            var expected = [Double](repeating: 0, count: x.count)
            for b in 0..<batch {
                for r in 0..<rows {
                    for i in 0..<d {
                        let index = (b * rows + r) * d + i
                        expected[index] = Double(plain.data[index]) * (1 + Double(modulation.data[b * 2 * d + i]))
                            + Double(modulation.data[b * 2 * d + d + i])
                    }
                }
            }
            #expect(Self.close(try modulated(x).data, expected, tolerance: 1e-5))
            #expect(Self.close(try modulated.bf16(x).floats(), expected, tolerance: 1 / 64))
        }
        #expect(throws: ChiselError.self) { try rms.modulated(by: modulation)(Tensor(zeros: [3, rows, d])) }
        let shifted = try Ops.modulate(x, by: modulation)
        #expect(abs(shifted.data[d + 1] - (x.data[d + 1] * (1 + modulation.data[1]) + modulation.data[d + 1])) < 1e-5)
    }

    @Test func globalResponseNormMatchesItsDefinition() throws {
        let (n, h, w, c) = (2, 3, 5, 24)
        let x = try Tensor(shape: [n, h, w, c], data: randomValues(n * h * w * c, seed: 9, scale: 2))
        let gamma = randomValues(c, seed: 10), beta = randomValues(c, seed: 11)
        let grn = try GlobalResponseNorm(channels: c, gamma: gamma, beta: beta)
        var expected = [Double](repeating: 0, count: x.count)
        for b in 0..<n {
            var norms = [Double](repeating: 0, count: c)
            for p in 0..<(h * w) {
                for ch in 0..<c { norms[ch] += pow(Double(x.data[(b * h * w + p) * c + ch]), 2) }
            }
            norms = norms.map { $0.squareRoot() }
            let mean = norms.reduce(0, +) / Double(c)
            for p in 0..<(h * w) {
                for ch in 0..<c {
                    let i = (b * h * w + p) * c + ch, v = Double(x.data[i])
                    expected[i] = Double(gamma[ch]) * (v * norms[ch] / (mean + 1e-6)) + Double(beta[ch]) + v
                }
            }
        }
        #expect(Self.close(try grn(x).data, expected, tolerance: 1e-5))
        #expect(Self.close(try grn.bf16(x).floats(), expected, tolerance: 1 / 64))
    }

    @Test(arguments: [(1, 1), (4, 3), (6, 5)])
    func depthwiseConvolutionMatchesGroupedConvolution(height: Int, width: Int) throws {
        let (n, c) = (2, 21)
        let x = try Tensor(shape: [n, height, width, c], data: randomValues(n * height * width * c, seed: 12))
        let weights = randomValues(c * 9, seed: 13), bias = randomValues(c, seed: 14)
        // A grouped convolution with one channel per group is a full one with zero cross weights.
        var full = [Float](repeating: 0, count: c * c * 9)
        for ch in 0..<c { for t in 0..<9 { full[(ch * c + ch) * 9 + t] = weights[ch * 9 + t] } }
        let expected = KernelTests.naiveConv(x, weights: full, bias: bias, outChannels: c, kernel: 3, stride: 1,
                                             pads: (1, 1, 1, 1))
        let out = try DepthwiseConv2D(channels: c, weights: weights, bias: bias)(x)
        #expect(maxDifference(out.data, expected) < 1e-5)
    }

    @Test(arguments: Precision.allCases)
    func transposedConvolutionWritesTwoByTwoBlocks(precision: Precision) throws {
        let (n, h, w, ci, co) = (2, 3, 4, 5, 6)
        let x = try Tensor(shape: [n, h, w, ci], data: randomValues(n * h * w * ci, seed: 15))
        let weights = randomValues(ci * co * 4, seed: 16), bias = randomValues(co, seed: 17)
        let conv = try ConvTranspose2x2(inChannels: ci, outChannels: co, weights: weights, bias: bias, precision: precision)
        let out = try conv(x)
        #expect(out.shape == [n, 2 * h, 2 * w, co])
        var worst: Float = 0
        for b in 0..<n { for y in 0..<(2 * h) { for xx in 0..<(2 * w) { for o in 0..<co {
            var sum = Double(bias[o])
            for i in 0..<ci {
                sum += Double(x.data[((b * h + y / 2) * w + xx / 2) * ci + i])
                    * Double(weights[((i * co + o) * 2 + y % 2) * 2 + xx % 2])
            }
            worst = max(worst, abs(out.data[((b * 2 * h + y) * 2 * w + xx) * co + o] - Float(sum)))
        } } } }
        #expect(worst < (precision == .f32 ? 1e-5 : 3e-2))
    }

    /// Nearest codebook entries by torch.cdist + argmin: both of torch's forms, ties to the lowest
    /// index.
    @Test(arguments: [(4, 6), (40, 6), (4, 40), (300, 50)])
    func codebookSearchFindsTheNearestEntry(rows: Int, entries: Int) throws {
        let width = 8
        var table = randomValues(entries * width, seed: 18)
        // Entry 1 repeated at the end: a tie that must go to index 1.
        table.replaceSubrange(((entries - 1) * width)..<(entries * width), with: table[width..<(2 * width)])
        let codebook = try Codebook(entries: table, count: entries, width: width)
        var points = randomValues(rows * width, seed: 19)
        points.replaceSubrange(0..<width, with: table[width..<(2 * width)])
        let ids = try codebook.nearest(Tensor(shape: [rows, width], data: points))
        #expect(ids[0] == 1)
        for r in 0..<rows {
            let distances = (0..<entries).map { j in
                (0..<width).map { pow(Double(points[r * width + $0]) - Double(table[j * width + $0]), 2) }.reduce(0, +)
            }
            let best = distances.min() ?? 0
            #expect(distances[Int(ids[r])] - best < 1e-5)
        }
        let looked = try codebook.lookup([2, 0], shape: [1, 2, width])
        #expect(Array(looked.data[0..<width]) == Array(table[(2 * width)..<(3 * width)]))
        #expect(throws: ChiselError.self) { try codebook.lookup([Int32(entries)], shape: [1, width]) }
    }
}
