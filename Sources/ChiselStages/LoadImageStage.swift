import ChiselCore
import ChiselImageIO

/// Reads a PNG or JPEG file.
public enum LoadImageStage: Stage {
    public enum Mode: String, CaseIterable { case keep, rgb, rgba, gray }

    public static let schema = StageSchema(
        "load_image", "Read a PNG or JPEG image (EXIF orientation applied, 16-bit kept).",
        outputs: [.image("image", "The decoded image, samples in [0, 1].")],
        params: [
            .path("path", role: .input, "The image file to read."),
            .choice("mode", Mode.allCases.map(\.rawValue), default: "keep",
                    "Channel layout: keep the file's, or convert to rgb, rgba or gray."),
        ],
        receivesFiles: (.image, "path"))

    public static func run(_ call: StageCall) async throws -> [String: Value] {
        let path = try call.string("path")
        call.context.files.noteInput(path)
        let decoded = try ImageReader.read(path: path, options: ImageDecodeOptions(maxPixels: call.context.run.maxPixels))
        var image = decoded.image
        switch try call.choice("mode", as: Mode.self) {
        case .keep: break
        case .rgb: image = image.converted(to: .rgb)
        case .rgba: image = image.converted(to: .rgba)
        case .gray: image = image.converted(to: .gray)
        }
        return ["image": .image(image)]
    }
}
