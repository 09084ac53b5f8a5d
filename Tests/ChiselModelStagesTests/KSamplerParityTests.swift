import ChiselCore
import ChiselDiffusion
import ChiselImageIO
import ChiselModels
import ChiselModelStages
import ChiselStages
import ChiselTensor
import Foundation
import Testing

/// The `ksampler` stage against ComfyUI's own KSampler / KSamplerAdvanced code (commit in
/// cases.json) driving the tiny SD 1.x model's networks (tools/interop/comfy_ksampler.py,
/// tools/interop/COMFY.md): the sigma list, the timesteps the UNet gets, the first x₀ prediction,
/// the sampled latent and the decoded image.
@Suite(.serialized) struct KSamplerParityTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/comfy").path
    static let model = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ChiselModelsTests/Fixtures/reference/sd1-tiny").path
    static let image = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/pipelines/image.png").path
    static let scale: Float = 0.18215

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var kind: String
        var sampler: String
        var scheduler: String
        var steps: Int
        var denoise: Double
        var seed: Int
        var cfg: Double
        var start: Int?
        var end: Int?
        var addNoise = true
        var leftover = false
        /// Inpainting: "setmask" (VAEEncode + SetLatentNoiseMask) or "vaeforinpaint", the mask file and growth.
        var chain: String?
        var mask: String?
        var grow = 6
        var testDescription: String { name }
    }

    static let document: JSONValue? = FileManager.default.contents(atPath: fixtures + "/cases.json")
        .flatMap { try? JSONParser.parse(String(decoding: $0, as: UTF8.self)) }

    static let cases: [Case] = {
        guard case .array(let entries)? = document?["cases"] else { return [] }
        return entries.compactMap { entry in
            guard let name = entry["name"]?.stringValue, let kind = entry["kind"]?.stringValue,
                  let sampler = entry["sampler"]?.stringValue, let scheduler = entry["scheduler"]?.stringValue,
                  let steps = entry["steps"]?.intValue, let denoise = entry["denoise"]?.doubleValue,
                  let seed = entry["seed"]?.intValue, let cfg = entry["cfg"]?.doubleValue else { return nil }
            var c = Case(name: name, kind: kind, sampler: sampler, scheduler: scheduler, steps: steps, denoise: denoise, seed: seed, cfg: cfg)
            if let advanced = entry["advanced"], advanced != .null {
                c.start = advanced["start_at_step"]?.intValue
                c.end = advanced["end_at_step"]?.intValue
                c.addNoise = advanced["add_noise"]?.stringValue != "disable"
                c.leftover = advanced["return_with_leftover_noise"]?.stringValue == "enable"
            }
            if let inpaint = entry["inpaint"] {
                c.chain = inpaint["chain"]?.stringValue
                c.mask = inpaint["mask_file"]?.stringValue
                c.grow = inpaint["grow_mask_by"]?.intValue ?? 6
            }
            return c
        }
    }()

    static func tensor(_ file: String, _ key: String) throws -> [Float] {
        try SafeTensorsFile(path: "\(fixtures)/\(file)").floats(key)
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        guard a.count == b.count else { return .infinity }
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    @Test func theFixturesAreThere() {
        #expect(Self.cases.count >= 24, "cases.json lists the ComfyUI runs")
    }

    @Test(arguments: cases.filter { KSamplerKind(rawValue: $0.sampler) != nil })
    func ksamplerMatchesComfyUI(c: Case) async throws {
        let sd = try StableDiffusionModel.load(path: Self.model)
        let run = ModelStageRun(sd)
        let text = try await EncodePromptStage.run(run.call(EncodePromptStage.self, [
            EncodePromptStage.prompt(Self.document?["prompt"]?.stringValue ?? ""),
            EncodePromptStage.negativePrompt(Self.document?["negative_prompt"]?.stringValue ?? ""),
            EncodePromptStage.mode(.chunk), EncodePromptStage.weighting(.comfy)]))
        let conditioning = try #require(text[EncodePromptStage.conditioning])
        // ComfyUI's CLIPTextEncode of an unweighted prompt is diffusers' encoding.
        #expect(Self.maxDifference(conditioning.positive.hiddenStates, try Self.tensor("shared.safetensors", "cond")) < 1e-4)
        #expect(Self.maxDifference(conditioning.negative?.hiddenStates ?? [], try Self.tensor("shared.safetensors", "uncond")) < 1e-4)

        let latent: Latent
        var noiseMask: Mask?
        let file = "\(c.name).safetensors"
        if let chain = c.chain, let maskFile = c.mask {
            let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let maskImage = try ImageReader.read(path: repository.appendingPathComponent(maskFile).path).image
            let mask = try MaskSource.red.mask(from: maskImage, threshold: nil, invert: false)   // LoadImageMask(channel red)
            let image = try ImageReader.read(path: Self.image).image.converted(to: .rgb)
            if chain == "vaeforinpaint" {
                let encoded = try await VAEEncodeForInpaintStage.run(run.call(VAEEncodeForInpaintStage.self,
                    [VAEEncodeForInpaintStage.growMaskBy(c.grow)], [VAEEncodeForInpaintStage.image(image), VAEEncodeForInpaintStage.mask(mask)]))
                latent = try #require(encoded[VAEEncodeForInpaintStage.latent])
                noiseMask = encoded[VAEEncodeForInpaintStage.grownMask]
                #expect(noiseMask?.values == (try Self.tensor(file, "noise_mask")), "VAEEncodeForInpaint's grown mask")
            } else {
                let encoded = try await VAEEncodeStage.run(run.call(VAEEncodeStage.self, [VAEEncodeStage.sampling(.mean)],
                                                                    [VAEEncodeStage.image(image)]))
                latent = try #require(encoded[VAEEncodeStage.latent])
                noiseMask = mask
            }
            let comfyLatent = try Self.tensor(file, "latent_image").map { $0 * Self.scale }
            #expect(Self.maxDifference(latent.values, comfyLatent) < 1e-4, "the latent the sampler got")
            let small = KSamplerStage.latentMask(try #require(noiseMask), width: latent.width, height: latent.height)
            let comfyMask = Array(try Self.tensor(file, "denoise_mask").prefix(small.count))
            #expect(Self.maxDifference(small, comfyMask) < 1e-6, "the mask on the latent grid")
        } else if c.kind == "txt2img" {
            let empty = try await EmptyLatentStage.run(run.call(EmptyLatentStage.self, [EmptyLatentStage.width(48), EmptyLatentStage.height(32)]))
            latent = try #require(empty[EmptyLatentStage.latent])
        } else {
            let image = try ImageReader.read(path: Self.image).image.converted(to: .rgb)
            let encoded = try await VAEEncodeStage.run(run.call(VAEEncodeStage.self, [VAEEncodeStage.sampling(.mean)],
                                                                [VAEEncodeStage.image(image)]))
            latent = try #require(encoded[VAEEncodeStage.latent])
            let comfy = try Self.tensor("shared.safetensors", "img2img_latent").map { $0 * Self.scale }
            #expect(Self.maxDifference(latent.values, comfy) < 1e-4, "VAEEncode's posterior mode")
        }
        let kind = try #require(KSamplerKind(rawValue: c.sampler))
        let schedule = try #require(KSchedule(rawValue: c.scheduler))
        var params: [ParamSetting] = [
            KSamplerStage.seed(.fixed(UInt64(c.seed))), KSamplerStage.steps(c.steps), KSamplerStage.cfg(c.cfg),
            KSamplerStage.sampler(kind), KSamplerStage.scheduler(schedule), KSamplerStage.denoise(c.denoise),
            KSamplerStage.addNoise(c.addNoise), KSamplerStage.leftoverNoise(c.leftover),
        ]
        if let start = c.start { params.append(KSamplerStage.startAtStep(start)) }
        if let end = c.end { params.append(KSamplerStage.endAtStep(end)) }

        // The sigma list and the timesteps, as ComfyUI computed them.
        let sampling = try KModelSampling(config: sd.schedulerConfig)
        let sigmas = try #require(KSigmas.sigmas(sampler: kind, schedule: schedule, steps: c.steps,
                                                 denoise: c.denoise, model: sampling, startStep: c.start, lastStep: c.end,
                                                 forceFullDenoise: !c.leftover))
        let expectedSigmas = try Self.tensor(file, "sigmas")
        #expect(Self.maxDifference(sigmas, expectedSigmas) <= 2e-6 * (expectedSigmas.max() ?? 1), "sigmas \(sigmas) vs \(expectedSigmas)")
        let timesteps = try Self.tensor(file, "timesteps")
        let callSigmas = try Self.tensor(file, "call_sigmas")
        #expect(callSigmas.map { Float(sampling.timestep(sigma: $0)) } == timesteps, "the nearest integer timestep")

        var inputs = [KSamplerStage.latent(latent), KSamplerStage.conditioning(conditioning)]
        if let noiseMask { inputs.append(KSamplerStage.mask(noiseMask)) }
        let out = try await KSamplerStage.run(run.call(KSamplerStage.self, params, inputs))
        let sampled = try #require(out[KSamplerStage.denoised])
        let expected = try Self.tensor(file, "samples").map { $0 * Self.scale }
        let bound = 1e-3 * max(1, expected.map(abs).max() ?? 1)
        let difference = Self.maxDifference(sampled.values, expected)
        #expect(difference < bound, "samples differ by \(difference) (bound \(bound))")

        let decodedOut = try await VAEDecodeStage.run(run.call(VAEDecodeStage.self, [], [VAEDecodeStage.latent(sampled)]))
        let decoded = try #require(decodedOut[VAEDecodeStage.image])
        let comfyImage = try Self.tensor(file, "image")   // N×H×W×3
        var ours = [Float](repeating: 0, count: comfyImage.count)
        let plane = decoded.width * decoded.height
        for i in 0..<plane { for ch in 0..<3 { ours[i * 3 + ch] = decoded.pixels[ch * plane + i] } }
        let pixels = Self.maxDifference(ours, comfyImage)
        #expect(pixels < 2 / 255, "decoded pixels differ by \(pixels * 255)/255")
    }

    @Test func samplersChiselLacksAreRefusedWhenTranslated() throws {
        let workflow = try JSONParser.parse("""
            {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "m.safetensors"}},
             "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "x", "clip": ["1", 1]}},
             "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 48, "height": 32, "batch_size": 1}},
             "4": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 4, "cfg": 7, "sampler_name": "uni_pc", "scheduler": "normal",
                   "denoise": 1, "model": ["1", 0], "positive": ["2", 0], "negative": ["2", 0], "latent_image": ["3", 0]}},
             "5": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["1", 2]}},
             "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "x"}}}
            """)
        let result = ComfyImport.translate(workflow)
        #expect(result.graph.map { _ in true } ?? false == false, "no graph: its only output needs the node")
        #expect(result.problems.map(\.id) == ["4"] && result.problems.first?.reason.contains("'uni_pc' is not implemented") == true,
                "\(result.problems)")
    }
}
