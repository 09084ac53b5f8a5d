import CImageCodecs
import ChiselCore
import Foundation

/// Writes `Image`s as PNG or JPEG.
///
/// Samples are converted with `round(clamp(v, 0, 1) * maxValue)` (NaN becomes 0). Files are
/// written atomically: a reader never sees a half-written file. Errors are `ChiselError`s:
/// `.invalidParameter` for bad options or text keys, `.imageTooLarge` for sizes the format
/// cannot hold, `.io` for file system failures.
public enum ImageWriter {
    /// JPEG's largest side (libjpeg's JPEG_MAX_DIMENSION).
    public static let maxJPEGSide = 65500

    /// The encoded bytes of `image`.
    public static func encode(_ image: Image, options: ImageEncodeOptions) throws -> Data {
        switch options.format {
        case .png: try encodePNG(image, options: options)
        case .jpeg: try encodeJPEG(image, options: options)
        }
    }

    /// Encodes `image` and writes it to `path` atomically, creating the folder if needed; with
    /// `replace` false an existing file is refused.
    public static func write(_ image: Image, to path: String, options: ImageEncodeOptions, replace: Bool = true) throws {
        let data: Data
        do {
            data = try encode(image, options: options)
        } catch let error as ChiselError {
            throw error.located(file: path)
        }
        try AtomicFile.write(data, to: path, replace: replace)
    }

    /// Writes `image` to `path` in the format its extension names, with default settings.
    public static func write(_ image: Image, to path: String) throws {
        guard let format = ImageFormat(path: path) else {
            throw ChiselError(.unsupportedFormat, "cannot tell the image format from the file name; use .png or .jpg",
                              file: path)
        }
        try write(image, to: path, options: ImageEncodeOptions(format: format))
    }

    /// Copies an encoder's output into `Data`.
    static func data(of buffer: cic_buffer) -> Data {
        guard let bytes = buffer.data, buffer.size > 0 else { return Data() }
        return Data(bytes: bytes, count: buffer.size)
    }
}
