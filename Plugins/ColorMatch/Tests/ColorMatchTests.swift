import ChiselCore
import ColorMatch
import Foundation
import Testing

// MARK: - An independent CIELAB implementation (Double, sRGB, D65)

enum Lab {
    static let white = (x: 0.95047, y: 1.0, z: 1.08883)
    static let epsilon = 216.0 / 24389 // (6/29)^3
    static let kappa = 24389.0 / 27

    static func linear(_ v: Double) -> Double { v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4) }
    static func encoded(_ v: Double) -> Double { v <= 0.0031308 ? 12.92 * v : 1.055 * pow(v, 1 / 2.4) - 0.055 }

    /// sRGB in [0, 1] to (L, a, b).
    static func fromRGB(_ r: Double, _ g: Double, _ b: Double) -> [Double] {
        let (lr, lg, lb) = (linear(r), linear(g), linear(b))
        let x = 0.4124564 * lr + 0.3575761 * lg + 0.1804375 * lb
        let y = 0.2126729 * lr + 0.7151522 * lg + 0.0721750 * lb
        let z = 0.0193339 * lr + 0.1191920 * lg + 0.9503041 * lb
        func f(_ t: Double) -> Double { t > epsilon ? cbrt(t) : (kappa * t + 16) / 116 }
        let (fx, fy, fz) = (f(x / white.x), f(y / white.y), f(z / white.z))
        return [116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)]
    }

    /// (L, a, b) to sRGB, unclamped, so a test can see whether it is in gamut.
    static func toRGB(_ L: Double, _ a: Double, _ b: Double) -> [Double] {
        let fy = (L + 16) / 116, fx = fy + a / 500, fz = fy - b / 200
        func finv(_ t: Double) -> Double { t * t * t > epsilon ? t * t * t : (116 * t - 16) / kappa }
        let (x, y, z) = (finv(fx) * white.x, finv(fy) * white.y, finv(fz) * white.z)
        let lr = 3.2404542 * x - 1.5371385 * y - 0.4985314 * z
        let lg = -0.9692660 * x + 1.8760108 * y + 0.0415560 * z
        let lb = 0.0556434 * x - 0.2040259 * y + 1.0572252 * z
        return [lr, lg, lb].map { $0 < 0 ? -encoded(-$0) : encoded($0) }
    }

    /// Per-channel mean and (population) standard deviation of an image's CIELAB values.
    static func statistics(_ image: Image) -> [(mean: Double, std: Double)] {
        let rgb = image.converted(to: .rgb)
        let n = rgb.planeSize
        let values = (0..<n).map { i in
            fromRGB(Double(rgb.pixels[i]), Double(rgb.pixels[n + i]), Double(rgb.pixels[2 * n + i]))
        }
        return (0..<3).map { c in
            let mean = values.reduce(0) { $0 + $1[c] } / Double(n)
            let variance = values.reduce(0) { $0 + ($1[c] - mean) * ($1[c] - mean) } / Double(n)
            return (mean, variance.squareRoot())
        }
    }
}

// MARK: - Helpers

func colorMatch(_ image: Image, reference: Image, strength: Double? = nil) async throws -> Image {
    var params: [ParamSetting] = []
    if let strength { params.append(ColorMatchStage.strength(strength)) }
    let context = StageContext(node: "match", run: RunInfo(), files: FileLedger(), events: { _ in })
    let call = StageCall(ColorMatchStage.self, node: "match", params: params,
                         inputs: [ColorMatchStage.image(image), ColorMatchStage.reference(reference)], context: context)
    let outputs = try await ColorMatchStage.run(call)
    #expect(Set(outputs.values.keys) == ["image"])
    guard let out = outputs[ColorMatchStage.matched] else { throw ChiselError(.internal, "no image output") }
    #expect(out.width == image.width && out.height == image.height && out.layout == image.layout)
    return out
}

/// An RGB image of `width`×`height` from a function giving each pixel's (L, a, b); every
/// sample must be well inside [0, 1] so nothing clips.
func labImage(_ width: Int, _ height: Int, _ layout: PixelLayout = .rgb,
              _ lab: (Int, Int) -> (Double, Double, Double)) throws -> Image {
    let n = width * height
    var pixels = [Float](repeating: 1, count: n * layout.channels)
    for i in 0..<n {
        let (L, a, b) = lab(i % width, i / width)
        let rgb = Lab.toRGB(L, a, b)
        #expect(rgb.allSatisfy { $0 > 0.02 && $0 < 0.98 }, "Lab (\(L), \(a), \(b)) is out of gamut: \(rgb)")
        for c in 0..<3 { pixels[c * n + i] = Float(rgb[c]) }
    }
    return try Image(width: width, height: height, layout: layout, pixels: pixels)
}

func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

@Suite struct ColorMatchTests {
    /// A cool, dim, low-contrast source.
    static func source(_ layout: PixelLayout = .rgb) throws -> Image {
        try labImage(24, 16, layout) { x, y in
            (42 + 10 * sin(Double(x) * 0.4) + 0.3 * Double(y), -6 + 5 * cos(Double(y) * 0.5), -12 + 0.4 * Double(x))
        }
    }

    /// A warm, brighter, contrastier reference of another size and another pattern.
    static func reference() throws -> Image {
        try labImage(19, 13) { x, y in
            (58 + 14 * cos(Double(x + 2 * y) * 0.3), 9 + 0.6 * Double(y) - 0.2 * Double(x), 14 + 6 * sin(Double(x) * 0.7))
        }
    }

    @Test func fullStrengthMatchesTheReferencesLabStatistics() async throws {
        let source = try Self.source(), reference = try Self.reference()
        let before = Lab.statistics(source), target = Lab.statistics(reference)
        // The images really differ to begin with.
        #expect(abs(before[0].mean - target[0].mean) > 10 && abs(before[1].mean - target[1].mean) > 10)
        #expect(abs(before[0].std - target[0].std) > 2)
        let out = try await colorMatch(source, reference: reference, strength: 1)
        // Nothing clipped, so the statistics can match.
        #expect(out.pixels.allSatisfy { $0 > 0 && $0 < 1 })
        let after = Lab.statistics(out)
        // 1% of each channel's range: L 0...100, a and b about -100...100.
        let tolerance = [1.0, 2.0, 2.0]
        for c in 0..<3 {
            #expect(abs(after[c].mean - target[c].mean) <= tolerance[c], "channel \(c) mean \(after[c].mean) vs \(target[c].mean)")
            #expect(abs(after[c].std - target[c].std) <= tolerance[c], "channel \(c) std \(after[c].std) vs \(target[c].std)")
        }
        // And tighter than the tolerance in practice.
        for c in 0..<3 {
            #expect(abs(after[c].mean - target[c].mean) <= 0.05 && abs(after[c].std - target[c].std) <= 0.05, "channel \(c)")
        }
    }

    @Test func matchingAnAffineLabTransformRecoversItPixelByPixel() async throws {
        func lab(_ x: Int, _ y: Int) -> (Double, Double, Double) {
            (45 + 8 * sin(Double(x) * 0.5 + Double(y) * 0.2), 3 * cos(Double(x * y) * 0.1), -4 + 0.3 * Double(x - y))
        }
        let source = try labImage(16, 12) { x, y in lab(x, y) }
        let reference = try labImage(16, 12) { x, y in
            let (L, a, b) = lab(x, y)
            return (1.3 * (L - 45) + 55, 0.7 * a + 10, 1.5 * b + 6)
        }
        let out = try await colorMatch(source, reference: reference)
        #expect(maxDifference(out.pixels, reference.pixels) <= 2e-3)
    }

    @Test func strengthZeroReturnsTheInput() async throws {
        for layout in PixelLayout.allCases {
            let source = try Self.source(.rgb)
            let input = layout == .rgb ? source : source.converted(to: layout)
            let out = try await colorMatch(input, reference: try Self.reference(), strength: 0)
            #expect(out.layout == layout)
            #expect(maxDifference(out.pixels, input.pixels) <= 1e-4, "\(layout)")
        }
    }

    @Test func strengthZeroRoundTripsDarkAndBrightColours() async throws {
        // Including the sRGB and CIELAB linear segments near black.
        let values: [Float] = [0, 0.001, 0.01, 0.04, 0.05, 0.2, 0.5, 0.8, 0.99, 1]
        let n = values.count
        let image = try Image(width: n, height: n, layout: .rgb, pixels: (0..<3).flatMap { c in
            (0..<(n * n)).map { i in c == 0 ? values[i % n] : c == 1 ? values[i / n] : values[(i + c) % n] }
        })
        let out = try await colorMatch(image, reference: try Self.reference(), strength: 0)
        #expect(maxDifference(out.pixels, image.pixels) <= 1e-4)
    }

    @Test func halfStrengthMovesTheMeansHalfway() async throws {
        let source = try Self.source(), reference = try Self.reference()
        let before = Lab.statistics(source), target = Lab.statistics(reference)
        let after = Lab.statistics(try await colorMatch(source, reference: reference, strength: 0.5))
        for c in 0..<3 {
            let halfway = (before[c].mean + target[c].mean) / 2
            #expect(abs(after[c].mean - halfway) <= 0.05, "channel \(c)")
            let halfStd = (before[c].std + target[c].std) / 2
            #expect(abs(after[c].std - halfStd) <= 0.05, "channel \(c)")
        }
    }

    @Test(arguments: [PixelLayout.rgba, .grayAlpha])
    func alphaIsPreservedExactly(layout: PixelLayout) async throws {
        var input = try Self.source(.rgba).converted(to: layout)
        let n = input.planeSize
        let alpha = (0..<n).map { i in Float((i * 37) % 256) / 255 }
        input.pixels.replaceSubrange(input.planeRange(layout.channels - 1), with: alpha)
        for strength in [0.0, 0.6, 1.0] {
            let out = try await colorMatch(input, reference: try Self.reference(), strength: strength)
            #expect(out.layout == layout)
            #expect(Array(out.pixels[out.planeRange(layout.channels - 1)]).map(\.bitPattern) == alpha.map(\.bitPattern))
        }
    }

    @Test func referenceAlphaDoesNotLeakIntoTheOutput() async throws {
        var reference = try Self.reference().converted(to: .rgba)
        reference.pixels.replaceSubrange(reference.planeRange(3), with: repeatElement(0.25, count: reference.planeSize))
        let out = try await colorMatch(try Self.source(), reference: reference)
        #expect(out.layout == .rgb)
        let plain = try await colorMatch(try Self.source(), reference: try Self.reference())
        #expect(out.pixels == plain.pixels)
    }

    @Test func grayInputStaysGrayAndTakesTheReferencesLightness() async throws {
        let gray = try Self.source().converted(to: .gray)
        let reference = try Self.reference()
        let out = try await colorMatch(gray, reference: reference)
        #expect(out.layout == .gray)
        #expect(out.pixels.allSatisfy { $0 > 0 && $0 < 1 })
        let after = Lab.statistics(out), target = Lab.statistics(reference)
        #expect(abs(after[0].mean - target[0].mean) <= 1, "L mean \(after[0].mean) vs \(target[0].mean)")
        #expect(abs(after[0].std - target[0].std) <= 1, "L std \(after[0].std) vs \(target[0].std)")
        // Still neutral: no colour comes from the reference.
        #expect(abs(after[1].mean) < 0.5 && abs(after[2].mean) < 0.5)
        // Gray with alpha keeps its layout and alpha too.
        var grayAlpha = gray.converted(to: .grayAlpha)
        grayAlpha.pixels.replaceSubrange(grayAlpha.planeRange(1), with: repeatElement(0.5, count: gray.planeSize))
        let outAlpha = try await colorMatch(grayAlpha, reference: reference)
        #expect(outAlpha.layout == .grayAlpha)
        #expect(Array(outAlpha.pixels[outAlpha.planeRange(1)]).allSatisfy { $0 == 0.5 })
        #expect(maxDifference(Array(outAlpha.pixels[outAlpha.planeRange(0)]), out.pixels) <= 1e-6)
    }

    @Test func constantSourceTakesTheReferencesMean() async throws {
        let flat = try labImage(6, 5) { _, _ in (50, 0, 0) }
        let reference = try Self.reference()
        let out = try await colorMatch(flat, reference: reference)
        let target = Lab.statistics(reference), after = Lab.statistics(out)
        for c in 0..<3 {
            #expect(abs(after[c].mean - target[c].mean) <= 0.05, "channel \(c)")
            #expect(after[c].std < 0.01)
        }
    }

    @Test func matchingAnImageToItselfChangesNothing() async throws {
        let source = try Self.source()
        let out = try await colorMatch(source, reference: source)
        #expect(maxDifference(out.pixels, source.pixels) <= 1e-4)
    }

    @Test func keepsDepthAndOrigin() async throws {
        var source = try Self.source()
        source.bitDepth = 16
        source.origin = ImageOrigin(path: "/in/p.png")
        let out = try await colorMatch(source, reference: try Self.reference())
        #expect(out.bitDepth == 16 && out.origin == source.origin)
    }

    @Test func registersOnce() throws {
        var registry = StageRegistry()
        try ColorMatch.register(in: &registry)
        #expect(registry.schemas.map(\.name) == ["color_match"])
        #expect(throws: ChiselError.self) { try ColorMatch.register(in: &registry) }
        let strength = try #require(ColorMatchStage.schema.param("strength"))
        #expect(strength.defaultValue == .float(1))
        #expect(strength.range == 0...1)
    }
}
