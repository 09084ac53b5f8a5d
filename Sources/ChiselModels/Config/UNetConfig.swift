import ChiselBase

/// diffusers' `UNet2DConditionModel` config for Stable Diffusion 1.x, 2.x and XL, with its
/// defaults. Features of other families (class embeddings, other added embeddings, dual
/// cross-attention) are refused.
public struct UNetConfig: Sendable, Equatable {
    public enum BlockKind: String, Sendable {
        case crossAttnDown = "CrossAttnDownBlock2D", down = "DownBlock2D"
        case crossAttnUp = "CrossAttnUpBlock2D", up = "UpBlock2D"
    }

    public var inChannels: Int
    public var outChannels: Int
    public var blockOutChannels: [Int]
    public var downBlocks: [BlockKind]
    public var upBlocks: [BlockKind]
    public var layersPerBlock: Int
    public var normGroups: Int
    public var normEpsilon: Double
    public var crossAttentionDim: Int
    /// Attention heads per down block (diffusers reads `attention_head_dim` as the head count
    /// when `num_attention_heads` is absent, as SD 1.x and 2.x configs rely on).
    public var heads: [Int]
    public var transformerLayers: [Int]
    public var useLinearProjection: Bool
    /// Attention products in FP32 even in a BF16 network (SD 2.1 sets it).
    public var upcastAttention: Bool
    public var flipSinToCos: Bool
    public var freqShift: Int
    public var downsamplePadding: Int
    /// The width of a guidance embedding added to the timestep's (`time_cond_proj_dim`, the
    /// guidance-distilled LCM UNets); nil for SD's.
    public var timeConditionDim: Int?
    /// SDXL's added embedding (`addition_embed_type: "text_time"`): the width of each size or
    /// score's sinusoidal embedding (`addition_time_embed_dim`) and the width of the pooled
    /// text embedding plus those (`projection_class_embeddings_input_dim`); nil for SD 1.x/2.x.
    public var textTime: (timeDim: Int, inputDim: Int)?

    public static func == (a: UNetConfig, b: UNetConfig) -> Bool {
        a.inChannels == b.inChannels && a.outChannels == b.outChannels && a.blockOutChannels == b.blockOutChannels
            && a.downBlocks == b.downBlocks && a.upBlocks == b.upBlocks && a.layersPerBlock == b.layersPerBlock
            && a.normGroups == b.normGroups && a.normEpsilon == b.normEpsilon && a.crossAttentionDim == b.crossAttentionDim
            && a.heads == b.heads && a.transformerLayers == b.transformerLayers && a.useLinearProjection == b.useLinearProjection
            && a.upcastAttention == b.upcastAttention && a.flipSinToCos == b.flipSinToCos && a.freqShift == b.freqShift
            && a.downsamplePadding == b.downsamplePadding && a.timeConditionDim == b.timeConditionDim
            && a.textTime?.timeDim == b.textTime?.timeDim && a.textTime?.inputDim == b.textTime?.inputDim
    }

    /// `init(reader:encoderOnly: true)` reads a config of the UNet's first half (a ControlNet's): no up blocks
    /// or output channels, which are taken as the mirror of the down blocks and the input.
    public init(reader r: ConfigReader) throws {
        try self.init(reader: r, encoderOnly: false)
    }

    public init(reader r: ConfigReader, encoderOnly: Bool) throws {
        inChannels = try r.size("in_channels", default: 4)
        outChannels = encoderOnly ? inChannels : try r.size("out_channels", default: 4)
        blockOutChannels = try r.sizes("block_out_channels", default: [320, 640, 1280, 1280])
        let n = blockOutChannels.count
        guard blockOutChannels[0] % 2 == 0 else {
            throw r.failure("block_out_channels", "needs an even first entry for the sinusoidal time embedding")
        }
        func kinds(_ key: String, _ defaults: [String]) throws -> [BlockKind] {
            try r.strings(key, default: defaults).map { name in
                guard let kind = BlockKind(rawValue: name) else { throw r.failure(key, "has unsupported block '\(name)'") }
                return kind
            }
        }
        downBlocks = try kinds("down_block_types", ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"])
        upBlocks = encoderOnly ? downBlocks.reversed().map { $0 == .crossAttnDown ? .crossAttnUp : .up }
            : try kinds("up_block_types", ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"])
        guard downBlocks.count == n, upBlocks.count == n else {
            throw r.failure("down_block_types", "and up_block_types need one entry per block_out_channels entry (\(n))")
        }
        guard downBlocks.allSatisfy({ $0 == .crossAttnDown || $0 == .down }),
            upBlocks.allSatisfy({ $0 == .crossAttnUp || $0 == .up })
        else { throw r.failure("down_block_types", "mixes up and down blocks") }
        layersPerBlock = try r.size("layers_per_block", default: 2)
        normGroups = try r.size("norm_num_groups", default: 32)
        normEpsilon = try r.double("norm_eps", default: 1e-5)
        crossAttentionDim = try r.size("cross_attention_dim", default: 1280)
        if r.has("num_attention_heads") {
            heads = try r.sizes("num_attention_heads", count: n)
        } else {
            heads = try r.sizes("attention_head_dim", count: n, default: [8])
        }
        transformerLayers = try r.sizes("transformer_layers_per_block", count: n, default: [1])
        useLinearProjection = try r.bool("use_linear_projection", default: false)
        upcastAttention = try r.bool("upcast_attention", default: false)
        flipSinToCos = try r.bool("flip_sin_to_cos", default: true)
        freqShift = try r.int("freq_shift", default: 0)
        guard freqShift >= 0, freqShift < blockOutChannels[0] / 2 else { throw r.failure("freq_shift", "must be in 0..<\(blockOutChannels[0] / 2)") }
        downsamplePadding = try r.int("downsample_padding", default: 1)
        guard (0...1).contains(downsamplePadding) else { throw r.failure("downsample_padding", "must be 0 or 1") }
        // The mid block's ResNets divide their output by this; SD 1.x/2.x use 1.
        let midScale = try r.double("mid_block_scale_factor", default: 1)
        guard midScale == 1 else { throw r.failure("mid_block_scale_factor", "\(midScale) is not supported (only 1)") }
        if r.has("time_cond_proj_dim") {
            timeConditionDim = try r.size("time_cond_proj_dim")
        } else {
            timeConditionDim = nil
        }
        if r.has("addition_embed_type") {
            let type = try r.string("addition_embed_type")
            guard type == "text_time" else {
                throw r.failure("addition_embed_type", "'\(type)' is not supported (SDXL's text_time is)")
            }
            textTime = (try r.size("addition_time_embed_dim"), try r.size("projection_class_embeddings_input_dim"))
        } else {
            textTime = nil
        }
        for key in ["class_embed_type", "encoder_hid_dim"] where r.has(key) {
            throw r.failure(key, "is set: this UNet family is not supported (Stable Diffusion 1.x, 2.x and XL only)")
        }
        if try r.bool("dual_cross_attention", default: false) { throw r.failure("dual_cross_attention", "is not supported") }
        if try r.bool("only_cross_attention", default: false) { throw r.failure("only_cross_attention", "is not supported") }
        let shift = try r.string("resnet_time_scale_shift", default: "default")
        guard shift == "default" else { throw r.failure("resnet_time_scale_shift", "'\(shift)' is not supported") }
        let mid = try r.string("mid_block_type", default: "UNetMidBlock2DCrossAttn")
        guard mid == "UNetMidBlock2DCrossAttn" else { throw r.failure("mid_block_type", "'\(mid)' is not supported") }
        let act = try r.string("act_fn", default: "silu")
        guard act == "silu" else { throw r.failure("act_fn", "'\(act)' is not supported") }
        for (i, channels) in blockOutChannels.enumerated() {
            guard channels % normGroups == 0 else { throw r.failure("norm_num_groups", "does not divide \(channels)") }
            guard channels % heads[i] == 0 else { throw r.failure("attention_head_dim", "\(heads[i]) heads do not divide \(channels) channels") }
        }
    }

    /// 9 input channels (latent, mask, masked-image latent) mark an inpainting UNet.
    public var isInpainting: Bool { inChannels == 2 * outChannels + 1 }
}
