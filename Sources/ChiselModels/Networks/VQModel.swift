import ChiselBase
import ChiselTensor
import Foundation

/// diffusers' `VQModel` as aMUSEd uses it: the VAE encoder without `double_z`, `quant_conv`,
/// nearest-codebook quantisation to token ids, and decoding of ids through the codebook,
/// `post_quant_conv` and the VAE decoder. Images are in [0, 1] (aMUSEd does not map them to
/// [-1, 1]).
public final class VQModel: Sendable {
    public let config: VQModelConfig
    let encoder: VAEEncoder
    let quantConv: Linear
    /// `quantize.embedding.weight`, codebookSize × embedDim.
    public let codebook: Codebook
    let postQuantConv: Linear
    let decoder: VAEDecoder

    /// 2^(levels − 1): how many pixels one token covers on each side.
    public var scaleFactor: Int { config.downscale }
    public var codebookSize: Int { config.codebookSize }

    /// Weights named as diffusers saves them (`encoder.…`, `quant_conv`, `quantize.embedding.weight`,
    /// `post_quant_conv`, `decoder.…`).
    public init(config: VQModelConfig, weights: any WeightStore, precision: Precision = .f32) throws {
        self.config = config
        let latent = config.latentChannels, d = config.embedDim
        encoder = try VAEEncoder(weights.scoped("encoder."), inChannels: config.inChannels,
                                 blockOutChannels: config.blockOutChannels, layersPerBlock: config.layersPerBlock,
                                 groups: config.normGroups, outChannels: latent,
                                 midBlockAttention: config.midBlockAttention, precision: precision)
        quantConv = try Load.linear(weights, "quant_conv", in: latent, out: d, precision: precision)
        codebook = try Codebook(entries: weights.floats("quantize.embedding.weight", shape: [config.codebookSize, d]),
                                count: config.codebookSize, width: d)
        postQuantConv = try Load.linear(weights, "post_quant_conv", in: d, out: latent, precision: precision)
        decoder = try VAEDecoder(weights.scoped("decoder."), latentChannels: latent,
                                 blockOutChannels: config.blockOutChannels, layersPerBlock: config.layersPerBlock,
                                 groups: config.normGroups, outChannels: config.outChannels,
                                 midBlockAttention: config.midBlockAttention, precision: precision)
        for conv in encoder.convolutions + decoder.convolutions { conv.makeWinogradWeightsPerRun() }
    }

    /// `VQModel.encode(image).latents`: `image` is N×H×W×inChannels in [0, 1]; the latents are
    /// N×h×w×embedDim, after `quant_conv`.
    public func encode(_ image: Tensor) throws -> Tensor {
        guard image.rank == 4, image.shape[3] == config.inChannels, image.shape[1] > 0, image.shape[2] > 0 else {
            throw ChiselError(.invalidParameter, "VQ encoder expects N×H×W×\(config.inChannels) images, got \(image.shape)")
        }
        defer { Allocator.releaseWorkBuffers() }
        return try quantConv(encoder(image))
    }

    /// The token id of every latent position, row-major (n, y, x): the nearest codebook entry by
    /// `torch.cdist` as `VectorQuantizer.forward` calls it, ties to the lowest index. Above 25
    /// positions or 25 entries that is torch's matmul form, `d² = [−2z, ‖z‖², 1]·[e, 1, ‖e‖²]ᵀ`
    /// in one product, clamped at 0, then the square root; below both, `√Σ(z − e)²` per pair.
    public func quantize(_ latents: Tensor) throws -> [Int32] {
        guard latents.rank == 4, latents.lastDimension == config.embedDim else {
            throw ChiselError(.invalidParameter,
                              "VQ quantisation expects N×h×w×\(config.embedDim) latents, got \(latents.shape)")
        }
        return try codebook.nearest(latents)
    }

    /// `VQModel.decode(ids, force_not_quantize=True, shape=…).sample`: the N×H×W×outChannels
    /// image for `batch` grids of height × width token ids (row-major), not clipped.
    public func decode(ids: [Int32], batch: Int, height: Int, width: Int) throws -> Tensor {
        guard batch > 0, height > 0, width > 0, ids.count == batch * height * width else {
            throw ChiselError(.invalidParameter, "\(ids.count) token ids do not fill \(batch) grids of \(height)×\(width)")
        }
        let quantized = try codebook.lookup(ids, shape: [batch, height, width, config.embedDim])
        defer { Allocator.releaseWorkBuffers() }
        return try decoder(postQuantConv(quantized))
    }
}
