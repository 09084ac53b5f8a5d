/// GPT-2's reversible mapping of the 256 byte values to printable characters, which byte-level
/// BPE vocabularies are written in: `bytes_to_unicode()` of transformers' tokenization_clip.py
/// and of CLIP's simple_tokenizer.py.
///
/// Printable Latin-1 bytes (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) stand for themselves; the other 68 map,
/// in order, to U+0100 onwards.
enum ByteLevelAlphabet {
    /// The character that stands for each byte value.
    static let scalars: [Unicode.Scalar] = {
        var result = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            if printable {
                result[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                // 256 + n stays below U+0144, always a valid scalar.
                result[byte] = Unicode.Scalar(next) ?? " "
                next += 1
            }
        }
        return result
    }()

    /// The byte each character of the alphabet stands for.
    static let bytes: [Unicode.Scalar: UInt8] = {
        var result: [Unicode.Scalar: UInt8] = [:]
        for (byte, scalar) in scalars.enumerated() { result[scalar] = UInt8(byte) }
        return result
    }()

    /// The alphabet spelling of some UTF-8 bytes, as vocabulary keys are written.
    static func spelling<Bytes: Sequence>(of utf8: Bytes) -> String where Bytes.Element == UInt8 {
        var text = String.UnicodeScalarView()
        for byte in utf8 { text.append(scalars[Int(byte)]) }
        return String(text)
    }
}
