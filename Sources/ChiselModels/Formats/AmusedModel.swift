import ChiselBase
import ChiselDiffusion
import ChiselTensor
import Foundation

/// An aMUSEd checkpoint, loaded from its diffusers folder: `vqvae/` (VQModel), `text_encoder/`
/// (CLIPTextModelWithProjection), `tokenizer/`, `transformer/` (UVit2DModel) and `scheduler/`
/// (AmusedScheduler's mask token id and masking schedule).
public final class AmusedModel: Sendable {
    public let kind = "amused"
    public let path: String
    public let vq: VQModel
    public let textEncoder: CLIPTextModel
    public let tokenizer: CLIPTokenizer
    public let transformer: UVit2DModel
    /// The id the transformer reads as "masked" (`mask_token_id`, past the codebook).
    public let maskTokenID: Int
    /// The scheduler config's masking schedule (text-to-image and img2img; inpainting uses the
    /// linear one, as diffusers' inpainting pipeline sets it).
    public let schedule: MaskGITScheduler.Schedule
    public let precision: Precision

    public var summary: String {
        let grid = transformer.config.sampleSize
        return "aMUSEd, \(grid)×\(grid) tokens (\(grid * vq.scaleFactor)² pixels), codebook \(transformer.config.codebookSize), "
            + precision.rawValue
    }

    /// The pixel size the model was trained at (`sample_size × vae_scale_factor`), the
    /// text-to-image pipeline's default.
    public var defaultImageSide: Int { transformer.config.sampleSize * vq.scaleFactor }

    /// The ids a prediction can produce: the transformer's logits cover its codebook.
    public var codebookSize: Int { transformer.config.codebookSize }

    init(path: String, vq: VQModel, textEncoder: CLIPTextModel, tokenizer: CLIPTokenizer, transformer: UVit2DModel,
         maskTokenID: Int, schedule: MaskGITScheduler.Schedule, precision: Precision) {
        self.path = path
        self.vq = vq
        self.textEncoder = textEncoder
        self.tokenizer = tokenizer
        self.transformer = transformer
        self.maskTokenID = maskTokenID
        self.schedule = schedule
        self.precision = precision
    }

    /// Whether `path` is an aMUSEd diffusers folder: its `model_index.json` names an Amused
    /// pipeline, or it has the `vqvae/` and `transformer/` components.
    public static func isFolder(_ path: String) -> Bool {
        let manager = FileManager.default
        guard manager.fileExists(atPath: path + "/model_index.json") else { return false }
        if let index = try? ConfigReader(file: path + "/model_index.json"),
           let name = index.json["_class_name"]?.stringValue {
            return name.hasPrefix("Amused")
        }
        return manager.fileExists(atPath: path + "/vqvae") && manager.fileExists(atPath: path + "/transformer")
    }

    /// Opens an aMUSEd diffusers folder; a missing component or file is an error naming it.
    public static func load(path: String, precision: Precision = .f32, variant: String? = nil) throws -> AmusedModel {
        let manager = FileManager.default
        var isFolder: ObjCBool = false
        guard manager.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue else {
            throw ChiselError(.model, "an aMUSEd model is a diffusers folder; this is not a folder", file: path)
        }
        guard manager.fileExists(atPath: path + "/model_index.json") else {
            throw ChiselError(.model, "the aMUSEd folder has no model_index.json", file: path + "/model_index.json")
        }
        for component in ["vqvae", "text_encoder", "tokenizer", "transformer", "scheduler"] {
            guard manager.fileExists(atPath: "\(path)/\(component)", isDirectory: &isFolder), isFolder.boolValue else {
                throw ChiselError(.model, "the aMUSEd folder is missing its \(component)/ component", file: "\(path)/\(component)")
            }
        }
        let vqFolder = try DiffusersComponent(folder: path + "/vqvae", base: "diffusion_pytorch_model", variant: variant)
        let vq = try VQModel(config: VQModelConfig(reader: vqFolder.config), weights: vqFolder.weights, precision: precision)
        let textFolder = try DiffusersComponent(folder: path + "/text_encoder", base: "model", variant: variant)
        let textConfig = try CLIPTextConfig(reader: textFolder.config)
        let textEncoder = try CLIPTextModel(config: textConfig, weights: textFolder.weights, precision: precision)
        let tokenizer = try CLIPTokenizer(folder: path + "/tokenizer")
        let transformerFolder = try DiffusersComponent(folder: path + "/transformer", base: "diffusion_pytorch_model",
                                                       variant: variant)
        let transformerConfig = try UVit2DConfig(reader: transformerFolder.config)
        let transformer = try UVit2DModel(config: transformerConfig, weights: transformerFolder.weights,
                                          precision: precision)

        let schedulerFile = path + "/scheduler/scheduler_config.json"
        let scheduler = try ConfigReader(file: schedulerFile)
        let maskTokenID = try scheduler.int("mask_token_id")
        let scheduleName = try scheduler.string("masking_schedule", default: "cosine")
        guard let schedule = MaskGITScheduler.Schedule(rawValue: scheduleName) else {
            throw scheduler.failure("masking_schedule", "must be cosine or linear, got '\(scheduleName)'")
        }
        // The components must fit together: the transformer reads the text encoder's outputs and
        // embeds the mask id; the VQ model decodes every id the transformer can predict.
        let transformerConfigFile = path + "/transformer/config.json"
        guard (transformerConfig.codebookSize..<transformerConfig.vocabSize).contains(maskTokenID) else {
            throw ChiselError(.model, "mask_token_id \(maskTokenID) must lie past the transformer's codebook of "
                              + "\(transformerConfig.codebookSize) and inside its vocabulary of \(transformerConfig.vocabSize)",
                              file: schedulerFile)
        }
        guard transformerConfig.codebookSize <= vq.codebookSize else {
            throw ChiselError(.model, "the transformer predicts \(transformerConfig.codebookSize) codes but the VQ model "
                              + "has \(vq.codebookSize): they do not belong together", file: transformerConfigFile)
        }
        guard transformerConfig.encoderHiddenSize == textConfig.hiddenSize else {
            throw ChiselError(.model, "encoder_hidden_size \(transformerConfig.encoderHiddenSize) does not match the text "
                              + "encoder's hidden_size \(textConfig.hiddenSize)", file: transformerConfigFile)
        }
        guard transformerConfig.condEmbedDim == textConfig.projectionDim else {
            throw ChiselError(.model, "cond_embed_dim \(transformerConfig.condEmbedDim) does not match the text "
                              + "encoder's projection_dim \(textConfig.projectionDim)", file: transformerConfigFile)
        }
        return AmusedModel(path: path, vq: vq, textEncoder: textEncoder, tokenizer: tokenizer, transformer: transformer,
                           maskTokenID: maskTokenID, schedule: schedule, precision: precision)
    }

    /// What the aMUSEd pipelines' `encode_prompt` gives the transformer for `prompts`: the text
    /// encoder's penultimate hidden states (batch × 77 × hidden) and its projected pooled
    /// embedding (batch × projection), the prompts padded and truncated to 77 tokens.
    public func encodePrompts(_ prompts: [String]) throws -> (hiddenStates: Tensor, pooled: Tensor) {
        let ids = prompts.map { tokenizer($0, maxLength: 77, padding: .maxLength) }
        let encoded = try textEncoder.encodeWithProjection(ids)
        return (encoded.penultimate, encoded.textEmbeds)
    }
}
