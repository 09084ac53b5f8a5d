import ChiselCore
import ChiselStages
import Foundation
import Testing

@Suite struct ResizePlanTests {
    typealias Region = (x: Double, y: Double, width: Double, height: Double)

    func plan(_ sw: Int, _ sh: Int, width: Int = 0, height: Int = 0, scale: Double? = nil,
              mode: ResizeStage.Mode = .fit, multipleOf: Int = 1) throws -> (width: Int, height: Int, region: Region) {
        try ResizeStage.plan(width: sw, height: sh, targetWidth: width, targetHeight: height, scale: scale, mode: mode,
                             multipleOf: multipleOf)
    }

    func full(_ sw: Int, _ sh: Int) -> Region { (0, 0, Double(sw), Double(sh)) }

    func same(_ a: Region, _ b: Region) -> Bool {
        abs(a.x - b.x) < 1e-9 && abs(a.y - b.y) < 1e-9 && abs(a.width - b.width) < 1e-9 && abs(a.height - b.height) < 1e-9
    }

    @Test func fitKeepsTheAspectRatioInsideTheBox() throws {
        let wide = try plan(400, 200, width: 100, height: 100, mode: .fit)
        #expect(wide.width == 100 && wide.height == 50)
        #expect(same(wide.region, full(400, 200)))
        let tall = try plan(200, 400, width: 100, height: 100, mode: .fit)
        #expect(tall.width == 50 && tall.height == 100)
        let third = try plan(300, 200, width: 100, height: 100, mode: .fit)
        #expect(third.width == 100 && third.height == 67)
        let up = try plan(30, 20, width: 300, height: 300, mode: .fit)
        #expect(up.width == 300 && up.height == 200)
        let box = try plan(640, 480, width: 512, height: 512, mode: .fit)
        #expect(box.width == 512 && box.height == 384)
    }

    @Test func fillCoversTheBoxAndCropsTheCentre() throws {
        let wide = try plan(400, 200, width: 100, height: 100, mode: .fill)
        #expect(wide.width == 100 && wide.height == 100)
        #expect(same(wide.region, (100, 0, 200, 200)))
        let tall = try plan(200, 400, width: 100, height: 100, mode: .fill)
        #expect(tall.width == 100 && tall.height == 100)
        #expect(same(tall.region, (0, 100, 200, 200)))
        let banner = try plan(300, 300, width: 200, height: 100, mode: .fill)
        #expect(banner.width == 200 && banner.height == 100)
        #expect(same(banner.region, (0, 75, 300, 150)))
        let exact = try plan(400, 200, width: 200, height: 100, mode: .fill)
        #expect(same(exact.region, full(400, 200)))
    }

    @Test func stretchIgnoresTheAspectRatio() throws {
        let result = try plan(400, 200, width: 100, height: 100, mode: .stretch)
        #expect(result.width == 100 && result.height == 100)
        #expect(same(result.region, full(400, 200)))
    }

    @Test func widthOnlyAndHeightOnlyFollowTheAspectRatio() throws {
        for mode in ResizeStage.Mode.allCases {
            let w = try plan(400, 200, width: 100, mode: mode)
            #expect(w.width == 100 && w.height == 50)
            #expect(same(w.region, full(400, 200)))
            let h = try plan(400, 200, height: 100, mode: mode)
            #expect(h.width == 200 && h.height == 100)
            #expect(same(h.region, full(400, 200)))
        }
        let odd = try plan(333, 100, width: 100)
        #expect(odd.width == 100 && odd.height == 30)
    }

    @Test func scaleOverridesWidthAndHeight() throws {
        let half = try plan(400, 200, scale: 0.5)
        #expect(half.width == 200 && half.height == 100)
        let double = try plan(400, 200, width: 10, height: 10, scale: 2, mode: .fill)
        #expect(double.width == 800 && double.height == 400)
        #expect(same(double.region, full(400, 200)))
        let third = try plan(100, 50, scale: 1.0 / 3)
        #expect(third.width == 33 && third.height == 17)
        let tiny = try plan(100, 50, scale: 0.001)
        #expect(tiny.width == 1 && tiny.height == 1)
    }

    @Test func multipleOfRoundsDownToAtLeastOneMultiple() throws {
        let a = try plan(400, 300, width: 100, multipleOf: 8)
        #expect(a.width == 96 && a.height == 72)
        let b = try plan(1000, 10, width: 100, multipleOf: 8)
        #expect(b.width == 96 && b.height == 8)
        let c = try plan(640, 480, width: 512, height: 512, mode: .fit, multipleOf: 64)
        #expect(c.width == 512 && c.height == 384)
        let d = try plan(500, 500, scale: 1, multipleOf: 64)
        #expect(d.width == 448 && d.height == 448)
        let e = try plan(5, 5, scale: 1, multipleOf: 8)
        #expect(e.width == 8 && e.height == 8)
        let f = try plan(400, 200, width: 100, height: 100, mode: .stretch, multipleOf: 7)
        #expect(f.width == 98 && f.height == 98)
    }

    @Test func fillCropsToTheRoundedSize() throws {
        // 100×100 fill rounded to a multiple of 64: 64×64, still a square crop.
        let result = try plan(400, 200, width: 100, height: 100, mode: .fill, multipleOf: 64)
        #expect(result.width == 64 && result.height == 64)
        #expect(same(result.region, (100, 0, 200, 200)))
        // 100×60 rounded to 96×56: the crop has that aspect.
        let other = try plan(400, 400, width: 100, height: 60, mode: .fill, multipleOf: 8)
        #expect(other.width == 96 && other.height == 56)
        #expect(abs(other.region.width - 400) < 1e-9)
        #expect(abs(other.region.height - 400 * 56.0 / 96) < 1e-9)
        #expect(abs(other.region.y - (400 - 400 * 56.0 / 96) / 2) < 1e-9)
    }

    @Test func noTargetIsAnError() async throws {
        await expectChiselError(.invalidParameter) { _ = try plan(10, 10) }
        await expectChiselError(.invalidParameter) {
            try await runStage(ResizeStage.self, inputs: [ResizeStage.image(try patternImage(4, 4, .gray))])
        }
    }

    /// `chisel validate` reports the missing target before anything runs, on the width parameter.
    @Test func noTargetIsAValidationProblem() throws {
        let problems = try validationProblems(ResizeStage.self, makeCall(ResizeStage.self))
        #expect(problems.map(\.message) == ["give width, height or scale"])
        #expect(problems.map(\.param) == ["width"])
        #expect(problems.map(\.input) == [nil])
        #expect(problems.map(\.code) == [.invalidParameter])
        for target in [ResizeStage.width(4), ResizeStage.height(4), ResizeStage.scale(0.5)] {
            let call = makeCall(ResizeStage.self, params: [target])
            #expect(try validationProblems(ResizeStage.self, call).isEmpty, "\(target.name)")
        }
    }
}

@Suite struct ResizeStageTests {
    func resize(_ image: Image, mask: Mask? = nil, _ params: [ParamSetting],
                run: RunInfo = RunInfo()) async throws -> (Image, Mask?) {
        var inputs = [ResizeStage.image(image)]
        if let mask { inputs.append(ResizeStage.mask(mask)) }
        let outputs = try await runStage(ResizeStage.self, params: params, inputs: inputs, run: run)
        return (try outputImage(outputs), try mask.map { _ in try outputMask(outputs) })
    }

    static let filters: [ResampleFilter] = [.nearest, .bilinear, .bicubic, .lanczos]

    @Test(arguments: filters, [(7, 5), (16, 16), (40, 3), (1, 1), (13, 29)])
    func constantImageStaysConstant(filter: ResampleFilter, size: (Int, Int)) async throws {
        let image = try Image(width: 10, height: 12, layout: .rgba, filledWith: 0.3)
        let (out, _) = try await resize(image, [ResizeStage.width(size.0), ResizeStage.height(size.1),
                                                ResizeStage.mode(.stretch), ResizeStage.filter(filter)])
        #expect(out.width == size.0 && out.height == size.1)
        #expect(out.layout == .rgba)
        #expect(maxDifference(out.pixels, [Float](repeating: 0.3, count: out.pixels.count)) <= 1e-6)
    }

    /// A mask that is all 0 or all 1 must stay exactly so: composite takes the overlay bit for bit
    /// only where the mask is exactly 1.
    ///
    /// Constant images and masks of exactly 0 and 1 keep their values bit for bit with every
    /// filter, although the Float weights of bicubic and lanczos do not add up to exactly 1.
    @Test(arguments: filters)
    func constantOneAndZeroStayExact(filter: ResampleFilter) async throws {
        var wrong: [String] = []
        for value: Float in [0, 1] {
            for (width, height) in [(4, 4), (16, 16), (13, 29), (20, 4)] {
                let image = try Image(width: 8, height: 8, layout: .gray, filledWith: value)
                let (out, mask) = try await resize(image, mask: try Mask(width: 8, height: 8, filledWith: value), [
                    ResizeStage.width(width), ResizeStage.height(height), ResizeStage.mode(.stretch),
                    ResizeStage.filter(filter),
                ])
                let off = Set(out.pixels.filter { $0 != value } + (mask?.values ?? []).filter { $0 != value })
                if !off.isEmpty { wrong.append("\(value) at \(width)×\(height) → \(off.sorted())") }
            }
        }
        #expect(wrong.isEmpty, "\(wrong.joined(separator: "; "))")
    }

    @Test func nearestUpscalingByTwoDuplicatesPixels() async throws {
        let image = try patternImage(5, 3, .rgb)
        let (out, _) = try await resize(image, [ResizeStage.scale(2), ResizeStage.filter(.nearest)])
        #expect(out.width == 10 && out.height == 6)
        for c in 0..<3 {
            for y in 0..<6 {
                for x in 0..<10 {
                    #expect(out.sample(c, x, y).bitPattern == image.sample(c, x / 2, y / 2).bitPattern)
                }
            }
        }
    }

    @Test func nearestDownscalingByTwoPicksOnePixelOfEach() async throws {
        let image = try patternImage(6, 4, .gray)
        let (out, _) = try await resize(image, [ResizeStage.scale(0.5), ResizeStage.filter(.nearest)])
        #expect(out.width == 3 && out.height == 2)
        for y in 0..<2 {
            for x in 0..<3 {
                #expect(out.sample(0, x, y) == image.sample(0, 2 * x + 1, 2 * y + 1))
            }
        }
    }

    static func checkerboard(_ size: Int) throws -> Image {
        try patternImage(size, size, .gray) { _, x, y in Float((x + y) % 2) }
    }

    @Test(arguments: [ResampleFilter.bilinear, .bicubic, .lanczos])
    func downscalingACheckerboardAveragesIt(filter: ResampleFilter) async throws {
        let (out, _) = try await resize(try Self.checkerboard(32), [ResizeStage.width(16), ResizeStage.filter(filter)])
        #expect(out.width == 16 && out.height == 16)
        // Away from the borders every output pixel sees the same number of black and white taps.
        let margin = 4
        for y in margin..<(16 - margin) {
            for x in margin..<(16 - margin) {
                #expect(abs(out.sample(0, x, y) - 0.5) <= 1e-5, "(\(x), \(y))")
            }
        }
        // At the borders, renormalised kernels still stay close to the average.
        #expect(out.pixels.allSatisfy { abs($0 - 0.5) <= 0.1 }, "\(out.pixels.map { abs($0 - 0.5) }.max() ?? 0)")
        // Nearest, by contrast, aliases to a single colour.
        let (aliased, _) = try await resize(try Self.checkerboard(32), [ResizeStage.width(16), ResizeStage.filter(.nearest)])
        #expect(Set(aliased.pixels).count == 1)
    }

    @Test(arguments: filters)
    func maskIsResizedLikeTheImage(filter: ResampleFilter) async throws {
        let values = (0..<(12 * 9)).map { i in Float((i * 37) % 17) / 16 }
        let image = try makeImage(12, 9, .gray, planes: [values])
        let mask = try Mask(width: 12, height: 9, values: values, origin: ImageOrigin(path: "/m/mask.png"))
        for params: [ParamSetting] in [
            [ResizeStage.width(5), ResizeStage.height(5), ResizeStage.mode(.fill)],
            [ResizeStage.width(30), ResizeStage.height(7), ResizeStage.mode(.stretch)],
            [ResizeStage.width(8), ResizeStage.height(8), ResizeStage.mode(.fit)],
            [ResizeStage.scale(1.5)],
        ] {
            let (out, outMask) = try await resize(image, mask: mask, params + [ResizeStage.filter(filter)])
            let m = try #require(outMask)
            #expect(m.width == out.width && m.height == out.height)
            #expect(bits(m.values) == bits(out.pixels), "\(params.map { "\($0.name): \(String(describing: $0.value))" })")
            #expect(m.origin == mask.origin)
        }
    }

    @Test func maskOutputOnlyWithAMaskInput() async throws {
        let image = try patternImage(8, 8, .rgb)
        let without = try await ResizeStage.run(makeCall(ResizeStage.self, params: [ResizeStage.width(4)],
                                                         inputs: [ResizeStage.image(image)])).values
        #expect(Set(without.keys) == ["image"])
        let with = try await ResizeStage.run(makeCall(ResizeStage.self, params: [ResizeStage.width(4)], inputs: [
            ResizeStage.image(image), ResizeStage.mask(try Mask(width: 8, height: 8, filledWith: 1)),
        ])).values
        #expect(Set(with.keys) == ["image", "mask"])
        let values = try outputMask(with).values
        #expect(values.count == 16 && values.allSatisfy { abs($0 - 1) <= 1e-6 })
    }

    @Test func maskSizeMismatchIsAnError() async throws {
        let image = try patternImage(8, 8, .rgb)
        let mask = try Mask(width: 8, height: 7, filledWith: 1)
        let error = await expectChiselError {
            _ = try await resize(image, mask: mask, [ResizeStage.width(4)])
        }
        #expect(error?.node == "n")
    }

    @Test(arguments: filters)
    func outputIsClampedToTheUnitRange(filter: ResampleFilter) async throws {
        // A hard step ringing under bicubic and lanczos.
        let step = try patternImage(8, 8, .rgb) { _, x, _ in x < 4 ? 0 : 1 }
        for width in [3, 16, 29, 64] {
            let (out, _) = try await resize(step, [ResizeStage.width(width), ResizeStage.height(8),
                                                   ResizeStage.mode(.stretch), ResizeStage.filter(filter)])
            #expect(out.pixels.allSatisfy { $0 >= 0 && $0 <= 1 }, "width \(width): \(out.pixels.min()!)…\(out.pixels.max()!)")
            // Far from the step only zeros are read: exactly 0 (upscaling keeps taps local).
            if width > 8 { #expect(out.pixels.min() == 0) }
        }
        let mask = try makeMask(8, 8) { x, _ in x < 4 ? 0 : 1 }
        let (_, m) = try await resize(step, mask: mask, [ResizeStage.width(29), ResizeStage.height(8),
                                                         ResizeStage.mode(.stretch), ResizeStage.filter(filter)])
        #expect(try #require(m).values.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    @Test func fillResizesTheCentreCrop() async throws {
        // 6×2 to 2×2 at scale 1: the two middle columns, exactly.
        let image = try patternImage(6, 2, .rgb)
        let (out, _) = try await resize(image, [ResizeStage.width(2), ResizeStage.height(2), ResizeStage.mode(.fill),
                                                ResizeStage.filter(.nearest)])
        #expect(out.width == 2 && out.height == 2)
        for c in 0..<3 {
            for y in 0..<2 {
                for x in 0..<2 { #expect(out.sample(c, x, y) == image.sample(c, x + 2, y)) }
            }
        }
    }

    @Test func identitySizeKeepsPixels() async throws {
        let image = try patternImage(7, 5, .grayAlpha)
        for filter in Self.filters {
            let (out, _) = try await resize(image, [ResizeStage.width(7), ResizeStage.filter(filter)])
            #expect(maxDifference(out.pixels, image.pixels) <= 1e-6, "\(filter)")
        }
    }

    @Test func keepsLayoutDepthAndOrigin() async throws {
        var image = try patternImage(8, 6, .grayAlpha)
        image.bitDepth = 16
        image.origin = ImageOrigin(path: "/a/b.png")
        let (out, _) = try await resize(image, [ResizeStage.width(4)])
        #expect(out.layout == .grayAlpha && out.bitDepth == 16 && out.origin == image.origin)
        #expect(out.width == 4 && out.height == 3)
    }

    @Test func sizeAboveThePixelLimitIsAnError() async throws {
        let image = try patternImage(4, 4, .gray)
        await expectChiselError {
            _ = try await resize(image, [ResizeStage.width(100), ResizeStage.height(100), ResizeStage.mode(.stretch)],
                                 run: RunInfo(maxPixels: 9_999))
        }
        let (out, _) = try await resize(image, [ResizeStage.width(100), ResizeStage.height(100), ResizeStage.mode(.stretch)],
                                        run: RunInfo(maxPixels: 10_000))
        #expect(out.width == 100)
    }
}
