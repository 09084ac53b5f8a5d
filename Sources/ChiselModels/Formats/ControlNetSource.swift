import ChiselBase
import ChiselTensor
import Foundation

/// A ControlNet on disk: a diffusers `ControlNetModel` folder (config.json and
/// diffusion_pytorch_model.safetensors, or its fp16 variant or shards).
public struct ControlNetSource: Sendable {
    public let path: String
    let component: DiffusersComponent
    public let config: ControlNetConfig

    public init(path: String, variant: String? = nil) throws {
        self.path = path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw ChiselError(.io, "no such ControlNet file or folder", file: path)
        }
        guard isFolder.boolValue else {
            throw ChiselError(.model, "a ControlNet is read from a diffusers ControlNetModel folder (config.json and "
                              + "diffusion_pytorch_model.safetensors); single files are not read yet", file: path)
        }
        component = try DiffusersComponent(folder: path, base: "diffusion_pytorch_model", variant: variant)
        config = try ControlNetConfig(reader: component.config)
    }

    /// Whether `path` holds a ControlNet: a folder whose config.json names ControlNetModel.
    public static func recognizes(path: String) -> Bool {
        guard let reader = try? ConfigReader(file: path + "/config.json") else { return false }
        return reader.json["_class_name"]?.stringValue == "ControlNetModel"
    }

    public func load(precision: Precision = .f32) throws -> ControlNetModel {
        try ControlNetModel(config: config, weights: component.weights, precision: precision)
    }
}

/// What a ControlNet is, read from its config without building it: what validation checks
/// against the checkpoint and `chisel model inspect` shows.
public struct ControlNetFacts: Sendable, Equatable {
    public var config: ControlNetConfig

    public init(config: ControlNetConfig) {
        self.config = config
    }

    public init(path: String) throws {
        config = try ControlNetSource(path: path).config
    }

    /// The family the ControlNet was made for, in the words `StableDiffusionModel.Family` uses:
    /// SDXL when it takes SDXL's added conditioning, else by the text context's width (768
    /// SD 1.x, 1024 SD 2.x); other widths are named by the width.
    public var familyName: String {
        let unet = config.unet
        if unet.textTime != nil { return StableDiffusionModel.Family.sdxl.rawValue }
        switch unet.crossAttentionDim {
        case 768: return StableDiffusionModel.Family.sd1.rawValue
        case 1024: return StableDiffusionModel.Family.sd2.rawValue
        default: return "a UNet with \(unet.crossAttentionDim)-wide text context"
        }
    }

    /// Why the ControlNet cannot steer `checkpoint`'s UNet, or nil when it can: its encoder
    /// must have the UNet's block widths, depth, text context and added conditioning, and take
    /// the checkpoint's latents.
    public func mismatch(with checkpoint: StableDiffusionFacts) -> String? {
        let mine = config.unet, theirs = checkpoint.unet
        let sameBlocks = mine.blockOutChannels == theirs.blockOutChannels && mine.layersPerBlock == theirs.layersPerBlock
            && mine.downBlocks == theirs.downBlocks && mine.transformerLayers == theirs.transformerLayers
        let sameText = mine.crossAttentionDim == theirs.crossAttentionDim && mine.textTime?.inputDim == theirs.textTime?.inputDim
        if !sameBlocks || !sameText {
            let theirName = checkpoint.family.rawValue
            let described = familyName == theirName ? "a \(familyName) UNet of other sizes" : familyName
            return "the ControlNet is for \(described) (blocks \(mine.blockOutChannels), text context \(mine.crossAttentionDim)), "
                + "but the checkpoint is \(theirName) (blocks \(theirs.blockOutChannels), text context \(theirs.crossAttentionDim))"
        }
        if mine.inChannels != checkpoint.latentChannels {
            return "the ControlNet takes \(mine.inChannels)-channel latents; the checkpoint's are \(checkpoint.latentChannels)"
        }
        if config.downscale != checkpoint.vaeDownscale {
            return "the ControlNet reads control images at \(config.downscale)× the latent; the checkpoint's VAE scales by \(checkpoint.vaeDownscale)"
        }
        return nil
    }
}
