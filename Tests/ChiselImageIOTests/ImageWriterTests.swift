import ChiselCore
import Foundation
import Testing

@testable import ChiselImageIO

@Suite("Image writing")
struct ImageWriterTests {
    @Test("options are validated")
    func optionValidation() throws {
        let image = try Image(width: 2, height: 2, layout: .rgb, filledWith: 0.5)
        for options in [
            ImageEncodeOptions(format: .png, bitDepth: 12), ImageEncodeOptions(format: .png, bitDepth: 1),
            ImageEncodeOptions(format: .png, pngCompressionLevel: 10), ImageEncodeOptions(format: .jpeg, jpegQuality: 0),
            ImageEncodeOptions(format: .jpeg, jpegQuality: 101), ImageEncodeOptions(format: .jpeg, bitDepth: 16),
        ] {
            expectChiselError(.invalidParameter) { _ = try ImageWriter.encode(image, options: options) }
        }
        _ = try ImageWriter.encode(image, options: ImageEncodeOptions(format: .jpeg, bitDepth: 8, jpegQuality: 1))
        _ = try ImageWriter.encode(image, options: ImageEncodeOptions(format: .jpeg, jpegQuality: 100))
    }

    @Test("the image's own depth is the PNG default")
    func defaultDepth() throws {
        let image16 = try Image(width: 2, height: 2, layout: .gray, filledWith: 0.5, bitDepth: 16)
        let image8 = try Image(width: 2, height: 2, layout: .gray, filledWith: 0.5, bitDepth: 8)
        let png16 = try ImageWriter.encode(image16, options: ImageEncodeOptions(format: .png))
        let png8 = try ImageWriter.encode(image8, options: ImageEncodeOptions(format: .png))
        #expect(png16[24] == 16)  // IHDR bit depth byte
        #expect(png8[24] == 8)
        #expect(try ImageReader.decode(png16, name: "a").image.bitDepth == 16)
    }

    /// The sampling byte of the first component in the SOF0 segment: 0x11 is 4:4:4, 0x22 is 4:2:0.
    private func lumaSampling(_ jpeg: Data) throws -> UInt8 {
        let bytes = [UInt8](jpeg)
        let sof = try #require(ByteSurgery.jpegMarker(bytes, 0xC0))
        return bytes[sof + 11]
    }

    @Test("chroma is 4:2:0 below quality 90 and 4:4:4 from 90")
    func chromaSubsampling() throws {
        let image = try ImageReader.read(path: Fixtures.path("baseline.jpg")).image
        #expect(try lumaSampling(ImageWriter.encode(image, options: ImageEncodeOptions(format: .jpeg, jpegQuality: 89))) == 0x22)
        #expect(try lumaSampling(ImageWriter.encode(image, options: ImageEncodeOptions(format: .jpeg, jpegQuality: 90))) == 0x11)
        let small = try ImageWriter.encode(image, options: ImageEncodeOptions(format: .jpeg, jpegQuality: 20))
        let large = try ImageWriter.encode(image, options: ImageEncodeOptions(format: .jpeg, jpegQuality: 100))
        #expect(small.count < large.count)
    }

    @Test("files are written atomically, folders created, format from the extension")
    func writeFiles() throws {
        let folder = try TemporaryFolder()
        let image = try ImageReader.read(path: Fixtures.path("rgba16.png")).image
        let pngPath = folder.root + "/new/deeper/out.png"
        try ImageWriter.write(image, to: pngPath)
        let back = try ImageReader.read(path: pngPath)
        #expect(back.format == .png)
        #expect(back.image.pixels == image.pixels)
        #expect(back.image.origin?.path == pngPath)

        let jpegPath = folder.root + "/out.JPEG"
        try ImageWriter.write(image, to: jpegPath)
        #expect(try ImageReader.read(path: jpegPath).format == .jpeg)

        // Overwriting replaces the file; no temporary files are left behind.
        try ImageWriter.write(image, to: pngPath, options: ImageEncodeOptions(format: .png, bitDepth: 8))
        #expect(try ImageReader.read(path: pngPath).image.bitDepth == 8)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.root + "/new/deeper")
        #expect(names == ["out.png"])
    }

    @Test("write errors name the file")
    func writeErrors() throws {
        let folder = try TemporaryFolder()
        let image = try Image(width: 1, height: 1, layout: .gray)
        let unknown = expectChiselError(.unsupportedFormat) { try ImageWriter.write(image, to: folder.root + "/x.gif") }
        #expect(unknown?.file == folder.root + "/x.gif")

        let bad = expectChiselError(.invalidParameter) {
            try ImageWriter.write(image, to: folder.root + "/x.jpg", options: ImageEncodeOptions(format: .jpeg, jpegQuality: 0))
        }
        #expect(bad?.file == folder.root + "/x.jpg")

        let blocker = folder.root + "/file"
        _ = FileManager.default.createFile(atPath: blocker, contents: Data([1]))
        let io = expectChiselError(.io) { try ImageWriter.write(image, to: blocker + "/x.png") }
        #expect(io?.file == blocker + "/x.png")
    }

    @Test("JPEG refuses sides over 65500 pixels before encoding")
    func jpegSizeLimit() throws {
        let image = try Image(width: 65_501, height: 1, layout: .gray)
        expectChiselError(.imageTooLarge) { _ = try ImageWriter.encode(image, options: ImageEncodeOptions(format: .jpeg)) }
    }
}
