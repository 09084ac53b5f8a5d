import ChiselBase
import ChiselDiffusion
import ChiselTensor
import Foundation

extension ModelBenchmark {
    /// The public `text_encoder/config.json` of Stable Diffusion 1.5 (OpenAI CLIP ViT-L/14's text tower).
    public static let sd15TextEncoderConfig = """
        {"architectures": ["CLIPTextModel"], "hidden_act": "quick_gelu", "hidden_size": 768,
         "intermediate_size": 3072, "layer_norm_eps": 1e-05, "max_position_embeddings": 77,
         "num_attention_heads": 12, "num_hidden_layers": 12, "projection_dim": 768, "vocab_size": 49408,
         "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}
        """

    /// The public `scheduler/scheduler_config.json` of Stable Diffusion 1.5: PNDM, PLMS steps only.
    public static let sd15SchedulerConfig = """
        {"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
         "beta_start": 0.00085, "clip_sample": false, "num_train_timesteps": 1000, "set_alpha_to_one": false,
         "skip_prk_steps": true, "steps_offset": 1, "trained_betas": null}
        """

    /// SD 1.5's UNet config; `inChannels` 9 gives SD 1.5 inpainting's (the same network with the
    /// mask and the masked image's latent as five more input channels).
    public static func sd15UNet(inChannels: Int = 4) throws -> UNetConfig {
        let json = sd15UNetConfig.replacingOccurrences(of: "\"in_channels\": 4", with: "\"in_channels\": \(inChannels)")
        return try UNetConfig(reader: ConfigReader(json: JSONParser.parse(json), file: "sd15 unet config"))
    }
}

extension StableDiffusionModel {
    /// A Stable Diffusion model built in memory from configs and a weight store, with no
    /// checkpoint on disk: `RandomWeights` for benchmarks, where speed does not depend on the values.
    public static func inMemory(
        name: String, textEncoder: CLIPTextConfig, vae: VAEConfig, unet: UNetConfig, weights: any WeightStore,
        schedulerConfig: SchedulerConfig, predictionType: PredictionType = .epsilon, precision: Precision = .f32,
        tokenizer: CLIPTokenizer? = nil, replacingVAE: (any LatentAutoencoder)? = nil
    ) throws -> StableDiffusionModel {
        guard unet.crossAttentionDim == textEncoder.hiddenSize else {
            throw ChiselError(.model, "the UNet's cross_attention_dim \(unet.crossAttentionDim) does not match the "
                              + "text encoder's hidden_size \(textEncoder.hiddenSize)", file: name)
        }
        return StableDiffusionModel(
            path: name, family: Family(textEncoder: textEncoder),
            textEncoder: try CLIPTextModel(config: textEncoder, weights: weights, precision: precision),
            vae: try replacingVAE ?? AutoencoderKL(config: vae, weights: weights, precision: precision),
            unet: try UNet2DConditionModel(config: unet, weights: weights, precision: precision),
            predictionType: predictionType, schedulerConfig: schedulerConfig, precision: precision, tokenizer: tokenizer)
    }

    /// Stable Diffusion 1.5 (`inpainting`: SD 1.5 inpainting's 9-channel UNet) from the public
    /// configs with random weights, as `chisel bench` times the editing pipelines.
    public static func randomSD15(inpainting: Bool = false, precision: Precision = .f32,
                                  tokenizer: CLIPTokenizer? = nil) throws -> StableDiffusionModel {
        let text = try CLIPTextConfig(reader: ConfigReader(json: JSONParser.parse(ModelBenchmark.sd15TextEncoderConfig),
                                                           file: "sd15 text_encoder config"))
        let vae = try VAEConfig(reader: ConfigReader(json: JSONParser.parse(ModelBenchmark.sd15VAEConfig), file: "sd15 vae config"))
        let scheduler = try SchedulerConfig(reader: ConfigReader(json: JSONParser.parse(ModelBenchmark.sd15SchedulerConfig), file: "sd15 scheduler config"))
        return try inMemory(name: inpainting ? "sd15-inpainting-random" : "sd15-random", textEncoder: text, vae: vae,
                            unet: ModelBenchmark.sd15UNet(inChannels: inpainting ? 9 : 4), weights: RandomWeights(),
                            schedulerConfig: scheduler, precision: precision, tokenizer: tokenizer)
    }
}
