import CImageCodecs
import ChiselCore

/// Turns the status and message of a CImageCodecs call into a `ChiselError`.
enum CodecFailure {
    /// The text of a fixed-size C message buffer, up to its first NUL.
    static func string<Buffer>(fromCBuffer buffer: Buffer) -> String {
        withUnsafeBytes(of: buffer) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// The error for a failed decode of `format` data named `name`.
    static func decodeError(_ status: cic_status, format: ImageFormat, message: String, width: UInt32,
                            height: UInt32, maxPixels: Int, name: String) -> ChiselError {
        let kind = format == .png ? "PNG" : "JPEG"
        let cause = message.isEmpty ? nil : message
        switch status {
        case CIC_TRUNCATED:
            return ChiselError(.invalidImage, "truncated \(kind) data", file: name, cause: cause)
        case CIC_TOO_LARGE:
            if width > 0, height > 0, UInt64(width) * UInt64(height) > UInt64(max(maxPixels, 0)) {
                return ChiselError(
                    .imageTooLarge,
                    "image is \(width)×\(height) pixels, above the limit of \(maxPixels) pixels "
                        + "(set a higher pixel limit to read it)",
                    file: name)
            }
            return ChiselError(.imageTooLarge, "image is \(width)×\(height) pixels, too large to decode",
                               file: name, cause: cause)
        case CIC_UNSUPPORTED:
            return ChiselError(.unsupportedFormat, "unsupported \(kind) variant", file: name, cause: cause)
        case CIC_NO_MEMORY:
            return ChiselError(.imageTooLarge, "not enough memory to decode a \(width)×\(height) \(kind) image",
                               file: name, cause: cause)
        default:
            return ChiselError(.invalidImage, "corrupt \(kind) data", file: name, cause: cause)
        }
    }

    /// The error for a failed encode; arguments are checked before the call, so any failure is ours.
    static func encodeError(_ status: cic_status, format: ImageFormat, message: String) -> ChiselError {
        let kind = format == .png ? "PNG" : "JPEG"
        let cause = message.isEmpty ? nil : message
        if status == CIC_NO_MEMORY {
            return ChiselError(.imageTooLarge, "not enough memory to encode the \(kind) image", cause: cause)
        }
        return ChiselError(.internal, "\(kind) encoding failed", cause: cause)
    }
}
