import CImageCodecs
import ChiselCore
import Foundation

extension ImageWriter {
    /// Baseline JPEG, 8-bit gray or RGB; alpha is dropped (not composited). The `parameters` text
    /// (the infotext) goes into EXIF's UserComment as AUTOMATIC1111 writes it; other text is not written.
    static func encodeJPEG(_ image: Image, options: ImageEncodeOptions) throws -> Data {
        guard (1...100).contains(options.jpegQuality) else {
            throw ChiselError(.invalidParameter, "JPEG quality must be 1 to 100, not \(options.jpegQuality)")
        }
        if let depth = options.bitDepth, depth != 8 {
            throw ChiselError(.invalidParameter, "JPEG files are 8-bit; \(depth)-bit output needs PNG")
        }
        guard image.width <= maxJPEGSide, image.height <= maxJPEGSide else {
            throw ChiselError(.imageTooLarge,
                              "image is \(image.width)×\(image.height) pixels; JPEG allows at most \(maxJPEGSide) per side")
        }
        let channels = image.layout.colorChannels == 1 ? 1 : 3
        var buffer = cic_buffer()
        defer { cic_buffer_free(&buffer) }
        var message = [CChar](repeating: 0, count: Int(CIC_MESSAGE_SIZE))
        let app1 = options.text.last { $0.key == ExifUserComment.key }.flatMap { ExifUserComment.app1Segment($0.value) } ?? []
        let status = PixelPacking.interleaved8(image, channels: channels).withUnsafeBufferPointer { samples in
            app1.withUnsafeBufferPointer { exif in
                cic_jpeg_encode(samples.baseAddress, UInt32(image.width), UInt32(image.height), Int32(channels),
                                Int32(options.jpegQuality), exif.count > 0 ? exif.baseAddress : nil, exif.count, &buffer, &message)
            }
        }
        guard status == CIC_OK else {
            throw CodecFailure.encodeError(status, format: .jpeg, message: CodecFailure.string(fromCBuffer: message))
        }
        return data(of: buffer)
    }
}
