import ChiselCore
import ChiselImageIO

/// Reads a mask from a gray image or from an image's alpha channel.
public enum LoadMaskStage: Stage {
    public static let schema = StageSchema(
        "load_mask", "Read a mask (1 = edit) from a gray image or an image's alpha channel.",
        outputs: [.mask("mask", "The mask, values in [0, 1].")],
        params: [.path("path", role: .input, "The mask image file to read.")] + MaskSource.params,
        receivesFiles: (.mask, "path"))

    public static func run(_ call: StageCall) async throws -> [String: Value] {
        let path = try call.string("path")
        call.context.files.noteInput(path)
        let image = try ImageReader.read(path: path, options: ImageDecodeOptions(maxPixels: call.context.run.maxPixels)).image
        do {
            return ["mask": .mask(try MaskSource.mask(from: image, call: call))]
        } catch let error as ChiselError {
            throw error.located(file: path)
        }
    }
}

/// Turns an image on the wires into a mask.
public enum ImageToMaskStage: Stage {
    public static let schema = StageSchema(
        "image_to_mask", "Make a mask from an image's luminance, alpha or one colour channel.",
        inputs: [.image("image", "The image to read the mask from.")],
        outputs: [.mask("mask", "The mask, values in [0, 1].")],
        params: MaskSource.params)

    public static func run(_ call: StageCall) async throws -> [String: Value] {
        ["mask": .mask(try MaskSource.mask(from: call.image("image"), call: call))]
    }
}

/// Turns a mask into a gray image, to save or preview it.
public enum MaskToImageStage: Stage {
    public static let schema = StageSchema(
        "mask_to_image", "Make a gray image from a mask (white = edit), e.g. to save it.",
        inputs: [.mask("mask", "The mask to show.")],
        outputs: [.image("image", "A gray image of the mask.")])

    public static func run(_ call: StageCall) async throws -> [String: Value] {
        let mask = try call.mask("mask")
        let image = try Image(width: mask.width, height: mask.height, layout: .gray,
                              pixels: mask.values.map { min(1, max(0, $0)) }, origin: mask.origin)
        return ["image": .image(image)]
    }
}
