import ChiselTensor

/// A prompt's hidden states and the chunks they were computed from.
public struct PromptEmbedding: Sendable {
    /// [1, 77 · chunkCount, hidden]: the chunks' hidden states, weighted, one after the other
    /// along the sequence, as A1111's `torch.hstack(zs)` and ComfyUI's `torch.cat(..., dim=-2)`.
    public let hiddenStates: Tensor
    public let chunks: [PromptChunk]

    /// Made only by `PromptEncoder`, which keeps the shape and the chunks in step.
    init(hiddenStates: Tensor, chunks: [PromptChunk]) {
        self.hiddenStates = hiddenStates
        self.chunks = chunks
    }

    public var chunkCount: Int { chunks.count }
    public var tokens: [[Int]] { chunks.map(\.tokens) }
    public var weights: [[Float]] { chunks.map(\.weights) }
    public var hiddenSize: Int { hiddenStates.lastDimension }
}
