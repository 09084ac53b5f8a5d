import ChiselCore
import ChiselImageIO

/// Reads a mask from a gray image or from an image's alpha channel.
public enum LoadMaskStage: Stage {
    public static let mask = Output<Mask>("mask", "The mask, values in [0, 1].")
    public static let path = Param<String>.path("path", role: .input, "The mask image file to read.")

    public static let schema = StageSchema(
        "load_mask", "Read a mask (1 = edit) from a gray image or an image's alpha channel.",
        outputs: [mask], params: [path] + MaskSource.params, receivesFiles: (.mask, path))

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let path = try call[Self.path]
        call.context.files.noteInput(path)
        let image = try ImageReader.read(path: path, options: ImageDecodeOptions(maxPixels: call.context.run.maxPixels)).image
        do {
            return [mask(try MaskSource.mask(from: image, call: call))]
        } catch let error as ChiselError {
            throw error.located(file: path)
        }
    }
}

/// Turns an image on the wires into a mask.
public enum ImageToMaskStage: Stage {
    public static let image = Input<Image>("image", "The image to read the mask from.")
    public static let mask = Output<Mask>("mask", "The mask, values in [0, 1].")

    public static let schema = StageSchema(
        "image_to_mask", "Make a mask from an image's luminance, alpha or one colour channel.",
        inputs: [image], outputs: [mask], params: MaskSource.params)

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        [mask(try MaskSource.mask(from: call[image], call: call))]
    }
}

/// Turns a mask into a gray image, to save or preview it.
public enum MaskToImageStage: Stage {
    public static let mask = Input<Mask>("mask", "The mask to show.")
    public static let image = Output<Image>("image", "A gray image of the mask.")

    public static let schema = StageSchema(
        "mask_to_image", "Make a gray image from a mask (white = edit), e.g. to save it.",
        inputs: [mask], outputs: [image])

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let mask = try call[Self.mask]
        return [image(try Image(width: mask.width, height: mask.height, layout: .gray,
                                pixels: mask.values.map { min(1, max(0, $0)) }, origin: mask.origin))]
    }
}
