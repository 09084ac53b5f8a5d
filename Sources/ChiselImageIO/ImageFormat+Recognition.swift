extension ImageFormat {
    /// The format whose signature `bytes` is a strict beginning of: a file cut inside its magic number.
    static func truncatedSignature(_ bytes: some Collection<UInt8>) -> ImageFormat? {
        guard !bytes.isEmpty else { return nil }
        if bytes.count < pngSignature.count, pngSignature.starts(with: bytes) { return .png }
        if bytes.count < jpegSignature.count, jpegSignature.starts(with: bytes) { return .jpeg }
        return nil
    }

    /// A guess at what a file that is neither PNG nor JPEG is, for a friendlier error message.
    static func otherFormatName(_ bytes: some Collection<UInt8>) -> String? {
        let head = Array(bytes.prefix(16))
        func matches(_ prefix: String, at offset: Int = 0) -> Bool {
            let expected = Array(prefix.utf8)
            return head.count >= offset + expected.count && Array(head[offset..<(offset + expected.count)]) == expected
        }
        if matches("GIF87a") || matches("GIF89a") { return "GIF" }
        if matches("RIFF") && matches("WEBP", at: 8) { return "WebP" }
        if matches("II*\u{0}") || matches("MM\u{0}*") { return "TIFF" }
        if matches("BM") { return "BMP" }
        if matches("ftypavif", at: 4) || matches("ftypavis", at: 4) { return "AVIF" }
        if matches("ftypheic", at: 4) || matches("ftypheix", at: 4) || matches("ftypmif1", at: 4) { return "HEIF" }
        if head.starts(with: [0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50]) || head.starts(with: [0xFF, 0x4F, 0xFF, 0x51]) {
            return "JPEG 2000"
        }
        return nil
    }
}
