import ChiselCore
import ChiselDiffusion
import ChiselImageIO
import ChiselModels
import ChiselModelStages
import ChiselStages
import ChiselTensor
import Foundation
import Testing

/// The editing stages against diffusers' pipelines on the tiny random-weight models
/// (tools/reference/pipelines.py): the decoded output within 2/255 (max) and 0.5/255 (mean)
/// in FP32, and the intermediates on the way there.
@Suite(.serialized) struct PipelineParityTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/pipelines").path
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var kind: String
        var family: String
        var singleFile: Bool
        var scheduler: String
        var steps: Int
        var strength: Double
        var guidance: Double
        var guidanceRescale: Double
        /// ToMe's ratio (tomesd as A1111 applies it), 0 for none.
        var tokenMerging: Double
        var prompt: String
        var negativePrompt: String
        var seed: Int
        var eta: Double
        var mask: String?
        var width: Int
        var height: Int
        /// Scheduler config keys the case set on top of the folder's (`from_config(cfg, **overrides)`).
        var overrides: String
        /// The fixture file of the case's tensors (the single-file case shares the folder case's).
        var file: String
        var testDescription: String { name }
    }

    static let cases: [Case] = {
        // Python's json writes DPM-Solver's lambda_min_clipped as -Infinity, which JSON does not have.
        guard let data = FileManager.default.contents(atPath: fixtures + "/cases.json"),
            let json = try? JSONParser.parse(String(decoding: data, as: UTF8.self).replacingOccurrences(of: "-Infinity", with: "null")),
            case .array(let entries)? = json["cases"]
        else { return [] }
        return entries.compactMap { entry -> Case? in
            guard let name = entry["name"]?.stringValue, let kind = entry["kind"]?.stringValue,
                let family = entry["family"]?.stringValue, let scheduler = entry["scheduler"],
                let className = scheduler["class"]?.stringValue, case .int(let steps)? = entry["num_inference_steps"],
                case .int(let seed)? = entry["seed"], case .int(let width)? = entry["width"],
                case .int(let height)? = entry["height"]
            else { return nil }
            let overrides = scheduler["overrides"]
            let own = scheduler["from_config_of"]?.stringValue?.hasPrefix(className) == true && (overrides?.members?.isEmpty ?? true)
            var kindName = own ? "auto" : SchedulerClass(rawValue: className).flatMap { cls in
                SchedulerKind.allCases.first { $0.schedulerClass == cls && $0.overrides == SchedulerConfig() }?.rawValue
            } ?? "auto"
            if className == "DPMSolverMultistepScheduler" {
                let sde = overrides?["algorithm_type"]?.stringValue == "sde-dpmsolver++"
                let karras = overrides?["use_karras_sigmas"] == .bool(true)
                kindName = sde ? (karras ? "dpmpp_2m_sde_karras" : "dpmpp_2m_sde") : (karras ? "dpmpp_2m_karras" : "dpmpp_2m")
            }
            func number(_ key: String) -> Double? {
                switch entry[key] {
                case .double(let d)?: d
                case .int(let i)?: Double(i)
                default: nil
                }
            }
            return Case(name: name, kind: kind, family: family, singleFile: entry["loaded_from"]?.stringValue == "single_file",
                        scheduler: kindName, steps: steps, strength: number("strength") ?? 1, guidance: number("guidance_scale") ?? 7.5,
                        guidanceRescale: number("guidance_rescale") ?? 0, tokenMerging: number("token_merging") ?? 0,
                        prompt: entry["prompt"]?.stringValue ?? "", negativePrompt: entry["negative_prompt"]?.stringValue ?? "",
                        seed: seed, eta: number("eta") ?? 0, mask: entry["mask"]?.stringValue, width: width, height: height,
                        overrides: overrides?.serialized() ?? "{}", file: entry["file"]?.stringValue ?? name + ".safetensors")
        }
    }()

    static func model(_ c: Case, precision: Precision = .f32) throws -> StableDiffusionModel {
        let root = repository + "/Tests/ChiselModelsTests/Fixtures/reference/" + c.family
        // The tiny single files need the config values their shapes cannot tell, and a tokenizer.
        let model = c.singleFile
            ? try StableDiffusionModel.load(path: root + ".safetensors", precision: precision,
                                            hints: ["vae.norm_num_groups": 8, "unet.norm_num_groups": 8, "unet.attention_head_dim": 8,
                                                    "text_encoder.num_attention_heads": 4],
                                            tokenizer: root + "/tokenizer")
            : try StableDiffusionModel.load(path: root, precision: precision)
        if c.singleFile {
            // pipelines.py loaded the single file with the folder's configs, scheduler included.
            let folderScheduler = try #require(FileManager.default.contents(atPath: root + "/scheduler/scheduler_config.json"))
            return model.overridingScheduler(try JSONDecoder().decode(SchedulerConfig.self, from: folderScheduler))
        }
        return model.overridingScheduler(try JSONDecoder().decode(SchedulerConfig.self, from: Data(c.overrides.utf8)))
    }

    typealias Run = ModelStageRun<StableDiffusionModel>

    static func expected(_ c: Case, _ key: String) throws -> [Float] {
        try SafeTensorsFile(path: "\(fixtures)/\(c.file)").floats(key)
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
    }

    @Test(arguments: cases.filter { $0.kind == "img2img" })
    func img2imgMatchesDiffusers(c: Case) async throws {
        let run = Run(try Self.model(c))
        let image = try ImageReader.read(path: Self.fixtures + "/image.png").image.converted(to: .rgb)
        let text = try await EncodePromptStage.run(run.call(EncodePromptStage.self, [
            EncodePromptStage.prompt(c.prompt), EncodePromptStage.negativePrompt(c.negativePrompt)]))
        let conditioning = try #require(text[EncodePromptStage.conditioning])
        #expect(Self.maxDifference(conditioning.positive.hiddenStates, try Self.expected(c, "prompt_embeds")) < 1e-4)
        let encoded = try await VAEEncodeStage.run(run.call(VAEEncodeStage.self, [VAEEncodeStage.seed(.fixed(UInt64(c.seed)))], [VAEEncodeStage.image(image)]))
        let latent = try #require(encoded[VAEEncodeStage.latent])
        let imageLatents = try Self.expected(c, "image_latents")
        #expect(Self.maxDifference(latent.values, imageLatents) < 1e-4, "image latents")
        let noisedOut = try await AddNoiseStage.run(run.call(AddNoiseStage.self, [
            AddNoiseStage.scheduler(c.scheduler), AddNoiseStage.steps(c.steps), AddNoiseStage.strength(c.strength)],
            [AddNoiseStage.latent(latent)]))
        let noised = try #require(noisedOut[AddNoiseStage.noised])
        #expect(Self.maxDifference(noised.diffusion?.initialNoise ?? [], try Self.expected(c, "noise")) == 0, "noise")
        #expect(Self.maxDifference(noised.values, try Self.expected(c, "latents_start")) < 1e-4, "latents_start")
        let denoisedOut = try await DenoiseStage.run(run.call(DenoiseStage.self, [
            DenoiseStage.guidance(c.guidance), DenoiseStage.eta(c.eta), DenoiseStage.tokenMerging(c.tokenMerging)],
            [DenoiseStage.latent(noised), DenoiseStage.conditioning(conditioning)]))
        let denoised = try #require(denoisedOut[DenoiseStage.denoised])
        let final = try Self.expected(c, "latents_final")
        let finalScale = final.map(abs).max() ?? 1
        #expect(Self.maxDifference(denoised.values, final) < 1e-3 * max(1, finalScale), "latents_final")
        let decodedOut = try await VAEDecodeStage.run(run.call(VAEDecodeStage.self, [], [VAEDecodeStage.latent(denoised)]))
        let decoded = try #require(decodedOut[VAEDecodeStage.image])
        try Self.checkOutput(decoded, c)
    }

    @Test(arguments: cases.filter { $0.kind == "inpaint" })
    func inpaintMatchesDiffusers(c: Case) async throws {
        let run = Run(try Self.model(c))
        let image = try ImageReader.read(path: Self.fixtures + "/image.png").image.converted(to: .rgb)
        let maskFile = try #require(c.mask)
        let maskOut = try await LoadMaskStage.run(run.call(LoadMaskStage.self, [LoadMaskStage.path(Self.fixtures + "/" + maskFile)]))
        let mask = try #require(maskOut[LoadMaskStage.mask])
        let text = try await EncodePromptStage.run(run.call(EncodePromptStage.self, [
            EncodePromptStage.prompt(c.prompt), EncodePromptStage.negativePrompt(c.negativePrompt)]))
        let conditioning = try #require(text[EncodePromptStage.conditioning])
        let nineChannel = run.model.unet.config.inChannels == 9
        let full = c.strength >= 1
        // The pipeline's draws in order: the image latent's sample (4-channel, or strength < 1),
        // the initial noise, the masked image's sample (9-channel).
        let clean: Latent
        if !nineChannel || !full {
            let out = try await VAEEncodeStage.run(run.call(VAEEncodeStage.self, [VAEEncodeStage.seed(.fixed(UInt64(c.seed)))], [VAEEncodeStage.image(image)]))
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
        #expect(Self.maxDifference(noised.diffusion?.initialNoise ?? [], try Self.expected(c, "noise")) == 0, "noise")
        #expect(Self.maxDifference(noised.values, try Self.expected(c, "latents_start")) < 1e-4, "latents_start")
        // The pipeline encodes the masked image for 4-channel models too; its draw precedes the loop's.
        let out = try await VAEEncodeStage.run(run.call(VAEEncodeStage.self, [], [
            VAEEncodeStage.image(image), VAEEncodeStage.mask(mask), VAEEncodeStage.stream(noised)]))
        let masked = try #require(out[VAEEncodeStage.latent])
        #expect(Self.maxDifference(masked.values, try Self.expected(c, "masked_image_latents")) < 1e-4, "masked image latents")
        var inputs = [DenoiseStage.latent(noised), DenoiseStage.conditioning(conditioning), DenoiseStage.mask(mask),
                      DenoiseStage.stream(masked)]
        inputs.append(nineChannel ? DenoiseStage.maskedImage(masked) : DenoiseStage.original(clean))
        let denoisedOut = try await DenoiseStage.run(run.call(DenoiseStage.self, [DenoiseStage.guidance(c.guidance)], inputs))
        let denoised = try #require(denoisedOut[DenoiseStage.denoised])
        let decodedOut = try await VAEDecodeStage.run(run.call(VAEDecodeStage.self, [], [VAEDecodeStage.latent(denoised)]))
        try Self.checkOutput(try #require(decodedOut[VAEDecodeStage.image]), c)
    }

    @Test(arguments: cases.filter { $0.kind == "txt2img" })
    func textToImageMatchesDiffusers(c: Case) async throws {
        let run = Run(try Self.model(c))
        let text = try await EncodePromptStage.run(run.call(EncodePromptStage.self, [
            EncodePromptStage.prompt(c.prompt), EncodePromptStage.negativePrompt(c.negativePrompt)]))
        let conditioning = try #require(text[EncodePromptStage.conditioning])
        let empty = try await EmptyLatentStage.run(run.call(EmptyLatentStage.self, [EmptyLatentStage.width(c.width), EmptyLatentStage.height(c.height)]))
        let noisedOut = try await AddNoiseStage.run(run.call(AddNoiseStage.self, [
            AddNoiseStage.scheduler(c.scheduler), AddNoiseStage.steps(c.steps), AddNoiseStage.strength(1), AddNoiseStage.pureNoise(true),
            AddNoiseStage.seed(.fixed(UInt64(c.seed)))], [AddNoiseStage.latent(try #require(empty[EmptyLatentStage.latent]))]))
        let noised = try #require(noisedOut[AddNoiseStage.noised])
        let denoisedOut = try await DenoiseStage.run(run.call(DenoiseStage.self, [
            DenoiseStage.guidance(c.guidance), DenoiseStage.guidanceRescale(c.guidanceRescale)], [
            DenoiseStage.latent(noised), DenoiseStage.conditioning(conditioning)]))
        let decodedOut = try await VAEDecodeStage.run(run.call(VAEDecodeStage.self, [], [
            VAEDecodeStage.latent(try #require(denoisedOut[DenoiseStage.denoised]))]))
        try Self.checkOutput(try #require(decodedOut[VAEDecodeStage.image]), c)
    }

    /// BF16 networks against diffusers' FP32 pipeline: bfloat16 products shift the denoising
    /// trajectory a little at every step, so the bound is looser — max |Δ| ≤ 8/255 and mean
    /// |Δ| ≤ 1/255 (measured here: max 1.9, 3.5 and 5.0/255, mean 0.30, 0.42 and 0.50/255).
    @Test(arguments: cases.filter { ["img2img_sd1_pndm_s080", "img2img_sd1_euler_a_s080", "img2img_sd2_euler_s080"].contains($0.name) })
    func img2imgInBF16StaysWithinItsBound(c: Case) async throws {
        let run = Run(try Self.model(c, precision: .bf16))
        let image = try ImageReader.read(path: Self.fixtures + "/image.png").image.converted(to: .rgb)
        let text = try await EncodePromptStage.run(run.call(EncodePromptStage.self, [
            EncodePromptStage.prompt(c.prompt), EncodePromptStage.negativePrompt(c.negativePrompt)]))
        let encoded = try await VAEEncodeStage.run(run.call(VAEEncodeStage.self, [VAEEncodeStage.seed(.fixed(UInt64(c.seed)))], [VAEEncodeStage.image(image)]))
        let noised = try await AddNoiseStage.run(run.call(AddNoiseStage.self, [
            AddNoiseStage.scheduler(c.scheduler), AddNoiseStage.steps(c.steps), AddNoiseStage.strength(c.strength)],
            [AddNoiseStage.latent(try #require(encoded[VAEEncodeStage.latent]))]))
        let denoised = try await DenoiseStage.run(run.call(DenoiseStage.self, [DenoiseStage.guidance(c.guidance)], [
            DenoiseStage.latent(try #require(noised[AddNoiseStage.noised])),
            DenoiseStage.conditioning(try #require(text[EncodePromptStage.conditioning]))]))
        let decoded = try await VAEDecodeStage.run(run.call(VAEDecodeStage.self, [], [
            VAEDecodeStage.latent(try #require(denoised[DenoiseStage.denoised]))]))
        try Self.checkOutput(try #require(decoded[VAEDecodeStage.image]), c, maxBound: 8 / 255, meanBound: 1 / 255)
    }

    /// Where an edit starts: `cut` runs the last int(steps × strength) steps of a `steps`-step
    /// schedule (diffusers, A1111); `exact` builds int(steps ÷ strength) and runs `steps` (ComfyUI).
    @Test(arguments: [("cut", 10, 0.5, 10, 5), ("exact", 10, 0.5, 20, 10), ("cut", 20, 0.75, 20, 5),
                      ("exact", 20, 0.75, 26, 6), ("exact", 7, 1.0, 7, 0)])
    func strengthModesStartWhereTheySay(mode: String, steps: Int, strength: Double, total: Int, begin: Int) async throws {
        let c = try #require(Self.cases.first { $0.name == "img2img_sd1_euler_s080" })
        let run = Run(try Self.model(c))
        let latent = try Latent(shape: [1, 4, 4, 4], values: [Float](repeating: 0.1, count: 64))
        let out = try await AddNoiseStage.run(run.call(AddNoiseStage.self, [
            AddNoiseStage.scheduler("euler"), AddNoiseStage.steps(steps), AddNoiseStage.strength(strength),
            AddNoiseStage.strengthMode(try #require(AddNoiseStage.StrengthMode(rawValue: mode))), AddNoiseStage.seed(.fixed(UInt64(1)))],
            [AddNoiseStage.latent(latent)]))
        let state = try #require(out[AddNoiseStage.noised]?.noiseState)
        #expect(state.steps == total && state.stepIndex == begin)
        #expect(total - begin == (mode == "cut" ? Int(Double(steps) * strength) : steps))
    }

    /// Differential Diffusion with a 4-channel model: where the soft mask is 0 the result is the
    /// original latent exactly, where it is 1 it is repainted, and the result differs from the
    /// binarised-mask run in between.
    @Test func softMasksAreReadAsPerPixelStrength() async throws {
        let c = try #require(Self.cases.first { $0.name == "inpaint4_euler_s075_soft" })
        let run = Run(try Self.model(c))
        let image = try ImageReader.read(path: Self.fixtures + "/image.png").image.converted(to: .rgb)
        let maskOut = try await LoadMaskStage.run(run.call(LoadMaskStage.self, [LoadMaskStage.path(Self.fixtures + "/mask-soft.png")]))
        let mask = try #require(maskOut[LoadMaskStage.mask])
        let text = try await EncodePromptStage.run(run.call(EncodePromptStage.self, [EncodePromptStage.prompt(c.prompt)]))
        let encoded = try await VAEEncodeStage.run(run.call(VAEEncodeStage.self, [VAEEncodeStage.seed(.fixed(UInt64(5)))], [VAEEncodeStage.image(image)]))
        let clean = try #require(encoded[VAEEncodeStage.latent])
        let noised = try await AddNoiseStage.run(run.call(AddNoiseStage.self, [
            AddNoiseStage.scheduler("euler"), AddNoiseStage.steps(8), AddNoiseStage.strength(0.75)], [AddNoiseStage.latent(clean)]))
        func denoise(soft: Bool) async throws -> Latent {
            let out = try await DenoiseStage.run(run.call(DenoiseStage.self, [DenoiseStage.softMask(soft)], [
                DenoiseStage.latent(try #require(noised[AddNoiseStage.noised])),
                DenoiseStage.conditioning(try #require(text[EncodePromptStage.conditioning])),
                DenoiseStage.mask(mask), DenoiseStage.original(clean)]))
            return try #require(out[DenoiseStage.denoised])
        }
        let soft = try await denoise(soft: true), hard = try await denoise(soft: false)
        let strength = LatentMaskProbe.values(mask, width: clean.width, height: clean.height)
        let plane = clean.width * clean.height
        var zero = 0, one = 0
        for i in clean.values.indices {
            let m = strength[i % plane]
            if m == 0 { #expect(soft.values[i] == clean.values[i]); zero += 1 }
            if m >= 0.9 { #expect(soft.values[i] != clean.values[i]); one += 1 }
        }
        #expect(zero > 0 && one > 0)
        #expect(soft.values != hard.values)
    }

    /// The decoded image (planar) against diffusers' H×W×3 output.
    static func checkOutput(_ image: Image, _ c: Case, maxBound: Float = 2 / 255, meanBound: Float = 0.5 / 255) throws {
        let reference = try expected(c, "output")
        let n = image.width * image.height
        var maxDiff: Float = 0, sum: Float = 0
        for i in 0..<n {
            for ch in 0..<3 {
                let d = abs(image.pixels[ch * n + i] - reference[i * 3 + ch])
                maxDiff = max(maxDiff, d)
                sum += d
            }
        }
        #expect(maxDiff <= maxBound, "max |Δ| \(maxDiff * 255)/255")
        #expect(sum / Float(3 * n) <= meanBound, "mean |Δ| \(sum / Float(3 * n) * 255)/255")
    }
}

/// The soft mask at latent size as the stage samples it (nearest, unbinarised).
enum LatentMaskProbe {
    static func values(_ mask: Mask, width: Int, height: Int) -> [Float] {
        (0..<(width * height)).map { p in
            let (x, y) = (p % width, p / width)
            return min(1, max(0, mask.values[min(mask.height - 1, y * mask.height / height) * mask.width
                                             + min(mask.width - 1, x * mask.width / width)]))
        }
    }
}
