import ChiselBase
import ChiselTensor
import Foundation

/// A Stable Diffusion checkpoint in one file with the original (CompVis / Stability AI) names:
/// `model.diffusion_model.*` (UNet), `first_stage_model.*` (VAE) and `cond_stage_model.*`
/// (CLIP ViT-L for 1.x in Hugging Face layout, OpenCLIP ViT-H for 2.x). The architecture is read
/// off the tensor shapes; what shapes cannot tell (head counts, GroupNorm groups, prediction
/// type) follows the SD conventions unless `hints` says otherwise.
public struct SingleFileCheckpoint: Sendable {
    public let path: String
    public let file: SafeTensorsFile
    /// Config keys that override what is inferred, per component: e.g. `unet.attention_head_dim`,
    /// `vae.norm_num_groups`, `text_encoder.num_attention_heads`, and `prediction_type`.
    public let hints: [String: JSONValue]

    public enum TextLayout: String, Sendable {
        /// Hugging Face CLIP names under `cond_stage_model.transformer.` (SD 1.x).
        case clip
        /// OpenCLIP names under `cond_stage_model.model.` (SD 2.x).
        case openCLIP
    }

    static let unetPrefix = "model.diffusion_model.", vaePrefix = "first_stage_model.",
        clipPrefix = "cond_stage_model.transformer.", openCLIPPrefix = "cond_stage_model.model."

    public init(path: String, hints: [String: JSONValue] = [:]) throws {
        self.path = path
        self.file = try SafeTensorsFile(path: path)
        self.hints = hints
        for prefix in [Self.unetPrefix, Self.vaePrefix] where !file.names.contains(where: { $0.hasPrefix(prefix) }) {
            throw ChiselError(.model, "no '\(prefix)*' tensors: not a Stable Diffusion single-file checkpoint", file: path)
        }
        _ = try textLayout()
    }

    /// SDXL's layout: text encoders under `conditioner.embedders.N.` (`transformer.` for CLIP
    /// ViT-L in transformers' names, `model.` for OpenCLIP ViT-bigG).
    public var isXL: Bool { has(Self.xlPrefix) }
    static let xlPrefix = "conditioner.embedders."

    /// An SDXL file's text encoder prefixes: CLIP's (`conditioner.embedders.N.transformer.`,
    /// base only) and OpenCLIP's (`conditioner.embedders.N.model.`).
    func xlTextPrefixes() -> (clip: String?, openCLIP: String?) {
        var clip: String?, openCLIP: String?
        for i in indices(Self.xlPrefix) {
            if has("\(Self.xlPrefix)\(i).transformer.") { clip = "\(Self.xlPrefix)\(i).transformer." }
            if has("\(Self.xlPrefix)\(i).model.") { openCLIP = "\(Self.xlPrefix)\(i).model." }
        }
        return (clip, openCLIP)
    }

    public func textLayout() throws -> TextLayout {
        if isXL {
            let prefixes = xlTextPrefixes()
            if prefixes.clip != nil { return .clip }
            if prefixes.openCLIP != nil { return .openCLIP }
            throw ChiselError(.model, "no text encoder ('conditioner.embedders.*') in the SDXL checkpoint", file: path)
        }
        if file.names.contains(where: { $0.hasPrefix(Self.openCLIPPrefix) }) { return .openCLIP }
        if file.names.contains(where: { $0.hasPrefix(Self.clipPrefix) }) { return .clip }
        throw ChiselError(.model, "no text encoder ('cond_stage_model.*') in the checkpoint", file: path)
    }

    func shape(_ name: String) throws -> [Int] { try file.info(name).shape }

    /// Indices `i` of names `prefix<i>.…`, sorted.
    func indices(_ prefix: String) -> [Int] {
        Set(file.names.compactMap { name -> Int? in
            guard name.hasPrefix(prefix) else { return nil }
            return Int(name.dropFirst(prefix.count).prefix { $0 != "." })
        }).sorted()
    }

    func has(_ prefix: String) -> Bool { file.names.contains { $0.hasPrefix(prefix) } }

    func config(_ component: String, _ inferred: [String: JSONValue]) throws -> ConfigReader {
        var merged = inferred
        for (key, value) in hints where key.hasPrefix(component + ".") { merged[String(key.dropFirst(component.count + 1))] = value }
        let members = merged.sorted { $0.key < $1.key }.map { JSONMember(key: $0.key, value: $0.value) }
        return try ConfigReader(json: .object(members), file: "\(path) (\(component))")
    }

    // MARK: UNet

    struct UNetLayout {
        var levels: Int, layers: Int
        var channels: [Int]
        var attention: [Bool]
    }

    func unetLayout() throws -> UNetLayout {
        let p = Self.unetPrefix
        let blocks = indices(p + "input_blocks.").filter { $0 > 0 }
        let downsamplers = blocks.filter { has("\(p)input_blocks.\($0).0.op.") }
        let layers = (downsamplers.first ?? (blocks.count + 1)) - 1
        let levels = downsamplers.count + 1
        guard layers > 0, blocks.count == levels * layers + downsamplers.count else {
            throw ChiselError(.model, "cannot read the UNet's block structure from 'input_blocks'", file: path)
        }
        var channels: [Int] = [], attention: [Bool] = []
        for level in 0..<levels {
            let first = 1 + level * (layers + 1)
            channels.append(try shape("\(p)input_blocks.\(first).0.out_layers.3.weight")[0])
            attention.append(has("\(p)input_blocks.\(first).1."))
        }
        return UNetLayout(levels: levels, layers: layers, channels: channels, attention: attention)
    }

    public func unetConfig() throws -> UNetConfig {
        let p = Self.unetPrefix
        let layout = try unetLayout()
        guard let attentionLevel = layout.attention.firstIndex(of: true) else {
            throw ChiselError(.model, "the UNet has no attention blocks", file: path)
        }
        let attentionBlock = "\(p)input_blocks.\(1 + attentionLevel * (layout.layers + 1)).1."
        let context = try shape(attentionBlock + "transformer_blocks.0.attn2.to_k.weight")[1]
        let linear = try shape(attentionBlock + "proj_in.weight").count == 2
        let sd2 = context == 1024
        // SD 2.x and SDXL use 64-wide heads; SD 1.x 8 heads.
        let heads: JSONValue = sd2 || isXL
            ? .array(layout.channels.map { .int(max(1, $0 / 64)) })
            : .int(8)
        func kinds(_ names: [String]) -> JSONValue { .array(names.map(JSONValue.string)) }
        let inferred: [String: JSONValue] = [
            "in_channels": .int(try shape(p + "input_blocks.0.0.weight")[1]),
            "out_channels": .int(try shape(p + "out.2.weight")[0]),
            "block_out_channels": .array(layout.channels.map(JSONValue.int)),
            "layers_per_block": .int(layout.layers),
            "cross_attention_dim": .int(context),
            "attention_head_dim": heads,
            "use_linear_projection": .bool(linear),
            "down_block_types": kinds(layout.attention.map { $0 ? "CrossAttnDownBlock2D" : "DownBlock2D" }),
            "up_block_types": kinds(layout.attention.reversed().map { $0 ? "CrossAttnUpBlock2D" : "UpBlock2D" }),
        ]
        return try UNetConfig(reader: config("unet", inferred.merging(try xlUNetConfig(layout), uniquingKeysWith: { $1 })))
    }

    /// SDXL's UNet keys: the added embedding (`label_emb.0.0` is its first linear: the pooled
    /// projection's width plus 6 size values, or 5 for the refiner, each embedded
    /// `addition_time_embed_dim` wide) and the transformer depth of each level (a level without
    /// attention takes the middle block's, as diffusers' config would list it).
    func xlUNetConfig(_ layout: UNetLayout) throws -> [String: JSONValue] {
        guard isXL else { return [:] }
        let p = Self.unetPrefix
        let inputDim = try shape(p + "label_emb.0.0.weight")[1]
        let prefixes = xlTextPrefixes()
        guard let openCLIP = prefixes.openCLIP else {
            throw ChiselError(.model, "an SDXL checkpoint without its OpenCLIP text encoder", file: path)
        }
        let pooled = try shape(openCLIP + "text_projection").last ?? 0
        let values = prefixes.clip == nil ? 5 : 6
        guard inputDim > pooled, (inputDim - pooled) % values == 0 else {
            throw ChiselError(.model, "the UNet's added embedding takes \(inputDim) features, which \(pooled) pooled and \(values) "
                              + "size values cannot make", file: path)
        }
        let middle = indices(p + "middle_block.1.transformer_blocks.").count
        let depths: [JSONValue] = (0..<layout.levels).map { level in
            let first = 1 + level * (layout.layers + 1)
            return .int(layout.attention[level] ? indices("\(p)input_blocks.\(first).1.transformer_blocks.").count : middle)
        }
        return [
            "addition_embed_type": "text_time", "addition_time_embed_dim": .int((inputDim - pooled) / values),
            "projection_class_embeddings_input_dim": .int(inputDim), "transformer_layers_per_block": .array(depths),
        ]
    }

    // MARK: VAE

    public func vaeConfig() throws -> VAEConfig {
        let p = Self.vaePrefix
        let levels = indices(p + "encoder.down.")
        let channels = try levels.map { try shape("\(p)encoder.down.\($0).block.0.conv1.weight")[0] }
        let inferred: [String: JSONValue] = [
            "in_channels": .int(try shape(p + "encoder.conv_in.weight")[1]),
            "out_channels": .int(try shape(p + "decoder.conv_out.weight")[0]),
            "block_out_channels": .array(channels.map(JSONValue.int)),
            "layers_per_block": .int(indices(p + "encoder.down.0.block.").count),
            "latent_channels": .int(try shape(p + "decoder.conv_in.weight")[1]),
            "down_block_types": .array(channels.map { _ in "DownEncoderBlock2D" }),
            "up_block_types": .array(channels.map { _ in "UpDecoderBlock2D" }),
            "use_quant_conv": .bool(has(p + "quant_conv.")),
            "use_post_quant_conv": .bool(has(p + "post_quant_conv.")),
            // What diffusers' single-file loading gives SD checkpoints (their original image_size);
            // the hint vae.sample_size sets another. SDXL's VAE: 1024, scaling 0.13025.
            "sample_size": .int(isXL ? 1024 : 512),
            "scaling_factor": .double(isXL ? 0.13025 : 0.18215),
        ]
        return try VAEConfig(reader: config("vae", inferred))
    }

    // MARK: Text encoder

    /// An SDXL file's text encoders: CLIP ViT-L as transformers names it, and OpenCLIP ViT-bigG
    /// with every layer (the pooled projection reads the last) and its `text_projection`; the
    /// second's ids as SDXL's text_encoder_2 config has them (eos 2: pooled at the largest id).
    func xlTextConfig(clip: Bool) throws -> CLIPTextConfig {
        let prefixes = xlTextPrefixes()
        if clip, let prefix = prefixes.clip { return try clipTextConfig(prefix: prefix) }
        guard let p = prefixes.openCLIP else { throw ChiselError(.model, "no OpenCLIP text encoder in the SDXL checkpoint", file: path) }
        let token = try shape(p + "token_embedding.weight")
        return try CLIPTextConfig(reader: config(prefixes.clip == nil ? "text_encoder" : "text_encoder_2", [
            "vocab_size": .int(token[0]), "hidden_size": .int(token[1]),
            "max_position_embeddings": .int(try shape(p + "positional_embedding")[0]),
            "num_hidden_layers": .int(indices(p + "transformer.resblocks.").count),
            "intermediate_size": .int(try shape(p + "transformer.resblocks.0.mlp.c_fc.weight")[0]),
            "num_attention_heads": .int(max(1, token[1] / 64)), "hidden_act": "gelu",
            "projection_dim": .int(try shape(p + "text_projection").last ?? 0),
            "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
        ]))
    }

    /// CLIP ViT-L in transformers' names under `prefix` (with or without `text_model.`).
    func clipTextConfig(prefix: String) throws -> CLIPTextConfig {
        let p = prefix + (has(prefix + "text_model.") ? "text_model." : "")
        let token = try shape(p + "embeddings.token_embedding.weight")
        return try CLIPTextConfig(reader: config("text_encoder", [
            "vocab_size": .int(token[0]), "hidden_size": .int(token[1]),
            "max_position_embeddings": .int(try shape(p + "embeddings.position_embedding.weight")[0]),
            "num_hidden_layers": .int(indices(p + "encoder.layers.").count),
            "intermediate_size": .int(try shape(p + "encoder.layers.0.mlp.fc1.weight")[0]),
            "num_attention_heads": .int(max(1, token[1] / 64)), "hidden_act": "quick_gelu",
        ]))
    }

    public func textConfig() throws -> CLIPTextConfig {
        if isXL { return try xlTextConfig(clip: true) }
        switch try textLayout() {
        case .clip:
            return try clipTextConfig(prefix: Self.clipPrefix)
        case .openCLIP:
            let p = Self.openCLIPPrefix
            let token = try shape(p + "token_embedding.weight")
            // SD 2.x conditions on the penultimate layer: diffusers drops the last block.
            return try CLIPTextConfig(reader: config("text_encoder", [
                "vocab_size": .int(token[0]), "hidden_size": .int(token[1]),
                "max_position_embeddings": .int(try shape(p + "positional_embedding")[0]),
                "num_hidden_layers": .int(indices(p + "transformer.resblocks.").count - 1),
                "intermediate_size": .int(try shape(p + "transformer.resblocks.0.mlp.c_fc.weight")[0]),
                "num_attention_heads": .int(max(1, token[1] / 64)), "hidden_act": "gelu",
            ]))
        }
    }
}
