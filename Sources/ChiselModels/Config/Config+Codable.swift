import ChiselBase

/// The configs are Codable with diffusers' and transformers' own key names: decoding goes
/// through `ConfigReader` (so defaults and checks are the same as reading config.json), and
/// encoding writes the keys a diffusers config.json uses.
protocol DiffusersConfig: Codable {
    init(reader: ConfigReader) throws
    /// The config as diffusers/transformers config.json keys.
    var json: JSONValue { get }
}

extension DiffusersConfig {
    public init(from decoder: any Decoder) throws {
        try self.init(reader: ConfigReader(json: JSONValue(from: decoder), file: "config.json"))
    }

    public func encode(to encoder: any Encoder) throws { try json.encode(to: encoder) }
}

private func object(_ pairs: [(String, JSONValue)]) -> JSONValue {
    .object(pairs.map { JSONMember(key: $0.0, value: $0.1) })
}

private func list(_ values: [Int]) -> JSONValue { .array(values.map(JSONValue.int)) }

extension UNetConfig: DiffusersConfig {
    var json: JSONValue {
        object([
            ("in_channels", .int(inChannels)), ("out_channels", .int(outChannels)),
            ("block_out_channels", list(blockOutChannels)),
            ("down_block_types", .array(downBlocks.map { .string($0.rawValue) })),
            ("up_block_types", .array(upBlocks.map { .string($0.rawValue) })),
            ("layers_per_block", .int(layersPerBlock)), ("norm_num_groups", .int(normGroups)),
            ("norm_eps", .double(normEpsilon)), ("cross_attention_dim", .int(crossAttentionDim)),
            ("attention_head_dim", list(heads)), ("transformer_layers_per_block", list(transformerLayers)),
            ("use_linear_projection", .bool(useLinearProjection)), ("upcast_attention", .bool(upcastAttention)),
            ("flip_sin_to_cos", .bool(flipSinToCos)), ("freq_shift", .int(freqShift)),
            ("downsample_padding", .int(downsamplePadding)),
        ])
    }
}

extension VAEConfig: DiffusersConfig {
    var json: JSONValue {
        object([
            ("in_channels", .int(inChannels)), ("out_channels", .int(outChannels)),
            ("block_out_channels", list(blockOutChannels)),
            ("down_block_types", .array(blockOutChannels.map { _ in "DownEncoderBlock2D" })),
            ("up_block_types", .array(blockOutChannels.map { _ in "UpDecoderBlock2D" })),
            ("layers_per_block", .int(layersPerBlock)), ("latent_channels", .int(latentChannels)),
            ("norm_num_groups", .int(normGroups)), ("scaling_factor", .double(scalingFactor)),
            ("use_quant_conv", .bool(useQuantConv)), ("use_post_quant_conv", .bool(usePostQuantConv)),
            ("mid_block_add_attention", .bool(midBlockAttention)),
        ])
    }
}

extension CLIPTextConfig: DiffusersConfig {
    var json: JSONValue {
        object([
            ("vocab_size", .int(vocabSize)), ("hidden_size", .int(hiddenSize)),
            ("intermediate_size", .int(intermediateSize)), ("num_hidden_layers", .int(layers)),
            ("num_attention_heads", .int(heads)), ("max_position_embeddings", .int(maxPositions)),
            ("hidden_act", .string(activation.rawValue)), ("layer_norm_eps", .double(layerNormEpsilon)),
            ("projection_dim", .int(projectionDim)), ("eos_token_id", .int(eosTokenId)),
            ("bos_token_id", .int(bosTokenId)), ("pad_token_id", .int(padTokenId)),
        ])
    }
}
