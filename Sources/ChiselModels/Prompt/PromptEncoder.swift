import ChiselBase
import ChiselTensor

/// Prompt text to text-encoder hidden states, as diffusers, AUTOMATIC1111 or ComfyUI compute them.
///
/// A prompt is cut into 77-token chunks by `PromptChunker` (`mode`), each chunk is encoded by
/// `CLIPTextModel.encode` with `clipSkip` (diffusers' `clip_skip`: 0 is the last layer; A1111's
/// "Clip skip" setting is `clipSkip + 1`), the weights are applied per chunk (`weighting`, see
/// `PromptWeighting`) and the chunks are joined along the sequence.
///
/// - `.truncate` with any weighting is diffusers' `StableDiffusionPipeline.encode_prompt`.
/// - `.a1111` mode with `.a1111` weighting is AUTOMATIC1111 with its default settings.
/// - `.a1111` mode with `.comfy` weighting applies ComfyUI's weighting to A1111's chunks; ComfyUI
///   itself parses and chunks differently (its own bracket parser, no `[ ]`, no `BREAK`, long
///   words kept whole across chunk borders), so its tokens can differ on long or unusual prompts.
public struct PromptEncoder: Sendable {
    public let chunker: PromptChunker
    public let textModel: CLIPTextModel
    public let clipSkip: Int
    public let weighting: PromptWeighting
    /// Which hidden states a chunk gives.
    public let layer: Layer

    public enum Layer: Sendable {
        /// `clipSkip` layers from the last, through the final LayerNorm (SD 1.x/2.x).
        case normed
        /// `hidden_states[-(clipSkip + 2)]`, no final LayerNorm (SDXL's encoders).
        case penultimate
    }

    public var tokenizer: CLIPTokenizer { chunker.tokenizer }
    public var mode: PromptMode { chunker.mode }

    /// Refuses a clip skip the text model does not have, special tokens outside its vocabulary
    /// and a text model with fewer than 77 positions.
    public init(
        tokenizer: CLIPTokenizer, textModel: CLIPTextModel, clipSkip: Int = 0, mode: PromptMode = .a1111,
        weighting: PromptWeighting = .a1111, layer: Layer = .normed
    ) throws {
        let config = textModel.config
        guard (0..<config.layers).contains(clipSkip) else {
            throw ChiselError(
                .invalidParameter, "clip skip \(clipSkip) is outside 0..<\(config.layers), the text encoder's layers")
        }
        guard config.maxPositions >= PromptChunk.length else {
            throw ChiselError(
                .model, "the text encoder has \(config.maxPositions) positions; prompt chunks need \(PromptChunk.length)")
        }
        for (role, id) in [("start", tokenizer.bosTokenID), ("end", tokenizer.eosTokenID), ("pad", tokenizer.padTokenID)]
        where !(0..<config.vocabSize).contains(id) {
            throw ChiselError(
                .model,
                "the tokenizer's \(role) token id \(id) is outside the text encoder's vocabulary of \(config.vocabSize): they do not belong together")
        }
        chunker = try PromptChunker(tokenizer: tokenizer, mode: mode)
        self.textModel = textModel
        self.clipSkip = clipSkip
        self.weighting = weighting
        self.layer = layer
    }

    /// The hidden states of one prompt.
    public func encode(_ prompt: String) throws -> PromptEmbedding {
        try encode(chunks: chunker.chunks(prompt))
    }

    /// The hidden states of chunks made elsewhere (by `PromptChunker`, or by hand).
    public func encode(chunks: [PromptChunk]) throws -> PromptEmbedding {
        try encode(batches: [chunks])[0]
    }

    /// Both prompts of classifier-free guidance, the shorter padded with empty chunks so that
    /// both have as many chunks: what A1111 does with "Pad prompt/negative prompt"
    /// (`pad_cond_uncond`, which appends the hidden states of the empty prompt) and compel's
    /// `pad_conditioning_tensors_to_same_length`. (A1111 without that setting, its default, runs
    /// the UNet once per prompt instead; ComfyUI repeats the shorter prompt's whole sequence.)
    /// In `.truncate` mode both are one chunk already.
    /// The prompt alone, as diffusers encodes it when no guidance needs the negative side.
    public func encode(positive: String) throws -> PromptEmbedding {
        guard let embedding = try encode(batches: [try chunker.chunks(positive)]).first else {
            throw ChiselError(.internal, "the prompt encoder gave no embedding")
        }
        return embedding
    }

    public func encode(positive: String, negative: String) throws -> (positive: PromptEmbedding, negative: PromptEmbedding) {
        var positiveChunks = try chunker.chunks(positive)
        var negativeChunks = try chunker.chunks(negative)
        let count = max(positiveChunks.count, negativeChunks.count)
        let empty = try chunker.emptyChunk
        positiveChunks += Array(repeating: empty, count: count - positiveChunks.count)
        negativeChunks += Array(repeating: empty, count: count - negativeChunks.count)
        let embeddings = try encode(batches: [positiveChunks, negativeChunks])
        return (embeddings[0], embeddings[1])
    }

    /// Encodes every chunk of every list in one text-encoder batch, then weights and joins them.
    private func encode(batches: [[PromptChunk]]) throws -> [PromptEmbedding] {
        guard batches.allSatisfy({ !$0.isEmpty }) else {
            throw ChiselError(.invalidParameter, "a prompt needs at least one chunk")
        }
        let all = batches.flatMap { $0 }
        let weighted = mode != .truncate && weighting != .ignore && !all.allSatisfy(\.isUnweighted)
        let needsEmpty = weighted && weighting == .comfy
        var ids = all.map(\.tokens)
        if needsEmpty { ids.append(try chunker.emptyChunk.tokens) }
        let encoded = layer == .normed ? try textModel.encode(ids, skip: clipSkip) : try textModel.hiddenStates(ids, skip: clipSkip).penultimate
        let width = PromptChunk.length * encoded.lastDimension
        let empty = needsEmpty ? Array(encoded.data[(all.count * width)...]) : []

        var results: [PromptEmbedding] = []
        var first = 0
        for chunks in batches {
            var data = Array(encoded.data[(first * width)..<((first + chunks.count) * width)])
            if weighted {
                for (index, chunk) in chunks.enumerated() where !chunk.isUnweighted {
                    try data.withUnsafeMutableBufferPointer { buffer in
                        let z = UnsafeMutableBufferPointer(rebasing: buffer[(index * width)..<((index + 1) * width)])
                        try apply(chunk.weights, to: z, empty: empty, chunkIndex: index)
                    }
                }
            }
            let states = try Tensor(shape: [1, chunks.count * PromptChunk.length, encoded.lastDimension], data: data)
            results.append(PromptEmbedding(hiddenStates: states, chunks: chunks))
            first += chunks.count
        }
        return results
    }
}
