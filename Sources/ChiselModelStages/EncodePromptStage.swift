import ChiselCore
import ChiselModels
import ChiselTensor

/// Encodes a prompt and a negative prompt with the checkpoint's text encoder, as diffusers'
/// `StableDiffusionPipeline.encode_prompt` does: each padded or truncated to 77 tokens.
public enum EncodePromptStage: Stage {
    public static let model = DiffusionParams.model
    public static let conditioning = Output<Conditioning>("conditioning", "The prompt's and the negative prompt's embeddings.")
    public static let prompt = Param<String>("prompt", default: "", "What the image should show.")
    public static let negativePrompt = Param<String>("negative_prompt", default: "",
                                                     "What it should not show (the unconditional side of guidance).")
    public static let clipSkip = Param<Int>(
        "clip_skip", default: 0, range: 0...11,
        "Text-encoder layers to skip at the end, as diffusers' clip_skip (AUTOMATIC1111's \"Clip skip\" minus 1).")

    public static let schema = StageSchema(
        "encode_prompt", "Encode a prompt and a negative prompt with the checkpoint's text encoder (77 tokens, truncated as diffusers does).",
        inputs: [model], outputs: [conditioning], params: [prompt, negativePrompt, clipSkip])

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let sd = try DiffusionParams.stableDiffusion(call)
        guard let tokenizer = sd.tokenizer else {
            throw call.failure("the checkpoint has no tokenizer/ folder to encode prompts with", code: .model, file: sd.path)
        }
        let skip = try call[clipSkip]
        guard skip < sd.textEncoder.config.layers else {
            throw call.failure("clip_skip \(skip) leaves no layer of the \(sd.textEncoder.config.layers)-layer text encoder",
                               code: .invalidParameter)
        }
        let maxLength = sd.textEncoder.config.maxPositions
        func embedding(_ text: String) throws -> TextEmbedding {
            let hidden = try sd.textEncoder.encode([tokenizer(text, maxLength: maxLength)], skip: skip)
            return try TextEmbedding(shape: hidden.shape, hiddenStates: hidden.data)
        }
        let (positive, negative) = (try call[prompt], try call[negativePrompt])
        return [conditioning(Conditioning(positive: try embedding(positive), negative: try embedding(negative),
                                          prompt: positive, negativePrompt: negative))]
    }
}
