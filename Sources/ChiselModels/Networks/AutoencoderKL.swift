import ChiselBase
import ChiselTensor
import Foundation

/// diffusers' `AutoencoderKL`: the Stable Diffusion VAE.
public final class AutoencoderKL: Sendable {
    public let config: VAEConfig
    let encoder: VAEEncoder
    let quantConv: Linear?
    let postQuantConv: Linear?
    let decoder: VAEDecoder

    /// Weights named as diffusers saves them (`encoder.…`, `decoder.…`, `quant_conv`, …).
    public init(config: VAEConfig, weights: any WeightStore, precision: Precision = .f32) throws {
        self.config = config
        let latent = config.latentChannels
        encoder = try VAEEncoder(weights.scoped("encoder."), inChannels: config.inChannels,
                                 blockOutChannels: config.blockOutChannels, layersPerBlock: config.layersPerBlock,
                                 groups: config.normGroups, outChannels: 2 * latent,
                                 midBlockAttention: config.midBlockAttention, precision: precision)
        quantConv = config.useQuantConv
            ? try Load.linear(weights, "quant_conv", in: 2 * latent, out: 2 * latent, precision: precision) : nil
        postQuantConv = config.usePostQuantConv
            ? try Load.linear(weights, "post_quant_conv", in: latent, out: latent, precision: precision) : nil
        decoder = try VAEDecoder(weights.scoped("decoder."), latentChannels: latent,
                                 blockOutChannels: config.blockOutChannels, layersPerBlock: config.layersPerBlock,
                                 groups: config.normGroups, outChannels: config.outChannels,
                                 midBlockAttention: config.midBlockAttention, precision: precision)
        for conv in encoder.convolutions + decoder.convolutions { conv.makeWinogradWeightsPerRun() }
    }

    /// The latent distribution of `image` (N×H×W×3 in [-1, 1]): its mean and standard deviation,
    /// N×h×w×latentChannels each, unscaled (multiply by `config.scalingFactor` for the UNet).
    public func encode(_ image: Tensor) throws -> (mean: Tensor, std: Tensor) {
        defer { Allocator.releaseWorkBuffers() }
        var h = try encoder(image)
        if let quantConv { h = try quantConv(h) }
        return splitMoments(h)
    }

    /// DiagonalGaussianDistribution of the encoder's moments (N×h×w×2·latent): mean and std.
    func splitMoments(_ h: Tensor) -> (mean: Tensor, std: Tensor) {
        let latent = config.latentChannels
        var mean = Tensor(zeros: Array(h.shape.dropLast()) + [latent])
        var std = mean
        for row in 0..<h.rows {
            for c in 0..<latent {
                mean.data[row * latent + c] = h.data[row * 2 * latent + c]
                // DiagonalGaussianDistribution: log-variance clamped to [-30, 20].
                let logVariance = min(20, max(-30, h.data[row * 2 * latent + latent + c]))
                std.data[row * latent + c] = expf(0.5 * logVariance)
            }
        }
        return (mean, std)
    }

    /// The image (N×H×W×3, nominally [-1, 1]) for an unscaled latent.
    public func decode(_ latent: Tensor) throws -> Tensor {
        defer { Allocator.releaseWorkBuffers() }
        var h = latent
        if let postQuantConv { h = try postQuantConv(h) }
        return try decoder(h)
    }
}
