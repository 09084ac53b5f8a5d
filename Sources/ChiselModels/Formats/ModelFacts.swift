import ChiselBase
import ChiselDiffusion
import Foundation

/// What a Stable Diffusion checkpoint is, read from its configs (a folder's config.json files,
/// a single file's tensor shapes) without building a network: the one place the stages, their
/// `validate`, the commands and `chisel model inspect` learn it from.
public struct StableDiffusionFacts: Sendable, Equatable {
    public var family: StableDiffusionModel.Family
    /// The UNet's input channels: the latent's, or twice it plus one for an inpainting UNet.
    public var unetChannels: Int
    /// The VAE's latent channels.
    public var latentChannels: Int
    /// The width of the text context the UNet attends to.
    public var contextWidth: Int
    /// How many pixels a latent cell covers along a side; image sides must be multiples of it.
    public var vaeDownscale: Int
    /// The diffusers class of the VAE the model encodes and decodes with: `AutoencoderKL`, or
    /// `AutoencoderTiny` (TAESD) when the model's `vae` option names one.
    public var vaeClass: String

    /// A 9-channel inpainting UNet: the latent, the mask and the masked image's latent
    /// (`UNetConfig.isInpainting` decides).
    public var isInpainting: Bool
    /// The UNet's config (what a ControlNet must match).
    public var unet: UNetConfig
    /// The scheduler config the checkpoint ships (or the family's, for a single file), which
    /// `scheduler: auto` runs.
    public var scheduler: SchedulerConfig

    /// Whether the VAE can run over tiles (diffusers' `enable_tiling` is AutoencoderKL's).
    public var vaeTiles: Bool { vaeClass == "AutoencoderKL" }

    public init(source: StableDiffusionSource, vae: String? = nil) throws {
        let text = try source.textEncoder().config
        let unet = try source.unet().config
        let kl = try source.vae().config
        _ = text
        family = try source.family()
        unetChannels = unet.inChannels
        self.unet = unet
        isInpainting = unet.isInpainting
        latentChannels = kl.latentChannels
        contextWidth = unet.crossAttentionDim
        vaeDownscale = kl.downscale
        vaeClass = vae.flatMap(VAESource.className(path:)) ?? "AutoencoderKL"
        scheduler = try source.schedulerConfig(family: family)
    }

    /// A model already built (random weights, benchmarks).
    public init(model: StableDiffusionModel) {
        family = model.family
        unetChannels = model.unet.config.inChannels
        unet = model.unet.config
        isInpainting = model.unet.config.isInpainting
        scheduler = model.schedulerConfig
        latentChannels = model.vae.latentChannels
        contextWidth = model.unet.config.crossAttentionDim
        vaeDownscale = model.vae.downscale
        vaeClass = model.vae.className
    }

    /// The checkpoint at `path` (a diffusers folder or a single file), with the `hints` a single
    /// file's tensors cannot tell and an optional replacement VAE.
    public init(path: String, hints: [String: JSONValue] = [:], vae: String? = nil) throws {
        try self.init(source: StableDiffusionSource(path: path, hints: hints), vae: vae)
    }
}

/// What an aMUSEd folder is, read from its configs: the sizes its images must have.
public struct AmusedFacts: Sendable, Equatable {
    /// How many pixels a VQ token covers along a side.
    public var vqDownscale: Int
    /// What an image side must be a multiple of: the token size, twice it when the transformer
    /// halves its token grid.
    public var sizeMultiple: Int

    /// A model already built (random weights, benchmarks).
    public init(model: AmusedModel) {
        vqDownscale = model.vq.scaleFactor
        sizeMultiple = model.transformer.config.downsample ? 2 * vqDownscale : vqDownscale
    }

    public init(folder: String) throws {
        let vq = try ConfigReader(file: folder + "/vqvae/config.json")
        let levels = try vq.sizes("block_out_channels", default: [64]).count
        vqDownscale = 1 << (levels - 1)
        let transformer = try ConfigReader(file: folder + "/transformer/config.json")
        sizeMultiple = try transformer.bool("downsample", default: false) ? 2 * vqDownscale : vqDownscale
    }
}

/// The facts of whichever family a model location holds.
public enum ModelFacts: Sendable, Equatable {
    case stableDiffusion(StableDiffusionFacts)
    case amused(AmusedFacts)
    case controlNet(ControlNetFacts)
    case t2iAdapter(T2IAdapterFacts)

    /// The model at `path`; `hints` and `vae` as a graph's model entry gives them.
    public init(path: String, hints: [String: JSONValue] = [:], vae: String? = nil) throws {
        if AmusedModel.isFolder(path) {
            self = .amused(try AmusedFacts(folder: path))
        } else if ControlNetSource.recognizes(path: path) {
            self = .controlNet(try ControlNetFacts(path: path, hints: hints))
        } else if T2IAdapterSource.recognizes(path: path) {
            self = .t2iAdapter(try T2IAdapterFacts(path: path))
        } else {
            self = .stableDiffusion(try StableDiffusionFacts(path: path, hints: hints, vae: vae))
        }
    }

    public var stableDiffusion: StableDiffusionFacts? {
        if case .stableDiffusion(let facts) = self { return facts }
        return nil
    }

    public var amused: AmusedFacts? {
        if case .amused(let facts) = self { return facts }
        return nil
    }

    public var controlNet: ControlNetFacts? {
        if case .controlNet(let facts) = self { return facts }
        return nil
    }

    /// What an image side must be a multiple of for the model to encode it.
    public var sizeMultiple: Int {
        switch self {
        case .stableDiffusion(let facts): facts.vaeDownscale
        case .amused(let facts): facts.sizeMultiple
        case .controlNet(let facts): facts.config.downscale
        case .t2iAdapter(let facts): facts.config.features.map(\.downscale).max() ?? 1
        }
    }
}
