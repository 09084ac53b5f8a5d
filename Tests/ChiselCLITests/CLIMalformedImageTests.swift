import ChiselCore
import ChiselImageIO
import Foundation
import Testing

/// Broken image files give one clear error line and a non-zero exit, never a crash or a huge allocation.
@Suite struct CLIMalformedImageTests {
    enum Damage: String, CaseIterable {
        case truncatedPNG, corruptedPNG, truncatedJPEG, corruptedJPEG, randomBytesPNG, emptyPNG, hugePNGHeader
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        }
        return ~crc
    }

    /// A PNG whose IHDR declares `width`×`height` with a valid CRC, followed by a tiny IDAT.
    static func pngHeader(width: UInt32, height: UInt32) -> [UInt8] {
        func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let body = Array(type.utf8) + data
            return be(UInt32(data.count)) + body + be(crc32(body))
        }
        let ihdr = be(width) + be(height) + [8, 2, 0, 0, 0]
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", ihdr)
            + chunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]) + chunk("IEND", [])
    }

    static func makeFile(_ damage: Damage, in temp: TemporaryFolder) throws -> String {
        let image = try patternImage(width: 64, height: 48, seed: 2)
        let png = try ImageWriter.encode(image, options: ImageEncodeOptions(format: .png))
        let jpeg = try ImageWriter.encode(image, options: ImageEncodeOptions(format: .jpeg))
        var bytes: [UInt8]
        let name: String
        switch damage {
        case .truncatedPNG:
            bytes = Array(png.prefix(png.count / 2)); name = "truncated.png"
        case .corruptedPNG:
            bytes = Array(png)
            for i in stride(from: 60, to: min(bytes.count - 20, 400), by: 7) { bytes[i] ^= 0x5A }
            name = "corrupted.png"
        case .truncatedJPEG:
            bytes = Array(jpeg.prefix(jpeg.count / 2)); name = "truncated.jpg"
        case .corruptedJPEG:
            bytes = Array(jpeg)
            // Overwrite the start of the header segments after SOI.
            for i in 2..<min(bytes.count, 200) { bytes[i] = UInt8(truncatingIfNeeded: i &* 37) }
            name = "corrupted.jpg"
        case .randomBytesPNG:
            var generator = SystemRandomNumberGenerator()
            bytes = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }
            name = "random.png"
        case .emptyPNG:
            bytes = []; name = "empty.png"
        case .hugePNGHeader:
            bytes = pngHeader(width: 100_000, height: 100_000); name = "huge.png"
        }
        let path = temp.path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test(arguments: Damage.allCases)
    func brokenImageGivesOneErrorLine(damage: Damage) throws {
        let temp = try TemporaryFolder()
        let path = try Self.makeFile(damage, in: temp)
        let graph = try temp.write("""
            {"chisel": 1, "nodes": {
              "input": {"stage": "load_image", "params": {"path": "\(path)"}},
              "save": {"stage": "save_image", "inputs": {"image": "input.image"}, "params": {"path": "out.png"}}
            }}
            """, to: "g.json")
        let result = try CLI.run(["run", graph])
        #expect(!result.crashed, "chisel crashed on \(damage): \(result.stderr)")
        #expect(result.status == 1)
        #expect(result.errorLines.count == 1, "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.errorLines.first?.contains(path) == true, "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: temp.path("out.png")))
        if damage == .hugePNGHeader {
            #expect(result.stderr.contains("100000×100000"))
            #expect(result.stderr.contains("limit"))
        }
    }

    /// The pixel limit is settable: a normal image is refused under a tiny limit.
    @Test func pixelLimitIsSettable() throws {
        let temp = try TemporaryFolder()
        try writeImage(try patternImage(width: 64, height: 64), to: temp.path("in.png"))
        let graph = try temp.write("""
            {"chisel": 1, "nodes": {
              "input": {"stage": "load_image", "params": {"path": "in.png"}},
              "save": {"stage": "save_image", "inputs": {"image": "input.image"}, "params": {"path": "out.png"}}
            }}
            """, to: "g.json")
        let refused = try CLI.run(["run", graph, "--max-pixels", "1000"])
        #expect(refused.status == 1)
        #expect(refused.errorLines.first?.contains("limit") == true)
        let accepted = try CLI.run(["run", graph, "--max-pixels", "5000"])
        #expect(accepted.status == 0, "\(accepted.stderr)")
    }
}
