import ChiselCore
import ChiselDiffusion
import ChiselTensor
import Foundation

/// A Stable Diffusion 1.x or 2.x checkpoint, loaded: text encoder, VAE and UNet.
public final class StableDiffusionModel: Sendable {
    public let kind = "stable_diffusion"
    public let path: String
    public let family: Family
    public let textEncoder: CLIPTextModel
    public let vae: AutoencoderKL
    public let unet: UNet2DConditionModel
    public let predictionType: PredictionType
    public let precision: Precision
    /// The folder's `tokenizer/`; single-file checkpoints carry none.
    public let tokenizer: CLIPTokenizer?

    public enum Family: String, Sendable {
        case sd1 = "Stable Diffusion 1.x"
        case sd2 = "Stable Diffusion 2.x"
    }

    public var summary: String {
        "\(family.rawValue)\(unet.config.isInpainting ? " inpainting" : ""), \(predictionType.rawValue), \(precision.rawValue)"
    }

    init(path: String, family: Family, textEncoder: CLIPTextModel, vae: AutoencoderKL, unet: UNet2DConditionModel,
         predictionType: PredictionType, precision: Precision, tokenizer: CLIPTokenizer? = nil) {
        self.tokenizer = tokenizer
        self.path = path
        self.family = family
        self.textEncoder = textEncoder
        self.vae = vae
        self.unet = unet
        self.predictionType = predictionType
        self.precision = precision
    }

    /// Opens a diffusers folder (with `model_index.json`) or a single-file checkpoint.
    public static func load(path: String, precision: Precision = .f32, variant: String? = nil) throws -> StableDiffusionModel {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw ChiselError(.io, "no such file or folder", file: path)
        }
        if isFolder.boolValue { return try loadFolder(path, precision: precision, variant: variant) }
        return try SingleFileCheckpoint(path: path).model(precision: precision)
    }

    static func loadFolder(_ folder: String, precision: Precision, variant: String?) throws -> StableDiffusionModel {
        let index = try ConfigReader(file: folder + "/model_index.json")
        for component in ["unet", "vae", "text_encoder"] where !index.has(component) {
            throw index.failure(component, "is missing: not a Stable Diffusion pipeline folder")
        }
        let textFolder = try DiffusersComponent(folder: folder + "/text_encoder", base: "model", variant: variant,
                                                rename: { $0.hasPrefix("text_model.") ? $0 : "text_model." + $0 })
        let textConfig = try CLIPTextConfig(reader: textFolder.config)
        let vaeFolder = try DiffusersComponent(folder: folder + "/vae", base: "diffusion_pytorch_model", variant: variant)
        let unetFolder = try DiffusersComponent(folder: folder + "/unet", base: "diffusion_pytorch_model", variant: variant)
        let unetConfig = try UNetConfig(reader: unetFolder.config)
        var prediction = PredictionType.epsilon
        let schedulerConfig = folder + "/scheduler/scheduler_config.json"
        if FileManager.default.fileExists(atPath: schedulerConfig) {
            let reader = try ConfigReader(file: schedulerConfig)
            let name = try reader.string("prediction_type", default: "epsilon")
            guard let type = PredictionType(rawValue: name) else {
                throw reader.failure("prediction_type", "'\(name)' is not epsilon, v_prediction or sample")
            }
            prediction = type
        }
        guard unetConfig.crossAttentionDim == textConfig.hiddenSize else {
            throw ChiselError(.model, "the UNet's cross_attention_dim \(unetConfig.crossAttentionDim) does not match the "
                              + "text encoder's hidden_size \(textConfig.hiddenSize)", file: folder)
        }
        return StableDiffusionModel(
            path: folder, family: textConfig.activation == "gelu" ? .sd2 : .sd1,
            textEncoder: try CLIPTextModel(config: textConfig, weights: textFolder.weights, precision: precision),
            vae: try AutoencoderKL(config: VAEConfig(reader: vaeFolder.config), weights: vaeFolder.weights, precision: precision),
            unet: try UNet2DConditionModel(config: unetConfig, weights: unetFolder.weights, precision: precision),
            predictionType: prediction, precision: precision,
            tokenizer: FileManager.default.fileExists(atPath: folder + "/tokenizer")
                ? try CLIPTokenizer(folder: folder + "/tokenizer") : nil)
    }
}
