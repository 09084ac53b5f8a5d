import ChiselTestSupport
import ChiselCore
import ChiselStages
import Foundation
import Testing

/// Brute-force grey-scale morphology by a disk, pixels outside the mask ignored.
func referenceMorphology(_ mask: Mask, radius: Int, dilate: Bool) -> [Float] {
    var out = [Float](repeating: 0, count: mask.values.count)
    for y in 0..<mask.height {
        for x in 0..<mask.width {
            var best = mask.value(x, y)
            for dy in -radius...radius {
                for dx in -radius...radius where dx * dx + dy * dy <= radius * radius {
                    let sx = x + dx, sy = y + dy
                    guard sx >= 0, sx < mask.width, sy >= 0, sy < mask.height else { continue }
                    best = dilate ? max(best, mask.value(sx, sy)) : min(best, mask.value(sx, sy))
                }
            }
            out[y * mask.width + x] = best
        }
    }
    return out
}


@Suite struct GrowMaskStageTests {
    func grow(_ mask: Mask, by pixels: Int) async throws -> Mask {
        let out = try outputMask(await runStage(GrowMaskStage.self, params: [GrowMaskStage.pixels(pixels)],
                                                inputs: [GrowMaskStage.mask(mask)]))
        #expect(out.width == mask.width && out.height == mask.height)
        #expect(out.origin == mask.origin)
        return out
    }

    @Test(arguments: [1, 2, 3, 4, 5, 7, 10])
    func singlePixelGrowsIntoADisk(radius: Int) async throws {
        let size = 2 * radius + 5, c = radius + 2
        let mask = try makeMask(size, size) { x, y in x == c && y == c ? 1 : 0 }
        let grown = try await grow(mask, by: radius)
        for y in 0..<size {
            for x in 0..<size {
                let (dx, dy) = (x - c, y - c)
                #expect(grown.value(x, y) == (dx * dx + dy * dy <= radius * radius ? 1 : 0), "(\(dx), \(dy))")
            }
        }
    }

    @Test func diskIsClippedAtTheImageBorder() async throws {
        let mask = try makeMask(6, 5) { x, y in x == 0 && y == 0 ? 1 : 0 }
        let grown = try await grow(mask, by: 3)
        for y in 0..<5 {
            for x in 0..<6 { #expect(grown.value(x, y) == (x * x + y * y <= 9 ? 1 : 0), "(\(x), \(y))") }
        }
    }

    @Test(arguments: [1, 2, 3])
    func negativeShrinksASquareByTheRadius(radius: Int) async throws {
        let mask = try makeMask(20, 20) { x, y in (5...14).contains(x) && (5...14).contains(y) ? 1 : 0 }
        let shrunk = try await grow(mask, by: -radius)
        let lo = 5 + radius, hi = 14 - radius
        let expected = try makeMask(20, 20) { x, y in (lo...hi).contains(x) && (lo...hi).contains(y) ? 1 : 0 }
        #expect(shrunk.values == expected.values)
    }

    @Test func shrinkingByMoreThanHalfEmptiesTheSquare() async throws {
        let mask = try makeMask(20, 20) { x, y in (5...14).contains(x) && (5...14).contains(y) ? 1 : 0 }
        #expect(try await grow(mask, by: -5).values.allSatisfy { $0 == 0 })
        #expect(try await grow(mask, by: -4).values.filter { $0 == 1 }.count == 4)
    }

    @Test func zeroIsIdentity() async throws {
        let mask = try makeMask(9, 7) { x, y in Float((x * 7 + y * 3) % 11) / 10 }
        #expect(bits(try await grow(mask, by: 0).values) == bits(mask.values))
    }

    @Test func softValuesDilateAsMaximum() async throws {
        let mask = try makeMask(9, 9) { x, y in
            switch (x, y) {
            case (3, 4): 0.3
            case (5, 4): 0.7
            default: 0
            }
        }
        let grown = try await grow(mask, by: 1)
        #expect(grown.value(4, 4) == 0.7)
        #expect(grown.value(2, 4) == 0.3)
        #expect(grown.value(3, 3) == 0.3)
        #expect(grown.value(5, 5) == 0.7)
        #expect(grown.value(4, 3) == 0)
        #expect(grown.values == referenceMorphology(mask, radius: 1, dilate: true))
    }

    @Test(arguments: [-6, -3, -2, -1, 1, 2, 3, 4, 6])
    func matchesBruteForceMorphologyOnRandomMasks(pixels: Int) async throws {
        var random = SplitMix64(seed: UInt64(100 + pixels))
        for (width, height) in [(17, 13), (1, 9), (12, 1), (30, 30)] {
            let mask = try makeMask(width, height) { _, _ in
                let r = Float.random(in: 0..<1, using: &random)
                return r < 0.6 ? 0 : r < 0.9 ? 1 : (r - 0.9) * 10
            }
            let out = try await grow(mask, by: pixels)
            #expect(out.values == referenceMorphology(mask, radius: abs(pixels), dilate: pixels > 0),
                    "\(width)×\(height) by \(pixels)")
        }
    }

    /// Erosion is a minimum: every output value is one of the input's, bit for bit.
    ///
    /// Shrinking a soft mask leaves values unchanged where nothing shrinks (`1 − (1 − v)` is not
    /// `v` in Float, so erosion must not be computed that way).
    @Test(arguments: [0.3, 0.1, 0.7, 1e-3, 0.123456789] as [Float])
    func shrinkingKeepsSoftValuesExactly(value: Float) async throws {
        let plateau = try Mask(width: 7, height: 5, filledWith: value)
        let flat = try await grow(plateau, by: -2)
        let changed = Set(flat.values.filter { $0.bitPattern != value.bitPattern })
        #expect(changed.isEmpty, "a plateau of \(value) shrunk by 2 has \(changed.sorted())")
        let island = try makeMask(9, 9) { x, y in (2...6).contains(x) && (2...6).contains(y) ? value : 1 }
        let shrunk = try await grow(island, by: -1)
        let expected = referenceMorphology(island, radius: 1, dilate: false)
        let wrong = zip(shrunk.values, expected).filter { $0.bitPattern != $1.bitPattern }
        #expect(wrong.isEmpty, "\(wrong.count) values differ, e.g. \(wrong.first.map { "\($0.0) instead of \($0.1)" } ?? "")")
    }

    @Test func shrinkingIgnoresPixelsOutsideTheImage() async throws {
        let full = try Mask(width: 8, height: 6, filledWith: 1)
        #expect(try await grow(full, by: -3).values == full.values)
    }
}

@Suite struct FeatherMaskStageTests {
    /// The plain (outward) blur, which the blur tests below measure; `inside` is tested apart.
    func feather(_ mask: Mask, radius: Double, mode: FeatherMaskStage.Mode = .outward) async throws -> Mask {
        let out = try outputMask(await runStage(FeatherMaskStage.self,
                                                params: [FeatherMaskStage.radius(radius), FeatherMaskStage.mode(mode)],
                                                inputs: [FeatherMaskStage.mask(mask)]))
        #expect(out.width == mask.width && out.height == mask.height)
        return out
    }

    /// A 40×40 mask with a 6×6 block of ones in the middle (columns and rows 17...22).
    static func block() throws -> Mask {
        try makeMask(40, 40) { x, y in (17...22).contains(x) && (17...22).contains(y) ? 1 : 0 }
    }

    @Test func radiusZeroIsIdentity() async throws {
        let mask = try makeMask(9, 7) { x, y in Float((x * 7 + y * 3) % 11) / 10 }
        #expect(bits(try await feather(mask, radius: 0).values) == bits(mask.values))
    }

    @Test(arguments: [0.3, 0.5, 1, 2, 3.5])
    func blurPreservesMassAndSymmetry(radius: Double) async throws {
        let mask = try Self.block()
        let out = try await feather(mask, radius: radius)
        let sum = out.values.reduce(0.0) { $0 + Double($1) }
        #expect(abs(sum - 36) <= 1e-3, "sum \(sum)")
        #expect(out.values.allSatisfy { $0 >= 0 && $0 <= 1 })
        // The block is centred on 19.5: mirror images and the transpose agree.
        var worst: Float = 0
        for y in 0..<40 {
            for x in 0..<40 {
                let v = out.value(x, y)
                worst = max(worst, abs(v - out.value(39 - x, y)), abs(v - out.value(x, 39 - y)), abs(v - out.value(y, x)))
            }
        }
        #expect(worst <= 1e-6)
        // It did blur: the centre stays high, the edge softens on both sides.
        #expect(out.value(19, 19) > out.value(16, 19))
        if radius >= 1 { #expect(out.value(19, 19) < 1) }
        #expect(out.value(16, 19) > 0)
    }

    @Test(arguments: [0.5, 1, 2, 3.5, 5])
    func pixelsFartherThanTheKernelStayExactlyZero(radius: Double) async throws {
        let mask = try Self.block()
        let out = try await feather(mask, radius: radius)
        let reach = 3 * radius + 1
        var nonzeroFar = 0, zeros = 0
        for y in 0..<40 {
            for x in 0..<40 {
                // Per-axis (Chebyshev) distance to the block: the blur is separable, cut at 3σ per axis.
                let dx = max(0, 17 - x, x - 22), dy = max(0, 17 - y, y - 22)
                if Double(max(dx, dy)) > reach {
                    if out.value(x, y).bitPattern != 0 { nonzeroFar += 1 }
                    zeros += 1
                }
            }
        }
        #expect(zeros > 0)
        #expect(nonzeroFar == 0)
    }

    @Test func constantMasksStayConstant() async throws {
        for value: Float in [0, 1, 0.4] {
            let mask = try Mask(width: 11, height: 7, filledWith: value)
            let out = try await feather(mask, radius: 2.5)
            #expect(maxDifference(out.values, mask.values) <= 1e-6)
        }
    }

    /// The default, inside: the blur capped by the mask, so a paste through it keeps every pixel
    /// where the mask is 0, and the edge fades inward.
    @Test(arguments: [0.5, 2, 4])
    func insideFeatheringNeverExceedsTheMask(radius: Double) async throws {
        let mask = try Self.block()
        let out = try await feather(mask, radius: radius, mode: .inside)
        let plain = try await feather(mask, radius: radius)
        for i in mask.values.indices {
            #expect(out.values[i] <= mask.values[i])
            #expect(out.values[i] == min(mask.values[i], plain.values[i]))
        }
        #expect(out.values.enumerated().allSatisfy { mask.values[$0.offset] > 0 || $0.element.bitPattern == 0 })
        #expect(out.value(17, 19) < 1 && out.value(17, 19) > 0, "the mask's edge fades")
        let defaulted = try outputMask(await runStage(FeatherMaskStage.self, params: [FeatherMaskStage.radius(radius)],
                                                      inputs: [FeatherMaskStage.mask(mask)]))
        #expect(defaulted.values == out.values, "inside is the default")
    }

    @Test func largerRadiusSpreadsFarther() async throws {
        let mask = try Self.block()
        let small = try await feather(mask, radius: 1)
        let large = try await feather(mask, radius: 3)
        #expect(large.value(13, 19) > small.value(13, 19))
        #expect(large.value(19, 19) < small.value(19, 19))
    }
}

@Suite struct InvertMaskStageTests {
    @Test func invertsEveryValue() async throws {
        let values: [Float] = [0, 0.25, 0.5, 1, 0.125, 0.75]
        let mask = try Mask(width: 3, height: 2, values: values, origin: ImageOrigin(path: "/x/m.png"))
        let out = try outputMask(await runStage(InvertMaskStage.self, inputs: [InvertMaskStage.mask(mask)]))
        #expect(out.values == [1, 0.75, 0.5, 0, 0.875, 0.25])
        #expect(out.width == 3 && out.height == 2 && out.origin == mask.origin)
        let twice = try outputMask(await runStage(InvertMaskStage.self, inputs: [InvertMaskStage.mask(out)]))
        #expect(twice.values == values)
    }
}

@Suite struct CombineMasksStageTests {
    static let a: [Float] = [0, 0.25, 0.5, 1, 0.75, 1, 0, 0.5]
    static let b: [Float] = [1, 0.5, 0.25, 0.75, 0.75, 1, 0, 0.875]

    static let expected: [String: [Float]] = [
        "union": [1, 0.5, 0.5, 1, 0.75, 1, 0, 0.875],
        "intersect": [0, 0.25, 0.25, 0.75, 0.75, 1, 0, 0.5],
        "subtract": [0, 0, 0.25, 0.25, 0, 0, 0, 0],
        "add": [1, 0.75, 0.75, 1, 1, 1, 0, 1],
        "multiply": [0, 0.125, 0.125, 0.75, 0.5625, 1, 0, 0.4375],
        "difference": [1, 0.25, 0.25, 0.25, 0, 0, 0, 0.375],
    ]

    @Test(arguments: ["union", "intersect", "subtract", "add", "multiply", "difference"])
    func operation(name: String) async throws {
        let a = try Mask(width: 4, height: 2, values: Self.a, origin: ImageOrigin(path: "/a.png"))
        let b = try Mask(width: 4, height: 2, values: Self.b)
        let operation = try #require(CombineMasksStage.Operation(rawValue: name))
        let out = try outputMask(await runStage(CombineMasksStage.self, params: [CombineMasksStage.operation(operation)],
                                                inputs: [CombineMasksStage.a(a), CombineMasksStage.b(b)]))
        #expect(out.values == Self.expected[name])
        #expect(out.width == 4 && out.height == 2)
        #expect(out.origin == a.origin)
    }

    @Test func everyOperationIsTested() {
        guard case .choice(let choices)? = CombineMasksStage.schema.param("operation")?.type else {
            Issue.record("operation is not a choice")
            return
        }
        #expect(Set(choices) == Set(Self.expected.keys))
    }

    @Test func defaultIsUnion() async throws {
        let out = try outputMask(await runStage(CombineMasksStage.self, inputs: [
            CombineMasksStage.a(try Mask(width: 4, height: 2, values: Self.a)),
            CombineMasksStage.b(try Mask(width: 4, height: 2, values: Self.b)),
        ]))
        #expect(out.values == Self.expected["union"])
    }

    @Test func sizeMismatchIsAnError() async throws {
        for other in [try Mask(width: 2, height: 4, filledWith: 1), try Mask(width: 4, height: 3, filledWith: 1)] {
            await expectChiselError {
                try await runStage(CombineMasksStage.self, inputs: [
                    CombineMasksStage.a(try Mask(width: 4, height: 2, values: Self.a)), CombineMasksStage.b(other),
                ])
            }
        }
    }
}
