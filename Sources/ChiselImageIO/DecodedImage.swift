import ChiselCore

/// An image read from a file, with what the file said about it besides the pixels.
public struct DecodedImage: Sendable {
    /// The pixels, upright when the orientation was applied.
    public var image: Image
    /// The format found from the file's bytes.
    public var format: ImageFormat
    /// PNG text chunks (tEXt, zTXt, iTXt) in file order; for JPEG, `parameters` from EXIF's
    /// UserComment when there is one.
    public var text: [(key: String, value: String)]
    /// The EXIF orientation tag found in the file (1 to 8), 1 when there is none or it is unreadable.
    public var orientation: Int
    /// Whether `image` was turned upright according to `orientation`.
    public var orientationApplied: Bool
    /// Non-fatal complaints of the decoder (e.g. a bad ancillary chunk CRC), first one in full.
    public var warnings: [String]

    public init(image: Image, format: ImageFormat, text: [(key: String, value: String)] = [], orientation: Int = 1,
                orientationApplied: Bool = false, warnings: [String] = []) {
        self.image = image
        self.format = format
        self.text = text
        self.orientation = orientation
        self.orientationApplied = orientationApplied
        self.warnings = warnings
    }

    /// The value of the first text chunk named `key`, if any.
    public func text(forKey key: String) -> String? {
        text.first { $0.key == key }?.value
    }
}
