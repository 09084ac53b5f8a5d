import ChiselCore
import ChiselImageIO
import ChiselModels
import ChiselModelStages
import ChiselStages
import ChiselTensor
import Foundation
import Testing

/// ControlNets against diffusers' StableDiffusionControlNet{,Img2Img,Inpaint}Pipeline and
/// StableDiffusionXLControlNetImg2ImgPipeline on tiny random-weight ControlNets made from the
/// tiny UNets (tools/reference/controlnet.py): one network call, then whole edits — scale,
/// start/end window, guess mode, two ControlNets, guidance 1, the inpaint condition with 4- and
/// 9-channel UNets, SDXL — within 2/255 (max) and 0.5/255 (mean) of the pipeline's pixels.
@Suite(.serialized) struct ControlNetParityTests {
    static let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let fixtures = here.appendingPathComponent("Fixtures/controlnet").path
    static let pipelines = here.appendingPathComponent("Fixtures/pipelines").path
    static let references = here.deletingLastPathComponent().appendingPathComponent("ChiselModelsTests/Fixtures/reference").path

    struct Unit: Sendable {
        var model: String, image: String, scale: Double, start: Double, end: Double
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String, kind: String, model: String, scheduler: String
        var steps: Int, strength: Double, guidance: Double, seed: Int
        var prompt: String, negative: String, guess: Bool, mask: String?
        var units: [Unit]
        var testDescription: String { name }
    }

    static let cases: [Case] = {
        guard let data = FileManager.default.contents(atPath: fixtures + "/cases.json"),
              let json = try? JSONParser.parse(String(decoding: data, as: UTF8.self)), case .array(let entries)? = json["cases"] else {
            return []
        }
        return entries.compactMap { e in
            guard let name = e["name"]?.stringValue, let kind = e["kind"]?.stringValue, let model = e["model"]?.stringValue,
                  let scheduler = e["scheduler"]?.stringValue, let steps = e["steps"]?.intValue,
                  let guidance = e["guidance"]?.doubleValue, let seed = e["seed"]?.intValue, let prompt = e["prompt"]?.stringValue,
                  case .array(let units)? = e["controlnets"] else { return nil }
            return Case(name: name, kind: kind, model: model, scheduler: scheduler, steps: steps,
                        strength: e["strength"]?.doubleValue ?? 1, guidance: guidance, seed: seed, prompt: prompt,
                        negative: e["negative"]?.stringValue ?? "", guess: e["guess_mode"] == .bool(true), mask: e["mask"]?.stringValue,
                        units: units.compactMap { u in
                            guard let model = u["model"]?.stringValue, let image = u["image"]?.stringValue else { return nil }
                            return Unit(model: model, image: image, scale: u["scale"]?.doubleValue ?? 1,
                                        start: u["start"]?.doubleValue ?? 0, end: u["end"]?.doubleValue ?? 1)
                        })
        }
    }()

    static func adapter(_ name: String) async throws -> LoadedT2IAdapter {
        let loaded = try await T2IAdapterLoader().load(ModelSpec(name: name, path: references + "/" + name))
        return try #require(loaded as? LoadedT2IAdapter)
    }

    static func controlNet(_ name: String) async throws -> LoadedControlNet {
        // The single files cannot tell the tiny model's 8 GroupNorm groups (32 is assumed).
        let hints: [JSONMember] = name.hasSuffix(".safetensors") ? [JSONMember(key: "norm_num_groups", value: .int(8))] : []
        let loaded = try await ControlNetLoader().load(ModelSpec(name: name, path: references + "/" + name,
                                                                 options: hints.isEmpty ? [:] : ["hints": .object(hints)]))
        return try #require(loaded as? LoadedControlNet)
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        guard a.count == b.count else { return .infinity }
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    @Test func theFixturesAreThere() {
        #expect(Self.cases.count >= 13, "\(Self.cases.map(\.name))")
        #expect(Self.cases.filter { $0.kind.hasPrefix("adapter") }.count >= 5)
    }

    /// One ControlNet call (network.safetensors): the residuals of every skip connection and of
    /// the mid block, plain and in guess mode, at scale 0.8.
    @Test(arguments: ["sd1-controlnet-tiny", "sd1-controlnet-tiny.safetensors", "sd1-controlnet-tiny-v11.safetensors"])
    func theNetworkMatchesDiffusers(source: String) async throws {
        // The folder, and the same weights in lllyasviel's single-file layouts (ControlNet 1.0's
        // control_model. names, 1.1's bare ones), their config read off the tensors.
        let network = try await Self.controlNet(source).network
        let file = try SafeTensorsFile(path: Self.fixtures + "/network.safetensors")
        func channelsLast(_ key: String) throws -> Tensor {
            let shape = try file.info(key).shape, values = try file.floats(key)
            let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
            var data = [Float](repeating: 0, count: values.count)
            for b in 0..<n {
                for k in 0..<c {
                    for p in 0..<(h * w) { data[(b * h * w + p) * c + k] = values[(b * c + k) * h * w + p] }
                }
            }
            return try Tensor(shape: [n, h, w, c], data: data)
        }
        let sample = try channelsLast("sample"), condition = try channelsLast("condition")
        let context = try Tensor(shape: try file.info("context").shape, data: try file.floats("context"))
        for (prefix, guess) in [("", false), ("guess_", true)] {
            let out = try network(sample, timesteps: [421], context: context, condition: condition, scale: 0.8, guessMode: guess)
            #expect(out.down.count == 4)
            for (i, residual) in out.down.enumerated() {
                let expected = try channelsLast("\(prefix)down_\(i)")
                let scale = max(1, expected.data.map(abs).max() ?? 1)
                #expect(Self.maxDifference(residual.data, expected.data) < 1e-4 * scale, "\(prefix)down_\(i)")
            }
            let mid = try channelsLast("\(prefix)mid")
            #expect(Self.maxDifference(out.mid.data, mid.data) < 1e-4 * max(1, mid.data.map(abs).max() ?? 1), "\(prefix)mid")
        }
    }

    @Test(arguments: cases)
    func matchesDiffusers(c: Case) async throws {
        let model = try StableDiffusionModel.load(path: Self.references + "/" + c.model)
        let run = ModelStageRun(model)
        let expected = try SafeTensorsFile(path: "\(Self.fixtures)/\(c.name).safetensors")
        let text = try await EncodePromptStage.run(run.call(EncodePromptStage.self, [
            EncodePromptStage.prompt(c.prompt), EncodePromptStage.negativePrompt(c.negative)]))
        let conditioning = try #require(text[EncodePromptStage.conditioning])
        let image = try ImageReader.read(path: Self.pipelines + "/image.png").image.converted(to: .rgb)
        var mask: Mask?
        if let name = c.mask {
            let out = try await LoadMaskStage.run(run.call(LoadMaskStage.self, [LoadMaskStage.path(Self.pipelines + "/" + name)]))
            mask = out[LoadMaskStage.mask]
        }

        // The chain of controlnet nodes.
        var chain: Control?
        for unit in c.units where c.kind.hasPrefix("adapter") {
            var inputs: [InputSetting] = [T2IAdapterStage.model(try await Self.adapter(unit.model)),
                                          T2IAdapterStage.image(try ImageReader.read(path: Self.fixtures + "/" + unit.image).image)]
            if let chain { inputs.append(T2IAdapterStage.previous(chain)) }
            let out = try await T2IAdapterStage.run(makeCall(T2IAdapterStage.self, params: [
                T2IAdapterStage.scale(unit.scale), T2IAdapterStage.start(unit.start), T2IAdapterStage.end(unit.end)], inputs: inputs))
            chain = out[T2IAdapterStage.control]
        }
        for unit in c.units where !c.kind.hasPrefix("adapter") {
            let inpaint = unit.image == "inpaint"
            let picture = inpaint ? image : try ImageReader.read(path: Self.fixtures + "/" + unit.image).image
            var inputs: [InputSetting] = [ControlNetStage.model(try await Self.controlNet(unit.model)), ControlNetStage.image(picture)]
            if inpaint { inputs.append(ControlNetStage.mask(try #require(mask))) }
            if let chain { inputs.append(ControlNetStage.previous(chain)) }
            let out = try await ControlNetStage.run(makeCall(ControlNetStage.self, params: [
                ControlNetStage.scale(unit.scale), ControlNetStage.start(unit.start), ControlNetStage.end(unit.end),
                ControlNetStage.guessMode(c.guess)], inputs: inputs))
            chain = out[ControlNetStage.control]
        }
        let control = try #require(chain)

        var noiseParams = [AddNoiseStage.scheduler(c.scheduler), AddNoiseStage.steps(c.steps), AddNoiseStage.strength(c.strength)]
        var denoiseInputs = [DenoiseStage.conditioning(conditioning), DenoiseStage.control(control)]
        let start: Latent
        switch c.kind {
        case "txt2img", "adapter":
            let empty = try await EmptyLatentStage.run(run.call(EmptyLatentStage.self, [EmptyLatentStage.width(48), EmptyLatentStage.height(32)]))
            noiseParams += [AddNoiseStage.pureNoise(true), AddNoiseStage.seed(.fixed(UInt64(c.seed)))]
            let noised = try await AddNoiseStage.run(run.call(AddNoiseStage.self, noiseParams,
                                                              [AddNoiseStage.latent(try #require(empty[EmptyLatentStage.latent]))]))
            start = try #require(noised[AddNoiseStage.noised])
        case "img2img", "adapter_img2img":
            let encoded = try await VAEEncodeStage.run(run.call(VAEEncodeStage.self, [VAEEncodeStage.seed(.fixed(UInt64(c.seed)))],
                                                                [VAEEncodeStage.image(image)]))
            let noised = try await AddNoiseStage.run(run.call(AddNoiseStage.self, noiseParams,
                                                              [AddNoiseStage.latent(try #require(encoded[VAEEncodeStage.latent]))]))
            start = try #require(noised[AddNoiseStage.noised])
        default:
            let mask = try #require(mask)
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
            noiseParams.append(AddNoiseStage.pureNoise(full))
            if nineChannel && full { noiseParams.append(AddNoiseStage.seed(.fixed(UInt64(c.seed)))) }
            let noised = try await AddNoiseStage.run(run.call(AddNoiseStage.self, noiseParams, [AddNoiseStage.latent(clean)]))
            start = try #require(noised[AddNoiseStage.noised])
            let maskedOut = try await VAEEncodeStage.run(run.call(VAEEncodeStage.self, [], [
                VAEEncodeStage.image(image), VAEEncodeStage.mask(mask), VAEEncodeStage.stream(start)]))
            let masked = try #require(maskedOut[VAEEncodeStage.latent])
            denoiseInputs += [DenoiseStage.mask(mask), DenoiseStage.stream(masked),
                              nineChannel ? DenoiseStage.maskedImage(masked) : DenoiseStage.original(clean)]
        }
        let latentsStart = try expected.floats("latents_start")
        #expect(Self.maxDifference(start.values, latentsStart) < 1e-4 * max(1, latentsStart.map(abs).max() ?? 1), "latents_start")
        let out = try await DenoiseStage.run(run.call(DenoiseStage.self, [DenoiseStage.guidance(c.guidance)],
                                                      [DenoiseStage.latent(start)] + denoiseInputs))
        let denoised = try #require(out[DenoiseStage.denoised])
        let decodedOut = try await VAEDecodeStage.run(run.call(VAEDecodeStage.self, [], [VAEDecodeStage.latent(denoised)]))
        let decoded = try #require(decodedOut[VAEDecodeStage.image])
        let reference = try expected.floats("output")
        let n = decoded.width * decoded.height
        var largest: Float = 0, sum: Float = 0
        for i in 0..<n {
            for ch in 0..<3 {
                let d = abs(decoded.pixels[ch * n + i] - reference[i * 3 + ch])
                largest = max(largest, d)
                sum += d
            }
        }
        #expect(largest <= 2 / 255, "max |Δ| \(largest * 255)/255")
        #expect(sum / Float(3 * n) <= 0.5 / 255, "mean |Δ| \(sum / Float(3 * n) * 255)/255")
        let infotext = denoised.diffusion?.generation?.settings.first { $0.key == "ControlNet 0" }?.value ?? ""
        #expect(infotext.hasPrefix("Module: ") && infotext.contains("Model: \(c.units[0].model)"), "\(infotext)")
    }
}
