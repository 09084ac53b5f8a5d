import ChiselCore
import ChiselStages
import Foundation
import Testing

@Suite struct CropStageTests {
    func crop(_ image: Image, mask: Mask? = nil, _ params: [ParamSetting]) async throws -> (Image, Mask?) {
        var inputs = [CropStage.image(image)]
        if let mask { inputs.append(CropStage.mask(mask)) }
        let outputs = try await runStage(CropStage.self, params: params, inputs: inputs)
        return (try outputImage(outputs), try mask.map { _ in try outputMask(outputs) })
    }

    /// Checks that `out` is the `w`×`h` window of `image` at (`x`, `y`), sample for sample.
    func expectWindow(_ out: Image, of image: Image, x: Int, y: Int, w: Int, h: Int,
                      sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(out.width == w && out.height == h && out.layout == image.layout, sourceLocation: sourceLocation)
        guard out.width == w, out.height == h else { return }
        var expected: [Float] = []
        for c in 0..<image.channels {
            for row in 0..<h { for col in 0..<w { expected.append(image.sample(c, x + col, y + row)) } }
        }
        #expect(bits(out.pixels) == bits(expected), sourceLocation: sourceLocation)
    }

    func expectWindow(_ out: Mask, of mask: Mask, x: Int, y: Int, w: Int, h: Int,
                      sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(out.width == w && out.height == h, sourceLocation: sourceLocation)
        guard out.width == w, out.height == h else { return }
        var expected: [Float] = []
        for row in 0..<h { for col in 0..<w { expected.append(mask.value(x + col, y + row)) } }
        #expect(bits(out.values) == bits(expected), sourceLocation: sourceLocation)
    }

    @Test(arguments: PixelLayout.allCases)
    func boxCropsImageAndMaskIdentically(layout: PixelLayout) async throws {
        let image = try patternImage(6, 5, layout)
        let mask = try makeMask(6, 5) { x, y in Float(y * 6 + x) / 29 }
        let (out, outMask) = try await crop(image, mask: mask, [CropStage.x(1), CropStage.y(2), CropStage.width(3),
                                                                CropStage.height(2)])
        expectWindow(out, of: image, x: 1, y: 2, w: 3, h: 2)
        expectWindow(try #require(outMask), of: mask, x: 1, y: 2, w: 3, h: 2)
    }

    @Test func zeroWidthAndHeightReachTheEdges() async throws {
        let image = try patternImage(6, 5, .rgb)
        let (both, _) = try await crop(image, [CropStage.x(2), CropStage.y(1)])
        expectWindow(both, of: image, x: 2, y: 1, w: 4, h: 4)
        let (width, _) = try await crop(image, [CropStage.x(2), CropStage.y(1), CropStage.height(2)])
        expectWindow(width, of: image, x: 2, y: 1, w: 4, h: 2)
        let (height, _) = try await crop(image, [CropStage.x(2), CropStage.y(1), CropStage.width(1)])
        expectWindow(height, of: image, x: 2, y: 1, w: 1, h: 4)
        let (whole, _) = try await crop(image, [])
        expectWindow(whole, of: image, x: 0, y: 0, w: 6, h: 5)
        let (corner, _) = try await crop(image, [CropStage.x(5), CropStage.y(4)])
        expectWindow(corner, of: image, x: 5, y: 4, w: 1, h: 1)
    }

    @Test(arguments: [
        (6, 0, 0, 0), (0, 5, 0, 0), (4, 0, 3, 0), (0, 3, 0, 3), (0, 0, 7, 0), (0, 0, 0, 6), (10, 10, 1, 1), (5, 4, 2, 1),
    ])
    func boxOutsideTheImageIsAnError(box: (Int, Int, Int, Int)) async throws {
        let image = try patternImage(6, 5, .rgb)
        let error = await expectChiselError(.invalidParameter) {
            _ = try await crop(image, [CropStage.x(box.0), CropStage.y(box.1), CropStage.width(box.2),
                                       CropStage.height(box.3)])
        }
        #expect(error?.node == "n")
    }

    @Test func maskRegionCropsToTheBoundsPlusPadding() async throws {
        let image = try patternImage(12, 10, .rgba)
        let mask = try makeMask(12, 10) { x, y in (3...5).contains(x) && (4...6).contains(y) ? 1 : 0 }
        let (out, outMask) = try await crop(image, mask: mask, [CropStage.region(.mask), CropStage.padding(2)])
        expectWindow(out, of: image, x: 1, y: 2, w: 7, h: 7)
        expectWindow(try #require(outMask), of: mask, x: 1, y: 2, w: 7, h: 7)
        // No padding: the bounds exactly.
        let (tight, tightMask) = try await crop(image, mask: mask, [CropStage.region(.mask), CropStage.padding(0)])
        expectWindow(tight, of: image, x: 3, y: 4, w: 3, h: 3)
        #expect(try #require(tightMask).values.allSatisfy { $0 == 1 })
    }

    @Test func maskRegionPaddingIsClampedToTheImage() async throws {
        let image = try patternImage(12, 10, .gray)
        let mask = try makeMask(12, 10) { x, y in (x == 1 && y == 8) || (x == 4 && y == 7) ? 0.5 : 0 }
        let (out, _) = try await crop(image, mask: mask, [CropStage.region(.mask), CropStage.padding(3)])
        // Bounds x 1...4, y 7...8; padded x -2...7 → 0...7, y 4...11 → 4...9.
        expectWindow(out, of: image, x: 0, y: 4, w: 8, h: 6)
        let (all, _) = try await crop(image, mask: mask, [CropStage.region(.mask)])
        expectWindow(all, of: image, x: 0, y: 0, w: 12, h: 10)
    }

    @Test func maskRegionIgnoresTheBoxParameters() async throws {
        let image = try patternImage(12, 10, .gray)
        let mask = try makeMask(12, 10) { x, y in x == 6 && y == 5 ? 1 : 0 }
        let (out, _) = try await crop(image, mask: mask, [CropStage.region(.mask), CropStage.padding(1), CropStage.x(9),
                                                          CropStage.y(9), CropStage.width(1), CropStage.height(1)])
        expectWindow(out, of: image, x: 5, y: 4, w: 3, h: 3)
    }

    @Test func emptyMaskIsAnError() async throws {
        let image = try patternImage(6, 5, .rgb)
        let empty = try Mask(width: 6, height: 5, filledWith: 0)
        await expectChiselError { _ = try await crop(image, mask: empty, [CropStage.region(.mask)]) }
        let negative = try Mask(width: 6, height: 5, filledWith: -1)
        await expectChiselError { _ = try await crop(image, mask: negative, [CropStage.region(.mask)]) }
    }

    @Test func maskRegionWithoutAMaskIsAnError() async throws {
        await expectChiselError(.invalidParameter) {
            _ = try await crop(try patternImage(6, 5, .rgb), [CropStage.region(.mask)])
        }
    }

    /// `chisel validate` reports region "mask" without a mask before anything runs, on the region parameter.
    @Test func maskRegionWithoutAMaskIsAValidationProblem() throws {
        let call = makeCall(CropStage.self, params: [CropStage.region(.mask)])
        let problems = try validationProblems(CropStage.self, call)
        #expect(problems.map(\.message) == ["region \"mask\" needs the mask input connected"])
        #expect(problems.map(\.param) == ["region"])
        #expect(problems.map(\.input) == [nil])
        #expect(problems.map(\.code) == [.invalidParameter])
        // Connected, or a box region: nothing to report.
        let connected: [String: StageCheck.Source] = ["mask": .node("m", stage: "load_mask", port: "mask")]
        #expect(try validationProblems(CropStage.self, call, sources: connected).isEmpty)
        #expect(try validationProblems(CropStage.self, makeCall(CropStage.self)).isEmpty)
    }

    @Test func maskSizeMismatchIsAnError() async throws {
        let image = try patternImage(6, 5, .rgb)
        for mask in [try Mask(width: 5, height: 5, filledWith: 1), try Mask(width: 6, height: 6, filledWith: 1)] {
            await expectChiselError { _ = try await crop(image, mask: mask, []) }
            await expectChiselError { _ = try await crop(image, mask: mask, [CropStage.region(.mask)]) }
        }
    }

    @Test func keepsDepthAndOrigin() async throws {
        var image = try patternImage(6, 5, .rgb)
        image.bitDepth = 16
        image.origin = ImageOrigin(path: "/p/q.png")
        let mask = try Mask(width: 6, height: 5, filledWith: 1, origin: ImageOrigin(path: "/p/m.png"))
        let (out, outMask) = try await crop(image, mask: mask, [CropStage.x(1), CropStage.width(2)])
        #expect(out.bitDepth == 16 && out.origin == image.origin)
        #expect(outMask?.origin == mask.origin)
    }

    @Test func boundsOfAMask() throws {
        #expect(CropStage.bounds(of: try Mask(width: 4, height: 3, filledWith: 0)) == nil)
        #expect(CropStage.bounds(of: try Mask(width: 4, height: 3, filledWith: -0.5)) == nil)
        let full = try #require(CropStage.bounds(of: try Mask(width: 4, height: 3, filledWith: 1)))
        #expect(full == (0, 0, 4, 3))
        let one = try #require(CropStage.bounds(of: try makeMask(7, 6) { x, y in x == 5 && y == 2 ? 0.01 : 0 }))
        #expect(one == (5, 2, 1, 1))
        let two = try #require(CropStage.bounds(of: try makeMask(7, 6) { x, y in
            (x == 1 && y == 4) || (x == 6 && y == 0) ? 1e-6 : -1
        }))
        #expect(two == (1, 0, 6, 5))
        let corner = try #require(CropStage.bounds(of: try makeMask(7, 6) { x, y in x == 6 && y == 5 ? 1 : 0 }))
        #expect(corner == (6, 5, 1, 1))
    }
}
