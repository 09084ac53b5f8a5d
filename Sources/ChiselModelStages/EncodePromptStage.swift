import ChiselCore
import ChiselModels
import ChiselTensor

extension PromptWeighting: ParamChoice {}

/// Encodes a prompt and a negative prompt with the checkpoint's text encoder: as diffusers'
/// `encode_prompt` does (77 tokens, truncated), or in AUTOMATIC1111's 75-token chunks with its
/// emphasis syntax (docs/prompts.md).
public enum EncodePromptStage: Stage {
    public enum Mode: String, ParamChoice {
        /// diffusers: `<|startoftext|>`, the first 75 tokens, `<|endoftext|>`, padding; text taken verbatim.
        case truncate
        /// AUTOMATIC1111 and ComfyUI: every token kept, in chunks of 75, with `(word:1.3)` emphasis and BREAK.
        case chunk
    }

    public static let model = ModelInput("model", "A Stable Diffusion checkpoint or an aMUSEd model from the graph's models section.")
    public static let conditioning = Output<Conditioning>("conditioning", "The prompt's and the negative prompt's embeddings.")
    public static let prompt = Param<String>("prompt", default: "", "What the image should show.")
    public static let negativePrompt = Param<String>("negative_prompt", default: "",
                                                     "What it should not show (the unconditional side of guidance).")
    public static let clipSkip = Param<Int>(
        "clip_skip", default: 0, range: 0...11,
        "Text-encoder layers to skip at the end, as diffusers' clip_skip (AUTOMATIC1111's \"Clip skip\" minus 1).")
    public static let encodeNegative = Param<Bool>(
        "encode_negative", default: true,
        "false encodes the prompt alone, as diffusers does when nothing is guided (guidance ≤ 1); guidance > 1 then fails for want of the negative side.")
    public static let mode = Param<Mode>("mode", default: .truncate,
                                         "truncate (diffusers: 77 tokens) or chunk (AUTOMATIC1111/ComfyUI: 75-token chunks, emphasis syntax).")
    public static let weighting = Param<PromptWeighting>(
        "weighting", default: .a1111,
        "In chunk mode, how (word:1.3) weights apply: a1111 (scaled, mean kept), a1111_no_norm, comfy, or ignore.")
    public static let commaBacktrack = Param<Int>("comma_backtrack", default: 20, range: 0...74,
                                                  "In chunk mode, AUTOMATIC1111's comma padding backtrack (0 turns it off).")

    public static let schema = StageSchema(
        "encode_prompt", "Encode a prompt and a negative prompt with the checkpoint's text encoder (diffusers' 77 tokens, or AUTOMATIC1111's chunks and emphasis).",
        inputs: [model], outputs: [conditioning], params: [prompt, negativePrompt, clipSkip, mode, weighting, commaBacktrack, encodeNegative])

    public static func validate(_ check: inout StageCheck) throws {
        guard case .amused? = ModelFacts(check.source(of: model)) else { return }
        // aMUSEd's pipelines encode 77 tokens verbatim from the penultimate layer: refused, not ignored.
        if try check[mode] != .truncate {
            check.reject(mode, "an aMUSEd model encodes prompts as diffusers does (mode truncate)")
        }
        if try check[clipSkip] != 0 {
            check.reject(clipSkip, "an aMUSEd model encodes prompts as diffusers does (clip_skip 0)")
        }
    }

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        if let amused = try? call.model(model, as: AmusedModel.self) { return try encodeForAmused(amused, call) }
        let sd = try DiffusionParams.stableDiffusion(call)
        if sd.family.isXL { return try encodeForXL(sd, call) }
        // Single files carry no tokenizer: the CLIP vocabulary that ships with Chisel stands in.
        let tokenizer = try sd.tokenizer ?? CLIPTokenizer.bundled(family: sd.family)
        let promptMode: PromptMode = try call[mode] == .truncate ? .truncate : .chunk(commaBacktrack: call[commaBacktrack])
        let encoder = try PromptEncoder(tokenizer: tokenizer, textModel: sd.textEncoder, clipSkip: call[clipSkip],
                                        mode: promptMode, weighting: call[weighting])
        let (positive, negative) = (try call[prompt], try call[negativePrompt])
        // A multi-vector embedding's token stands for all its tokens (diffusers' maybe_convert_prompt).
        let expandedPositive = TextualInversion.expanding(positive, embeddings: sd.embeddings, tokenizer: tokenizer)
        func embedding(_ e: PromptEmbedding) throws -> TextEmbedding {
            try TextEmbedding(shape: e.hiddenStates.shape, hiddenStates: e.hiddenStates.data)
        }
        let settings = try Self.infotext(call)
        guard try call[encodeNegative] else {
            return [conditioning(Conditioning(positive: try embedding(encoder.encode(positive: expandedPositive)), negative: nil,
                                              prompt: positive, negativePrompt: negative, settings: settings))]
        }
        let encoded = try encoder.encode(
            positive: expandedPositive,
            negative: TextualInversion.expanding(negative, embeddings: sd.embeddings, tokenizer: tokenizer))
        return [conditioning(Conditioning(positive: try embedding(encoded.positive), negative: try embedding(encoded.negative),
                                          prompt: positive, negativePrompt: negative, settings: settings))]
    }

    /// AUTOMATIC1111's infotext for this encoding. `Clip skip` counts from 1 there (1 = none
    /// skipped). `Emphasis: None` says the prompt was taken verbatim (truncate mode), so that
    /// A1111 does not apply `(word:1.2)` weights this encoding did not apply; `No norm` is
    /// A1111's emphasis without the mean restored.
    static func infotext(_ call: StageCall) throws -> [GenerationInfo.Setting] {
        var settings: [GenerationInfo.Setting] = []
        let skip = try call[clipSkip]
        if skip > 0 { settings.append(GenerationInfo.Setting("Clip skip", String(skip + 1))) }
        switch (try call[mode], try call[weighting]) {
        case (.truncate, _): settings.append(GenerationInfo.Setting("Emphasis", "None"))
        case (.chunk, .a1111NoNorm): settings.append(GenerationInfo.Setting("Emphasis", "No norm"))
        default: break
        }
        return settings
    }

    /// SDXL's `encode_prompt` (diffusers' StableDiffusionXL pipelines): each text encoder's
    /// `hidden_states[-(clip_skip + 2)]` of the 77-token prompt, side by side (the refiner has
    /// only the second), and the second encoder's pooled projection. The negative prompt takes
    /// `hidden_states[-2]` whatever the clip skip, as diffusers does; an empty one is zeros when
    /// the checkpoint says `force_zeros_for_empty_prompt` (diffusers' default of no negative prompt).
    static func encodeForXL(_ sd: StableDiffusionModel, _ call: StageCall) throws -> StageOutputs {
        let refiner = sd.family == .sdxlRefiner
        let first = try sd.tokenizer ?? CLIPTokenizer.bundled(family: refiner ? .sdxlRefiner : .sdxl)
        var pairs = [(first, sd.textEncoder)]
        if let second = sd.textEncoder2 { pairs.append((try sd.tokenizer2 ?? CLIPTokenizer.bundled(family: .sdxlRefiner), second)) }
        // A multi-vector embedding's token stands for all its tokens (both tokenizers hold them).
        let expand = { (text: String) in TextualInversion.expanding(text, embeddings: sd.embeddings, tokenizer: first) }
        if try call[mode] == .chunk { return try encodeForXLInChunks(sd, call, pairs: pairs, expand: expand) }
        func encode(_ text: String, skip: Int) throws -> TextEmbedding {
            var parts: [Tensor] = []
            var pooled: [Float]?
            for (tokenizer, encoder) in pairs {
                let ids = [tokenizer(text, maxLength: 77)]
                if encoder.hasProjection {
                    let (states, embeds) = try encoder.encodeWithProjection(ids, skip: skip)
                    parts.append(states)
                    pooled = embeds.data
                } else {
                    parts.append(try encoder.hiddenStates(ids, skip: skip).penultimate)
                }
            }
            guard let pooled else { throw call.failure("no SDXL text encoder with a projection gives the pooled embedding", code: .model) }
            let joined = parts.count == 1 ? parts[0] : try Ops.concatChannels(parts[0], parts[1])
            return try TextEmbedding(shape: joined.shape, hiddenStates: joined.data, pooled: pooled)
        }
        let (positive, negative) = (try call[prompt], try call[negativePrompt])
        let settings = try Self.infotext(call)
        let encoded = try encode(expand(positive), skip: try call[clipSkip])
        guard try call[encodeNegative] else {
            return [conditioning(Conditioning(positive: encoded, negative: nil, prompt: positive, negativePrompt: negative,
                                              settings: settings))]
        }
        let uncond: TextEmbedding
        if negative.isEmpty, sd.xl?.forceZerosForEmptyPrompt == true {
            uncond = try TextEmbedding(shape: encoded.shape, hiddenStates: [Float](repeating: 0, count: encoded.hiddenStates.count),
                                       pooled: encoded.pooled.map { [Float](repeating: 0, count: $0.count) })
        } else {
            uncond = try encode(expand(negative), skip: 0)
        }
        return [conditioning(Conditioning(positive: encoded, negative: uncond, prompt: positive, negativePrompt: negative,
                                          settings: settings))]
    }

    /// AUTOMATIC1111's SDXL conditioning: each encoder's 75-token chunks with the emphasis
    /// syntax, from the penultimate layer without the final LayerNorm (A1111 leaves Clip skip out
    /// for SDXL by default; `clip_skip` here goes further back), weighted per encoder, the two
    /// side by side; the pooled embedding is the second encoder's projection of the first chunk,
    /// unweighted; an empty negative prompt is zeros, pooled too (A1111's force_zero_negative_prompt).
    static func encodeForXLInChunks(_ sd: StableDiffusionModel, _ call: StageCall, pairs: [(CLIPTokenizer, CLIPTextModel)],
                                    expand: (String) -> String) throws -> StageOutputs {
        let (positive, negative) = (try call[prompt], try call[negativePrompt])
        let chunking = PromptMode.chunk(commaBacktrack: try call[commaBacktrack])
        var states: [(positive: Tensor, negative: Tensor)] = []
        var pooled: (positive: [Float], negative: [Float])?
        for (tokenizer, encoder) in pairs {
            let prompts = try PromptEncoder(tokenizer: tokenizer, textModel: encoder, clipSkip: call[clipSkip], mode: chunking,
                                            weighting: call[weighting], layer: .penultimate)
            let encoded = try prompts.encode(positive: expand(positive), negative: expand(negative))
            states.append((encoded.positive.hiddenStates, encoded.negative.hiddenStates))
            if encoder.hasProjection {
                let firsts = [encoded.positive.chunks[0].tokens, encoded.negative.chunks[0].tokens]
                let projected = try encoder.encodeWithProjection(firsts).textEmbeds
                let width = projected.lastDimension
                pooled = (Array(projected.data[..<width]), Array(projected.data[width...]))
            }
        }
        guard let pooled, let firstStates = states.first else {
            throw call.failure("no SDXL text encoder with a projection gives the pooled embedding", code: .model)
        }
        func joined(_ pick: ((positive: Tensor, negative: Tensor)) -> Tensor) throws -> Tensor {
            states.count == 1 ? pick(firstStates) : try Ops.concatChannels(pick(states[0]), pick(states[1]))
        }
        let positiveStates = try joined(\.positive), negativeStates = try joined(\.negative)
        let settings = try Self.infotext(call)
        let encodedPositive = try TextEmbedding(shape: positiveStates.shape, hiddenStates: positiveStates.data, pooled: pooled.positive)
        guard try call[encodeNegative] else {
            return [conditioning(Conditioning(positive: encodedPositive, negative: nil, prompt: positive, negativePrompt: negative,
                                              settings: settings))]
        }
        let encodedNegative = negative.isEmpty
            ? try TextEmbedding(shape: negativeStates.shape, hiddenStates: [Float](repeating: 0, count: negativeStates.data.count),
                                pooled: [Float](repeating: 0, count: pooled.negative.count))
            : try TextEmbedding(shape: negativeStates.shape, hiddenStates: negativeStates.data, pooled: pooled.negative)
        return [conditioning(Conditioning(positive: encodedPositive, negative: encodedNegative, prompt: positive, negativePrompt: negative,
                                          settings: settings))]
    }

    /// aMUSEd's `encode_prompt`: 77 tokens, truncated; the penultimate hidden states and the
    /// projected pooled embedding of the prompt and of the negative prompt. Chunks, emphasis and
    /// clip skip are Stable Diffusion's and are refused here rather than ignored.
    static func encodeForAmused(_ amused: AmusedModel, _ call: StageCall) throws -> StageOutputs {
        if try call[mode] != .truncate || call[clipSkip] != 0 {
            throw call.failure("an aMUSEd model encodes prompts as diffusers does (mode truncate, clip_skip 0)",
                               code: .invalidParameter)
        }
        let (positive, negative) = (try call[prompt], try call[negativePrompt])
        let encoded = try amused.encodePrompts([positive, negative])
        let (length, width, projection) = (encoded.hiddenStates.shape[1], encoded.hiddenStates.shape[2], encoded.pooled.shape[1])
        func embedding(_ row: Int) throws -> TextEmbedding {
            let states = Array(encoded.hiddenStates.data[(row * length * width)..<((row + 1) * length * width)])
            let pooled = Array(encoded.pooled.data[(row * projection)..<((row + 1) * projection)])
            return try TextEmbedding(shape: [1, length, width], hiddenStates: states, pooled: pooled)
        }
        return [conditioning(Conditioning(positive: try embedding(0), negative: try embedding(1), prompt: positive,
                                          negativePrompt: negative))]
    }
}
