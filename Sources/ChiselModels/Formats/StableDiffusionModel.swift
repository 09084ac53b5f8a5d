import ChiselBase
import ChiselDiffusion
import ChiselTensor
import Foundation

/// A Stable Diffusion 1.x, 2.x or XL checkpoint, loaded: text encoder(s), VAE and UNet.
public final class StableDiffusionModel: Sendable {
    public let kind = "stable_diffusion"
    public let path: String
    public let family: Family
    /// SD's text encoder; SDXL's first (CLIP ViT-L), or a refiner's only one (OpenCLIP ViT-bigG).
    public let textEncoder: CLIPTextModel
    /// SDXL base's second text encoder (OpenCLIP ViT-bigG with projection), whose pooled
    /// projection conditions the UNet too.
    public let textEncoder2: CLIPTextModel?
    /// SDXL base's second tokenizer (`tokenizer_2/`, padding with `!`).
    public let tokenizer2: CLIPTokenizer?
    /// SDXL's pipeline settings: an empty negative prompt as zeros, and the refiner's aesthetic score.
    public let xl: XLSettings?
    /// The VAE edits encode and decode with: the checkpoint's `AutoencoderKL`, or the one the
    /// model entry's `vae` option names (another AutoencoderKL, or TAESD's AutoencoderTiny).
    public let vae: any LatentAutoencoder
    public let unet: UNet2DConditionModel
    public let predictionType: PredictionType
    /// The checkpoint's scheduler config (betas, spacing, prediction type); a scheduler chosen by
    /// name keeps it and changes only the class, as diffusers' `X.from_config` does.
    public let schedulerConfig: SchedulerConfig
    public let precision: Precision
    /// The folder's `tokenizer/`; single-file checkpoints carry none. With embeddings, the
    /// tokenizer with their tokens added (the bundled vocabulary's for single files).
    public let tokenizer: CLIPTokenizer?
    /// Textual-inversion embeddings whose tokens the tokenizer and text encoder carry.
    public let embeddings: [TextualInversion]
    /// The LoRAs merged into the weights, with their scales (for the infotext's `<lora:…>` and `Lora hashes`).
    public let loras: [LoRAApplication]
    /// The VAE file or folder used instead of the checkpoint's, if any.
    public let vaePath: String?

    public enum Family: String, Sendable {
        case sd1 = "Stable Diffusion 1.x"
        case sd2 = "Stable Diffusion 2.x"
        case sdxl = "Stable Diffusion XL"
        case sdxlRefiner = "Stable Diffusion XL refiner"

        public var isXL: Bool { self == .sdxl || self == .sdxlRefiner }
    }

    /// `model_index.json`'s SDXL settings.
    public struct XLSettings: Sendable, Equatable {
        /// An empty negative prompt is zeros (pooled too) rather than the encoding of "".
        public var forceZerosForEmptyPrompt: Bool
        /// The UNet takes an aesthetic score in place of the target size (the refiner).
        public var requiresAestheticsScore: Bool

        public init(forceZerosForEmptyPrompt: Bool, requiresAestheticsScore: Bool) {
            self.forceZerosForEmptyPrompt = forceZerosForEmptyPrompt
            self.requiresAestheticsScore = requiresAestheticsScore
        }
    }

    public var summary: String {
        "\(family.rawValue)\(unet.config.isInpainting ? " inpainting" : ""), \(predictionType.rawValue), \(precision.rawValue)"
    }

    init(path: String, family: Family, textEncoder: CLIPTextModel, vae: any LatentAutoencoder, unet: UNet2DConditionModel,
         predictionType: PredictionType, schedulerConfig: SchedulerConfig, precision: Precision,
         tokenizer: CLIPTokenizer? = nil, embeddings: [TextualInversion] = [], loras: [LoRAApplication] = [],
         vaePath: String? = nil, textEncoder2: CLIPTextModel? = nil, tokenizer2: CLIPTokenizer? = nil, xl: XLSettings? = nil) {
        self.textEncoder2 = textEncoder2
        self.tokenizer2 = tokenizer2
        self.xl = xl
        self.tokenizer = tokenizer
        self.embeddings = embeddings
        self.loras = loras
        self.vaePath = vaePath
        self.path = path
        self.family = family
        self.textEncoder = textEncoder
        self.vae = vae
        self.unet = unet
        self.predictionType = predictionType
        self.schedulerConfig = schedulerConfig
        self.precision = precision
    }

    /// The same networks with scheduler config keys replaced, as diffusers'
    /// `X.from_config(config, **overrides)` (e.g. `clip_sample: false`).
    public func overridingScheduler(_ overrides: SchedulerConfig) -> StableDiffusionModel {
        StableDiffusionModel(path: path, family: family, textEncoder: textEncoder, vae: vae, unet: unet,
                             predictionType: overrides.predictionType ?? predictionType,
                             schedulerConfig: schedulerConfig.overridden(by: overrides), precision: precision,
                             tokenizer: tokenizer, embeddings: embeddings, loras: loras, vaePath: vaePath,
                             textEncoder2: textEncoder2, tokenizer2: tokenizer2, xl: xl)
    }

    /// Opens a diffusers folder (with `model_index.json`) or a single-file checkpoint.
    /// `tokenizer` (and SDXL's `tokenizer2`) name tokenizer folders to use instead of the
    /// checkpoint's (single files carry none).
    public static func load(path: String, precision: Precision = .f32, variant: String? = nil,
                            hints: [String: JSONValue] = [:], tokenizer: String? = nil, tokenizer2: String? = nil,
                            loras: [LoRAApplication] = [], vae: String? = nil,
                            embeddings: [TextualInversion] = []) throws -> StableDiffusionModel {
        try load(StableDiffusionSource(path: path, hints: hints, variant: variant), precision: precision, tokenizer: tokenizer,
                 tokenizer2: tokenizer2, loras: loras, vae: vae, embeddings: embeddings)
    }

    /// Builds the networks from a checkpoint's components, with `loras` merged into the UNet's
    /// and the text encoder's weights as they load, and the VAE at `vae` (see `VAESource`), when
    /// given, in place of the checkpoint's, and `embeddings`' tokens added to the tokenizer and
    /// text encoder.
    public static func load(_ source: StableDiffusionSource, precision: Precision = .f32,
                            tokenizer tokenizerFolder: String? = nil, tokenizer2 tokenizer2Folder: String? = nil,
                            loras: [LoRAApplication] = [], vae vaePath: String? = nil,
                            embeddings: [TextualInversion] = []) throws -> StableDiffusionModel {
        _ = try source.pipelineClass()
        if let problem = try source.indexProblems().first { throw problem }
        let text = try source.textEncoder()
        let unet = try source.unet()
        guard unet.config.textTime != nil || unet.config.crossAttentionDim == text.config.hiddenSize else {
            throw ChiselError(.model, "the UNet's cross_attention_dim \(unet.config.crossAttentionDim) does not match the "
                              + "text encoder's hidden_size \(text.config.hiddenSize)", file: source.path)
        }
        let autoencoder: any LatentAutoencoder
        if let vaePath {
            autoencoder = try VAESource.load(path: vaePath, precision: precision)
            let own = try source.vae().config
            guard autoencoder.latentChannels == own.latentChannels, autoencoder.downscale == own.downscale else {
                throw ChiselError(.model, "this VAE makes \(autoencoder.latentChannels)-channel latents at 1/\(autoencoder.downscale) "
                                  + "scale; the checkpoint's UNet takes \(own.latentChannels) channels at 1/\(own.downscale)",
                                  file: vaePath)
            }
        } else {
            let vae = try source.vae()
            autoencoder = try AutoencoderKL(config: vae.config, weights: vae.weights, precision: precision)
        }
        let family = try source.family()
        let text2 = try source.textEncoder2()
        // A LoRA with layers for SDXL's second text encoder on a model that has none.
        if family != .sdxl && family != .sdxlRefiner, let sdxl = loras.first(where: { !$0.file.layers(of: .textEncoder2).isEmpty }) {
            throw ChiselError(.model, "has layers for a second text encoder (\(sdxl.file.layers(of: .textEncoder2).count)): "
                              + "an SDXL LoRA, not one for Stable Diffusion 1.x/2.x", file: sdxl.file.path)
        }
        if family.isXL {
            // The UNet attends to both encoders' hidden states side by side.
            let width = text.config.hiddenSize + (text2?.config.hiddenSize ?? 0)
            guard unet.config.crossAttentionDim == width else {
                throw ChiselError(.model, "the UNet's cross_attention_dim \(unet.config.crossAttentionDim) is not the text encoders' "
                                  + "hidden sizes together (\(width))", file: source.path)
            }
            if let single = embeddings.first(where: { $0.vectors2 == nil }) {
                throw ChiselError(.model, "an embedding for one text encoder; SDXL needs one with clip_l and clip_g vectors",
                                  file: single.path)
            }
        }
        // A refiner's only encoder is SDXL's second (lora_te2_ layers).
        var textEncoder = try CLIPTextModel(
            config: text.config,
            weights: try LoRAWeights.merging(loras, component: family == .sdxlRefiner ? .textEncoder2 : .textEncoder, into: text.weights,
                                             names: text.weights.names, networkName: "text encoder"),
            precision: precision)
        var tokenizer = try tokenizerFolder.map { try CLIPTokenizer(folder: $0) } ?? source.tokenizer()
        if !family.isXL, let xl = embeddings.first(where: { $0.vectors2 != nil }) {
            throw ChiselError(.model, "an SDXL embedding (clip_l and clip_g), not one for Stable Diffusion 1.x/2.x", file: xl.path)
        }
        // The first encoder takes clip_l (SD: the only vectors); a refiner's only encoder clip_g.
        let firstVectors: (TextualInversion) -> [[Float]] = { family == .sdxlRefiner ? ($0.vectors2 ?? $0.vectors) : $0.vectors }
        if !embeddings.isEmpty {
            // diffusers' load_textual_inversion: the tokens after the tokenizer's, their rows
            // appended to the text encoder's input embeddings.
            var extended = try tokenizer ?? CLIPTokenizer.bundled(family: family)
            guard extended.count == textEncoder.config.vocabSize else {
                throw ChiselError(.model, "the tokenizer gives \(extended.count) ids but the text encoder embeds "
                                  + "\(textEncoder.config.vocabSize): cannot add embedding tokens", file: source.path)
            }
            for embedding in embeddings {
                guard firstVectors(embedding).allSatisfy({ $0.count == text.config.hiddenSize }) else {
                    throw ChiselError(.model, "its vectors are \(embedding.vectors.first?.count ?? 0) wide; this model's text "
                                      + "encoder takes \(text.config.hiddenSize) (an embedding for another model?)",
                                      file: embedding.path)
                }
                do { extended = try extended.adding(tokens: embedding.tokens) } catch let error as ChiselError {
                    throw ChiselError(.model, error.message, file: embedding.path)
                }
            }
            textEncoder = try textEncoder.addingTokenEmbeddings(embeddings.flatMap(firstVectors))
            tokenizer = extended
        }
        // SDXL base's second encoder: its LoRA layers, and the embeddings' clip_g vectors under the same tokens.
        var second: (encoder: CLIPTextModel, tokenizer: CLIPTokenizer?)?
        if let text2 {
            var encoder = try CLIPTextModel(config: text2.config,
                                            weights: try LoRAWeights.merging(loras, component: .textEncoder2, into: text2.weights,
                                                                             names: text2.weights.names, networkName: "second text encoder"),
                                            precision: precision)
            var tokenizer2 = try tokenizer2Folder.map { try CLIPTokenizer(folder: $0) } ?? source.tokenizer2()
            if !embeddings.isEmpty {
                var extended = try tokenizer2 ?? CLIPTokenizer.bundled(family: .sdxlRefiner)
                for embedding in embeddings {
                    guard (embedding.vectors2 ?? []).allSatisfy({ $0.count == text2.config.hiddenSize }) else {
                        throw ChiselError(.model, "its clip_g vectors are \(embedding.vectors2?.first?.count ?? 0) wide; this model's "
                                          + "second text encoder takes \(text2.config.hiddenSize)", file: embedding.path)
                    }
                    do { extended = try extended.adding(tokens: embedding.tokens) } catch let error as ChiselError {
                        throw ChiselError(.model, error.message, file: embedding.path)
                    }
                }
                encoder = try encoder.addingTokenEmbeddings(embeddings.flatMap { $0.vectors2 ?? [] })
                tokenizer2 = extended
            }
            second = (encoder, tokenizer2)
        }
        return StableDiffusionModel(
            path: source.path, family: family,
            textEncoder: textEncoder,
            vae: autoencoder,
            unet: try UNet2DConditionModel(
                config: unet.config,
                weights: try LoRAWeights.merging(loras, component: .unet, into: unet.weights, names: unet.weights.names,
                                                 networkName: "UNet", original: { [layers = unet.config.layersPerBlock] module in
                                                     SingleFileCheckpoint.diffusersModule(forOriginal: module, layers: layers)
                                                 }),
                precision: precision),
            predictionType: try source.predictionType() ?? .epsilon,
            schedulerConfig: try source.schedulerConfig(family: family), precision: precision,
            tokenizer: tokenizer, embeddings: embeddings, loras: loras, vaePath: vaePath,
            textEncoder2: second?.encoder, tokenizer2: second?.tokenizer,
            xl: family.isXL ? {
                let settings = source.xlSettings(family: family)
                return XLSettings(forceZerosForEmptyPrompt: settings.forceZerosForEmptyPrompt,
                                  requiresAestheticsScore: settings.requiresAestheticsScore)
            }() : nil)
    }
}

extension StableDiffusionModel.Family {
    /// SD 2.x's OpenCLIP text encoder uses GELU where SD 1.x's CLIP uses quick GELU.
    public init(textEncoder config: CLIPTextConfig) {
        self = config.activation == .gelu ? .sd2 : .sd1
    }
}
