import Foundation

/// Builders of damaged or altered PNG and JPEG bytes, made from good fixtures.
enum ByteSurgery {
    static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func bigEndian32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    /// A PNG chunk: length, type, data, CRC.
    static func pngChunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return bigEndian32(UInt32(data.count)) + body + bigEndian32(crc32(body))
    }

    /// The chunks of a PNG: type, offset of the length field, data length.
    static func pngChunks(_ png: [UInt8]) -> [(type: String, offset: Int, length: Int)] {
        var chunks: [(String, Int, Int)] = []
        var offset = 8
        while offset + 12 <= png.count {
            let length = Int(png[offset]) << 24 | Int(png[offset + 1]) << 16 | Int(png[offset + 2]) << 8
                | Int(png[offset + 3])
            let type = String(decoding: png[(offset + 4)..<(offset + 8)], as: UTF8.self)
            chunks.append((type, offset, length))
            offset += 12 + length
        }
        return chunks
    }

    /// Recomputes the CRC of the chunk whose length field is at `offset`.
    static func fixCRC(_ png: inout [UInt8], chunkAt offset: Int) {
        let length = Int(png[offset]) << 24 | Int(png[offset + 1]) << 16 | Int(png[offset + 2]) << 8
            | Int(png[offset + 3])
        let crc = crc32(png[(offset + 4)..<(offset + 8 + length)])
        png.replaceSubrange((offset + 8 + length)..<(offset + 12 + length), with: bigEndian32(crc))
    }

    /// A valid PNG signature and IHDR declaring `width`×`height`, followed by `rest` of a real PNG.
    static func pngWithHeader(width: UInt32, height: UInt32, bitDepth: UInt8 = 8, colorType: UInt8 = 2,
                              from png: [UInt8]) -> [UInt8] {
        var out = Array(png[0..<8])
        let ihdr = bigEndian32(width) + bigEndian32(height) + [bitDepth, colorType, 0, 0, 0]
        out += pngChunk("IHDR", ihdr)
        out += png[(8 + 25)...]
        return out
    }

    /// The offset of the first JPEG marker `code` (the 0xFF byte), scanning marker segments.
    static func jpegMarker(_ jpeg: [UInt8], _ code: UInt8) -> Int? {
        var offset = 2
        while offset + 4 <= jpeg.count, jpeg[offset] == 0xFF {
            let marker = jpeg[offset + 1]
            if marker == code { return offset }
            if marker == 0xDA || marker == 0xD9 { return nil }  // image data starts: no more segments
            let length = Int(jpeg[offset + 2]) << 8 | Int(jpeg[offset + 3])
            offset += 2 + length
        }
        return nil
    }

    /// `jpeg` with an APP1 segment holding `payload` inserted right after SOI.
    static func jpegWithAPP1(_ jpeg: [UInt8], payload: [UInt8]) -> [UInt8] {
        let length = payload.count + 2
        return [0xFF, 0xD8, 0xFF, 0xE1, UInt8(length >> 8), UInt8(length & 0xFF)] + payload + jpeg[2...]
    }

    /// A TIFF structure whose IFD0 holds one entry; `byteOrder` is "II" or "MM".
    static func tiff(byteOrder: String, tag: UInt16 = 0x0112, type: UInt16 = 3, count: UInt32 = 1,
                     value: UInt32) -> [UInt8] {
        let little = byteOrder == "II"
        func u16(_ v: UInt16) -> [UInt8] { little ? [UInt8(v & 0xFF), UInt8(v >> 8)] : [UInt8(v >> 8), UInt8(v & 0xFF)] }
        func u32(_ v: UInt32) -> [UInt8] { little ? bigEndian32(v).reversed() : bigEndian32(v) }
        let valueField = type == 3 ? u16(UInt16(truncatingIfNeeded: value)) + [0, 0] : u32(value)
        return Array(byteOrder.utf8) + u16(42) + u32(8) + u16(1) + u16(tag) + u16(type) + u32(count) + valueField
            + u32(0)
    }
}
