import CImageCodecs
import ChiselCore
import Foundation

extension ImageWriter {
    /// A text entry ready for libpng: encoded bytes and chunk kind.
    struct PNGTextEntry {
        var key: [UInt8]
        var value: [UInt8]
        var isUTF8: Bool
        var compress: Bool
    }

    static func encodePNG(_ image: Image, options: ImageEncodeOptions) throws -> Data {
        let depth = options.bitDepth ?? (image.bitDepth > 8 ? 16 : 8)
        guard depth == 8 || depth == 16 else {
            throw ChiselError(.invalidParameter, "PNG bit depth must be 8 or 16, not \(depth)")
        }
        if let level = options.pngCompressionLevel, !(0...9).contains(level) {
            throw ChiselError(.invalidParameter, "PNG compression level must be 0 to 9, not \(level)")
        }
        guard image.width <= Int(Int32.max), image.height <= Int(Int32.max) else {
            throw ChiselError(.imageTooLarge, "image is \(image.width)×\(image.height) pixels, too large for PNG")
        }
        let entries = try options.text.map(pngTextEntry)
        var buffer = cic_buffer()
        defer { cic_buffer_free(&buffer) }
        var message = [CChar](repeating: 0, count: Int(CIC_MESSAGE_SIZE))
        let channels = image.channels
        let status = withCTexts(entries) { texts, count in
            if depth == 16 {
                PixelPacking.interleaved16(image, channels: channels).withUnsafeBytes { samples in
                    cic_png_encode(samples.baseAddress, UInt32(image.width), UInt32(image.height), Int32(channels), 16,
                                   texts, count, Int32(options.pngCompressionLevel ?? -1), &buffer, &message)
                }
            } else {
                PixelPacking.interleaved8(image, channels: channels).withUnsafeBytes { samples in
                    cic_png_encode(samples.baseAddress, UInt32(image.width), UInt32(image.height), Int32(channels), 8,
                                   texts, count, Int32(options.pngCompressionLevel ?? -1), &buffer, &message)
                }
            }
        }
        guard status == CIC_OK else {
            throw CodecFailure.encodeError(status, format: .png, message: CodecFailure.string(fromCBuffer: message))
        }
        return data(of: buffer)
    }

    /// Checks a key and picks the chunk: tEXt for an ASCII value, iTXt (UTF-8) for any other, both
    /// uncompressed whatever the length — ComfyUI's reader finds no key in a compressed chunk,
    /// and a Latin-1 tEXt of non-ASCII text is misread as UTF-8 by readers that assume it.
    static func pngTextEntry(_ entry: (key: String, value: String)) throws -> PNGTextEntry {
        guard let key = Latin1.encode(entry.key), (1...79).contains(key.count),
              key.allSatisfy({ (32...126).contains($0) || (161...255).contains($0) }),
              key.first != 32, key.last != 32, !zip(key, key.dropFirst()).contains(where: { $0 == 32 && $1 == 32 })
        else {
            throw ChiselError(.invalidParameter,
                              "PNG text key '\(entry.key)' must be 1 to 79 printable Latin-1 characters "
                                  + "without leading, trailing or double spaces")
        }
        guard !entry.value.unicodeScalars.contains("\u{0}") else {
            throw ChiselError(.invalidParameter, "PNG text value for '\(entry.key)' contains a NUL character")
        }
        let utf8 = Array(entry.value.utf8)
        return PNGTextEntry(key: key, value: utf8, isUTF8: !utf8.allSatisfy { $0 < 0x80 }, compress: false)
    }

    /// Calls `body` with NUL-terminated C copies of `entries` that live for the call.
    private static func withCTexts<R>(_ entries: [PNGTextEntry],
                                      _ body: (UnsafePointer<cic_text_in>?, Int) -> R) -> R {
        var owned: [UnsafeMutablePointer<CChar>] = []
        defer { owned.forEach { $0.deallocate() } }
        func cString(_ bytes: [UInt8]) -> UnsafePointer<CChar> {
            let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
            for (i, byte) in bytes.enumerated() { pointer[i] = CChar(bitPattern: byte) }
            pointer[bytes.count] = 0
            owned.append(pointer)
            return UnsafePointer(pointer)
        }
        let texts = entries.map { entry in
            cic_text_in(key: cString(entry.key), value: cString(entry.value), is_utf8: entry.isUTF8 ? 1 : 0,
                        compress: entry.compress ? 1 : 0)
        }
        return texts.withUnsafeBufferPointer { body($0.baseAddress, $0.count) }
    }
}
