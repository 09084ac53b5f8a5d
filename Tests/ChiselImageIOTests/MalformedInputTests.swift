import ChiselCore
import Foundation
import Testing

@testable import ChiselImageIO

@Suite("Malformed input")
struct MalformedInputTests {
    private func decode(_ bytes: [UInt8], name: String = "bad.png", maxPixels: Int = 100_000_000) throws {
        _ = try ImageReader.decode(Data(bytes), name: name, options: .init(maxPixels: maxPixels))
    }

    @Test("a PNG cut anywhere is a truncated PNG", arguments: ["rgb8.png", "interlaced_rgb16.png", "text.png"])
    func truncatedPNG(file: String) throws {
        let png = [UInt8](try Fixtures.data(file))
        for length in 1..<png.count {
            let error = expectChiselError(.invalidImage) { try decode(Array(png.prefix(length)), name: "cut.png") }
            #expect(error?.message == "truncated PNG data", "cut at \(length): \(error.map { "\($0)" } ?? "")")
            #expect(error?.file == "cut.png")
        }
    }

    @Test("flipped bytes in IDAT and a bad IDAT CRC are errors")
    func corruptIDAT() throws {
        let good = [UInt8](try Fixtures.data("rgb8.png"))
        let idat = try #require(ByteSurgery.pngChunks(good).first { $0.type == "IDAT" })
        // zlib notices first (its checksum), before libpng reaches the chunk CRC.
        var data = good
        data[idat.offset + 8 + idat.length / 2] ^= 0xFF
        let dataError = expectChiselError(.invalidImage) { try decode(data) }
        #expect(dataError?.message == "corrupt PNG data")
        #expect(dataError?.cause?.isEmpty == false)

        var crc = good
        crc[idat.offset + 8 + idat.length + 3] ^= 0x01
        let crcError = expectChiselError(.invalidImage) { try decode(crc) }
        #expect(crcError?.cause?.contains("CRC") == true, "\(crcError.map { "\($0)" } ?? "")")
    }

    @Test("damaged deflate data with a correct CRC is still caught")
    func corruptDeflateWithValidCRC() throws {
        let good = [UInt8](try Fixtures.data("rgb8.png"))
        let idat = try #require(ByteSurgery.pngChunks(good).first { $0.type == "IDAT" })
        // Flipping the last byte changes the Adler-32 checksum at the end of the zlib stream.
        var png = good
        png[idat.offset + 8 + idat.length - 1] ^= 0x5A
        ByteSurgery.fixCRC(&png, chunkAt: idat.offset)
        expectChiselError(.invalidImage) { try decode(png) }
        // Every other single-byte damage must either fail cleanly or give an image of the right size.
        for position in 0..<idat.length {
            var damaged = good
            damaged[idat.offset + 8 + position] ^= 0x5A
            ByteSurgery.fixCRC(&damaged, chunkAt: idat.offset)
            do {
                let decoded = try ImageReader.decode(Data(damaged), name: "x.png")
                #expect(decoded.image.width == 7 && decoded.image.height == 5)
            } catch let error as ChiselError {
                #expect(error.code == .invalidImage)
            }
        }
    }

    @Test("a bad IHDR CRC is an error")
    func badHeaderCRC() throws {
        var png = [UInt8](try Fixtures.data("gray8.png"))
        png[29] ^= 0x01  // last byte of the IHDR CRC
        let error = expectChiselError(.invalidImage) { try decode(png) }
        #expect(error?.message == "corrupt PNG data")
    }

    /// Width, height, bit depth, colour type: zero sizes, a 3-bit depth, colour type 5, 16-bit palette.
    @Test("invalid IHDR fields are errors", arguments: [[0, 5, 8, 2], [7, 0, 8, 2], [7, 5, 3, 2], [7, 5, 8, 5], [7, 5, 16, 3]])
    func invalidHeader(fields: [Int]) throws {
        let png = ByteSurgery.pngWithHeader(width: UInt32(fields[0]), height: UInt32(fields[1]),
                                            bitDepth: UInt8(fields[2]), colorType: UInt8(fields[3]),
                                            from: [UInt8](try Fixtures.data("rgb8.png")))
        expectChiselError(.invalidImage) { try decode(png) }
    }

    @Test("a 100000×100000 header fails from the header, before allocating")
    func hugePNG() throws {
        let good = [UInt8](try Fixtures.data("rgba16.png"))
        let png = ByteSurgery.pngWithHeader(width: 100_000, height: 100_000, bitDepth: 16, colorType: 6, from: good)
        let error = expectChiselError(.imageTooLarge) { try decode(png, name: "big.png") }
        #expect(error?.description
            == "big.png: image is 100000×100000 pixels, above the limit of 100000000 pixels (set a higher pixel limit to read it)")
    }

    @Test("sizes whose byte count overflows are refused even without a limit")
    func overflowingPNG() throws {
        let good = [UInt8](try Fixtures.data("rgba16.png"))
        let png = ByteSurgery.pngWithHeader(width: 0x7FFF_FFFF, height: 0x7FFF_FFFF, bitDepth: 16, colorType: 6,
                                            from: good)
        expectChiselError(.imageTooLarge) { try decode(png, maxPixels: Int.max) }
    }

    @Test("the pixel limit is checked for PNG and JPEG", arguments: ["rgb8.png", "baseline.jpg", "progressive.jpg"])
    func smallPixelLimit(file: String) throws {
        let data = try Fixtures.data(file)
        let size = try ImageReader.decode(data, name: file).image.planeSize
        _ = try ImageReader.decode(data, name: file, options: .init(maxPixels: size))
        let error = expectChiselError(.imageTooLarge) {
            _ = try ImageReader.decode(data, name: file, options: .init(maxPixels: size - 1))
        }
        #expect(error?.message.contains("above the limit of \(size - 1) pixels") == true)
        expectChiselError(.invalidParameter) { _ = try ImageReader.decode(data, name: file, options: .init(maxPixels: 0)) }
    }

    @Test("a JPEG cut anywhere is an error", arguments: ["baseline.jpg", "progressive.jpg", "gray.jpg", "cmyk_adobe.jpg"])
    func truncatedJPEG(file: String) throws {
        let jpeg = [UInt8](try Fixtures.data(file))
        for length in 1..<jpeg.count {
            let error = expectChiselError(.invalidImage) {
                _ = try ImageReader.decode(Data(jpeg.prefix(length)), name: "cut.jpg")
            }
            #expect(error?.message == "truncated JPEG data", "cut at \(length): \(error.map { "\($0)" } ?? "")")
        }
    }

    @Test("a JPEG header declaring 60000×60000 fails before allocating")
    func hugeJPEG() throws {
        var jpeg = [UInt8](try Fixtures.data("baseline.jpg"))
        let sof = try #require(ByteSurgery.jpegMarker(jpeg, 0xC0))
        // SOF: FF C0, length (2), precision (1), height (2), width (2).
        jpeg.replaceSubrange((sof + 5)..<(sof + 9), with: [0xEA, 0x60, 0xEA, 0x60])
        let error = expectChiselError(.imageTooLarge) { _ = try ImageReader.decode(Data(jpeg), name: "big.jpg") }
        #expect(error?.message.hasPrefix("image is 60000×60000 pixels") == true)
    }

    @Test("damaged JPEG headers are errors")
    func corruptJPEGHeaders() throws {
        let good = [UInt8](try Fixtures.data("baseline.jpg"))
        let sof = try #require(ByteSurgery.jpegMarker(good, 0xC0))
        let dht = try #require(ByteSurgery.jpegMarker(good, 0xC4))

        var precision = good
        precision[sof + 4] = 12
        expectChiselError(.unsupportedFormat) { _ = try ImageReader.decode(Data(precision), name: "x.jpg") }

        var zeroHeight = good
        zeroHeight.replaceSubrange((sof + 5)..<(sof + 7), with: [0, 0])
        expectChiselError(.invalidImage) { _ = try ImageReader.decode(Data(zeroHeight), name: "x.jpg") }

        var components = good
        components[sof + 9] = 0
        expectChiselError(.invalidImage) { _ = try ImageReader.decode(Data(components), name: "x.jpg") }

        var table = good
        for i in (dht + 5)..<(dht + 21) { table[i] = 0xFF }  // Huffman code counts far too large
        expectChiselError(.invalidImage) { _ = try ImageReader.decode(Data(table), name: "x.jpg") }

        let garbage = [0xFF, 0xD8, 0xFF, 0xC0] + [UInt8](repeating: 0x42, count: 200)
        expectChiselError(.invalidImage) { _ = try ImageReader.decode(Data(garbage), name: "x.jpg") }
    }

    @Test("damaged JPEG scan data fails cleanly or decodes at the right size")
    func corruptJPEGScan() throws {
        let good = [UInt8](try Fixtures.data("progressive.jpg"))
        var rng = SplitMix64(seed: 3)
        var failures = 0
        for _ in 0..<300 {
            var jpeg = good
            for _ in 0..<3 { jpeg[Int.random(in: 2..<(jpeg.count - 2), using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            do {
                let decoded = try ImageReader.decode(Data(jpeg), name: "x.jpg")
                #expect(decoded.image.planeSize > 0)
            } catch let error as ChiselError {
                failures += 1
                #expect([.invalidImage, .unsupportedFormat, .imageTooLarge].contains(error.code), "\(error)")
            }
        }
        #expect(failures > 0)
    }

    @Test("a progressive JPEG with thousands of scans is refused")
    func tooManyScans() throws {
        let jpeg = [UInt8](try Fixtures.data("progressive.jpg"))
        // Repeat the last scan (from its SOS to just before EOI) until there are over 1000.
        let lastSOS = try #require((0..<(jpeg.count - 1)).last { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xDA })
        let scan = jpeg[lastSOS..<(jpeg.count - 2)]
        var bomb = Array(jpeg[..<(jpeg.count - 2)])
        for _ in 0..<1100 { bomb += scan }
        bomb += [0xFF, 0xD9]
        let error = expectChiselError(.invalidImage) { _ = try ImageReader.decode(Data(bomb), name: "scans.jpg") }
        #expect(error?.cause?.contains("1000 scans") == true)
    }

    @Test("bytes that are not an image are an unsupported format")
    func randomBytes() throws {
        var rng = SplitMix64(seed: 11)
        for count in [1, 2, 7, 8, 100, 4096] {
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            bytes[0] = 0x42  // neither 0x89 nor 0xFF, so no signature prefix
            let error = expectChiselError(.unsupportedFormat) { try decode(bytes, name: "random.png") }
            #expect(error?.message == "not a PNG or JPEG file")
            #expect(error?.file == "random.png")
        }
        let gif = expectChiselError(.unsupportedFormat) { try decode(Array("GIF89a\u{1}\u{0}".utf8), name: "a.png") }
        #expect(gif?.cause == "it looks like a GIF file")
    }

    @Test("empty data and signature-only files")
    func emptyAndTiny() throws {
        let empty = expectChiselError(.invalidImage) { try decode([], name: "empty.png") }
        #expect(empty?.description == "empty.png: empty file")
        expectChiselError(.invalidImage) { try decode([0x89, 0x50, 0x4E], name: "t.png") }
        expectChiselError(.invalidImage) { try decode([0xFF, 0xD8], name: "t.jpg") }
        expectChiselError(.invalidImage) { try decode([0xFF, 0xD8, 0xFF], name: "t.jpg") }
        expectChiselError(.invalidImage) { try decode(Array([UInt8](try Fixtures.data("rgb8.png")).prefix(8)), name: "t.png") }
    }

    @Test("file system errors are io errors naming the file")
    func fileErrors() throws {
        let folder = try TemporaryFolder()
        let missing = expectChiselError(.io) { _ = try ImageReader.read(path: folder.root + "/missing.png") }
        #expect(missing?.file == folder.root + "/missing.png")
        #expect(missing?.message.contains("No such file") == true)

        expectChiselError(.io) { _ = try ImageReader.read(path: folder.root) }

        let empty = folder.root + "/empty.png"
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        expectChiselError(.invalidImage) { _ = try ImageReader.read(path: empty) }

        let locked = folder.root + "/locked.png"
        _ = FileManager.default.createFile(atPath: locked, contents: try Fixtures.data("rgb8.png"),
                                       attributes: [.posixPermissions: 0o000])
        if geteuid() != 0 {  // root reads anything
            let error = expectChiselError(.io) { _ = try ImageReader.read(path: locked) }
            #expect(error?.message.contains("Permission denied") == true)
        }
    }
}
