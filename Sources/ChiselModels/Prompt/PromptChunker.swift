import ChiselBase

/// Turns a prompt into 77-token chunks, in one of the two `PromptMode`s.
///
/// `.chunk` follows AUTOMATIC1111's `FrozenCLIPEmbedderWithCustomWordsBase.tokenize_line`
/// (modules/sd_hijack_clip.py) without textual-inversion embeddings: each segment of
/// `EmphasisParser` is tokenized on its own (`tokenizer(text, add_special_tokens=False)`), its
/// tokens are appended with the segment's weight, and a chunk is closed
/// - when it holds 75 tokens and another one comes; if that token is not a comma and the
///   chunk's last comma is at most `commaBacktrack` tokens from its end, the tokens after the
///   comma move to the next chunk first;
/// - at a `BREAK` (even an empty chunk, so `BREAK` alone or two in a row give empty chunks);
/// - at the end of the prompt, if it holds tokens or no chunk was made (so `""` is one chunk).
///
/// A closed chunk is padded to 75 with `<|endoftext|>`, wrapped in `<|startoftext|>` and
/// `<|endoftext|>`, with weight 1 on all three kinds. As A1111's `process_tokens` does, when the
/// pad token is not `<|endoftext|>` (SD 2.x pads with `!`, id 0), every id after the first
/// `<|endoftext|>` becomes the pad id.
public struct PromptChunker: Sendable {
    public let tokenizer: CLIPTokenizer
    public let mode: PromptMode
    /// A1111's `comma_token`: the id of `,` (`,</w>`), nil when it is not one token.
    let commaTokenID: Int?

    /// Refuses a comma backtrack outside 0...75.
    public init(tokenizer: CLIPTokenizer, mode: PromptMode = .a1111) throws {
        if case .chunk(let backtrack) = mode, !(0...PromptChunk.capacity).contains(backtrack) {
            throw ChiselError(
                .invalidParameter, "the comma backtrack is \(backtrack) tokens; it must be in 0...\(PromptChunk.capacity)")
        }
        self.tokenizer = tokenizer
        self.mode = mode
        let comma = tokenizer.encode(",")
        commaTokenID = comma.count == 1 ? comma[0] : nil
    }

    /// The chunks of `prompt`: one in `.truncate` mode, one or more in `.chunk` mode.
    public func chunks(_ prompt: String) throws -> [PromptChunk] {
        switch mode {
        case .truncate:
            let ids = tokenizer(prompt, maxLength: PromptChunk.length, padding: .maxLength)
            return [try PromptChunk(tokens: ids, weights: Array(repeating: 1, count: PromptChunk.length))]
        case .chunk(let backtrack):
            return try chunks(EmphasisParser.parse(prompt), commaBacktrack: backtrack)
        }
    }

    /// `<|startoftext|>`, `<|endoftext|>` and padding: A1111's `empty_chunk()` and the chunk of
    /// `""`, ComfyUI's `gen_empty_tokens`.
    public var emptyChunk: PromptChunk {
        get throws { try close(tokens: [], weights: []) }
    }

    /// tokenize_line on parsed segments.
    func chunks(_ segments: [PromptSegment], commaBacktrack: Int) throws -> [PromptChunk] {
        var chunks: [PromptChunk] = []
        var tokens: [Int] = []
        var weights: [Float] = []
        var lastComma = -1

        func nextChunk() throws {
            chunks.append(try close(tokens: tokens, weights: weights))
            tokens = []
            weights = []
            lastComma = -1
        }

        for segment in segments {
            guard case .text(let text, let weight) = segment else {
                try nextChunk()
                continue
            }
            for token in tokenizer.encode(text) {
                if token == commaTokenID {
                    lastComma = tokens.count
                } else if commaBacktrack != 0, tokens.count == PromptChunk.capacity, lastComma != -1,
                    tokens.count - lastComma <= commaBacktrack
                {
                    let breakLocation = lastComma + 1
                    let movedTokens = Array(tokens[breakLocation...])
                    let movedWeights = Array(weights[breakLocation...])
                    tokens.removeSubrange(breakLocation...)
                    weights.removeSubrange(breakLocation...)
                    try nextChunk()
                    tokens = movedTokens
                    weights = movedWeights
                }
                if tokens.count == PromptChunk.capacity { try nextChunk() }
                tokens.append(token)
                weights.append(Float(weight))
            }
        }
        if !tokens.isEmpty || chunks.isEmpty { try nextChunk() }
        return chunks
    }

    /// next_chunk's padding and wrapping, then process_tokens' pad ids.
    private func close(tokens: [Int], weights: [Float]) throws -> PromptChunk {
        let bos = tokenizer.bosTokenID, eos = tokenizer.eosTokenID, pad = tokenizer.padTokenID
        var ids = [bos] + tokens + Array(repeating: eos, count: PromptChunk.capacity - tokens.count) + [eos]
        if pad != eos, let firstEnd = ids.firstIndex(of: eos) {
            for i in (firstEnd + 1)..<ids.count { ids[i] = pad }
        }
        let padding = Array(repeating: Float(1), count: PromptChunk.capacity - weights.count)
        return try PromptChunk(tokens: ids, weights: [1] + weights + padding + [1])
    }
}
