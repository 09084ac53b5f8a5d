import ChiselCore

/// Makes a mask the size of its image, so a mask drawn at another resolution still fits.
public enum MatchMaskStage: Stage {
    public static let image = Input<Image>("image", "The image the mask belongs to.")
    public static let mask = Input<Mask>("mask", "The mask, of any size.")
    public static let matched = Output<Mask>("mask", "The mask at the image's size (resized bilinearly, with a warning, when it differed).")

    public static let schema = StageSchema(
        "match_mask", "Resize a mask to its image's size, warning when it differs.",
        inputs: [image, mask], outputs: [matched])

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let image = try call[Self.image]
        return [matched(try call.mask(call[mask], sizedFor: image.width, image.height))]
    }
}

/// The stages that prepare images and masks for inpainting, registered beside the built-in ones.
public enum InpaintingStages {
    public static let all: [any Stage.Type] = [MatchMaskStage.self, FillMaskedStage.self, PasteCropStage.self]

    public static func register(in registry: inout StageRegistry) throws {
        try registry.register(all)
    }
}
