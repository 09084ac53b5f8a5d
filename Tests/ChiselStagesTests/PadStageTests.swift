import ChiselCore
import ChiselStages
import Foundation
import Testing

@Suite struct PadStageTests {
    func pad(_ image: Image, mask: Mask? = nil, _ params: [ParamSetting],
             run: RunInfo = RunInfo()) async throws -> (Image, Mask) {
        var inputs = [PadStage.image(image)]
        if let mask { inputs.append(PadStage.mask(mask)) }
        let outputs = try await runStage(PadStage.self, params: params, inputs: inputs, run: run)
        return (try outputImage(outputs), try outputMask(outputs))
    }

    /// Checks the padded image: the original at (`left`, `top`), `border(c, x, y)` elsewhere.
    func expectPadded(_ out: Image, _ image: Image, left: Int, top: Int, width: Int, height: Int,
                      border: (Int, Int, Int) -> Float, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(out.width == width && out.height == height && out.layout == image.layout, sourceLocation: sourceLocation)
        guard out.width == width, out.height == height else { return }
        var mismatches: [String] = []
        for c in 0..<image.channels {
            for y in 0..<height {
                for x in 0..<width {
                    let ix = x - left, iy = y - top
                    let inside = ix >= 0 && ix < image.width && iy >= 0 && iy < image.height
                    let expected = inside ? image.sample(c, ix, iy) : border(c, x, y)
                    if out.sample(c, x, y).bitPattern != expected.bitPattern {
                        mismatches.append("(\(c), \(x), \(y)): \(out.sample(c, x, y)) ≠ \(expected)")
                    }
                }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(8))", sourceLocation: sourceLocation)
    }

    @Test func constantColourBorder() async throws {
        let image = try patternImage(2, 2, .rgb)
        let (out, _) = try await pad(image, [PadStage.left(1), PadStage.top(1), PadStage.right(2), PadStage.bottom(1),
                                             PadStage.color("#ff8000")])
        let fill: [Float] = [1, 128 / 255, 0]
        expectPadded(out, image, left: 1, top: 1, width: 5, height: 4) { c, _, _ in fill[c] }
    }

    @Test func defaultColourIsBlack() async throws {
        let image = try patternImage(3, 2, .rgba)
        let (out, _) = try await pad(image, [PadStage.top(2)])
        // #000000 has opaque alpha.
        expectPadded(out, image, left: 0, top: 2, width: 3, height: 4) { c, _, _ in c == 3 ? 1 : 0 }
    }

    @Test(arguments: [
        ("#ff8000", [255, 128, 0, 255] as [Int]),
        ("ff8000", [255, 128, 0, 255]),
        ("#FF8000", [255, 128, 0, 255]),
        ("#f80", [255, 136, 0, 255]),
        ("#f808", [255, 136, 0, 136]),
        ("#10203040", [16, 32, 48, 64]),
        ("#000000", [0, 0, 0, 255]),
        ("#ffffff00", [255, 255, 255, 0]),
    ])
    func colourFormats(text: String, rgba: [Int]) async throws {
        let image = try patternImage(1, 1, .rgba)
        let (out, _) = try await pad(image, [PadStage.right(1), PadStage.color(text)])
        #expect(out.width == 2)
        for c in 0..<4 { #expect(out.sample(c, 1, 0) == Float(rgba[c]) / 255, "channel \(c)") }
    }

    @Test func grayLayoutsUseTheColoursLuminance() async throws {
        let luma: Float = 0.299 * 1 + 0.587 * (128 / 255) + 0.114 * (64 / 255)
        let gray = try patternImage(2, 2, .gray)
        let (g, _) = try await pad(gray, [PadStage.left(1), PadStage.color("#ff8040")])
        #expect(g.layout == .gray)
        #expect(abs(g.sample(0, 0, 0) - luma) <= 1e-6)
        #expect(abs(g.sample(0, 0, 1) - luma) <= 1e-6)
        let grayAlpha = try patternImage(2, 2, .grayAlpha)
        let (ga, _) = try await pad(grayAlpha, [PadStage.bottom(1), PadStage.color("#ff804080")])
        #expect(abs(ga.sample(0, 1, 2) - luma) <= 1e-6)
        #expect(ga.sample(1, 1, 2) == Float(128) / 255)
        // An RGB image without alpha ignores the colour's alpha.
        let rgb = try patternImage(2, 2, .rgb)
        let (c, _) = try await pad(rgb, [PadStage.bottom(1), PadStage.color("#ff804080")])
        #expect([c.sample(0, 0, 2), c.sample(1, 0, 2), c.sample(2, 0, 2)] == [1, 128 / 255, 64 / 255])
    }

    static let row: [Float] = [0.1, 0.2, 0.3, 0.4] // a b c d

    @Test func edgeModeRepeatsTheBorderPixel() async throws {
        let image = try grayImage(4, 1, Self.row)
        let (out, _) = try await pad(image, [PadStage.left(2), PadStage.right(3), PadStage.mode(.edge)])
        #expect(out.pixels == [0.1, 0.1, 0.1, 0.2, 0.3, 0.4, 0.4, 0.4, 0.4])
        let column = try grayImage(1, 4, Self.row)
        let (vertical, _) = try await pad(column, [PadStage.top(1), PadStage.bottom(2), PadStage.mode(.edge)])
        #expect(vertical.pixels == [0.1, 0.1, 0.2, 0.3, 0.4, 0.4, 0.4])
    }

    @Test func reflectModeMirrorsWithoutRepeatingTheEdge() async throws {
        let image = try grayImage(4, 1, Self.row)
        let (out, _) = try await pad(image, [PadStage.left(3), PadStage.right(3), PadStage.mode(.reflect)])
        // dcb|abcd|cba
        #expect(out.pixels == [0.4, 0.3, 0.2, 0.1, 0.2, 0.3, 0.4, 0.3, 0.2, 0.1])
        let column = try grayImage(1, 4, Self.row)
        let (vertical, _) = try await pad(column, [PadStage.top(2), PadStage.bottom(1), PadStage.mode(.reflect)])
        #expect(vertical.pixels == [0.3, 0.2, 0.1, 0.2, 0.3, 0.4, 0.3])
        // Wider than the image: the reflection continues back and forth.
        let (wide, _) = try await pad(image, [PadStage.left(7), PadStage.mode(.reflect)])
        // b a b c d c b | a b c d
        #expect(wide.pixels == [0.2, 0.1, 0.2, 0.3, 0.4, 0.3, 0.2] + Self.row)
    }

    @Test(arguments: [BorderMode.edge, .reflect])
    func twoDimensionalBordersOfEveryChannel(mode: BorderMode) async throws {
        let image = try patternImage(4, 3, .rgba)
        let (out, _) = try await pad(image, [PadStage.left(2), PadStage.top(1), PadStage.right(1), PadStage.bottom(2),
                                             PadStage.mode(mode)])
        func source(_ i: Int, _ size: Int) -> Int {
            if mode == .edge { return min(size - 1, max(0, i)) }
            return i < 0 ? -i : i >= size ? 2 * (size - 1) - i : i
        }
        expectPadded(out, image, left: 2, top: 1, width: 7, height: 6) { c, x, y in
            image.sample(c, source(x - 2, 4), source(y - 1, 3))
        }
    }

    @Test func reflectOfASinglePixelRepeatsIt() async throws {
        let image = try grayImage(1, 1, [0.7])
        let (out, _) = try await pad(image, [PadStage.left(2), PadStage.top(1), PadStage.mode(.reflect)])
        #expect(out.pixels == [Float](repeating: 0.7, count: 6))
    }

    @Test func multipleOfPadsRightAndBottom() async throws {
        let image = try patternImage(5, 3, .rgb)
        let (out, mask) = try await pad(image, [PadStage.left(1), PadStage.multipleOf(4), PadStage.color("#ffffff")])
        // 5 + 1 = 6 → 8 (2 more on the right); 3 → 4 (1 at the bottom).
        expectPadded(out, image, left: 1, top: 0, width: 8, height: 4) { _, _, _ in 1 }
        #expect(mask.width == 8 && mask.height == 4)
        let (already, _) = try await pad(image, [PadStage.right(3), PadStage.bottom(1), PadStage.multipleOf(4)])
        #expect(already.width == 8 && already.height == 4)
        let (one, _) = try await pad(image, [PadStage.multipleOf(1)])
        expectPadded(one, image, left: 0, top: 0, width: 5, height: 3) { _, _, _ in .nan }
        let (big, _) = try await pad(image, [PadStage.multipleOf(64), PadStage.mode(.edge)])
        #expect(big.width == 64 && big.height == 64)
    }

    @Test func maskMarksTheAddedBorder() async throws {
        let image = try patternImage(3, 2, .rgb)
        let (_, noMask) = try await pad(image, [PadStage.left(1), PadStage.top(2), PadStage.right(1), PadStage.bottom(1),
                                                PadStage.mode(.reflect)])
        #expect(noMask.width == 5 && noMask.height == 5)
        for y in 0..<5 {
            for x in 0..<5 {
                let inside = (1...3).contains(x) && (2...3).contains(y)
                #expect(noMask.value(x, y) == (inside ? 0 : 1), "(\(x), \(y))")
            }
        }
        let input = try Mask(width: 3, height: 2, values: [0, 0.25, 0.5, 0.75, 1, 0.125])
        let (_, padded) = try await pad(image, mask: input, [PadStage.left(1), PadStage.top(2), PadStage.right(1),
                                                             PadStage.bottom(1), PadStage.mode(.edge),
                                                             PadStage.multipleOf(3)])
        #expect(padded.width == 6 && padded.height == 6)
        for y in 0..<6 {
            for x in 0..<6 {
                let inside = (1...3).contains(x) && (2...3).contains(y)
                #expect(padded.value(x, y) == (inside ? input.value(x - 1, y - 2) : 1), "(\(x), \(y))")
            }
        }
    }

    @Test func noPaddingIsIdentity() async throws {
        let image = try patternImage(3, 2, .grayAlpha)
        let input = try Mask(width: 3, height: 2, values: [0, 0.25, 0.5, 0.75, 1, 0.125])
        let (out, mask) = try await pad(image, mask: input, [])
        #expect(bits(out.pixels) == bits(image.pixels))
        #expect(bits(mask.values) == bits(input.values))
    }

    @Test(arguments: ["red", "#12", "#12345", "#1234567", "#gggggg", "", "#", "##123456", "#12 456", "#12_456", "#0x1234"])
    func invalidColourIsAnError(text: String) async throws {
        let error = await expectChiselError(.invalidParameter) {
            _ = try await pad(try patternImage(2, 2, .rgb), [PadStage.left(1), PadStage.color(text)])
        }
        if let error { #expect(error.node == "n") }
    }

    /// `chisel validate` reports a bad colour before anything runs, on the color parameter.
    @Test(arguments: ["red", "#12", "#gggggg", "", "#+12345"])
    func invalidColourIsAValidationProblem(text: String) throws {
        let problems = try validationProblems(PadStage.self, makeCall(PadStage.self, params: [PadStage.color(text)]))
        #expect(problems.map(\.message) == ["colour \"\(text)\" is not #rrggbb or #rrggbbaa"])
        #expect(problems.map(\.param) == ["color"])
        #expect(problems.map(\.input) == [nil])
        #expect(problems.map(\.code) == [.invalidParameter])
        #expect(try validationProblems(PadStage.self, makeCall(PadStage.self, params: [PadStage.color("#ff8000")])).isEmpty)
    }

    /// `UInt32(_:radix:)` accepts a leading sign; a colour with one must still be rejected.
    @Test(arguments: ["#+12345", "#-00000", "+12345", "#+1234567", "#-0000000"])
    func colourWithASignIsAnError(text: String) async throws {
        let error = await expectChiselError(.invalidParameter) {
            _ = try await pad(try patternImage(2, 2, .rgb), [PadStage.left(1), PadStage.color(text)])
        }
        if let error { #expect(error.node == "n") }
    }

    @Test func maskSizeMismatchIsAnError() async throws {
        await expectChiselError {
            _ = try await pad(try patternImage(3, 2, .rgb), mask: try Mask(width: 2, height: 3, filledWith: 0),
                              [PadStage.left(1)])
        }
    }

    @Test func sizeAboveThePixelLimitIsAnError() async throws {
        await expectChiselError {
            _ = try await pad(try patternImage(3, 2, .rgb), [PadStage.right(7), PadStage.bottom(8)],
                              run: RunInfo(maxPixels: 99))
        }
        let (out, _) = try await pad(try patternImage(3, 2, .rgb), [PadStage.right(7), PadStage.bottom(8)],
                                     run: RunInfo(maxPixels: 100))
        #expect(out.width == 10 && out.height == 10)
    }

    @Test func keepsDepthAndOrigin() async throws {
        var image = try patternImage(3, 2, .rgb)
        image.bitDepth = 16
        image.origin = ImageOrigin(path: "/in/p.png")
        let (out, _) = try await pad(image, [PadStage.left(4)])
        #expect(out.bitDepth == 16 && out.origin == image.origin)
    }
}
