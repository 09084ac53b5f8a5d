import ChiselCore
import Foundation
import Testing

@testable import ChiselImageIO

/// The pattern drawn by tools/image_fixtures/make_jpeg_fixtures.c: four solid quadrants of 64×32.
enum JPEGPattern {
    static let width = 64, height = 32
    static let rgb: [[Int]] = [[220, 30, 30], [30, 200, 60], [40, 60, 210], [230, 220, 40]]
    static let gray: [[Int]] = [[30], [100], [170], [240]]
    /// What the CMYK inks cyan, magenta, yellow and 50% black look like in RGB.
    static let cmykAsRGB: [[Int]] = [[0, 255, 255], [255, 0, 255], [255, 255, 0], [128, 128, 128]]

    /// Checks every pixel at least `margin` pixels away from a quadrant edge against `colors`.
    static func check(_ image: Image, colors: [[Int]], tolerance: Int, margin: Int = 3,
                      sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(image.width == width && image.height == height, sourceLocation: sourceLocation)
        guard image.width == width, image.height == height else { return }
        var worst = 0
        for y in 0..<height where y < height / 2 - margin || y >= height / 2 + margin {
            for x in 0..<width where x < width / 2 - margin || x >= width / 2 + margin {
                let quadrant = (y >= height / 2 ? 2 : 0) + (x >= width / 2 ? 1 : 0)
                for (c, value) in pixel8(image, x, y).enumerated() {
                    worst = max(worst, abs(value - colors[quadrant][c]))
                }
            }
        }
        #expect(worst <= tolerance, "largest difference \(worst)", sourceLocation: sourceLocation)
    }
}

@Suite("JPEG decoding")
struct JPEGDecodeTests {
    @Test("baseline RGB")
    func baseline() throws {
        let decoded = try ImageReader.read(path: Fixtures.path("baseline.jpg"))
        #expect(decoded.format == .jpeg)
        #expect(decoded.image.layout == .rgb)
        #expect(decoded.image.bitDepth == 8)
        #expect(decoded.orientation == 1)
        #expect(decoded.text.isEmpty)
        JPEGPattern.check(decoded.image, colors: JPEGPattern.rgb, tolerance: 6)
    }

    @Test("progressive with 4:2:0 chroma")
    func progressive() throws {
        let image = try ImageReader.read(path: Fixtures.path("progressive.jpg")).image
        #expect(image.layout == .rgb)
        JPEGPattern.check(image, colors: JPEGPattern.rgb, tolerance: 12, margin: 5)
    }

    @Test("grayscale stays gray")
    func grayscale() throws {
        let image = try ImageReader.read(path: Fixtures.path("gray.jpg")).image
        #expect(image.layout == .gray)
        JPEGPattern.check(image, colors: JPEGPattern.gray, tolerance: 4)
    }

    @Test("CMYK and YCCK become RGB", arguments: ["cmyk_adobe.jpg", "ycck_adobe.jpg", "cmyk_plain.jpg"])
    func cmyk(file: String) throws {
        let image = try ImageReader.read(path: Fixtures.path(file)).image
        #expect(image.layout == .rgb)
        JPEGPattern.check(image, colors: JPEGPattern.cmykAsRGB, tolerance: 8)
    }

    @Test("EXIF orientation makes the picture upright", arguments: 1...8)
    func orientation(value: Int) throws {
        let path = try Fixtures.path("orientation_\(value).jpg")
        let decoded = try ImageReader.read(path: path)
        #expect(decoded.orientation == value)
        #expect(decoded.orientationApplied == (value != 1))
        JPEGPattern.check(decoded.image, colors: JPEGPattern.rgb, tolerance: 8)

        let stored = try ImageReader.read(path: path, options: .init(applyOrientation: false))
        #expect(stored.orientation == value)
        #expect(!stored.orientationApplied)
        let swapped = value >= 5
        #expect(stored.image.width == (swapped ? 32 : 64))
        #expect(stored.image.height == (swapped ? 64 : 32))
    }

    @Test("a corrupt EXIF block is ignored")
    func corruptExifFixture() throws {
        let decoded = try ImageReader.read(path: Fixtures.path("exif_corrupt.jpg"))
        #expect(decoded.orientation == 1)
        JPEGPattern.check(decoded.image, colors: JPEGPattern.rgb, tolerance: 6)
    }

    @Test("EXIF blocks of every shape are read or ignored, never fatal")
    func injectedExif() throws {
        let jpeg = [UInt8](try Fixtures.data("baseline.jpg"))
        let exif = Array("Exif\0\0".utf8)
        let cases: [(payload: [UInt8], orientation: Int)] = [
            (exif + ByteSurgery.tiff(byteOrder: "MM", value: 3), 3),
            (exif + ByteSurgery.tiff(byteOrder: "II", value: 3), 3),
            (exif + ByteSurgery.tiff(byteOrder: "II", type: 4, value: 3), 3),  // LONG instead of SHORT
            (exif + ByteSurgery.tiff(byteOrder: "MM", value: 0), 1),
            (exif + ByteSurgery.tiff(byteOrder: "MM", value: 9), 1),
            (exif + ByteSurgery.tiff(byteOrder: "MM", type: 2, value: 3), 1),  // ASCII type
            (exif + ByteSurgery.tiff(byteOrder: "MM", count: 0, value: 3), 1),
            (exif + ByteSurgery.tiff(byteOrder: "XX", value: 3), 1),
            (exif + Array(ByteSurgery.tiff(byteOrder: "II", value: 3).prefix(19)), 1),  // cut inside the value
            (exif + [0x4D, 0x4D, 0x00, 0x2A, 0x00, 0x00, 0x00, 0x08, 0xFF, 0xFF], 1),  // 65535 entries, none there
            (exif + [0x49, 0x49, 0x2A, 0x00, 0xF8, 0xFF, 0xFF, 0xFF], 1),  // IFD offset near 4 GiB
            (exif, 1),
            (Array("Exif".utf8), 1),
            (Array("http://ns.adobe.com/xap/1.0/\0<x/>".utf8), 1),  // XMP, not EXIF
        ]
        for (payload, orientation) in cases {
            let decoded = try ImageReader.decode(Data(ByteSurgery.jpegWithAPP1(jpeg, payload: payload)), name: "x.jpg")
            #expect(decoded.orientation == orientation, "payload \(payload)")
        }
    }

    @Test("random damage to an EXIF block never stops the image from loading")
    func fuzzedExif() throws {
        let jpeg = [UInt8](try Fixtures.data("baseline.jpg"))
        let good = Array("Exif\0\0".utf8) + ByteSurgery.tiff(byteOrder: "MM", value: 6)
        var rng = SplitMix64(seed: 7)
        for _ in 0..<300 {
            var payload = good
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                payload[Int.random(in: 6..<payload.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            payload = Array(payload.prefix(Int.random(in: 6...payload.count, using: &rng)))
            let decoded = try ImageReader.decode(Data(ByteSurgery.jpegWithAPP1(jpeg, payload: payload)), name: "fuzz.jpg")
            #expect((1...8).contains(decoded.orientation))
            let swapped = (5...8).contains(decoded.orientation)
            #expect(decoded.image.width == (swapped ? 32 : 64))
        }
    }

    @Test("junk between marker segments is a warning, not an error")
    func extraneousBytesWarn() throws {
        var jpeg = [UInt8](try Fixtures.data("baseline.jpg"))
        let dqt = try #require(ByteSurgery.jpegMarker(jpeg, 0xDB))
        jpeg.insert(contentsOf: [0x00, 0x11, 0x22], at: dqt)
        let decoded = try ImageReader.decode(Data(jpeg), name: "junk.jpg")
        #expect(decoded.warnings.first?.contains("extraneous bytes") == true, "\(decoded.warnings)")
        JPEGPattern.check(decoded.image, colors: JPEGPattern.rgb, tolerance: 6)
    }

    @Test("decoders run safely in parallel")
    func parallelDecoding() async throws {
        let files = ["baseline.jpg", "progressive.jpg", "cmyk_adobe.jpg", "rgba16.png", "interlaced_rgb16.png", "text.png"]
        let serial = try files.map { try ImageReader.decode(Fixtures.data($0), name: $0).image }
        let data = try files.map { try Fixtures.data($0) }
        try await withThrowingTaskGroup(of: (Int, Image).self) { group in
            for round in 0..<8 {
                for (index, bytes) in data.enumerated() {
                    group.addTask { (index, try ImageReader.decode(bytes, name: "\(round)").image) }
                }
            }
            for try await (index, image) in group { #expect(image == serial[index]) }
        }
    }
}
