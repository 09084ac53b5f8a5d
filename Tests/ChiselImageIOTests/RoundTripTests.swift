import ChiselCore
import Foundation
import Testing

@testable import ChiselImageIO

@Suite("Round trips")
struct RoundTripTests {
    private func roundTrip(_ image: Image, _ options: ImageEncodeOptions) throws -> DecodedImage {
        try ImageReader.decode(ImageWriter.encode(image, options: options), name: "round-trip")
    }

    @Test("PNG fixtures survive write and read bit for bit at their own depth", arguments: Fixtures.pngNames)
    func fixtureRoundTrip(file: String) throws {
        let original = try ImageReader.read(path: Fixtures.path(file), options: .init(applyOrientation: false)).image
        let again = try roundTrip(original, ImageEncodeOptions(format: .png)).image
        #expect(again.layout == original.layout)
        #expect(again.bitDepth == original.bitDepth)
        #expect(again.width == original.width && again.height == original.height)
        #expect(again.pixels == original.pixels)
        #expect(integerSamples(again, bitDepth: original.bitDepth) == (try Fixtures.entry(file)).samples)
    }

    @Test("every 16-bit value of every layout round-trips exactly", arguments: PixelLayout.allCases)
    func sixteenBitExact(layout: PixelLayout) throws {
        let (w, h) = (37, 29)
        var rng = SplitMix64(seed: UInt64(layout.channels))
        var values = (0..<(w * h * layout.channels)).map { _ in UInt16.random(in: 0...65535, using: &rng) }
        values[0] = 0
        values[1] = 65535
        values[2] = 0x00FF
        values[3] = 0xFF00
        let image = try Image(width: w, height: h, layout: layout, pixels: values.map { Float($0) / 65535 }, bitDepth: 16)
        for level in [0, 9] {
            let decoded = try roundTrip(image, ImageEncodeOptions(format: .png, pngCompressionLevel: level)).image
            #expect(decoded.bitDepth == 16)
            #expect(decoded.layout == layout)
            let planarBack = decoded.pixels.map { UInt16(($0 * 65535).rounded()) }
            #expect(planarBack == values)
        }
    }

    @Test("every 8-bit value of every layout round-trips exactly", arguments: PixelLayout.allCases)
    func eightBitExact(layout: PixelLayout) throws {
        let (w, h) = (16, 16 * layout.channels)
        let values: [UInt8] = (0..<(w * h * layout.channels)).map { (i: Int) -> UInt8 in UInt8(truncatingIfNeeded: i * 7 + i / 256) }
        let image = try Image(width: w, height: h, layout: layout, pixels: values.map { Float($0) / 255 })
        let decoded = try roundTrip(image, ImageEncodeOptions(format: .png)).image
        #expect(decoded.bitDepth == 8)
        #expect(decoded.pixels.map { UInt8(($0 * 255).rounded()) } == values)
    }

    @Test("writing 16-bit data at 8 bits rounds each sample")
    func sixteenToEight() throws {
        let original = try ImageReader.read(path: Fixtures.path("rgba16.png")).image
        let decoded = try roundTrip(original, ImageEncodeOptions(format: .png, bitDepth: 8)).image
        #expect(decoded.bitDepth == 8)
        #expect(integerSamples(decoded, bitDepth: 8) == integerSamples(original, bitDepth: 8))
        let eightToSixteen = try roundTrip(decoded, ImageEncodeOptions(format: .png, bitDepth: 16)).image
        #expect(eightToSixteen.bitDepth == 16)
        #expect(eightToSixteen.pixels == decoded.pixels)
    }

    @Test("out-of-range and NaN samples are clamped")
    func clamping() throws {
        let image = try Image(width: 6, height: 1, layout: .gray, pixels: [-0.5, 1.5, .nan, 0.5, .infinity, -.infinity])
        let decoded = try roundTrip(image, ImageEncodeOptions(format: .png)).image
        #expect(integerSamples(decoded, bitDepth: 8) == [0, 255, 0, 128, 255, 0])
    }

    @Test("JPEG round trips stay within JPEG's loss")
    func jpeg() throws {
        let original = try ImageReader.read(path: Fixtures.path("baseline.jpg")).image
        let decoded = try roundTrip(original, ImageEncodeOptions(format: .jpeg, jpegQuality: 95))
        #expect(decoded.format == .jpeg)
        #expect(decoded.image.layout == .rgb)
        JPEGPattern.check(decoded.image, colors: JPEGPattern.rgb, tolerance: 8)

        let gray = try ImageReader.read(path: Fixtures.path("gray.jpg")).image
        let grayBack = try roundTrip(gray, ImageEncodeOptions(format: .jpeg, jpegQuality: 80)).image
        #expect(grayBack.layout == .gray)
        JPEGPattern.check(grayBack, colors: JPEGPattern.gray, tolerance: 6)
    }

    @Test("a smooth gradient keeps its values through JPEG")
    func jpegGradient() throws {
        let (w, h) = (48, 40)
        var pixels = [Float](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            for x in 0..<w {
                pixels[y * w + x] = Float(x) / Float(w - 1)
                pixels[w * h + y * w + x] = Float(y) / Float(h - 1)
                pixels[2 * w * h + y * w + x] = 0.5
            }
        }
        let image = try Image(width: w, height: h, layout: .rgb, pixels: pixels)
        for quality in [75, 95] {
            let back = try roundTrip(image, ImageEncodeOptions(format: .jpeg, jpegQuality: quality)).image
            let worst = zip(back.pixels, image.pixels).map { abs($0 - $1) }.max() ?? 1
            #expect(worst < 0.05, "quality \(quality): worst difference \(worst)")
        }
    }

    @Test("alpha is dropped when writing JPEG")
    func jpegDropsAlpha() throws {
        let rgba = try ImageReader.read(path: Fixtures.path("rgba8.png")).image
        let back = try roundTrip(rgba, ImageEncodeOptions(format: .jpeg)).image
        #expect(back.layout == .rgb)
        let grayAlpha = try ImageReader.read(path: Fixtures.path("gray_alpha8.png")).image
        #expect(try roundTrip(grayAlpha, ImageEncodeOptions(format: .jpeg)).image.layout == .gray)
    }

    @Test("text round-trips: ASCII, Latin-1, other scripts, long values")
    func text() throws {
        let long = String(repeating: "{\"node\": \"ü\", \"value\": 3}\n", count: 100)
        let cjkLong = String(repeating: "日本語のテキスト ", count: 100)
        let entries: [(key: String, value: String)] = [
            ("Software", "Chisel"), ("Comment", "café ½ €"), ("chisel.graph", "{\"a\": \"日本語 🎨\"}"),
            ("Latin long", long), ("CJK long", cjkLong), ("Empty", ""), ("Ünïcödé key", "x\ny\r\nz"),
        ]
        let image = try Image(width: 3, height: 2, layout: .rgb, filledWith: 0.25)
        let data = try ImageWriter.encode(image, options: ImageEncodeOptions(format: .png, text: entries))
        let decoded = try ImageReader.decode(data, name: "text.png")
        #expect(decoded.text.map(\.key) == entries.map(\.key))
        #expect(decoded.text.map(\.value) == entries.map(\.value))
        // Chunk kinds: ASCII in tEXt, anything else in iTXt (UTF-8), and nothing compressed at any
        // length, so that ComfyUI's reader (which skips compressed chunks) finds every key.
        let bytes = [UInt8](data)
        let chunks = ByteSurgery.pngChunks(bytes).filter { $0.type.hasSuffix("Xt") || $0.type.hasSuffix("XT") }
        #expect(chunks.map(\.type) == ["tEXt", "iTXt", "iTXt", "iTXt", "iTXt", "tEXt", "tEXt"])
        for chunk in chunks where chunk.type == "iTXt" {
            // The keyword, its NUL, then the compression flag: 0.
            let body = bytes[(chunk.offset + 8)..<(chunk.offset + 8 + chunk.length)]
            let flag = body[(body.firstIndex(of: 0) ?? body.startIndex) + 1]
            #expect(flag == 0, "an iTXt chunk is compressed")
        }
    }

    @Test("JPEG carries the infotext in EXIF's UserComment, as AUTOMATIC1111 writes it")
    func jpegInfotext() throws {
        let infotext = "a lake, (oil:1.2), \"quoted\" — 日本 🎨\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, Seed: 7"
        let image = try Image(width: 8, height: 8, layout: .rgb, filledWith: 0.5)
        let data = try ImageWriter.encode(image, options: ImageEncodeOptions(format: .jpeg, text: [("parameters", infotext)]))
        let bytes = [UInt8](data)
        // An APP1 "Exif" segment right after SOI/APP0, big-endian TIFF, UserComment "UNICODE\0" + UTF-16BE.
        let exif = try #require(bytes.indices.first { i in i + 10 < bytes.count && bytes[i] == 0xFF && bytes[i + 1] == 0xE1 })
        #expect(Array(bytes[(exif + 4)..<(exif + 10)]) == Array("Exif".utf8) + [0, 0])
        #expect(Array(bytes[(exif + 10)..<(exif + 12)]) == Array("MM".utf8))
        let unicode = Array("UNICODE".utf8) + [0] + infotext.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        #expect(bytes.firstRange(of: unicode) != nil)
        let decoded = try ImageReader.decode(data, name: "info.jpg")
        #expect(decoded.text.first { $0.key == "parameters" }?.value == infotext)
        // Too long for one APP1 segment: no EXIF rather than a broken one.
        let huge = String(repeating: "x", count: 40_000)
        let plain = try ImageWriter.encode(image, options: ImageEncodeOptions(format: .jpeg, text: [("parameters", huge)]))
        #expect(try ImageReader.decode(plain, name: "huge.jpg").text.isEmpty)
    }

    @Test("bad text keys and values are refused")
    func badText() throws {
        let image = try Image(width: 1, height: 1, layout: .gray)
        for key in ["", String(repeating: "k", count: 80), " lead", "trail ", "dou  ble", "日本", "tab\tkey", "nul\u{0}"] {
            expectChiselError(.invalidParameter) {
                _ = try ImageWriter.encode(image, options: ImageEncodeOptions(format: .png, text: [(key, "v")]))
            }
        }
        expectChiselError(.invalidParameter) {
            _ = try ImageWriter.encode(image, options: ImageEncodeOptions(format: .png, text: [("k", "a\u{0}b")]))
        }
        _ = try ImageWriter.encode(image, options: ImageEncodeOptions(format: .png, text: [(String(repeating: "k", count: 79), "v")]))
    }
}
