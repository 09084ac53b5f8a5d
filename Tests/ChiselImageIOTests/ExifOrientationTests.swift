import ChiselCore
import Testing

@testable import ChiselImageIO

@Suite("EXIF orientation")
struct ExifOrientationTests {
    @Test("reads the tag in both byte orders", arguments: 1...8)
    func readsBothByteOrders(value: Int) {
        #expect(ExifOrientation.orientation(tiff: ByteSurgery.tiff(byteOrder: "II", value: UInt32(value))) == value)
        #expect(ExifOrientation.orientation(tiff: ByteSurgery.tiff(byteOrder: "MM", value: UInt32(value))) == value)
    }

    @Test("finds the tag after other entries")
    func findsTagAmongOthers() {
        // IFD0 with Make (ASCII, out of line), then Orientation = 8, big-endian.
        var tiff: [UInt8] = [0x4D, 0x4D, 0, 42, 0, 0, 0, 8, 0, 2]
        tiff += [0x01, 0x0F, 0, 2, 0, 0, 0, 6, 0, 0, 0, 38]
        tiff += [0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 8, 0, 0]
        tiff += [0, 0, 0, 0] + Array("Phone\0".utf8)
        #expect(ExifOrientation.orientation(tiff: tiff) == 8)
    }

    @Test("every truncation of a valid block gives 1 or the value, never a crash")
    func truncations() {
        let tiff = ByteSurgery.tiff(byteOrder: "II", value: 7)
        for length in 0...tiff.count {
            let value = ExifOrientation.orientation(tiff: Array(tiff.prefix(length)))
            #expect(value == 1 || value == 7)
        }
        #expect(ExifOrientation.orientation(tiff: tiff) == 7)
    }

    @Test("random bytes give a value in 1...8")
    func randomBytes() {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<2000 {
            var bytes = (0..<Int.random(in: 0...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if bytes.count >= 4, Bool.random(using: &rng) {
                bytes.replaceSubrange(0..<4, with: Bool.random(using: &rng) ? [0x49, 0x49, 42, 0] : [0x4D, 0x4D, 0, 42])
            }
            #expect((1...8).contains(ExifOrientation.orientation(tiff: bytes)))
        }
    }

    /// The display image of a stored one for each orientation, written from the EXIF
    /// definitions ("where row 0 and column 0 of the stored image go") rather than the walk table.
    static func reference(_ stored: [[Int]], orientation: Int) -> [[Int]] {
        let h = stored.count, w = stored[0].count
        switch orientation {
        case 2: return stored.map { Array($0.reversed()) }
        case 3: return stored.reversed().map { Array($0.reversed()) }
        case 4: return stored.reversed()
        case 5: return (0..<w).map { x in (0..<h).map { y in stored[y][x] } }  // transpose
        case 6: return (0..<w).map { x in (0..<h).map { y in stored[h - 1 - y][x] } }  // turn clockwise
        case 7: return (0..<w).map { x in (0..<h).map { y in stored[h - 1 - y][w - 1 - x] } }
        case 8: return (0..<w).map { x in (0..<h).map { y in stored[y][w - 1 - x] } }  // turn counter-clockwise
        default: return stored
        }
    }

    @Test("turning an image upright moves every pixel where EXIF says", arguments: 1...8)
    func appliesOrientation(value: Int) throws {
        let w = 4, h = 3
        let stored = (0..<h).map { y in (0..<w).map { x in y * w + x } }
        // Two channels, the second offset, to check planes are handled separately.
        let pixels = (0..<2).flatMap { c in stored.flatMap { $0 }.map { Float($0 + 100 * c) / 255 } }
        let image = try Image(width: w, height: h, layout: .grayAlpha, pixels: pixels, bitDepth: 16)
        let turned = image.applyingExifOrientation(value)
        let expected = Self.reference(stored, orientation: value)
        #expect(turned.height == expected.count)
        #expect(turned.width == expected[0].count)
        #expect(turned.layout == .grayAlpha)
        #expect(turned.bitDepth == 16)
        let got = integerSamples(turned, bitDepth: 8)
        for y in 0..<turned.height {
            for x in 0..<turned.width {
                #expect(got[(y * turned.width + x) * 2] == expected[y][x])
                #expect(got[(y * turned.width + x) * 2 + 1] == expected[y][x] + 100)
            }
        }
    }

    @Test("values outside 1...8 leave the image alone")
    func outOfRange() throws {
        let image = try Image(width: 2, height: 1, layout: .gray, pixels: [0, 1])
        #expect(image.applyingExifOrientation(0) == image)
        #expect(image.applyingExifOrientation(9) == image)
    }
}
