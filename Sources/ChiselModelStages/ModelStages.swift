import ChiselCore

/// The registration entry point of the model stages: the aMUSEd and Stable Diffusion loaders,
/// the built-in scene models, the diffusion stages (prompt, VAE, noising, denoising) and the
/// masked-token stages.
public enum ModelStages {
    public static let all: [any Stage.Type] = [
        EncodePromptStage.self, VAEEncodeStage.self, VAEDecodeStage.self, EmptyLatentStage.self,
        AddNoiseStage.self, DenoiseStage.self, ControlNetStage.self, T2IAdapterStage.self, KSamplerStage.self, VAEEncodeForInpaintStage.self, FillLatentStage.self,
        VQEncodeStage.self, VQDecodeStage.self, EmptyTokensStage.self, MaskTokensStage.self, PredictTokensStage.self,
        RefineTokensStage.self,
    ]

    public static func register(in registry: inout StageRegistry) throws {
        // aMUSEd first: both layouts have a model_index.json, only aMUSEd's names an Amused pipeline.
        try registry.register(modelLoader: AmusedLoader())
        try registry.register(modelLoader: ControlNetLoader())
        try registry.register(modelLoader: T2IAdapterLoader())
        try registry.register(modelLoader: StableDiffusionLoader())
        for model in BundledModel.all { try registry.register(builtinModel: model) }
        try registry.register(all)
        registry.register(textExporter: ComfyExport())
    }
}
