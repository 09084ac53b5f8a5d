import ChiselBase

/// 77 token ids as the text encoder reads them and one weight per token.
public struct PromptChunk: Sendable, Equatable {
    /// `<|startoftext|>`, 75 tokens of the prompt (or padding), `<|endoftext|>`.
    public static let length = 77
    /// The prompt tokens a chunk holds.
    public static let capacity = length - 2

    public let tokens: [Int]
    /// 1 for `<|startoftext|>`, `<|endoftext|>` and padding.
    public let weights: [Float]

    /// Refuses anything but 77 tokens and 77 weights.
    public init(tokens: [Int], weights: [Float]) throws {
        guard tokens.count == Self.length, weights.count == Self.length else {
            throw ChiselError(
                .invalidParameter,
                "a prompt chunk holds \(Self.length) tokens and \(Self.length) weights, not \(tokens.count) and \(weights.count)")
        }
        self.tokens = tokens
        self.weights = weights
    }

    /// Whether every weight is 1, so that no weighting changes the chunk's hidden states.
    public var isUnweighted: Bool { weights.allSatisfy { $0 == 1 } }
}
