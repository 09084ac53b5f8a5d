import Foundation

/// The infotext in a JPEG, where AUTOMATIC1111 puts it: EXIF's UserComment (tag 0x9286 in the
/// Exif IFD), marked "UNICODE\0" and encoded UTF-16 big-endian, in a big-endian TIFF structure.
enum ExifUserComment {
    /// The text key whose value is written there: A1111's `parameters`.
    static let key = "parameters"

    static let unicodePrefix: [UInt8] = Array("UNICODE".utf8) + [0]

    /// The APP1 segment's bytes ("Exif\0\0" and the TIFF structure), or nil when the text does not
    /// fit one segment (65,533 bytes: about 32,000 characters).
    static func app1Segment(_ text: String) -> [UInt8]? {
        var comment = unicodePrefix
        for unit in text.utf16 { comment += [UInt8(unit >> 8), UInt8(unit & 0xFF)] }
        func u16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        func u32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        // TIFF header (8) · IFD0: 1 entry (2 + 12 + 4) · Exif IFD: 1 entry (2 + 12 + 4) · the comment.
        let exifIFD = 8 + 18
        let commentOffset = exifIFD + 18
        var tiff = Array("MM".utf8) + u16(42) + u32(8)
        tiff += u16(1) + u16(0x8769) + u16(4) + u32(1) + u32(exifIFD) + u32(0)          // ExifIFDPointer, LONG
        tiff += u16(1) + u16(0x9286) + u16(7) + u32(comment.count) + u32(commentOffset) + u32(0)  // UserComment, UNDEFINED
        tiff += comment
        let segment = Array("Exif".utf8) + [0, 0] + tiff
        return segment.count <= 65533 ? segment : nil
    }

    /// The UserComment of a TIFF structure (an APP1 segment after "Exif\0\0"), decoded by its
    /// character-code prefix: UNICODE (UTF-16: big-endian as piexif writes it, or the
    /// structure's byte order), ASCII, or undefined (read as UTF-8). Nil when there is none.
    static func read(tiff: [UInt8]) -> String? {
        guard tiff.count >= 8 else { return nil }
        let big: Bool
        switch (tiff[0], tiff[1]) {
        case (0x4D, 0x4D): big = true
        case (0x49, 0x49): big = false
        default: return nil
        }
        func u16(_ at: Int) -> Int? {
            guard at >= 0, at + 2 <= tiff.count else { return nil }
            return big ? Int(tiff[at]) << 8 | Int(tiff[at + 1]) : Int(tiff[at + 1]) << 8 | Int(tiff[at])
        }
        func u32(_ at: Int) -> Int? {
            guard let hi = u16(big ? at : at + 2), let lo = u16(big ? at + 2 : at) else { return nil }
            return hi << 16 | lo
        }
        func entry(_ tag: Int, inIFD ifd: Int) -> (count: Int, value: Int)? {
            guard let count = u16(ifd), count < 1000 else { return nil }
            for i in 0..<count {
                let at = ifd + 2 + 12 * i
                guard u16(at) == tag, let n = u32(at + 4), let value = u32(at + 8) else { continue }
                return (n, value)
            }
            return nil
        }
        guard let ifd0 = u32(4), let pointer = entry(0x8769, inIFD: ifd0),
              let comment = entry(0x9286, inIFD: pointer.value), comment.count >= 8 else { return nil }
        let start = comment.count <= 4 ? nil : comment.value
        guard let start, start >= 0, start + comment.count <= tiff.count else { return nil }
        let bytes = Array(tiff[start..<(start + comment.count)])
        let prefix = Array(bytes.prefix(8)), body = Array(bytes.dropFirst(8))
        if prefix == unicodePrefix {
            // piexif (AUTOMATIC1111) writes UTF-16BE whatever the structure's byte order, others
            // the structure's: take the order in which more code units are Latin-1 (text, not CJK
            // made of swapped bytes), the structure's on a tie.
            func units(bigEndian: Bool) -> [UInt16] {
                var out: [UInt16] = []
                var i = 0
                while i + 1 < body.count {
                    let (first, second) = (UInt16(body[i]), UInt16(body[i + 1]))
                    out.append(bigEndian ? first << 8 | second : second << 8 | first)
                    i += 2
                }
                return out
            }
            let own = units(bigEndian: big), swapped = units(bigEndian: !big)
            func latin(_ units: [UInt16]) -> Int { units.filter { $0 < 0x100 }.count }
            return String(decoding: latin(swapped) > latin(own) ? swapped : own, as: UTF16.self)
        }
        return String(decoding: body.prefix { $0 != 0 }, as: UTF8.self)
    }
}
