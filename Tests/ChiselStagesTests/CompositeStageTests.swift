import ChiselCore
import ChiselStages
import Foundation
import Testing

@Suite struct CompositeStageTests {
    func composite(base: Image, overlay: Image, mask: Mask? = nil, _ params: [ParamSetting] = [],
                   events: EventLog? = nil) async throws -> Image {
        var inputs = [CompositeStage.base(base), CompositeStage.overlay(overlay)]
        if let mask { inputs.append(CompositeStage.mask(mask)) }
        let out = try outputImage(await runStage(CompositeStage.self, params: params, inputs: inputs, events: events))
        #expect(out.width == base.width && out.height == base.height && out.layout == base.layout)
        #expect(out.bitDepth == base.bitDepth && out.origin == base.origin)
        return out
    }

    /// Base samples with irregular low bits, so an arithmetic round trip would show.
    static func base(_ width: Int = 8, _ height: Int = 8, _ layout: PixelLayout = .rgb) throws -> Image {
        var image = try patternImage(width, height, layout) { c, x, y in
            Float(sin(Double(c * 97 + x * 13 + y * 7)) * 0.45 + 0.5)
        }
        image.origin = ImageOrigin(path: "/photos/base.png")
        image.bitDepth = 16
        return image
    }

    static func overlay(_ width: Int = 8, _ height: Int = 8, _ layout: PixelLayout = .rgb) throws -> Image {
        try patternImage(width, height, layout) { c, x, y in Float(cos(Double(c * 31 + x * 5 + y * 11)) * 0.4 + 0.5) }
    }

    /// Every sample of `out` at pixels where `keep(x, y)` equals `base`'s bit for bit.
    func expectKept(_ out: Image, _ base: Image, where keep: (Int, Int) -> Bool,
                    sourceLocation: SourceLocation = #_sourceLocation) {
        var changed: [String] = []
        for c in 0..<base.channels {
            for y in 0..<base.height {
                for x in 0..<base.width where keep(x, y) && out.sample(c, x, y).bitPattern != base.sample(c, x, y).bitPattern {
                    changed.append("(\(c), \(x), \(y))")
                }
            }
        }
        #expect(changed.isEmpty, "changed: \(changed.prefix(8))", sourceLocation: sourceLocation)
    }

    @Test(arguments: PixelLayout.allCases)
    func maskZeroKeepsBaseBitsAndMaskOneTakesOverlay(layout: PixelLayout) async throws {
        let base = try Self.base(8, 8, layout), overlay = try Self.overlay(8, 8, layout)
        let mask = try makeMask(8, 8) { x, _ in x < 3 ? 1 : 0 }
        let out = try await composite(base: base, overlay: overlay, mask: mask)
        expectKept(out, base) { x, _ in x >= 3 }
        expectKept(out, overlay) { x, _ in x < 3 }
    }

    @Test func featheredMaskZerosKeepBaseBits() async throws {
        let base = try Self.base(40, 30, .rgba), overlay = try Self.overlay(40, 30, .rgba)
        let hard = try makeMask(40, 30) { x, y in (12...20).contains(x) && (8...14).contains(y) ? 1 : 0 }
        let feathered = try outputMask(await runStage(FeatherMaskStage.self, params: [FeatherMaskStage.radius(2.5)],
                                                      inputs: [FeatherMaskStage.mask(hard)]))
        let zeros = feathered.values.filter { $0 == 0 }.count
        let soft = feathered.values.filter { $0 > 0 && $0 < 1 }.count
        #expect(zeros > 500 && soft > 50)
        let out = try await composite(base: base, overlay: overlay, mask: feathered)
        expectKept(out, base) { x, y in feathered.value(x, y) == 0 }
        // And where it is soft, the blend lies between the two.
        for y in 0..<30 {
            for x in 0..<40 where feathered.value(x, y) > 0 {
                for c in 0..<4 {
                    let (b, o, v) = (base.sample(c, x, y), overlay.sample(c, x, y), out.sample(c, x, y))
                    #expect(v >= min(b, o) - 1e-6 && v <= max(b, o) + 1e-6)
                }
            }
        }
    }

    @Test func grownThenFeatheredMaskZerosKeepBaseBits() async throws {
        let base = try Self.base(32, 32, .rgb), overlay = try Self.overlay(32, 32, .rgb)
        let dot = try makeMask(32, 32) { x, y in x == 16 && y == 16 ? 1 : 0 }
        let grown = try outputMask(await runStage(GrowMaskStage.self, params: [GrowMaskStage.pixels(4)],
                                                  inputs: [GrowMaskStage.mask(dot)]))
        let feathered = try outputMask(await runStage(FeatherMaskStage.self, params: [FeatherMaskStage.radius(1.5)],
                                                      inputs: [FeatherMaskStage.mask(grown)]))
        let out = try await composite(base: base, overlay: overlay, mask: feathered)
        expectKept(out, base) { x, y in feathered.value(x, y) == 0 }
        #expect(feathered.values.contains(0))
    }

    @Test func maskOneEverywhereOrNoMaskGivesTheOverlayExactly() async throws {
        let base = try Self.base(), overlay = try Self.overlay()
        let ones = try Mask(width: 8, height: 8, filledWith: 1)
        for mask in [ones, nil] {
            let out = try await composite(base: base, overlay: overlay, mask: mask)
            #expect(bits(out.pixels) == bits(overlay.pixels))
        }
        // Values above 1 count as 1, below 0 as 0.
        let out = try await composite(base: base, overlay: overlay, mask: try makeMask(8, 8) { x, _ in x < 4 ? 3 : -2 })
        expectKept(out, overlay) { x, _ in x < 4 }
        expectKept(out, base) { x, _ in x >= 4 }
    }

    @Test func halfMaskAverages() async throws {
        let base = try Self.base(8, 8, .rgba), overlay = try Self.overlay(8, 8, .rgba)
        let out = try await composite(base: base, overlay: overlay, mask: try Mask(width: 8, height: 8, filledWith: 0.5))
        let average = zip(base.pixels, overlay.pixels).map { ($0 + $1) / 2 }
        #expect(maxDifference(out.pixels, average) <= 1e-6)
        let quarter = try await composite(base: base, overlay: overlay, mask: try Mask(width: 8, height: 8, filledWith: 0.25))
        let blend = zip(base.pixels, overlay.pixels).map { 0.75 * $0 + 0.25 * $1 }
        #expect(maxDifference(quarter.pixels, blend) <= 1e-6)
    }

    @Test func overlayOfAnotherSizeIsResizedToTheBase() async throws {
        let base = try Self.base(8, 6, .rgb)
        let small = try Self.overlay(4, 3, .rgb)
        let out = try await composite(base: base, overlay: small, [CompositeStage.filter(.nearest)])
        for c in 0..<3 {
            for y in 0..<6 {
                for x in 0..<8 { #expect(out.sample(c, x, y).bitPattern == small.sample(c, x / 2, y / 2).bitPattern) }
            }
        }
        let flat = try Image(width: 3, height: 5, layout: .rgb, filledWith: 0.7)
        for filter: ResampleFilter in [.bilinear, .bicubic, .lanczos] {
            let resized = try await composite(base: base, overlay: flat, [CompositeStage.filter(filter)])
            #expect(maxDifference(resized.pixels, [Float](repeating: 0.7, count: resized.pixels.count)) <= 1e-6)
        }
    }

    @Test func fitOverlayFalsePastesAtTheOriginWithoutResizing() async throws {
        let base = try Self.base(8, 6, .rgb), small = try Self.overlay(3, 2, .rgb)
        let out = try await composite(base: base, overlay: small, [CompositeStage.fitOverlay(false)])
        for c in 0..<3 {
            for y in 0..<2 { for x in 0..<3 { #expect(out.sample(c, x, y) == small.sample(c, x, y)) } }
        }
        expectKept(out, base) { x, y in x >= 3 || y >= 2 }
        // A larger overlay is cut at the base's edges.
        let large = try Self.overlay(10, 9, .rgb)
        let cut = try await composite(base: base, overlay: large, [CompositeStage.fitOverlay(false)])
        for c in 0..<3 {
            for y in 0..<6 { for x in 0..<8 { #expect(cut.sample(c, x, y) == large.sample(c, x, y)) } }
        }
    }

    @Test(arguments: [(2, 3), (5, 4), (-1, 2), (3, -1), (-2, -1), (7, 5)])
    func offsetsPlaceASmallerOverlay(offset: (Int, Int)) async throws {
        let (x0, y0) = offset
        let base = try Self.base(8, 6, .grayAlpha), small = try Self.overlay(3, 2, .grayAlpha)
        let out = try await composite(base: base, overlay: small, [CompositeStage.x(x0), CompositeStage.y(y0)])
        func covered(_ x: Int, _ y: Int) -> Bool { (x0..<(x0 + 3)).contains(x) && (y0..<(y0 + 2)).contains(y) }
        expectKept(out, base) { x, y in !covered(x, y) }
        for c in 0..<2 {
            for y in 0..<6 {
                for x in 0..<8 where covered(x, y) {
                    #expect(out.sample(c, x, y).bitPattern == small.sample(c, x - x0, y - y0).bitPattern)
                }
            }
        }
    }

    @Test func offsetsWithAMask() async throws {
        let base = try Self.base(8, 6, .rgb), small = try Self.overlay(3, 2, .rgb)
        let mask = try makeMask(8, 6) { x, _ in x == 4 ? 0 : x == 5 ? 0.5 : 1 }
        let out = try await composite(base: base, overlay: small, mask: mask, [CompositeStage.x(3), CompositeStage.y(1)])
        expectKept(out, base) { x, y in x == 4 || !(3...5).contains(x) || !(1...2).contains(y) }
        for c in 0..<3 {
            #expect(out.sample(c, 3, 1) == small.sample(c, 0, 0))
            #expect(abs(out.sample(c, 5, 2) - (base.sample(c, 5, 2) + small.sample(c, 2, 1)) / 2) <= 1e-6)
        }
    }

    @Test(arguments: [(7, 0), (0, 5), (-2, 0), (0, -1)])
    func offsetsTouchingTheEdgeKeepTheRest(offset: (Int, Int)) async throws {
        let base = try Self.base(8, 6, .rgb), small = try Self.overlay(3, 2, .rgb)
        let out = try await composite(base: base, overlay: small, [CompositeStage.x(offset.0), CompositeStage.y(offset.1)])
        let changed = zip(base.pixels, out.pixels).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(changed > 0)
    }

    /// An overlay placed partly or wholly outside the base changes only the overlapping pixels
    /// and never traps. Each case runs in a child process, so a trap fails this test instead of
    /// killing the whole run.
    @Test(arguments: [(8, 0), (0, 6), (-3, 0), (0, -2), (9, 0), (0, 7), (-4, 0), (0, -3), (100, 100), (-100, -100)])
    func offsetsOutsideTheBaseChangeNothing(offset: (Int, Int)) async {
        let (x, y) = offset
        await #expect(processExitsWith: .success, "overlay at (\(x), \(y)) on an 8×6 base") { [x = x as Int, y = y as Int] in
            let base = try CompositeStageTests.base(8, 6, .rgb), small = try CompositeStageTests.overlay(3, 2, .rgb)
            let call = makeCall(CompositeStage.self, params: [CompositeStage.x(x), CompositeStage.y(y)],
                                inputs: [CompositeStage.base(base), CompositeStage.overlay(small)])
            let outputs = try await CompositeStage.run(call)
            guard let out = outputs[CompositeStage.composite], bits(out.pixels) == bits(base.pixels) else { exit(1) }
        }
    }

    @Test func grayOverlayOnRGBBaseIsRepeatedIntoEachChannel() async throws {
        let base = try Self.base(8, 8, .rgb), gray = try Self.overlay(8, 8, .gray)
        let mask = try makeMask(8, 8) { _, y in y < 4 ? 1 : 0 }
        let out = try await composite(base: base, overlay: gray, mask: mask)
        #expect(out.layout == .rgb)
        for c in 0..<3 {
            for y in 0..<4 { for x in 0..<8 { #expect(out.sample(c, x, y) == gray.sample(0, x, y)) } }
        }
        expectKept(out, base) { _, y in y >= 4 }
    }

    @Test func rgbOverlayOnGrayBaseBecomesLuma() async throws {
        let base = try Self.base(4, 4, .gray), color = try Self.overlay(4, 4, .rgb)
        let out = try await composite(base: base, overlay: color)
        #expect(out.layout == .gray)
        let (r, g, b) = (color.plane(0), color.plane(1), color.plane(2))
        let luma: [Float] = (0..<16).map { i in
            let red: Float = 0.299 * r[i], green: Float = 0.587 * g[i], blue: Float = 0.114 * b[i]
            return red + green + blue
        }
        #expect(maxDifference(out.pixels, luma) <= 1e-6)
    }

    @Test func maskOfAnotherSizeIsResizedWithAWarning() async throws {
        let base = try Self.base(8, 8, .rgb), overlay = try Self.overlay(8, 8, .rgb)
        let events = EventLog()
        let out = try await composite(base: base, overlay: overlay, mask: try Mask(width: 4, height: 4, filledWith: 1),
                                      events: events)
        #expect(bits(out.pixels) == bits(overlay.pixels))
        #expect(events.warnings.count == 1)
        #expect(events.warnings.first?.contains("4×4") == true)
        #expect(events.warnings.first?.contains("8×8") == true)
        // Zeros stay zeros when resized: the base is untouched.
        let quiet = EventLog()
        let kept = try await composite(base: base, overlay: overlay, mask: try Mask(width: 16, height: 3, filledWith: 0),
                                       events: quiet)
        #expect(bits(kept.pixels) == bits(base.pixels))
        #expect(quiet.warnings.count == 1)
        // Half a mask, upscaled: the left columns take the overlay, the right keep the base.
        let half = try makeMask(4, 4) { x, _ in x < 2 ? 1 : 0 }
        let split = try await composite(base: base, overlay: overlay, mask: half)
        expectKept(split, overlay) { x, _ in x < 3 }
        expectKept(split, base) { x, _ in x >= 5 }
    }

    @Test func maskOfTheBaseSizeGivesNoWarning() async throws {
        let events = EventLog()
        _ = try await composite(base: try Self.base(), overlay: try Self.overlay(),
                                mask: try Mask(width: 8, height: 8, filledWith: 0.5), events: events)
        #expect(events.warnings.isEmpty)
    }
}
