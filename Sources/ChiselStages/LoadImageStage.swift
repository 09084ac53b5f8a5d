import ChiselCore
import ChiselImageIO

/// Reads a PNG or JPEG file.
public enum LoadImageStage: Stage {
    public enum Mode: String, ParamChoice { case keep, rgb, rgba, gray }

    public static let image = Output<Image>("image", "The decoded image, samples in [0, 1].")
    public static let path = Param<String>.path("path", role: .input, "The image file to read.")
    public static let mode = Param<Mode>("mode", default: .keep,
                                         "Channel layout: keep the file's, or convert to rgb, rgba or gray.")

    public static let schema = StageSchema(
        "load_image", "Read a PNG or JPEG image (EXIF orientation applied, 16-bit kept).",
        outputs: [image], params: [path, mode], receivesFiles: (.image, path))

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let path = try call[Self.path]
        call.context.files.noteInput(path)
        let decoded = try ImageReader.read(path: path, options: ImageDecodeOptions(maxPixels: call.context.run.maxPixels))
        var image = decoded.image
        switch try call[mode] {
        case .keep: break
        case .rgb: image = image.converted(to: .rgb)
        case .rgba: image = image.converted(to: .rgba)
        case .gray: image = image.converted(to: .gray)
        }
        return [Self.image(image)]
    }
}
