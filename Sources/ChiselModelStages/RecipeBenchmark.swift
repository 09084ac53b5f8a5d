import ChiselCore
import ChiselDiffusion
import ChiselModels
import ChiselTensor
import Foundation

/// Times the fast recipes CPU users run, as `chisel bench --part turbo` / `--part lcm` report
/// them, on full-size public architectures with random weights, stage by stage as
/// `chisel img2img` chains them and as diffusers' `StableDiffusionImg2ImgPipeline` runs them
/// (tools/bench/diffusers_bench.py times the same):
///
/// - SD-Turbo (the SD 2.1 UNet and OpenCLIP text encoder, Euler with trailing spacing) img2img of
///   a 512² image, 2 steps × strength 0.5 (one UNet evaluation), guidance 0, with TAESD and with
///   the full VAE;
/// - SD 1.5 + LCM-LoRA, the LCM scheduler, 4 steps × strength 0.5, guidance 1 (two evaluations).
///   A LoRA is merged into the weights at load, so the timed edit is that of SD 1.5 with the
///   LCM scheduler;
/// - the same LCM recipe on a 2048² image, the VAE tiled as diffusers' `vae.enable_tiling()`
///   (`tiled-2048`; its size is fixed). Run alone (`--part tiled-2048 --precision bf16`), the
///   process's peak resident memory is this edit's.
///
/// Prompt encoding, VAE encode, the UNet evaluations and VAE decode are timed; model building is
/// not. One warm-up edit first, except at 2048², where an edit takes minutes and the warm-up's
/// share of the first run (oneDNN primitive creation) is negligible.
public enum RecipeBenchmark {
    public enum Recipe: String, Sendable, CaseIterable {
        case turboTAESD = "turbo-taesd", turbo, lcm, tiled = "tiled-2048"

        /// The image side this recipe edits: `requested` (`--size`), except the 2048² row.
        func size(requested: Int) -> Int { self == .tiled ? 2048 : requested }
    }

    public static let prompt = "a photograph of an astronaut riding a horse"
    public static let seed = 0

    /// SD 2.1's public text encoder config (OpenCLIP ViT-H/14's text tower, 23 layers as SD uses it).
    static let sd21TextEncoderConfig = """
        {"architectures": ["CLIPTextModel"], "hidden_act": "gelu", "hidden_size": 1024, "intermediate_size": 4096,
         "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "num_attention_heads": 16, "num_hidden_layers": 23,
         "projection_dim": 512, "vocab_size": 49408, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}
        """

    /// SD-Turbo's UNet: SD 2.1 base's (64-wide heads, linear projections, 1024-wide context).
    static let sd21UNetConfig = ModelBenchmark.sd15UNetConfig
        .replacingOccurrences(of: "\"attention_head_dim\": 8", with: "\"attention_head_dim\": [5, 10, 20, 20]")
        .replacingOccurrences(of: "\"cross_attention_dim\": 768", with: "\"cross_attention_dim\": 1024, \"use_linear_projection\": true")

    /// SD-Turbo's scheduler: Euler, trailing timestep spacing.
    static let turboSchedulerConfig = """
        {"_class_name": "EulerDiscreteScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
         "num_train_timesteps": 1000, "prediction_type": "epsilon", "steps_offset": 1, "timestep_spacing": "trailing",
         "interpolation_type": "linear", "use_karras_sigmas": false}
        """

    static let lcmSchedulerConfig = ModelBenchmark.sd15SchedulerConfig.replacingOccurrences(of: "PNDMScheduler", with: "LCMScheduler")

    struct Settings {
        var steps: Int, strength: Double, guidance: Double
    }

    static func settings(_ recipe: Recipe) -> Settings {
        switch recipe {
        case .turboTAESD, .turbo: Settings(steps: 2, strength: 0.5, guidance: 0)
        case .lcm, .tiled: Settings(steps: 4, strength: 0.5, guidance: 1)
        }
    }

    public static func rowName(_ recipe: Recipe, size: Int) -> String {
        switch recipe {
        case .turboTAESD: "SD-Turbo img2img \(size)² 2 steps × 0.5, TAESD"
        case .turbo: "SD-Turbo img2img \(size)² 2 steps × 0.5, full VAE"
        case .lcm: "SD 1.5 + LCM-LoRA img2img \(size)² 4 steps × 0.5"
        case .tiled: "SD 1.5 + LCM-LoRA img2img \(size)² 4 steps × 0.5, tiled VAE"
        }
    }

    static func model(_ recipe: Recipe, precision: Precision) throws -> StableDiffusionModel {
        func reader(_ json: String, _ name: String) throws -> ConfigReader { try ConfigReader(json: JSONParser.parse(json), file: name) }
        let vae = try VAEConfig(reader: reader(ModelBenchmark.sd15VAEConfig, "sd vae config"))
        switch recipe {
        case .turboTAESD, .turbo:
            let text = try CLIPTextConfig(reader: reader(sd21TextEncoderConfig, "sd21 text_encoder config"))
            let unet = try UNetConfig(reader: reader(sd21UNetConfig, "sd21 unet config"))
            let scheduler = try SchedulerConfig(reader: reader(turboSchedulerConfig, "turbo scheduler config"))
            let taesd: (any LatentAutoencoder)? = recipe == .turboTAESD
                ? try AutoencoderTiny(config: TinyAutoencoderConfig(reader: reader("{}", "taesd config")), weights: RandomWeights(),
                                      precision: precision) : nil
            return try StableDiffusionModel.inMemory(name: "sd-turbo-random", textEncoder: text, vae: vae, unet: unet,
                                                     weights: RandomWeights(), schedulerConfig: scheduler, precision: precision,
                                                     tokenizer: try CLIPTokenizer.bundled(family: .sd2), replacingVAE: taesd)
        case .lcm, .tiled:
            let text = try CLIPTextConfig(reader: reader(ModelBenchmark.sd15TextEncoderConfig, "sd15 text_encoder config"))
            let scheduler = try SchedulerConfig(reader: reader(lcmSchedulerConfig, "lcm scheduler config"))
            return try StableDiffusionModel.inMemory(name: "sd15-lcm-random", textEncoder: text, vae: vae, unet: ModelBenchmark.sd15UNet(),
                                                     weights: RandomWeights(), schedulerConfig: scheduler, precision: precision,
                                                     tokenizer: try CLIPTokenizer.bundled(family: .sd1))
        }
    }

    public static func run(precision: Precision, recipes: [Recipe], repeats: Int = 1, size: Int = 512,
                           log: (String) -> Void = { _ in }) async throws -> [ModelBenchmark.Row] {
        var rows: [ModelBenchmark.Row] = []
        for recipe in recipes {
            let size = recipe.size(requested: size)
            let name = rowName(recipe, size: size)
            log("building \(name) (\(precision.rawValue), random weights)")
            let model = try model(recipe, precision: precision)
            let setting = settings(recipe)
            let scratch = try BenchmarkGraph.Scratch(image: EditBenchmark.testImage(size: size))
            defer { scratch.remove() }
            // The graph `chisel img2img` runs with these settings.
            var request = EditRequest(model: "random-weights:\(model.name)", image: scratch.image, output: scratch.output)
            request.prompt = prompt
            request.steps = setting.steps
            request.guidance = setting.guidance
            request.seed = .fixed(UInt64(seed))
            if recipe == .tiled { request.tiling = .on }
            let graph = try BenchmarkGraph(EditGraphs.img2img(request, facts: StableDiffusionFacts(model: model), strength: setting.strength),
                                           models: ["sd": model], output: scratch.output)
            func edit() async throws -> Image { try await graph.run(events: { _ in }) }
            if recipe != .tiled {
                log("\(name): warm-up")
                _ = try await edit()
            }
            _ = KernelProfile.report()
            var runs: [Double] = []
            for i in 0..<max(1, repeats) {
                let start = DispatchTime.now().uptimeNanoseconds
                let result = try await edit()
                runs.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                guard result.width == size, result.height == size else {
                    throw ChiselError(.internal, "the recipe benchmark made a \(result.width)×\(result.height) image")
                }
                log(String(format: "%@: run %d %.2f s", name, i + 1, runs[runs.count - 1]))
            }
            ModelBenchmark.logProfile(log, runs: max(1, repeats))
            rows.append(ModelBenchmark.Row(name: name, precision: precision, seconds: runs.min() ?? 0, runs: runs))
        }
        return rows
    }
}
