import ChiselCore

/// The registration entry point of the model stages: the Stable Diffusion loader now, the
/// prompt, VAE, noising and denoising stages as they come.
public enum ModelStages {
    public static let all: [any Stage.Type] = [
        EncodePromptStage.self, VAEEncodeStage.self, VAEDecodeStage.self, EmptyLatentStage.self,
        AddNoiseStage.self, DenoiseStage.self, FillLatentStage.self,
    ]

    public static func register(in registry: inout StageRegistry) throws {
        try registry.register(modelLoader: StableDiffusionLoader())
        try registry.register(all)
    }
}
