import ChiselBase

/// The text encoder's MLP activation (`hidden_act`).
public enum CLIPActivation: String, Sendable, CaseIterable {
    /// x·σ(1.702x), OpenAI CLIP's (SD 1.x).
    case quickGelu = "quick_gelu"
    /// The exact GELU, OpenCLIP's (SD 2.x).
    case gelu
}

/// transformers' `CLIPTextConfig`, with its defaults. `projection_dim` belongs to the
/// projection head of `CLIPTextModelWithProjection`; the plain text model ignores it in
/// transformers too.
public struct CLIPTextConfig: Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layers: Int
    public var heads: Int
    public var maxPositions: Int
    public var activation: CLIPActivation
    public var layerNormEpsilon: Double
    public var projectionDim: Int
    /// Where `CLIPTextModelWithProjection` pools: the first position holding this id, or, when
    /// it is 2 (configs from before transformers' PR #24773, aMUSEd's among them), the first
    /// position of the largest id.
    public var eosTokenId: Int
    public var bosTokenId: Int
    public var padTokenId: Int

    public init(reader r: ConfigReader) throws {
        vocabSize = try r.size("vocab_size", default: 49408)
        hiddenSize = try r.size("hidden_size", default: 512)
        intermediateSize = try r.size("intermediate_size", default: 2048)
        layers = try r.size("num_hidden_layers", default: 12)
        heads = try r.size("num_attention_heads", default: 8)
        maxPositions = try r.size("max_position_embeddings", default: 77)
        let act = try r.string("hidden_act", default: "quick_gelu")
        guard let activation = CLIPActivation(rawValue: act) else { throw r.failure("hidden_act", "'\(act)' is not supported") }
        self.activation = activation
        layerNormEpsilon = try r.double("layer_norm_eps", default: 1e-5)
        projectionDim = try r.size("projection_dim", default: 512)
        eosTokenId = try r.int("eos_token_id", default: 49407)
        bosTokenId = try r.int("bos_token_id", default: 49406)
        padTokenId = try r.int("pad_token_id", default: 1)
        guard hiddenSize % heads == 0 else { throw r.failure("num_attention_heads", "does not divide hidden_size \(hiddenSize)") }
    }
}
