import ChiselBase
import ChiselTensor
import Foundation

/// A ControlNet on disk: a diffusers `ControlNetModel` folder (config.json and
/// diffusion_pytorch_model.safetensors, or its fp16 variant or shards), or one `.safetensors`
/// file — in lllyasviel's layout (`control_model.input_hint_block…`, or 1.1's names without the
/// prefix) or with diffusers' names — whose config is read off its tensor shapes, with `hints`
/// for what shapes cannot tell (`attention_head_dim`, `norm_num_groups`,
/// `global_pool_conditions`, `addition_time_embed_dim`).
public struct ControlNetSource: Sendable {
    public let path: String
    let weights: SafeTensorsWeights
    public let config: ControlNetConfig
    /// The weight files read.
    public let files: [String]
    /// What a single file's shapes could not tell and was assumed, as `key=value`.
    public let assumed: [String]

    public init(path: String, variant: String? = nil, hints: [String: JSONValue] = [:]) throws {
        self.path = path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw ChiselError(.io, "no such ControlNet file or folder", file: path)
        }
        if isFolder.boolValue {
            let component = try DiffusersComponent(folder: path, base: "diffusion_pytorch_model", variant: variant)
            weights = component.weights
            files = component.files
            config = try ControlNetConfig(reader: component.config)
            assumed = []
            return
        }
        try CheckpointFormat.refuseUnsafe(path)
        let file = try SafeTensorsFile(path: path)
        guard let layout = Self.layout(of: file) else {
            throw ChiselError(.model, "not a ControlNet: no 'controlnet_cond_embedding.*' or '[control_model.]input_hint_block.*' tensors",
                              file: path)
        }
        if let prefix = layout {
            let blocks = Set(file.names.compactMap { name -> Int? in
                guard name.hasPrefix(prefix + "input_blocks.") else { return nil }
                return Int(name.dropFirst(prefix.count + "input_blocks.".count).prefix { $0 != "." })
            }).filter { $0 > 0 }.sorted()
            let firstDownsampler = blocks.first { file.tensors["\(prefix)input_blocks.\($0).0.op.weight"] != nil }
            let layers = (firstDownsampler ?? (blocks.count + 1)) - 1
            let hints = Set(file.names.compactMap { name -> Int? in
                guard name.hasPrefix(prefix + "input_hint_block.") else { return nil }
                return Int(name.dropFirst(prefix.count + "input_hint_block.".count).prefix { $0 != "." })
            })
            guard layers > 0, !hints.isEmpty else {
                throw ChiselError(.model, "cannot read the ControlNet's block structure from 'input_blocks' and 'input_hint_block'", file: path)
            }
            let rules = SingleFileCheckpoint.controlNetRules(prefix: prefix, layers: layers, hintConvolutions: hints.count)
            weights = try SafeTensorsWeights(files: [file], source: path, names: rules.rename)
        } else {
            weights = try SafeTensorsWeights(files: [file], source: path)
        }
        files = [path]
        (config, assumed) = try Self.inferredConfig(weights, hints: hints, path: path)
    }

    /// A single file's layout: nil when it is no ControlNet; `.some(nil)` for diffusers' names;
    /// `.some(prefix)` for lllyasviel's, with `control_model.` or no prefix.
    static func layout(of file: SafeTensorsFile) -> String?? {
        if file.tensors["controlnet_cond_embedding.conv_in.weight"] != nil { return .some(nil) }
        for prefix in ["control_model.", ""] where file.tensors[prefix + "input_hint_block.0.weight"] != nil { return .some(prefix) }
        return nil
    }

    /// The config of a ControlNet's weights in diffusers' names, read off their shapes; SD's
    /// conventions (8 heads for SD 1.x, 64-wide heads for 2.x and XL; SDXL's 256-wide size
    /// embeddings) where shapes cannot tell, unless `hints` says.
    static func inferredConfig(_ w: SafeTensorsWeights, hints: [String: JSONValue], path: String) throws -> (ControlNetConfig, [String]) {
        func indices(_ prefix: String) -> [Int] {
            Set(w.names.compactMap { name -> Int? in
                guard name.hasPrefix(prefix) else { return nil }
                return Int(name.dropFirst(prefix.count).prefix { $0 != "." })
            }).sorted()
        }
        let levels = indices("down_blocks.")
        let layers = indices("down_blocks.0.resnets.").count
        guard !levels.isEmpty, layers > 0 else { throw ChiselError(.model, "the ControlNet has no down blocks", file: path) }
        let channels = try levels.map { try w.shape("down_blocks.\($0).resnets.0.conv1.weight")[0] }
        let attention = levels.map { w.contains("down_blocks.\($0).attentions.0.proj_in.weight") }
        guard let first = attention.firstIndex(of: true) else { throw ChiselError(.model, "the ControlNet has no attention blocks", file: path) }
        let block = "down_blocks.\(first).attentions.0."
        let context = try w.shape(block + "transformer_blocks.0.attn2.to_k.weight")[1]
        let linear = try w.shape(block + "proj_in.weight").count == 2
        let xl = w.contains("add_embedding.linear_1.weight")
        let middle = indices("mid_block.attentions.0.transformer_blocks.").count
        let depths = levels.map { attention[$0] ? indices("down_blocks.\($0).attentions.0.transformer_blocks.").count : middle }
        var embedding = [try w.shape("controlnet_cond_embedding.conv_in.weight")[0]]
        for j in indices("controlnet_cond_embedding.blocks.") where j % 2 == 1 {
            embedding.append(try w.shape("controlnet_cond_embedding.blocks.\(j).weight")[0])
        }
        var inferred: [String: JSONValue] = [
            "_class_name": "ControlNetModel",
            "in_channels": .int(try w.shape("conv_in.weight")[1]),
            "conditioning_channels": .int(try w.shape("controlnet_cond_embedding.conv_in.weight")[1]),
            "conditioning_embedding_out_channels": .array(embedding.map(JSONValue.int)),
            "block_out_channels": .array(channels.map(JSONValue.int)),
            "layers_per_block": .int(layers),
            "cross_attention_dim": .int(context),
            "use_linear_projection": .bool(linear),
            "down_block_types": .array(attention.map { .string($0 ? "CrossAttnDownBlock2D" : "DownBlock2D") }),
            "transformer_layers_per_block": .array(depths.map(JSONValue.int)),
        ]
        var assumed: [String] = []
        func assume(_ key: String, _ value: JSONValue) {
            if let hint = hints[key] {
                inferred[key] = hint
            } else {
                inferred[key] = value
                assumed.append("\(key)=\(value.serialized())")
            }
        }
        assume("attention_head_dim", context == 1024 || xl ? .array(channels.map { .int(max(1, $0 / 64)) }) : .int(8))
        if xl {
            let input = try w.shape("add_embedding.linear_1.weight")[1]
            inferred["addition_embed_type"] = "text_time"
            inferred["projection_class_embeddings_input_dim"] = .int(input)
            assume("addition_time_embed_dim", 256)
        }
        assume("norm_num_groups", 32)
        assume("global_pool_conditions", false)
        for (key, value) in hints { inferred[key] = value }
        let members = inferred.sorted { $0.key < $1.key }.map { JSONMember(key: $0.key, value: $0.value) }
        return (try ControlNetConfig(reader: ConfigReader(json: .object(members), file: path)), assumed)
    }

    /// Whether `path` holds a ControlNet: a folder whose config.json names ControlNetModel, or a
    /// `.safetensors` file with a ControlNet's tensors.
    public static func recognizes(path: String) -> Bool {
        if let reader = try? ConfigReader(file: path + "/config.json") {
            return reader.json["_class_name"]?.stringValue == "ControlNetModel"
        }
        guard path.hasSuffix(".safetensors"), FileHash.isFile(path), let file = try? SafeTensorsFile(path: path) else { return false }
        return layout(of: file) != nil
    }

    public func load(precision: Precision = .f32) throws -> ControlNetModel {
        try ControlNetModel(config: config, weights: weights, precision: precision)
    }
}

/// What a ControlNet is, read from its config without building it: what validation checks
/// against the checkpoint and `chisel model inspect` shows.
public struct ControlNetFacts: Sendable, Equatable {
    public var config: ControlNetConfig

    public init(config: ControlNetConfig) {
        self.config = config
    }

    public init(path: String, hints: [String: JSONValue] = [:]) throws {
        config = try ControlNetSource(path: path, hints: hints).config
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
