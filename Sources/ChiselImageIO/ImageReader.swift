import CImageCodecs
import ChiselCore
import Foundation

/// Reads PNG and JPEG files into `Image`s.
///
/// The format is found from the bytes, not the file name. Every failure is a `ChiselError`
/// whose `file` is the path (or the name given for in-memory data): `.io` when the file
/// cannot be read, `.invalidImage` for empty, truncated or corrupt data, `.unsupportedFormat`
/// for other formats, `.imageTooLarge` above the pixel limit (checked from the header,
/// before any pixel memory is allocated).
///
/// A JPEG whose data ends early or is damaged (libjpeg's "premature end of file", "bad
/// Huffman code", ... warnings) is an error, not a gray-filled image, so batch runs report
/// it; a file missing only its final EOI marker counts as truncated too. Harmless warnings
/// (junk bytes between segments, a bad ancillary PNG chunk) end up in `DecodedImage.warnings`.
/// Compressed PNG text that inflates beyond libpng's 8 MB chunk limit is skipped with a warning.
public enum ImageReader {
    /// Reads the image file at `path`; the image's `origin` is the absolute path.
    public static func read(path: String, options: ImageDecodeOptions = .init()) throws -> DecodedImage {
        let data = try FileBytes.read(path: path)
        var decoded = try decode(data, name: path, options: options)
        decoded.image.origin = ImageOrigin(path: FileBytes.absolutePath(path), bitDepth: decoded.image.bitDepth)
        return decoded
    }

    /// Decodes PNG or JPEG bytes; `name` identifies them in errors. The image has no origin.
    public static func decode(_ data: Data, name: String, options: ImageDecodeOptions = .init()) throws
        -> DecodedImage
    {
        guard !data.isEmpty else { throw ChiselError(.invalidImage, "empty file", file: name) }
        guard options.maxPixels > 0 else {
            throw ChiselError(.invalidParameter, "the pixel limit must be positive, not \(options.maxPixels)",
                              file: name)
        }
        guard let format = ImageFormat.sniff(data) else {
            if let cut = ImageFormat.truncatedSignature(data) {
                let kind = cut == .png ? "PNG" : "JPEG"
                throw ChiselError(.invalidImage, "truncated \(kind) data", file: name,
                                  cause: "the file ends inside the signature, after \(data.count) bytes")
            }
            throw ChiselError(.unsupportedFormat, "not a PNG or JPEG file", file: name,
                              cause: ImageFormat.otherFormatName(data).map { "it looks like a \($0) file" })
        }
        var raw = cic_image()
        defer { cic_image_free(&raw) }
        let status = data.withUnsafeBytes { bytes -> cic_status in
            let base = bytes.bindMemory(to: UInt8.self).baseAddress
            switch format {
            case .png: return cic_png_decode(base, bytes.count, UInt64(options.maxPixels), &raw)
            case .jpeg: return cic_jpeg_decode(base, bytes.count, UInt64(options.maxPixels), &raw)
            }
        }
        guard status == CIC_OK else {
            throw CodecFailure.decodeError(status, format: format, message: CodecFailure.string(fromCBuffer: raw.message),
                                           width: raw.width, height: raw.height, maxPixels: options.maxPixels,
                                           name: name)
        }
        var image = try makeImage(raw, name: name)
        let exif = raw.exif.map { Array(UnsafeBufferPointer(start: $0, count: raw.exif_length)) }
        let orientation = exif.map { ExifOrientation.orientation(tiff: $0) } ?? 1
        let apply = options.applyOrientation && orientation != 1
        if apply { image = image.applyingExifOrientation(orientation) }
        var warnings: [String] = []
        if raw.warning_count > 0 {
            warnings.append(CodecFailure.string(fromCBuffer: raw.warning))
            if raw.warning_count > 1 { warnings.append("and \(raw.warning_count - 1) more warnings") }
        }
        // A JPEG's infotext is EXIF's UserComment (AUTOMATIC1111's place for `parameters`).
        var text = texts(raw)
        if format == .jpeg, let comment = exif.flatMap(ExifUserComment.read(tiff:)), !comment.isEmpty {
            text.append((key: ExifUserComment.key, value: comment))
        }
        return DecodedImage(image: image, format: format, text: text, orientation: orientation,
                            orientationApplied: apply, warnings: warnings)
    }

    /// The planar float image of a successful decode.
    private static func makeImage(_ raw: cic_image, name: String) throws -> Image {
        let width = Int(raw.width), height = Int(raw.height), channels = Int(raw.channels)
        guard let layout = PixelLayout(channels: channels), let samples = raw.samples,
              raw.bit_depth == 8 || raw.bit_depth == 16
        else {
            throw ChiselError(.internal, "the decoder returned \(raw.channels) channels of \(raw.bit_depth) bits",
                              file: name)
        }
        let count = width * height
        let pixels = raw.bit_depth == 16
            ? PixelPacking.planar(from: samples.assumingMemoryBound(to: UInt16.self), pixels: count, channels: channels)
            : PixelPacking.planar(from: samples.assumingMemoryBound(to: UInt8.self), pixels: count, channels: channels)
        return try Image(width: width, height: height, layout: layout, pixels: pixels, bitDepth: Int(raw.bit_depth))
    }

    /// The text chunks of a decode, Latin-1 or UTF-8 as the chunk type says.
    private static func texts(_ raw: cic_image) -> [(key: String, value: String)] {
        guard let entries = raw.texts else { return [] }
        return UnsafeBufferPointer(start: entries, count: raw.text_count).map { entry in
            func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ count: Int) -> UnsafeBufferPointer<UInt8> {
                guard let pointer else { return UnsafeBufferPointer(start: nil, count: 0) }
                return UnsafeBufferPointer(start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self),
                                           count: count)
            }
            let key = Latin1.decode(bytes(entry.key, entry.key_length))
            let valueBytes = bytes(entry.value, entry.value_length)
            let value = entry.is_utf8 != 0 ? String(decoding: valueBytes, as: UTF8.self) : Latin1.decode(valueBytes)
            return (key: key, value: value)
        }
    }
}
