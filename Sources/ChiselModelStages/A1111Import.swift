import ChiselCore
import ChiselDiffusion
import ChiselModels
import ChiselStages

/// A graph from an AUTOMATIC1111 image's `parameters`: what `chisel run --from` builds for a PNG
/// or JPEG made by A1111 (which carries no Chisel graph). Its settings map to Chisel's:
/// - `Steps`, `CFG scale`, `Seed`, `Size`, the prompts;
/// - `Sampler` with `Schedule type` (or a legacy name such as "DPM++ 2M Karras") to a scheduler;
/// - `Clip skip` (A1111 counts from 1), `Emphasis: None` to diffusers' verbatim prompt, otherwise
///   A1111's chunks and emphasis;
/// - `RNG`: CPU is PyTorch's CPU generator, GPU and NV are A1111's NV Philox;
/// - `Denoising strength` makes it img2img, run as A1111 counts steps (`strength_mode` a1111); the
///   image it started from is not in the file: the graph's `input` node takes it
///   (`--set input.path=PHOTO`).
/// Sampler names Chisel does not implement are refused by name.
public enum A1111Import {
    /// The image node an img2img graph loads its input with.
    public static let inputNode = "input"

    public static func graph(_ info: GenerationInfo, model: String, facts: StableDiffusionFacts, image: String,
                             output: String) throws -> JSONValue {
        var request = EditRequest(model: model, image: image, output: output)
        request.prompt = info.prompt
        request.negativePrompt = info.negativePrompt
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
        request.promptMode = info.value("Emphasis") == "None" ? .truncate : .chunk
        request.strengthMode = .a1111
        if let strength = try number("Denoising strength") {
            return try EditGraphs.img2img(request, facts: facts, strength: strength)
        }
        guard let size = info.value("Size"), let x = size.firstIndex(of: "x"), let width = Int(size[..<x]),
              let height = Int(size[size.index(after: x)...]) else {
            throw ChiselError(.invalidParameter, "the infotext has no Size (WIDTHxHEIGHT) for text-to-image")
        }
        return try EditGraphs.txt2img(request, facts: facts, width: width, height: height)
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
