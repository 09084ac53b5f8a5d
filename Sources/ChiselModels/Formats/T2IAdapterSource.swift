import ChiselBase
import ChiselTensor
import Foundation

/// A T2I-Adapter on disk: a diffusers `T2IAdapter` folder (config.json and
/// diffusion_pytorch_model.safetensors, or its fp16 variant or shards).
public struct T2IAdapterSource: Sendable {
    public let path: String
    let component: DiffusersComponent
    public let config: T2IAdapterConfig

    public init(path: String, variant: String? = nil) throws {
        self.path = path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw ChiselError(.io, "no such T2I-Adapter file or folder", file: path)
        }
        guard isFolder.boolValue else {
            throw ChiselError(.model, "a T2I-Adapter is read from a diffusers T2IAdapter folder (config.json and "
                              + "diffusion_pytorch_model.safetensors)", file: path)
        }
        component = try DiffusersComponent(folder: path, base: "diffusion_pytorch_model", variant: variant)
        config = try T2IAdapterConfig(reader: component.config)
    }

    /// Whether `path` holds a T2I-Adapter: a folder whose config.json names T2IAdapter.
    public static func recognizes(path: String) -> Bool {
        guard let reader = try? ConfigReader(file: path + "/config.json") else { return false }
        return reader.json["_class_name"]?.stringValue == "T2IAdapter"
    }

    public func load(precision: Precision = .f32) throws -> T2IAdapter {
        try T2IAdapter(config: config, weights: component.weights, precision: precision)
    }
}

/// What a T2I-Adapter is, from its config: what validation checks against the checkpoint.
public struct T2IAdapterFacts: Sendable, Equatable {
    public var config: T2IAdapterConfig

    public init(config: T2IAdapterConfig) {
        self.config = config
    }

    public init(path: String) throws {
        config = try T2IAdapterSource(path: path).config
    }

    public var familyName: String {
        config.kind == .fullXL ? StableDiffusionModel.Family.sdxl.rawValue : "Stable Diffusion 1.x/2.x"
    }

    /// Why the adapter's features do not fit `checkpoint`'s UNet, or nil: each feature must have
    /// the width and scale of the down block that takes it (a block with attention at its own
    /// resolution, one without after its downsampler), as diffusers adds them.
    public func mismatch(with checkpoint: StableDiffusionFacts) -> String? {
        let unet = checkpoint.unet
        var expected: [(channels: Int, downscale: Int)] = []
        for (i, channels) in unet.blockOutChannels.enumerated() {
            let attends = unet.downBlocks[i] == .crossAttnDown
            let downsamples = i < unet.blockOutChannels.count - 1
            expected.append((channels, checkpoint.vaeDownscale << (attends || !downsamples ? i : i + 1)))
        }
        let features = config.features
        guard features.count >= expected.count else {
            return "the T2I-Adapter gives \(features.count) features; the checkpoint's UNet has \(expected.count) down blocks"
        }
        for (i, want) in expected.enumerated() where features[i] != want {
            return "the T2I-Adapter (\(familyName)) gives block \(i) \(features[i].channels) channels at 1/\(features[i].downscale) "
                + "of the image; the checkpoint (\(checkpoint.family.rawValue)) takes \(want.channels) at 1/\(want.downscale)"
        }
        return nil
    }
}
