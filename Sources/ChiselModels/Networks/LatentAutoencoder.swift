import ChiselTensor

/// What an encoder gives for an image: a distribution to sample (AutoencoderKL) or the latents
/// themselves (AutoencoderTiny, whose pipelines take `.latents` and draw nothing).
public enum LatentEncoding: Sendable {
    case distribution(mean: Tensor, std: Tensor)
    case latents(Tensor)
}

/// A VAE a Stable Diffusion model can encode and decode with: the checkpoint's own
/// `AutoencoderKL`, another one, or TAESD's `AutoencoderTiny`.
public protocol LatentAutoencoder: AnyObject, Sendable {
    /// The diffusers class, for summaries.
    var className: String { get }
    var downscale: Int { get }
    var latentChannels: Int { get }
    /// Latents for the UNet are the encoder's times this.
    var scalingFactor: Double { get }
    /// The encoding of `image` (N×H×W×3 in [-1, 1]), unscaled.
    func encodeLatents(_ image: Tensor) throws -> LatentEncoding
    /// The image (N×H×W×3, nominally [-1, 1]) for an unscaled latent.
    func decode(_ latent: Tensor) throws -> Tensor
}

extension AutoencoderKL: LatentAutoencoder {
    public var className: String { "AutoencoderKL" }
    public var downscale: Int { config.downscale }
    public var latentChannels: Int { config.latentChannels }
    public var scalingFactor: Double { config.scalingFactor }

    public func encodeLatents(_ image: Tensor) throws -> LatentEncoding {
        let (mean, std) = try encode(image)
        return .distribution(mean: mean, std: std)
    }
}
