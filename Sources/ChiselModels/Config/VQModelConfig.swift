import ChiselBase

/// diffusers' `VQModel` config, with its defaults (aMUSEd's VQ-GAN). What Chisel cannot run is
/// refused with the file and key: spatial norms (MoVQ), ids that are not codebook indices
/// (`lookup_from_codebook` false) and a codebook width other than the latent channels, which
/// diffusers' `get_codebook_entry` cannot reshape for decoding either.
public struct VQModelConfig: Sendable, Equatable {
    public var inChannels: Int
    public var outChannels: Int
    public var blockOutChannels: [Int]
    public var layersPerBlock: Int
    public var latentChannels: Int
    public var sampleSize: Int
    public var codebookSize: Int
    public var normGroups: Int
    /// The codebook width (`vq_embed_dim`, the latent channels when null).
    public var embedDim: Int
    public var scalingFactor: Double
    public var midBlockAttention: Bool
    public var forceUpcast: Bool

    public init(reader r: ConfigReader) throws {
        inChannels = try r.size("in_channels", default: 3)
        outChannels = try r.size("out_channels", default: 3)
        blockOutChannels = try r.sizes("block_out_channels", default: [64])
        layersPerBlock = try r.size("layers_per_block", default: 1)
        latentChannels = try r.size("latent_channels", default: 3)
        sampleSize = try r.size("sample_size", default: 32)
        codebookSize = try r.size("num_vq_embeddings", default: 256)
        normGroups = try r.size("norm_num_groups", default: 32)
        embedDim = r.has("vq_embed_dim") ? try r.size("vq_embed_dim") : latentChannels
        scalingFactor = try r.double("scaling_factor", default: 0.18215)
        midBlockAttention = try r.bool("mid_block_add_attention", default: true)
        forceUpcast = try r.bool("force_upcast", default: false)
        let norm = try r.string("norm_type", default: "group")
        guard norm == "group" else { throw r.failure("norm_type", "'\(norm)' is not supported (only \"group\")") }
        guard try r.bool("lookup_from_codebook", default: false) else {
            throw r.failure("lookup_from_codebook", "is false: Chisel decodes token ids through the codebook, as aMUSEd does")
        }
        guard embedDim == latentChannels else {
            throw r.failure("vq_embed_dim", "\(embedDim) differs from latent_channels \(latentChannels): codebook entries "
                            + "cannot be decoded")
        }
        try r.checkAutoencoderBlocks(blockOutChannels: blockOutChannels, normGroups: normGroups)
    }

    /// How much smaller the token grid is than the image on each side: 2^(levels − 1).
    public var downscale: Int { 1 << (blockOutChannels.count - 1) }
}
