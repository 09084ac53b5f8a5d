import ChiselBase
import ChiselTensor
import Foundation

/// Times the full-size Stable Diffusion 1.5 UNet and VAE, built from their public configs with
/// random weights (speed does not depend on the values), as `chisel bench` reports them.
public enum ModelBenchmark {
    /// The public `unet/config.json` of Stable Diffusion 1.5.
    public static let sd15UNetConfig = """
        {"act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
         "center_input_sample": false, "cross_attention_dim": 768,
         "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
         "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
         "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
         "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]}
        """

    /// The public `vae/config.json` of Stable Diffusion 1.5.
    public static let sd15VAEConfig = """
        {"act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
         "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
         "in_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3,
         "sample_size": 512, "scaling_factor": 0.18215,
         "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]}
        """

    /// The public `unet/config.json` of Stable Diffusion XL 1.0 (base).
    public static let sdxlUNetConfig = """
        {"act_fn": "silu", "addition_embed_type": "text_time", "addition_embed_type_num_heads": 64,
         "addition_time_embed_dim": 256, "attention_head_dim": [5, 10, 20], "block_out_channels": [320, 640, 1280],
         "center_input_sample": false, "cross_attention_dim": 2048,
         "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"], "downsample_padding": 1,
         "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1,
         "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "projection_class_embeddings_input_dim": 2816,
         "sample_size": 128, "transformer_layers_per_block": [1, 2, 10],
         "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], "use_linear_projection": true}
        """

    /// The public config of lllyasviel/control_v11p_sd15_canny: SD 1.5's encoder and the
    /// control-image embedding.
    public static let sd15ControlNetConfig = """
        {"_class_name": "ControlNetModel", "act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
         "conditioning_embedding_out_channels": [16, 32, 96, 256], "controlnet_conditioning_channel_order": "rgb",
         "cross_attention_dim": 768,
         "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
         "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
         "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32}
        """

    /// The public config of TencentARC/t2iadapter_canny_sd15v2: a full adapter on a grey image.
    public static let sd15AdapterConfig = """
        {"_class_name": "T2IAdapter", "adapter_type": "full_adapter", "channels": [320, 640, 1280, 1280], "downscale_factor": 8,
         "in_channels": 1, "num_res_blocks": 2}
        """

    public struct Row: Sendable {
        public var name: String
        public var precision: Precision
        /// The fastest of the timed runs, in seconds.
        public var seconds: Double
        public var runs: [Double]

        public init(name: String, precision: Precision, seconds: Double, runs: [Double]) {
            self.name = name
            self.precision = precision
            self.seconds = seconds
            self.runs = runs
        }
    }

    public enum Part: String, Sendable, CaseIterable {
        case unet, vae
        /// aMUSEd's transformer (amused-256 and amused-512 configs, a CFG pair each) and VQ model.
        case uvit, vq
        /// Single kernels at the UNet's largest sizes, to see where the time goes.
        case kernels
        /// Whole edits (ChiselModelStages' `EditBenchmark`, run by `chisel bench`): img2img, and
        /// 9-channel inpainting; `edit` is both. `ModelBenchmark.run` itself skips them.
        case img2img, inpaint, edit
        /// The img2img edit with a step-skipping option: DeepCache every 3rd step full
        /// (`cache_interval` 3), guidance on the first half of the steps only (`guidance_end`
        /// 0.5), and both; token merging at ratio 0.5 (`token_merging`), alone and with DeepCache
        /// every 3rd step. Asked for.
        case img2imgCache3 = "img2img-cache3", img2imgGuidanceHalf = "img2img-guidance-half",
             img2imgCache3GuidanceHalf = "img2img-cache3-guidance-half", img2imgToMe = "img2img-tome05",
             img2imgCache3ToMe = "img2img-cache3-tome05"
        /// Whole aMUSEd edits (ChiselModelStages' `AmusedBenchmark`): text-to-image and img2img on
        /// the amused-256 and amused-512 architectures; `amused` is both.
        case amused256 = "amused-256", amused512 = "amused-512", amused
        /// Whole fast-recipe edits (ChiselModelStages' `RecipeBenchmark`): SD-Turbo with TAESD and
        /// with the full VAE; SD 1.5 with the LCM scheduler (LCM-LoRA); `recipes` is all three.
        /// `tiled-2048` is the LCM recipe on a 2048² image with a tiled VAE (not in `recipes`:
        /// it takes minutes).
        case turboTAESD = "turbo-taesd", turbo, lcm, recipes, tiled2048 = "tiled-2048"

        /// SDXL 1.0's UNet (a CFG pair with its added text/size embedding) and its VAE's decode,
        /// at `--size`; run only when asked for.
        case unetXL = "unet-xl", vaeXL = "vae-xl"

        /// SD 1.5's ControlNet (control_v11p_sd15_canny's config) with the UNet, a CFG pair —
        /// what a ControlNet step costs; and the T2I-Adapter (t2iadapter_canny_sd15v2's): its
        /// once-per-edit feature pass and the UNet pair with its features. Asked for.
        case controlNet = "controlnet", adapter

        /// The network parts `chisel bench` runs when none is named.
        public static let defaults: [Part] = [.unet, .vae]
    }

    /// Builds the networks in `precision` and times each `repeats` times after one warm-up run.
    public static func run(precision: Precision, parts: [Part] = [.unet, .vae], repeats: Int = 3, size: Int = 512,
                           log: (String) -> Void = { _ in }) throws -> [Row] {
        var rows: [Row] = []
        let latent = size / 8
        if parts.contains(.unet) {
            log("building the SD 1.5 UNet (\(precision.rawValue), random weights)")
            let config = try UNetConfig(reader: ConfigReader(json: JSONParser.parse(sd15UNetConfig), file: "sd15 unet config"))
            let unet = try UNet2DConditionModel(config: config, weights: RandomWeights(), precision: precision)
            let sample = try Tensor(shape: [2, latent, latent, 4], data: noise(2 * latent * latent * 4, seed: 1))
            let context = try Tensor(shape: [2, 77, 768], data: noise(2 * 77 * 768, seed: 2))
            rows.append(try time("UNet, CFG pair (batch 2) \(size)²", precision, repeats, log) {
                _ = try unet(sample, timesteps: [500, 500], context: context)
            })
            logProfile(log, runs: repeats + 1)
        }
        if parts.contains(.vae) {
            log("building the SD 1.5 VAE (\(precision.rawValue), random weights)")
            let config = try VAEConfig(reader: ConfigReader(json: JSONParser.parse(sd15VAEConfig), file: "sd15 vae config"))
            let vae = try AutoencoderKL(config: config, weights: RandomWeights(), precision: precision)
            let image = try Tensor(shape: [1, size, size, 3], data: noise(size * size * 3, seed: 3))
            let code = try Tensor(shape: [1, latent, latent, 4], data: noise(latent * latent * 4, seed: 4))
            rows.append(try time("VAE encode \(size)²", precision, repeats, log) { _ = try vae.encode(image) })
            logProfile(log, runs: repeats + 1)
            rows.append(try time("VAE decode \(size)²", precision, repeats, log) { _ = try vae.decode(code) })
            logProfile(log, runs: repeats + 1)
        }
        if parts.contains(.unetXL) {
            log("building the SDXL 1.0 UNet (\(precision.rawValue), random weights)")
            let config = try UNetConfig(reader: ConfigReader(json: JSONParser.parse(sdxlUNetConfig), file: "sdxl unet config"))
            let unet = try UNet2DConditionModel(config: config, weights: RandomWeights(), precision: precision)
            let sample = try Tensor(shape: [2, latent, latent, 4], data: noise(2 * latent * latent * 4, seed: 6))
            let context = try Tensor(shape: [2, 77, 2048], data: noise(2 * 77 * 2048, seed: 7))
            let pooled = try Tensor(shape: [2, 1280], data: noise(2 * 1280, seed: 8))
            let ids = Array(repeating: [Double(size), Double(size), 0, 0, Double(size), Double(size)], count: 2)
            rows.append(try time("SDXL UNet, CFG pair (batch 2) \(size)²", precision, repeats, log) {
                _ = try unet(sample, timesteps: [500, 500], context: context, added: (pooled, ids))
            })
            logProfile(log, runs: repeats + 1)
        }
        if parts.contains(.vaeXL) {
            // SDXL's VAE has SD's architecture (its scaling factor differs, which decoding does not time).
            log("building the SDXL VAE (\(precision.rawValue), random weights)")
            let config = try VAEConfig(reader: ConfigReader(json: JSONParser.parse(sd15VAEConfig), file: "sdxl vae config"))
            let vae = try AutoencoderKL(config: config, weights: RandomWeights(), precision: precision)
            let code = try Tensor(shape: [1, latent, latent, 4], data: noise(latent * latent * 4, seed: 9))
            rows.append(try time("SDXL VAE decode \(size)²", precision, repeats, log) { _ = try vae.decode(code) })
            logProfile(log, runs: repeats + 1)
        }
        if parts.contains(.controlNet) || parts.contains(.adapter) {
            log("building the SD 1.5 UNet (\(precision.rawValue), random weights)")
            let config = try UNetConfig(reader: ConfigReader(json: JSONParser.parse(sd15UNetConfig), file: "sd15 unet config"))
            let unet = try UNet2DConditionModel(config: config, weights: RandomWeights(), precision: precision)
            let sample = try Tensor(shape: [2, latent, latent, 4], data: noise(2 * latent * latent * 4, seed: 1))
            let context = try Tensor(shape: [2, 77, 768], data: noise(2 * 77 * 768, seed: 2))
            if parts.contains(.controlNet) {
                log("building the SD 1.5 ControlNet (\(precision.rawValue), random weights)")
                let controlConfig = try ControlNetConfig(reader: ConfigReader(json: JSONParser.parse(sd15ControlNetConfig), file: "controlnet config"))
                let controlNet = try ControlNetModel(config: controlConfig, weights: RandomWeights(), precision: precision)
                let image = try Tensor(shape: [2, size, size, 3], data: noise(2 * size * size * 3, seed: 10).map { abs($0) })
                rows.append(try time("ControlNet + UNet, CFG pair (batch 2) \(size)²", precision, repeats, log) {
                    let residuals = try controlNet(sample, timesteps: [500, 500], context: context, condition: image, scale: 1)
                    _ = try unet(sample, timesteps: [500, 500], context: context, control: residuals)
                })
                logProfile(log, runs: repeats + 1)
            }
            if parts.contains(.adapter) {
                log("building the SD 1.5 T2I-Adapter (\(precision.rawValue), random weights)")
                let adapterConfig = try T2IAdapterConfig(reader: ConfigReader(json: JSONParser.parse(sd15AdapterConfig), file: "adapter config"))
                let adapter = try T2IAdapter(config: adapterConfig, weights: RandomWeights(), precision: precision)
                let image = try Tensor(shape: [1, size, size, 1], data: noise(size * size, seed: 11).map { abs($0) })
                var features: [Tensor] = []
                rows.append(try time("T2I-Adapter features \(size)²", precision, repeats, log) { features = try adapter(image) })
                let doubled = try features.map { try Tensor(shape: [2] + $0.shape.dropFirst(), data: $0.data + $0.data) }
                rows.append(try time("UNet + adapter features, CFG pair (batch 2) \(size)²", precision, repeats, log) {
                    _ = try unet(sample, timesteps: [500, 500], context: context, adapter: doubled)
                })
                logProfile(log, runs: repeats + 1)
            }
        }
        rows += try runAmused(precision: precision, parts: parts, repeats: repeats, log: log)
        if parts.contains(.kernels) {
            let tokens = latent * latent
            let x = try Tensor(shape: [2, latent, latent, 320], data: noise(2 * tokens * 320, seed: 5))
            let w = RandomWeights()
            let conv = try Conv2D(inChannels: 320, outChannels: 320, kernel: 3, padding: 1,
                                  weights: w.floats("c.weight", shape: [320, 320, 3, 3]), bias: nil, precision: precision)
            rows.append(try time("conv 3×3 320→320 (15.1 GFLOP)", precision, repeats, log) { _ = try conv(x) })
            let linear = try Linear(inFeatures: 320, outFeatures: 2560, weights: w.floats("l.weight", shape: [2560, 320]),
                                    bias: nil, precision: precision)
            rows.append(try time("linear 320→2560 (13.4 GFLOP)", precision, repeats, log) { _ = try linear(x) })
            let norm = try GroupNorm(groups: 32, channels: 320, epsilon: 1e-5, gamma: .init(repeating: 1, count: 320),
                                     beta: .init(repeating: 0, count: 320))
            rows.append(try time("group norm + SiLU", precision, repeats, log) { _ = try norm(x, silu: true) })
            let seq = try x.reshaped([2, tokens, 320])
            rows.append(try time("self-attention 8 heads (43 GFLOP)", precision, repeats, log) {
                _ = try Attention.compute(q: seq, k: seq, v: seq, heads: 8, precision: precision)
            })
            let layerNorm = try LayerNorm(features: 320, epsilon: 1e-5, gamma: .init(repeating: 1, count: 320),
                                          beta: .init(repeating: 0, count: 320))
            rows.append(try time("layer norm", precision, repeats, log) { _ = try layerNorm(seq) })
            rows.append(try time("concat channels", precision, repeats, log) { _ = try Ops.concatChannels(x, x) })
        }
        return rows
    }

    /// With CHISEL_PROFILE=1, logs where the time of the last part went, per run.
    public static func logProfile(_ log: (String) -> Void, runs: Int) {
        guard KernelProfile.enabled else { return }
        for entry in KernelProfile.report() {
            log(String(format: "  %8.3f s  %5d calls  %@", entry.seconds / Double(runs), entry.calls / runs, entry.name))
        }
    }

    /// Peak resident memory of this process so far, in bytes.
    public static func peakResidentBytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
    }

    static func time(_ name: String, _ precision: Precision, _ repeats: Int, _ log: (String) -> Void,
                             _ body: () throws -> Void) throws -> Row {
        log("\(name): warm-up")
        try body()
        var runs: [Double] = []
        for i in 0..<max(1, repeats) {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            runs.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            log(String(format: "%@: run %d %.2f s", name, i + 1, runs[runs.count - 1]))
        }
        return Row(name: name, precision: precision, seconds: runs.min() ?? 0, runs: runs)
    }

    static func noise(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 23) - 1
        }
    }
}
