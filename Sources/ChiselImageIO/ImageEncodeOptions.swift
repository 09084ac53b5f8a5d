/// How `ImageWriter` encodes an image.
public struct ImageEncodeOptions: Sendable {
    /// The file format to produce.
    public var format: ImageFormat
    /// PNG sample depth, 8 or 16; nil uses the image's own `bitDepth`. JPEG is always 8-bit.
    public var bitDepth: Int?
    /// JPEG quality, 1 to 100. Chroma is subsampled 4:2:0 below 90 and kept at 4:4:4 from 90 on.
    public var jpegQuality: Int
    /// Text entries for PNG files, written in order before the image data.
    ///
    /// Keys must be 1 to 79 Latin-1 characters without leading, trailing or doubled spaces.
    /// ASCII values go into tEXt chunks, others into iTXt (UTF-8), never compressed, so every
    /// reader (AUTOMATIC1111's, ComfyUI's) finds every key. JPEG carries only `parameters`, in
    /// EXIF's UserComment.
    public var text: [(key: String, value: String)]
    /// PNG deflate level, 0 (fastest) to 9 (smallest); nil for the libpng default (6).
    public var pngCompressionLevel: Int?

    public init(format: ImageFormat, bitDepth: Int? = nil, jpegQuality: Int = 95,
                text: [(key: String, value: String)] = [], pngCompressionLevel: Int? = nil) {
        self.format = format
        self.bitDepth = bitDepth
        self.jpegQuality = jpegQuality
        self.text = text
        self.pngCompressionLevel = pngCompressionLevel
    }
}
