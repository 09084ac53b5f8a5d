import ChiselBase

/// diffusers' `UVit2DModel` config (aMUSEd's transformer), every key with its defaults. Checked
/// before any network is built: the micro-conditioning widths, head counts that divide their
/// widths, and for a model that downsamples its token grid, an even `sample_size` and an
/// upsampling back (the logits then cover the input grid).
public struct UVit2DConfig: Sendable, Equatable {
    public var hiddenSize: Int
    public var useBias: Bool
    public var hiddenDropout: Double
    /// The pooled text embedding's width (the text encoder's `projection_dim`).
    public var condEmbedDim: Int
    public var microCondEncodeDim: Int
    public var microCondEmbedDim: Int
    /// The text hidden states' width.
    public var encoderHiddenSize: Int
    /// Token ids the embedding knows: the codebook and the mask id.
    public var vocabSize: Int
    /// Classes of the logits.
    public var codebookSize: Int
    /// The token embedding's width.
    public var inChannels: Int
    public var blockOutChannels: Int
    public var resBlocks: Int
    public var downsample: Bool
    public var upsample: Bool
    public var blockHeads: Int
    public var layers: Int
    public var heads: Int
    public var attentionDropout: Double
    public var intermediateSize: Int
    public var layerNormEpsilon: Double
    public var elementwiseAffine: Bool
    public var sampleSize: Int

    /// The number of micro-conditioning values per sample (width, height, crop top, crop left,
    /// aesthetic score).
    public static let microConditions = 5

    public init(reader r: ConfigReader) throws {
        hiddenSize = try r.size("hidden_size", default: 1024)
        useBias = try r.bool("use_bias", default: false)
        hiddenDropout = try r.double("hidden_dropout", default: 0)
        condEmbedDim = try r.size("cond_embed_dim", default: 768)
        microCondEncodeDim = try r.size("micro_cond_encode_dim", default: 256)
        microCondEmbedDim = try r.size("micro_cond_embed_dim", default: 1280)
        encoderHiddenSize = try r.size("encoder_hidden_size", default: 768)
        vocabSize = try r.size("vocab_size", default: 8256)
        codebookSize = try r.size("codebook_size", default: 8192)
        inChannels = try r.size("in_channels", default: 768)
        blockOutChannels = try r.size("block_out_channels", default: 768)
        resBlocks = try r.int("num_res_blocks", default: 3)
        downsample = try r.bool("downsample", default: false)
        upsample = try r.bool("upsample", default: false)
        blockHeads = try r.size("block_num_heads", default: 12)
        layers = try r.int("num_hidden_layers", default: 22)
        heads = try r.size("num_attention_heads", default: 16)
        attentionDropout = try r.double("attention_dropout", default: 0)
        intermediateSize = try r.size("intermediate_size", default: 2816)
        layerNormEpsilon = try r.double("layer_norm_eps", default: 1e-6)
        elementwiseAffine = try r.bool("ln_elementwise_affine", default: true)
        sampleSize = try r.size("sample_size", default: 64)
        guard resBlocks >= 0 else { throw r.failure("num_res_blocks", "must not be negative, got \(resBlocks)") }
        guard layers >= 0 else { throw r.failure("num_hidden_layers", "must not be negative, got \(layers)") }
        guard microCondEmbedDim == Self.microConditions * microCondEncodeDim else {
            throw r.failure("micro_cond_embed_dim", "\(microCondEmbedDim) must be 5 × micro_cond_encode_dim "
                            + "(\(Self.microConditions * microCondEncodeDim))")
        }
        guard blockOutChannels % blockHeads == 0 else {
            throw r.failure("block_num_heads", "\(blockHeads) does not divide block_out_channels \(blockOutChannels)")
        }
        guard hiddenSize % heads == 0 else {
            throw r.failure("num_attention_heads", "\(heads) does not divide hidden_size \(hiddenSize)")
        }
        guard downsample == upsample else {
            throw r.failure(downsample ? "upsample" : "downsample",
                            "must equal the other: the logits would not cover the token grid")
        }
        guard !downsample || sampleSize % 2 == 0 else {
            throw r.failure("sample_size", "\(sampleSize) must be even when downsample is set")
        }
    }
}
