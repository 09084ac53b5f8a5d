import ChiselCore

/// The stages that ship with Chisel.
public enum BuiltinStages {
    public static let all: [any Stage.Type] = [
        LoadImageStage.self, LoadMaskStage.self, SaveImageStage.self,
        ResizeStage.self, CropStage.self, PadStage.self, CannyStage.self, ControlTileStage.self,
        GrowMaskStage.self, FeatherMaskStage.self, InvertMaskStage.self, CombineMasksStage.self,
        ImageToMaskStage.self, MaskToImageStage.self, CompositeStage.self,
    ]

    /// Registers every built-in stage.
    public static func register(in registry: inout StageRegistry) throws {
        try registry.register(all)
    }
}
