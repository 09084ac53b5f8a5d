import ChiselCore
import Foundation
import Testing

@testable import ChiselImageIO

@Suite("PNG decoding")
struct PNGDecodeTests {
    @Test("every PNG kind decodes to the expected samples", arguments: Fixtures.pngNames)
    func decodesExactSamples(file: String) throws {
        let expected = try Fixtures.entry(file)
        let decoded = try ImageReader.read(path: Fixtures.path(file), options: .init(applyOrientation: false))
        let image = decoded.image
        #expect(decoded.format == .png)
        #expect(image.width == expected.width)
        #expect(image.height == expected.height)
        #expect(image.layout.rawValue == expected.layout)
        #expect(image.bitDepth == expected.bitDepth)
        #expect(integerSamples(image, bitDepth: expected.bitDepth) == expected.samples)
    }

    @Test("samples are exactly v / maxValue")
    func samplesAreExactFractions() throws {
        for file in ["rgba16.png", "rgba8.png", "gray1.png"] {
            let expected = try Fixtures.entry(file)
            let image = try ImageReader.read(path: Fixtures.path(file)).image
            let maxValue = Float((1 << expected.bitDepth) - 1)
            let planar = integerSamples(image, bitDepth: expected.bitDepth)
            #expect(planar == expected.samples)
            let n = image.planeSize
            for c in 0..<image.channels {
                for i in 0..<n {
                    #expect(image.pixels[c * n + i] == Float(expected.samples[i * image.channels + c]) / maxValue)
                }
            }
        }
    }

    @Test("tEXt, zTXt and iTXt chunks come back in order, before and after IDAT")
    func readsTextChunks() throws {
        let manifest = try Fixtures.manifest()
        let decoded = try ImageReader.read(path: Fixtures.path(manifest.texts.file))
        #expect(decoded.text.map(\.key) == manifest.texts.entries.map { $0[0] })
        #expect(decoded.text.map(\.value) == manifest.texts.entries.map { $0[1] })
        #expect(decoded.text(forKey: "chisel.graph") == "{\"nodes\":[\"日本語\",\"ü\"]}")
        #expect(decoded.text(forKey: "Comment") == "café über ½")
        #expect(decoded.text(forKey: "missing") == nil)
    }

    @Test("eXIf orientation is applied to PNGs too")
    func appliesPNGExifOrientation() throws {
        let path = try Fixtures.path("exif_orientation6.png")
        let stored = try ImageReader.read(path: path, options: .init(applyOrientation: false))
        #expect(stored.orientation == 6)
        #expect(!stored.orientationApplied)
        #expect(stored.image.width == 4 && stored.image.height == 3)
        let upright = try ImageReader.read(path: path)
        #expect(upright.orientationApplied)
        #expect(upright.image.width == 3 && upright.image.height == 4)
        // Orientation 6: the stored first row is the right-hand column, read top to bottom.
        for y in 0..<4 {
            #expect(pixel8(upright.image, 2, y) == pixel8(stored.image, y, 0))
            #expect(pixel8(upright.image, 0, y) == pixel8(stored.image, y, 2))
        }
    }

    @Test("read sets the absolute origin; decode leaves it empty")
    func origin() throws {
        let path = try Fixtures.path("rgb8.png")
        let read = try ImageReader.read(path: path)
        #expect(read.image.origin == ImageOrigin(path: URL(fileURLWithPath: path).standardizedFileURL.path))
        #expect(read.image.origin?.stem == "rgb8")
        let decoded = try ImageReader.decode(Fixtures.data("rgb8.png"), name: "memory")
        #expect(decoded.image.origin == nil)
        #expect(decoded.image == read.image.withOrigin(nil))
    }

    @Test("a relative path gets an absolute, normalised origin")
    func relativeOrigin() throws {
        // Built against the current folder rather than by changing it: tests run in parallel.
        let target = URL(fileURLWithPath: try Fixtures.path("gray8.png")).standardizedFileURL.pathComponents
        let here = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).standardizedFileURL.pathComponents
        let common = zip(target, here).prefix { $0 == $1 }.count
        let relative = (Array(repeating: "..", count: here.count - common) + ["."] + target[common...])
            .joined(separator: "/")
        let decoded = try ImageReader.read(path: relative)
        #expect(decoded.image.origin?.path == "/" + target.dropFirst().joined(separator: "/"))
        #expect(FileBytes.absolutePath("a/./b/../c.png")
            == URL(fileURLWithPath: FileManager.default.currentDirectoryPath).standardizedFileURL.path + "/a/c.png")
    }

    @Test("a bad CRC on an ancillary chunk is a warning, not an error")
    func ancillaryCRCIsAWarning() throws {
        var png = [UInt8](try Fixtures.data("text.png"))
        let text = try #require(ByteSurgery.pngChunks(png).first { $0.type == "tEXt" })
        png[text.offset + 8] ^= 0x20
        let decoded = try ImageReader.decode(Data(png), name: "crc.png")
        #expect(!decoded.warnings.isEmpty)
        #expect(decoded.text(forKey: "Title") == nil)
        #expect(decoded.image.width == 4)
    }
}

extension Image {
    /// The same image with another origin, for comparisons.
    func withOrigin(_ origin: ImageOrigin?) -> Image {
        var copy = self
        copy.origin = origin
        return copy
    }
}
