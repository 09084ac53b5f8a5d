import ChiselCore

/// diffusers' `AutoencoderKL` config, with its defaults.
public struct VAEConfig: Sendable, Equatable {
    public var inChannels: Int
    public var outChannels: Int
    public var blockOutChannels: [Int]
    public var layersPerBlock: Int
    public var latentChannels: Int
    public var normGroups: Int
    public var scalingFactor: Double
    public var useQuantConv: Bool
    public var usePostQuantConv: Bool
    public var midBlockAttention: Bool

    public init(reader r: ConfigReader) throws {
        inChannels = try r.size("in_channels", default: 3)
        outChannels = try r.size("out_channels", default: 3)
        blockOutChannels = try r.sizes("block_out_channels", default: [64])
        layersPerBlock = try r.size("layers_per_block", default: 1)
        latentChannels = try r.size("latent_channels", default: 4)
        normGroups = try r.size("norm_num_groups", default: 32)
        scalingFactor = try r.double("scaling_factor", default: 0.18215)
        // SD3 and Flux VAEs shift latents before scaling; SD 1.x/2.x VAEs have none.
        if r.has("shift_factor") { throw r.failure("shift_factor", "is set: shifted latents (SD3/Flux VAEs) are not supported") }
        useQuantConv = try r.bool("use_quant_conv", default: true)
        usePostQuantConv = try r.bool("use_post_quant_conv", default: true)
        midBlockAttention = try r.bool("mid_block_add_attention", default: true)
        let down = try r.strings("down_block_types", default: ["DownEncoderBlock2D"])
        let up = try r.strings("up_block_types", default: ["UpDecoderBlock2D"])
        guard down.count == blockOutChannels.count, down.allSatisfy({ $0 == "DownEncoderBlock2D" }) else {
            throw r.failure("down_block_types", "must be one DownEncoderBlock2D per block_out_channels entry")
        }
        guard up.count == blockOutChannels.count, up.allSatisfy({ $0 == "UpDecoderBlock2D" }) else {
            throw r.failure("up_block_types", "must be one UpDecoderBlock2D per block_out_channels entry")
        }
        guard blockOutChannels.allSatisfy({ $0 % normGroups == 0 }) else {
            throw r.failure("norm_num_groups", "\(normGroups) does not divide every block_out_channels entry")
        }
        let act = try r.string("act_fn", default: "silu")
        guard act == "silu" else { throw r.failure("act_fn", "'\(act)' is not supported") }
    }

    /// How much smaller the latent is than the image on each side.
    public var downscale: Int { 1 << (blockOutChannels.count - 1) }
}
