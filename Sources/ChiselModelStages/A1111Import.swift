import ChiselCore
import ChiselDiffusion
import ChiselModels
import ChiselStages
import Foundation

/// A graph from an AUTOMATIC1111 image's `parameters`: what `chisel run --from` builds for a PNG
/// or JPEG made by A1111 (which carries no Chisel graph). Its settings map to Chisel's:
/// - `Steps`, `CFG scale`, `Seed`, `Size`, the prompts;
/// - `Sampler` with `Schedule type` (or a legacy name such as "DPM++ 2M Karras") to a scheduler;
/// - `Clip skip` (A1111 counts from 1), `Emphasis: None` to diffusers' verbatim prompt, otherwise
///   A1111's chunks and emphasis;
/// - `Token merging ratio` to denoise's `token_merging` (ToMe as A1111 runs it);
/// - `RNG`: CPU is PyTorch's CPU generator, GPU and NV are A1111's NV Philox;
/// - `<lora:NAME:SCALE>` in the prompt to the model's `loras` (A1111 takes them out of the text
///   before encoding, and so does this), each file given as `--model lora:NAME=PATH`;
/// - `Denoising strength` makes it img2img, run as A1111 counts steps (`strength_mode` a1111); the
///   image it started from is not in the file: `image` (`--image`) names it, else the graph's
///   `input` node waits for `--set input.path=PHOTO`;
/// - `Mask blur` or `Masked content` make it inpainting, with `Inpaint area: Only masked` and
///   `Masked area padding`; `mask` (`--mask`) names the mask.
/// Sampler names Chisel does not implement are refused by name, and so are `ControlNet N` units
/// (their control images are not in the file): the graph would not be the image's edit.
public enum A1111Import {
    /// The image node an img2img graph loads its input with.
    public static let inputNode = "input"

    /// A LoRA named in a prompt: `<lora:NAME>` or `<lora:NAME:SCALE>`.
    public struct LoRATag: Sendable, Equatable {
        public var name: String
        public var scale: Double
    }

    /// The prompt without its `<lora:…>` tags, and the tags.
    public static func loraTags(in prompt: String) throws -> (prompt: String, tags: [LoRATag]) {
        var text = prompt
        var tags: [LoRATag] = []
        while let open = text.range(of: "<lora:", options: .caseInsensitive),
              let close = text[open.upperBound...].firstIndex(of: ">") {
            let parts = text[open.upperBound..<close].split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard let name = parts.first, !name.isEmpty else {
                throw ChiselError(.invalidParameter, "the prompt's LoRA tag '\(text[open.lowerBound...close])' names no LoRA")
            }
            var scale = 1.0
            if parts.count >= 2 {
                guard let value = Double(parts[1].trimmingCharacters(in: .whitespaces)) else {
                    throw ChiselError(.invalidParameter, "the LoRA tag of '\(name)' has scale '\(parts[1])', not a number")
                }
                scale = value
            }
            if parts.count >= 3, Double(parts[2]) != scale {
                throw ChiselError(.invalidParameter, "the LoRA tag of '\(name)' gives the text encoder and the UNet different "
                                  + "scales; Chisel applies one scale to both")
            }
            tags.append(LoRATag(name: name, scale: scale))
            text.removeSubrange(open.lowerBound...close)
        }
        // A1111 removes the tags and nothing else (the spaces around them stay).
        return (text, tags)
    }

    /// The graph for `info`. `loras` maps a LoRA tag's name to its file; `image` and `mask` are
    /// the files an img2img or inpainting run edited (nil leaves a placeholder to `--set`).
    public static func graph(_ info: GenerationInfo, model: String, facts: StableDiffusionFacts, image: String?, mask: String? = nil,
                             loras: [String: String] = [:], output: String) throws -> JSONValue {
        if let unit = info.settings.first(where: { $0.key.hasPrefix("ControlNet ") && Int($0.key.dropFirst("ControlNet ".count)) != nil }) {
            throw ChiselError(.invalidArgument, "the image was made with \(unit.key) (\(unit.value)); its control image is not in the file, "
                              + "so this graph would not be its edit: run chisel img2img / inpaint with --controlnet and --control-image")
        }
        let (prompt, tags) = try loraTags(in: info.prompt)
        var request = EditRequest(model: model, image: image ?? "GIVE --image PHOTO (or --set \(inputNode).path=PHOTO)", output: output)
        request.prompt = prompt
        request.negativePrompt = info.negativePrompt
        if !tags.isEmpty {
            let missing = tags.filter { loras[$0.name] == nil }.map(\.name)
            guard missing.isEmpty else {
                throw ChiselError(.invalidArgument, "the prompt applies LoRA \(missing.map { "'\($0)'" }.joined(separator: ", ")) by name: "
                                  + "give " + missing.map { "--model lora:\($0)=PATH" }.joined(separator: " "))
            }
            request.modelOptions.append(("loras", .array(tags.map { tag in
                .object([JSONMember(key: "path", value: .string(loras[tag.name] ?? tag.name)),
                         JSONMember(key: "scale", value: .double(tag.scale))])
            })))
        }
        func number(_ key: String) throws -> Double? {
            guard let text = info.value(key) else { return nil }
            guard let value = Double(text) else { throw ChiselError(.invalidParameter, "the infotext's \(key) '\(text)' is not a number") }
            return value
        }
        request.steps = try number("Steps").map { Int($0) }
        request.guidance = try number("CFG scale")
        if let seed = info.value("Seed") {
            guard let value = UInt64(seed) else { throw ChiselError(.invalidParameter, "the infotext's Seed '\(seed)' is not a seed") }
            request.seed = .fixed(value)
        }
        if let sampler = info.value("Sampler") {
            var kind = try SchedulerKind(named: sampler)
            if let type = info.value("Schedule type") { kind = try kind.withScheduleType(type) }
            request.scheduler = kind.rawValue
        }
        if let skip = try number("Clip skip") { request.clipSkip = max(0, Int(skip) - 1) }
        request.rng = info.value("RNG") == "CPU" ? .cpu : .cuda
        request.tokenMerging = try number("Token merging ratio")
        request.promptMode = info.value("Emphasis") == "None" ? .truncate : .chunk
        request.strengthMode = .a1111
        let size = info.value("Size").flatMap { size -> (Int, Int)? in
            guard let x = size.firstIndex(of: "x"), let width = Int(size[..<x]), let height = Int(size[size.index(after: x)...]) else {
                return nil
            }
            return (width, height)
        }
        if info.value("Mask blur") != nil || info.value("Masked content") != nil || mask != nil {
            var inpaint = InpaintRequest(mask: mask ?? "GIVE --mask MASK.png")
            inpaint.strength = try number("Denoising strength") ?? 1
            // A1111 always pastes the result back through the blurred mask.
            if let blur = try number("Mask blur") { inpaint.maskBlur = blur }
            if let content = info.value("Masked content") {
                let contents: [String: InpaintRequest.MaskedContent] = ["original": .original, "fill": .fill,
                                                                        "latent noise": .latentNoise, "latent nothing": .latentNothing]
                guard let value = contents[content] else {
                    throw ChiselError(.invalidParameter, "the infotext's Masked content '\(content)' is not one A1111 writes")
                }
                inpaint.maskedContent = value
            }
            if info.value("Inpaint area") == "Only masked" {
                guard let size else { throw ChiselError(.invalidParameter, "only-masked inpainting needs the infotext's Size") }
                inpaint.onlyMasked = (Int(try number("Masked area padding") ?? number("Only masked padding, pixels") ?? 32), size.0, size.1)
            }
            return try EditGraphs.inpaint(request, inpaint, facts: facts)
        }
        if let strength = try number("Denoising strength") {
            return try EditGraphs.img2img(request, facts: facts, strength: strength)
        }
        guard let size else {
            throw ChiselError(.invalidParameter, "the infotext has no Size (WIDTHxHEIGHT) for text-to-image")
        }
        return try EditGraphs.txt2img(request, facts: facts, width: size.0, height: size.1)
    }
}

extension EditGraphs {
    /// Text-to-image: an empty latent of the size, pure noise, the guided loop, decode, save.
    public static func txt2img(_ request: EditRequest, facts: StableDiffusionFacts, width: Int, height: Int) throws -> JSONValue {
        var graph = GraphBuilder()
        let sd = graph.model("sd", path: request.model, options: request.modelOptions)
        let guidance = try DenoiseStage.guidance.value(or: request.guidance)
        let text = graph.node("text", EncodePromptStage.self,
                              params: [EncodePromptStage.prompt(request.prompt), EncodePromptStage.negativePrompt(request.negativePrompt),
                                       EncodePromptStage.clipSkip(try EncodePromptStage.clipSkip.value(or: request.clipSkip))]
                                  + (request.promptMode.map { [EncodePromptStage.mode($0)] } ?? [])
                                  + (guidance <= 1 ? [EncodePromptStage.encodeNegative(false)] : []),
                              inputs: [EncodePromptStage.model(sd)])
        let latent = graph.node("latent", EmptyLatentStage.self, params: [EmptyLatentStage.width(width), EmptyLatentStage.height(height)],
                                inputs: [EmptyLatentStage.model(sd)])
        let noised = graph.node("noised", AddNoiseStage.self,
                                params: try {
                                    var params = try noiseParams(request, strength: 1, pureNoise: true)
                                    if !params.contains(where: { $0.name == AddNoiseStage.seed.name }) {
                                        params += [AddNoiseStage.seed(request.seed), AddNoiseStage.rng(request.rng ?? .cpu)]
                                    }
                                    return params
                                }(),
                                inputs: [AddNoiseStage.model(sd), AddNoiseStage.latent(latent[EmptyLatentStage.latent])])
        let edited = graph.node("edited", DenoiseStage.self, params: try denoiseParams(request),
                                inputs: [DenoiseStage.model(sd), DenoiseStage.latent(noised[AddNoiseStage.noised]),
                                         DenoiseStage.conditioning(text[EncodePromptStage.conditioning])])
        let decoded = graph.node("decoded", VAEDecodeStage.self, params: tilingParams(request),
                                 inputs: [VAEDecodeStage.model(sd), VAEDecodeStage.latent(edited[DenoiseStage.denoised])])
        graph.node("save", SaveImageStage.self, params: [SaveImageStage.path(request.output)],
                   inputs: [SaveImageStage.image(decoded[VAEDecodeStage.image])])
        return graph.graph(description: "txt2img (from AUTOMATIC1111's parameters): \(request.prompt)")
    }
}
