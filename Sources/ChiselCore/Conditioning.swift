/// One text encoder output: per-token hidden states and, for models that use it, a pooled vector.
public struct TextEmbedding: Sendable, Equatable {
    /// Shape of `hiddenStates`: batch × tokens × features.
    public private(set) var shape: [Int]
    public var hiddenStates: [Float]
    public var pooled: [Float]?

    public init(shape: [Int], hiddenStates: [Float], pooled: [Float]? = nil) throws {
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 }),
            shape.reduce(1, *) == hiddenStates.count
        else {
            throw ChiselError(.internal, "text embedding of shape \(shape) does not match \(hiddenStates.count) values")
        }
        self.shape = shape
        self.hiddenStates = hiddenStates
        self.pooled = pooled
    }
}

/// The text conditioning of a guided denoise: the prompt's embedding and, for classifier-free
/// guidance, the negative prompt's.
public struct Conditioning: Sendable, Equatable {
    public var positive: TextEmbedding
    public var negative: TextEmbedding?
    /// The prompts they were encoded from, kept for metadata and logs.
    public var prompt: String
    public var negativePrompt: String
    /// What the encoding adds to the image's AUTOMATIC1111 infotext (`Clip skip`, `Emphasis`).
    public var settings: [GenerationInfo.Setting]

    public init(positive: TextEmbedding, negative: TextEmbedding?, prompt: String, negativePrompt: String,
                settings: [GenerationInfo.Setting] = []) {
        self.positive = positive
        self.negative = negative
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.settings = settings
    }
}
