import ChiselBase

/// diffusers' `AutoencoderTiny` config (TAESD), with its defaults.
public struct TinyAutoencoderConfig: Sendable, Equatable {
    public var inChannels: Int
    public var outChannels: Int
    public var encoderChannels: [Int]
    public var decoderChannels: [Int]
    public var encoderBlocks: [Int]
    public var decoderBlocks: [Int]
    public var latentChannels: Int
    public var scalingFactor: Double

    public init(reader r: ConfigReader) throws {
        inChannels = try r.size("in_channels", default: 3)
        outChannels = try r.size("out_channels", default: 3)
        encoderChannels = try r.sizes("encoder_block_out_channels", default: [64, 64, 64, 64])
        decoderChannels = try r.sizes("decoder_block_out_channels", default: [64, 64, 64, 64])
        encoderBlocks = try r.sizes("num_encoder_blocks", count: encoderChannels.count, default: [1, 3, 3, 3])
        decoderBlocks = try r.sizes("num_decoder_blocks", count: decoderChannels.count, default: [3, 3, 3, 1])
        latentChannels = try r.size("latent_channels", default: 4)
        scalingFactor = try r.double("scaling_factor", default: 1)
        for (key, expected) in [("act_fn", "relu"), ("upsample_fn", "nearest")] {
            let value = try r.string(key, default: expected)
            guard value == expected else { throw r.failure(key, "'\(value)' is not supported; TAESD uses \(expected)") }
        }
        let factor = try r.int("upsampling_scaling_factor", default: 2)
        guard factor == 2 else { throw r.failure("upsampling_scaling_factor", "\(factor) is not supported; TAESD uses 2") }
        if try r.double("shift_factor", default: 0) != 0 {
            throw r.failure("shift_factor", "is set: shifted latents (SD3/Flux VAEs) are not supported")
        }
        guard encoderChannels.count == decoderChannels.count, !encoderChannels.isEmpty else {
            throw r.failure("decoder_block_out_channels", "needs as many levels as encoder_block_out_channels")
        }
        // diffusers' EncoderTiny and DecoderTiny keep one width through their levels.
        for (key, widths) in [("encoder_block_out_channels", encoderChannels), ("decoder_block_out_channels", decoderChannels)]
        where Set(widths).count != 1 {
            throw r.failure(key, "\(widths) changes width between levels, which AutoencoderTiny cannot build")
        }
    }

    /// How much smaller the latent is than the image on each side: one stride-2 convolution per
    /// level after the first.
    public var downscale: Int { 1 << (encoderChannels.count - 1) }
}
