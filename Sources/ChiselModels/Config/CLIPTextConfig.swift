import ChiselCore

/// transformers' `CLIPTextConfig`, with its defaults.
public struct CLIPTextConfig: Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layers: Int
    public var heads: Int
    public var maxPositions: Int
    public var activation: String
    public var layerNormEpsilon: Double
    public var projectionDim: Int

    public init(reader r: ConfigReader) throws {
        vocabSize = try r.size("vocab_size", default: 49408)
        hiddenSize = try r.size("hidden_size", default: 512)
        intermediateSize = try r.size("intermediate_size", default: 2048)
        layers = try r.size("num_hidden_layers", default: 12)
        heads = try r.size("num_attention_heads", default: 8)
        maxPositions = try r.size("max_position_embeddings", default: 77)
        activation = try r.string("hidden_act", default: "quick_gelu")
        layerNormEpsilon = try r.double("layer_norm_eps", default: 1e-5)
        projectionDim = try r.size("projection_dim", default: 512)
        guard hiddenSize % heads == 0 else { throw r.failure("num_attention_heads", "does not divide hidden_size \(hiddenSize)") }
        guard ["quick_gelu", "gelu"].contains(activation) else { throw r.failure("hidden_act", "'\(activation)' is not supported") }
    }
}
