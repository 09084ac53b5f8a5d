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
        if file.names.contains(where: { $0.hasPrefix("conditioner.embedders.") }) {
            throw ChiselError(.unsupportedFormat, "an SDXL single file (conditioner.embedders.* text encoders): Chisel reads "
                              + "SDXL from diffusers folders so far; convert it with diffusers' from_single_file and save_pretrained",
                              file: path)
        }
        for prefix in [Self.unetPrefix, Self.vaePrefix] where !file.names.contains(where: { $0.hasPrefix(prefix) }) {
            throw ChiselError(.model, "no '\(prefix)*' tensors: not a Stable Diffusion single-file checkpoint", file: path)
        }
        _ = try textLayout()
    }

    public func textLayout() throws -> TextLayout {
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
        let heads: JSONValue = sd2
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
        return try UNetConfig(reader: config("unet", inferred))
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
            // the hint vae.sample_size sets another.
            "sample_size": .int(512),
        ]
        return try VAEConfig(reader: config("vae", inferred))
    }

    // MARK: Text encoder

    public func textConfig() throws -> CLIPTextConfig {
        switch try textLayout() {
        case .clip:
            let p = Self.clipPrefix + (has(Self.clipPrefix + "text_model.") ? "text_model." : "")
            let token = try shape(p + "embeddings.token_embedding.weight")
            return try CLIPTextConfig(reader: config("text_encoder", [
                "vocab_size": .int(token[0]), "hidden_size": .int(token[1]),
                "max_position_embeddings": .int(try shape(p + "embeddings.position_embedding.weight")[0]),
                "num_hidden_layers": .int(indices(p + "encoder.layers.").count),
                "intermediate_size": .int(try shape(p + "encoder.layers.0.mlp.fc1.weight")[0]),
                "num_attention_heads": .int(max(1, token[1] / 64)), "hidden_act": "quick_gelu",
            ]))
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
