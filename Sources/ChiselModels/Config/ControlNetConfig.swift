import ChiselBase

/// diffusers' `ControlNetModel` config: the UNet encoder it copies (`UNetConfig`, read without
/// up blocks) and the control image's embedding.
public struct ControlNetConfig: Sendable, Equatable {
    public var unet: UNetConfig
    /// Channels of the control image (`conditioning_channels`, 3 for an RGB map).
    public var conditioningChannels: Int
    /// Widths of the control image's embedding (`conditioning_embedding_out_channels`); each
    /// step after the first halves the image, so the embedding reaches latent size after
    /// count − 1 halvings.
    public var embeddingChannels: [Int]
    /// `controlnet_conditioning_channel_order` "bgr": the control image's channels are reversed.
    public var bgr: Bool
    /// `global_pool_conditions`: the residuals are averaged over the image (the shuffle
    /// ControlNet), and guess mode is implied.
    public var globalPool: Bool

    public init(reader r: ConfigReader) throws {
        unet = try UNetConfig(reader: r, encoderOnly: true)
        conditioningChannels = try r.size("conditioning_channels", default: 3)
        embeddingChannels = try r.sizes("conditioning_embedding_out_channels", default: [16, 32, 96, 256])
        guard !embeddingChannels.isEmpty else {
            throw r.failure("conditioning_embedding_out_channels", "needs at least one entry")
        }
        let order = try r.string("controlnet_conditioning_channel_order", default: "rgb")
        guard order == "rgb" || order == "bgr" else {
            throw r.failure("controlnet_conditioning_channel_order", "'\(order)' is not rgb or bgr")
        }
        bgr = order == "bgr"
        globalPool = try r.bool("global_pool_conditions", default: false)
        if r.has("_class_name") {
            let name = try r.string("_class_name")
            guard name == "ControlNetModel" else {
                throw r.failure("_class_name", "is '\(name)'; Chisel reads ControlNetModel (ControlNet-XS, Union and SD3 ControlNets are other networks)")
            }
        }
    }

    /// How many pixels of the control image one latent cell covers along a side.
    public var downscale: Int { 1 << (embeddingChannels.count - 1) }
}
