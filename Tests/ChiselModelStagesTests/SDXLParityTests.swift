import ChiselCore
import ChiselDiffusion
import ChiselImageIO
import ChiselModels
import ChiselModelStages
import ChiselStages
import ChiselTensor
import Foundation
import Testing

/// Stable Diffusion XL against diffusers' StableDiffusionXL pipelines on tiny random-weight SDXL
/// models (tools/reference/sdxl.py, tools/reference/SDXL.md): the prompt embeddings of both
/// encoders and the pooled one, the micro-conditioning, the draws, the loop and the decoded
/// output within 2/255 (max) and 0.5/255 (mean) in FP32.
@Suite(.serialized) struct SDXLParityTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/sdxl").path
    static let pipelines = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/pipelines").path
    static let references = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ChiselModelsTests/Fixtures/reference").path

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var kind: String
        var model: String
        var scheduler: String
        var steps: Int
        var strength: Double
        var guidance: Double
        var prompt: String
        var negativePrompt: String?
        var seed: Int
        var mask: String?
        var width: Int
        var height: Int
        var file: String
        var aesthetic: (Double, Double)?
        var testDescription: String { name }
    }

    static let cases: [Case] = {
        guard let data = FileManager.default.contents(atPath: fixtures + "/cases.json"),
              let json = try? JSONParser.parse(String(decoding: data, as: UTF8.self)), case .array(let entries)? = json["cases"] else {
            return []
        }
        return entries.compactMap { e in
            guard let name = e["name"]?.stringValue, let kind = e["kind"]?.stringValue, let model = e["model"]?.stringValue,
                  let steps = e["num_inference_steps"]?.intValue, let guidance = e["guidance_scale"]?.doubleValue,
                  let prompt = e["prompt"]?.stringValue, let seed = e["seed"]?.intValue, let file = e["file"]?.stringValue,
                  let width = e["width"]?.intValue, let height = e["height"]?.intValue else { return nil }
            // The scheduler Chisel names for the case's class and overrides.
            let className = e["scheduler"]?["class"]?.stringValue ?? ""
            let karras = e["scheduler"]?["overrides"]?["use_karras_sigmas"] == .bool(true)
            let scheduler = className == "DPMSolverMultistepScheduler" ? (karras ? "dpmpp_2m_karras" : "dpmpp_2m") : "euler"
            var c = Case(name: name, kind: kind, model: model, scheduler: scheduler, steps: steps,
                         strength: e["strength"]?.doubleValue ?? 1, guidance: guidance, prompt: prompt,
                         negativePrompt: e["negative_prompt"]?.stringValue, seed: seed, mask: e["mask"]?.stringValue,
                         width: width, height: height, file: file)
            if let extra = e["extra_call_arguments"], let score = extra["aesthetic_score"]?.doubleValue {
                c.aesthetic = (score, extra["negative_aesthetic_score"]?.doubleValue ?? 2.5)
            }
            return c
        }
    }()

    /// The cases this test runs: img2img, txt2img and inpainting from folders, without extra
    /// call arguments Chisel does not take (`prompt_2`, micro-conditioning overrides, the
    /// explicit empty negative prompt, which Chisel reads as no negative prompt) and the base →
    /// refiner hand-off.
    static let runnable: [Case] = cases.filter { c in
        !c.name.contains("microcond") && !c.name.contains("negative_empty") && !c.name.hasPrefix("handoff")
    }

    /// The case's model: its folder, or the same weights as one single file, with the config
    /// values its tensors cannot tell (the tiny model's heads and norm groups) and the folder's tokenizers.
    static func load(_ c: Case) throws -> StableDiffusionModel {
        let folder = references + "/" + c.model
        if c.name.contains("lora_kohya") {
            // kohya's SDXL names (lora_unet_input_blocks_…, lora_te1_, lora_te2_) at 0.8, as fuse_lora(lora_scale=0.8).
            let lora = try LoRAFile(path: references + "/sdxl-tiny-lora-kohya.safetensors")
            #expect(lora.layers(of: .unet).count == 258 && lora.layers(of: .textEncoder2).count == 12)
            return try StableDiffusionModel.load(path: folder, loras: [LoRAApplication(file: lora, scale: 0.8)])
        }
        if c.name.contains("textual_inversion") {
            // diffusers loaded clip_l and clip_g under the token <sdxl-style>.
            let embedding = try TextualInversion(path: references + "/sdxl-tiny-embedding.safetensors", token: "<sdxl-style>")
            #expect(embedding.vectors.count == 2 && embedding.vectors2?.count == 2)
            return try StableDiffusionModel.load(path: folder, embeddings: [embedding])
        }
        if c.name.contains("taesd") {
            // A TAESDXL-style AutoencoderTiny as the pipeline's vae.
            return try StableDiffusionModel.load(path: folder, vae: references + "/sdxl-taesd-tiny")
        }
        guard c.name.contains("single_file") else { return try StableDiffusionModel.load(path: folder) }
        return try StableDiffusionModel.load(path: folder + ".safetensors",
                                             hints: ["unet.norm_num_groups": 4, "unet.attention_head_dim": .array([1, 2, 4]),
                                                     "vae.norm_num_groups": 8, "text_encoder.num_attention_heads": 2,
                                                     "text_encoder_2.num_attention_heads": 2],
                                             tokenizer: folder + "/tokenizer", tokenizer2: folder + "/tokenizer_2")
    }

    static func expected(_ c: Case, _ key: String) throws -> [Float] {
        try SafeTensorsFile(path: "\(fixtures)/\(c.file)").floats(key)
    }

    /// The largest and the mean difference of a decoded image from the case's `output` (H×W×3).
    static func outputDifference(_ image: Image, _ c: Case) throws -> (max: Float, mean: Float) {
        let reference = try expected(c, "output")
        let n = image.width * image.height
        var largest: Float = 0, sum: Float = 0
        for i in 0..<n {
            for ch in 0..<3 {
                let d = abs(image.pixels[ch * n + i] - reference[i * 3 + ch])
                largest = max(largest, d)
                sum += d
            }
        }
        return (largest, sum / Float(3 * n))
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        guard a.count == b.count else { return .infinity }
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    @Test func theFixturesAreThere() {
        #expect(Self.runnable.count >= 13, "\(Self.cases.map(\.name))")
    }

    @Test(arguments: runnable)
    func matchesDiffusers(c: Case) async throws {
        let model = try Self.load(c)
        let run = ModelStageRun(model)
        let text = try await EncodePromptStage.run(run.call(EncodePromptStage.self, [
            EncodePromptStage.prompt(c.prompt), EncodePromptStage.negativePrompt(c.negativePrompt ?? "")]))
        let conditioning = try #require(text[EncodePromptStage.conditioning])
        #expect(Self.maxDifference(conditioning.positive.hiddenStates, try Self.expected(c, "prompt_embeds")) < 1e-4, "prompt_embeds")
        #expect(Self.maxDifference(conditioning.negative?.hiddenStates ?? [], try Self.expected(c, "negative_prompt_embeds")) < 1e-4,
                "negative_prompt_embeds")
        #expect(Self.maxDifference(conditioning.positive.pooled ?? [], try Self.expected(c, "pooled_prompt_embeds")) < 1e-4, "pooled")
        #expect(Self.maxDifference(conditioning.negative?.pooled ?? [], try Self.expected(c, "negative_pooled_prompt_embeds")) < 1e-4,
                "negative pooled")

        let image = try ImageReader.read(path: Self.pipelines + "/image.png").image.converted(to: .rgb)
        var denoiseParams = [DenoiseStage.guidance(c.guidance)]
        if let (score, negative) = c.aesthetic {
            denoiseParams += [DenoiseStage.aestheticScore(score), DenoiseStage.negativeAestheticScore(negative)]
        }
        let denoised: Latent
        switch c.kind {
        case "txt2img":
            let empty = try await EmptyLatentStage.run(run.call(EmptyLatentStage.self, [EmptyLatentStage.width(c.width),
                                                                                        EmptyLatentStage.height(c.height)]))
            let noisedOut = try await AddNoiseStage.run(run.call(AddNoiseStage.self, [
                AddNoiseStage.scheduler(c.scheduler), AddNoiseStage.steps(c.steps), AddNoiseStage.strength(1), AddNoiseStage.pureNoise(true),
                AddNoiseStage.seed(.fixed(UInt64(c.seed)))], [AddNoiseStage.latent(try #require(empty[EmptyLatentStage.latent]))]))
            let noised = try #require(noisedOut[AddNoiseStage.noised])
            #expect(Self.maxDifference(noised.values, try Self.expected(c, "latents_start")) < 1e-4, "latents_start")
            let out = try await DenoiseStage.run(run.call(DenoiseStage.self, denoiseParams,
                                                          [DenoiseStage.latent(noised), DenoiseStage.conditioning(conditioning)]))
            denoised = try #require(out[DenoiseStage.denoised])
        case "img2img":
            let encoded = try await VAEEncodeStage.run(run.call(VAEEncodeStage.self, [VAEEncodeStage.seed(.fixed(UInt64(c.seed)))],
                                                                [VAEEncodeStage.image(image)]))
            let latent = try #require(encoded[VAEEncodeStage.latent])
            #expect(Self.maxDifference(latent.values, try Self.expected(c, "image_latents")) < 1e-4, "image latents")
            let noisedOut = try await AddNoiseStage.run(run.call(AddNoiseStage.self, [
                AddNoiseStage.scheduler(c.scheduler), AddNoiseStage.steps(c.steps), AddNoiseStage.strength(c.strength)],
                [AddNoiseStage.latent(latent)]))
            let noised = try #require(noisedOut[AddNoiseStage.noised])
            #expect(Self.maxDifference(noised.values, try Self.expected(c, "latents_start")) < 1e-4, "latents_start")
            let out = try await DenoiseStage.run(run.call(DenoiseStage.self, denoiseParams,
                                                          [DenoiseStage.latent(noised), DenoiseStage.conditioning(conditioning)]))
            denoised = try #require(out[DenoiseStage.denoised])
        default:
            let maskOut = try await LoadMaskStage.run(run.call(LoadMaskStage.self, [LoadMaskStage.path(Self.pipelines + "/mask.png")]))
            let mask = try #require(maskOut[LoadMaskStage.mask])
            let nineChannel = model.unet.config.inChannels == 9
            let full = c.strength >= 1
            let clean: Latent
            if !nineChannel || !full {
                let out = try await VAEEncodeStage.run(run.call(VAEEncodeStage.self, [VAEEncodeStage.seed(.fixed(UInt64(c.seed)))],
                                                                [VAEEncodeStage.image(image)]))
                clean = try #require(out[VAEEncodeStage.latent])
            } else {
                let out = try await EmptyLatentStage.run(run.call(EmptyLatentStage.self, [], [EmptyLatentStage.like(image)]))
                clean = try #require(out[EmptyLatentStage.latent])
            }
            var noiseParams = [AddNoiseStage.scheduler(c.scheduler), AddNoiseStage.steps(c.steps), AddNoiseStage.strength(c.strength),
                               AddNoiseStage.pureNoise(full)]
            if nineChannel && full { noiseParams.append(AddNoiseStage.seed(.fixed(UInt64(c.seed)))) }
            let noisedOut = try await AddNoiseStage.run(run.call(AddNoiseStage.self, noiseParams, [AddNoiseStage.latent(clean)]))
            let noised = try #require(noisedOut[AddNoiseStage.noised])
            #expect(Self.maxDifference(noised.values, try Self.expected(c, "latents_start")) < 1e-4, "latents_start")
            let out = try await VAEEncodeStage.run(run.call(VAEEncodeStage.self, [], [
                VAEEncodeStage.image(image), VAEEncodeStage.mask(mask), VAEEncodeStage.stream(noised)]))
            let masked = try #require(out[VAEEncodeStage.latent])
            #expect(Self.maxDifference(masked.values, try Self.expected(c, "masked_image_latents")) < 1e-4, "masked image latents")
            var inputs = [DenoiseStage.latent(noised), DenoiseStage.conditioning(conditioning), DenoiseStage.mask(mask),
                          DenoiseStage.stream(masked)]
            inputs.append(nineChannel ? DenoiseStage.maskedImage(masked) : DenoiseStage.original(clean))
            let denoisedOut = try await DenoiseStage.run(run.call(DenoiseStage.self, denoiseParams, inputs))
            denoised = try #require(denoisedOut[DenoiseStage.denoised])
        }
        let final = try Self.expected(c, "latents_final")
        #expect(Self.maxDifference(denoised.values, final) < 1e-3 * max(1, final.map(abs).max() ?? 1), "latents_final")
        let decodedOut = try await VAEDecodeStage.run(run.call(VAEDecodeStage.self, [], [VAEDecodeStage.latent(denoised)]))
        let difference = try Self.outputDifference(try #require(decodedOut[VAEDecodeStage.image]), c)
        #expect(difference.max <= 2 / 255, "max |Δ| \(difference.max * 255)/255")
        #expect(difference.mean <= 0.5 / 255, "mean |Δ| \(difference.mean * 255)/255")
    }

    /// The base → refiner hand-off in latent space: the base stops before step 8 of 10
    /// (diffusers' denoising_end 0.8, `stop_at` 8) and the refiner runs the rest of the same
    /// schedule from that latent (denoising_start 0.8), adding no noise, with its own encoder and
    /// aesthetic scores; an empty negative prompt is encoded, not zeros (the refiner's
    /// force_zeros_for_empty_prompt is false).
    @Test func baseHandsOffToTheRefiner() async throws {
        let base = try #require(Self.cases.first { $0.name == "handoff_base_denoising_end080" })
        let refinerCase = try #require(Self.cases.first { $0.name == "handoff_refiner_denoising_start080" })
        let baseRun = ModelStageRun(try StableDiffusionModel.load(path: Self.references + "/sdxl-tiny"))
        let text = try await EncodePromptStage.run(baseRun.call(EncodePromptStage.self, [EncodePromptStage.prompt(base.prompt)]))
        let empty = try await EmptyLatentStage.run(baseRun.call(EmptyLatentStage.self, [EmptyLatentStage.width(base.width),
                                                                                        EmptyLatentStage.height(base.height)]))
        let noisedOut = try await AddNoiseStage.run(baseRun.call(AddNoiseStage.self, [
            AddNoiseStage.scheduler("euler"), AddNoiseStage.steps(base.steps), AddNoiseStage.strength(1), AddNoiseStage.pureNoise(true),
            AddNoiseStage.seed(.fixed(UInt64(base.seed)))], [AddNoiseStage.latent(try #require(empty[EmptyLatentStage.latent]))]))
        let stoppedOut = try await DenoiseStage.run(baseRun.call(DenoiseStage.self, [DenoiseStage.guidance(base.guidance), DenoiseStage.stopAt(8)], [
            DenoiseStage.latent(try #require(noisedOut[AddNoiseStage.noised])),
            DenoiseStage.conditioning(try #require(text[EncodePromptStage.conditioning]))]))
        let stopped = try #require(stoppedOut[DenoiseStage.denoised])
        let handed = try Self.expected(base, "output")
        #expect(Self.maxDifference(stopped.values, handed) < 1e-3 * max(1, handed.map(abs).max() ?? 1), "the base's latent at step 8")

        let refinerRun = ModelStageRun(try StableDiffusionModel.load(path: Self.references + "/sdxl-refiner-tiny"))
        let refinerText = try await EncodePromptStage.run(refinerRun.call(EncodePromptStage.self, [EncodePromptStage.prompt(refinerCase.prompt)]))
        let conditioning = try #require(refinerText[EncodePromptStage.conditioning])
        #expect(Self.maxDifference(conditioning.negative?.hiddenStates ?? [], try Self.expected(refinerCase, "negative_prompt_embeds")) < 1e-4,
                "the refiner encodes the empty negative prompt")
        let refinedOut = try await DenoiseStage.run(refinerRun.call(DenoiseStage.self, [
            DenoiseStage.guidance(refinerCase.guidance), DenoiseStage.aestheticScore(6), DenoiseStage.negativeAestheticScore(2.5)], [
            DenoiseStage.latent(stopped), DenoiseStage.conditioning(conditioning)]))
        let refined = try #require(refinedOut[DenoiseStage.denoised])
        let final = try Self.expected(refinerCase, "latents_final")
        #expect(Self.maxDifference(refined.values, final) < 1e-3 * max(1, final.map(abs).max() ?? 1), "the refiner's last latent")
    }

    /// AUTOMATIC1111's chunks for SDXL (no A1111 run here: the pieces are checked): an
    /// unweighted prompt of one chunk is diffusers' encoding exactly, pooled too; a longer one has
    /// one 77-token chunk per 75 tokens for both encoders side by side; weights change the hidden
    /// states but not the pooled embedding; an empty negative prompt is zeros.
    @Test func chunkModeComposesAUTOMATIC1111sPieces() async throws {
        let run = ModelStageRun(try StableDiffusionModel.load(path: Self.references + "/sdxl-tiny"))
        func encode(_ prompt: String, _ negative: String, chunk: Bool) async throws -> Conditioning {
            let out = try await EncodePromptStage.run(run.call(EncodePromptStage.self, [
                EncodePromptStage.prompt(prompt), EncodePromptStage.negativePrompt(negative),
                EncodePromptStage.mode(chunk ? .chunk : .truncate)]))
            return try #require(out[EncodePromptStage.conditioning])
        }
        let plain = "a red fox sitting in a snowy forest"
        let truncated = try await encode(plain, "blurry", chunk: false)
        let chunked = try await encode(plain, "blurry", chunk: true)
        #expect(Self.maxDifference(chunked.positive.hiddenStates, truncated.positive.hiddenStates) < 1e-6)
        #expect(Self.maxDifference(chunked.negative?.hiddenStates ?? [], truncated.negative?.hiddenStates ?? []) < 1e-6)
        #expect(Self.maxDifference(chunked.positive.pooled ?? [], truncated.positive.pooled ?? []) < 1e-6)
        let long = try await encode(Array(repeating: "fox", count: 100).joined(separator: " "), "", chunk: true)
        let tokens = long.positive.shape[1]
        #expect(tokens > 77 && tokens % 77 == 0 && long.positive.shape[2] == 40 && long.negative?.shape == long.positive.shape,
                "\(long.positive.shape)")
        #expect(long.negative?.hiddenStates.allSatisfy { $0 == 0 } == true && long.negative?.pooled?.allSatisfy { $0 == 0 } == true)
        let weighted = try await encode("a red (fox:1.5) sitting in a snowy forest", "blurry", chunk: true)
        #expect(Self.maxDifference(weighted.positive.hiddenStates, chunked.positive.hiddenStates) > 1e-3)
        #expect(Self.maxDifference(weighted.positive.pooled ?? [], chunked.positive.pooled ?? []) < 1e-6, "the pooled embedding is unweighted")
    }

    /// BF16 networks against diffusers' FP32 pipeline, on the Euler img2img case: bfloat16
    /// products shift the trajectory a little at every step, so the bound is SD's BF16 one —
    /// max |Δ| ≤ 8/255, mean ≤ 1/255 (measured: 1.85/255 and 0.30/255).
    @Test func img2imgInBF16StaysWithinItsBound() async throws {
        let c = try #require(Self.cases.first { $0.name == "img2img_euler_s060" })
        let run = ModelStageRun(try StableDiffusionModel.load(path: Self.references + "/" + c.model, precision: .bf16))
        let text = try await EncodePromptStage.run(run.call(EncodePromptStage.self, [
            EncodePromptStage.prompt(c.prompt), EncodePromptStage.negativePrompt(c.negativePrompt ?? "")]))
        let image = try ImageReader.read(path: Self.pipelines + "/image.png").image.converted(to: .rgb)
        let encoded = try await VAEEncodeStage.run(run.call(VAEEncodeStage.self, [VAEEncodeStage.seed(.fixed(UInt64(c.seed)))],
                                                            [VAEEncodeStage.image(image)]))
        let noisedOut = try await AddNoiseStage.run(run.call(AddNoiseStage.self, [
            AddNoiseStage.scheduler(c.scheduler), AddNoiseStage.steps(c.steps), AddNoiseStage.strength(c.strength)],
            [AddNoiseStage.latent(try #require(encoded[VAEEncodeStage.latent]))]))
        let out = try await DenoiseStage.run(run.call(DenoiseStage.self, [DenoiseStage.guidance(c.guidance)], [
            DenoiseStage.latent(try #require(noisedOut[AddNoiseStage.noised])),
            DenoiseStage.conditioning(try #require(text[EncodePromptStage.conditioning]))]))
        let decodedOut = try await VAEDecodeStage.run(run.call(VAEDecodeStage.self, [], [
            VAEDecodeStage.latent(try #require(out[DenoiseStage.denoised]))]))
        let difference = try Self.outputDifference(try #require(decodedOut[VAEDecodeStage.image]), c)
        #expect(difference.max <= 8 / 255 && difference.mean <= 1 / 255,
                "max |Δ| \(difference.max * 255)/255, mean \(difference.mean * 255)/255")
    }
}
