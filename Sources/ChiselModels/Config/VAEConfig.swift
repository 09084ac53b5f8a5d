import ChiselBase

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
    /// The image side the VAE was configured for; tiled encoding and decoding use it as the tile
    /// size (diffusers' `tile_sample_min_size`).
    public var sampleSize: Int

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
        sampleSize = try r.intOrList("sample_size", count: 2, default: 32)[0]
        guard sampleSize >= 1 << (blockOutChannels.count - 1) else {
            throw r.failure("sample_size", "\(sampleSize) is smaller than the VAE's downscale")
        }
        try r.checkAutoencoderBlocks(blockOutChannels: blockOutChannels, normGroups: normGroups)
    }

    /// How much smaller the latent is than the image on each side.
    public var downscale: Int { 1 << (blockOutChannels.count - 1) }
}
