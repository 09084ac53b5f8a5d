/// Latin-1 (ISO 8859-1) text, the encoding of PNG keywords and tEXt/zTXt values.
enum Latin1 {
    /// Every byte is the code point of the same value.
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        var text = String.UnicodeScalarView()
        text.append(contentsOf: bytes.map { Unicode.Scalar($0) })
        return String(text)
    }

    /// The Latin-1 bytes of `text`, or nil if a character lies outside U+0000...U+00FF.
    static func encode(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            guard scalar.value <= 0xFF else { return nil }
            bytes.append(UInt8(scalar.value))
        }
        return bytes
    }
}
