/// How `ImageReader` decodes a file.
public struct ImageDecodeOptions: Sendable, Equatable {
    /// Files whose header declares more pixels than this are rejected before any pixel is allocated.
    public var maxPixels: Int
    /// Whether an EXIF orientation (JPEG APP1, PNG eXIf) is applied so the image comes out upright.
    public var applyOrientation: Bool

    public init(maxPixels: Int = 100_000_000, applyOrientation: Bool = true) {
        self.maxPixels = maxPixels
        self.applyOrientation = applyOrientation
    }
}
