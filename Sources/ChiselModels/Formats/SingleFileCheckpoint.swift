import ChiselCore
import ChiselDiffusion
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

    /// The diffusers name of a UNet tensor, or nil for names that are not the UNet's.
    static func unetName(_ name: String, layout: UNetLayout) -> String? {
        guard name.hasPrefix(unetPrefix) else { return nil }
        let rest = String(name.dropFirst(unetPrefix.count))
        let parts = rest.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        func tail(_ from: Int) -> String { parts[from...].joined(separator: ".") }
        func resnet(_ inner: String) -> String {
            let table = ["in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
                         "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut"]
            for (from, to) in table where inner.hasPrefix(from + ".") { return to + inner.dropFirst(from.count) }
            return inner
        }
        switch parts.first {
        case "time_embed":
            guard parts.count >= 3 else { return nil }
            return (parts[1] == "0" ? "time_embedding.linear_1." : "time_embedding.linear_2.") + tail(2)
        case "out":
            guard parts.count >= 3 else { return nil }
            return (parts[1] == "0" ? "conv_norm_out." : "conv_out.") + tail(2)
        case "input_blocks":
            guard parts.count >= 4, let i = Int(parts[1]), let j = Int(parts[2]) else { return nil }
            if i == 0 { return "conv_in." + tail(3) }
            let (level, layer) = (i - 1).quotientAndRemainder(dividingBy: layout.layers + 1)
            if layer == layout.layers { return "down_blocks.\(level).downsamplers.0.conv." + tail(4) }
            return j == 0 ? "down_blocks.\(level).resnets.\(layer)." + resnet(tail(3))
                          : "down_blocks.\(level).attentions.\(layer)." + tail(3)
        case "middle_block":
            guard parts.count >= 3, let j = Int(parts[1]) else { return nil }
            switch j {
            case 0: return "mid_block.resnets.0." + resnet(tail(2))
            case 1: return "mid_block.attentions.0." + tail(2)
            default: return "mid_block.resnets.1." + resnet(tail(2))
            }
        case "output_blocks":
            guard parts.count >= 4, let i = Int(parts[1]), let j = Int(parts[2]) else { return nil }
            let (level, layer) = i.quotientAndRemainder(dividingBy: layout.layers + 1)
            if j == 0 { return "up_blocks.\(level).resnets.\(layer)." + resnet(tail(3)) }
            // Upsamplers hold a `conv`; attention blocks never start with it.
            if parts[3] == "conv" { return "up_blocks.\(level).upsamplers.0.conv." + tail(4) }
            return "up_blocks.\(level).attentions.\(layer)." + tail(3)
        default:
            return nil
        }
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
        ]
        return try VAEConfig(reader: config("vae", inferred))
    }

    static func vaeName(_ name: String, levels: Int) -> String? {
        guard name.hasPrefix(vaePrefix) else { return nil }
        var rest = String(name.dropFirst(vaePrefix.count))
        let renames: [(String, String)] = [
            ("encoder.norm_out.", "encoder.conv_norm_out."), ("decoder.norm_out.", "decoder.conv_norm_out."),
            ("encoder.mid.block_1.", "encoder.mid_block.resnets.0."), ("encoder.mid.block_2.", "encoder.mid_block.resnets.1."),
            ("decoder.mid.block_1.", "decoder.mid_block.resnets.0."), ("decoder.mid.block_2.", "decoder.mid_block.resnets.1."),
            ("encoder.mid.attn_1.", "encoder.mid_block.attentions.0."), ("decoder.mid.attn_1.", "decoder.mid_block.attentions.0."),
        ]
        for (from, to) in renames where rest.hasPrefix(from) { rest = to + rest.dropFirst(from.count) }
        if rest.contains("mid_block.attentions.0.") {
            for (from, to) in [("norm.", "group_norm."), ("q.", "to_q."), ("k.", "to_k."), ("v.", "to_v."), ("proj_out.", "to_out.0.")] {
                rest = rest.replacingOccurrences(of: "attentions.0." + from, with: "attentions.0." + to)
            }
        }
        rest = rest.replacingOccurrences(of: ".nin_shortcut.", with: ".conv_shortcut.")
        let parts = rest.split(separator: ".").map(String.init)
        if parts.count > 3, parts[0] == "encoder", parts[1] == "down", let i = Int(parts[2]) {
            let tail = parts[4...].joined(separator: ".")
            if parts[3] == "block" { return "encoder.down_blocks.\(i).resnets.\(tail)" }
            if parts[3] == "downsample" { return "encoder.down_blocks.\(i).downsamplers.0.\(tail)" }
        }
        if parts.count > 3, parts[0] == "decoder", parts[1] == "up", let i = Int(parts[2]) {
            let tail = parts[4...].joined(separator: ".")
            let level = levels - 1 - i
            if parts[3] == "block" { return "decoder.up_blocks.\(level).resnets.\(tail)" }
            if parts[3] == "upsample" { return "decoder.up_blocks.\(level).upsamplers.0.\(tail)" }
        }
        return rest
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

    /// Text encoder weights by transformers name; OpenCLIP's fused q/k/v projections are split.
    public func textWeights(config: CLIPTextConfig) throws -> any WeightStore {
        switch try textLayout() {
        case .clip:
            let nested = has(Self.clipPrefix + "text_model.")
            return try SafeTensorsWeights(files: [file], source: path) { name in
                guard name.hasPrefix(Self.clipPrefix), !name.hasSuffix("position_ids") else { return nil }
                let rest = name.dropFirst(Self.clipPrefix.count)
                return nested ? String(rest) : "text_model." + rest
            }
        case .openCLIP:
            let p = Self.openCLIPPrefix
            let d = config.hiddenSize
            var tensors: [String: (shape: [Int], values: [Float])] = [:]
            func copy(_ from: String, _ to: String) throws {
                tensors["text_model." + to] = (try shape(p + from), try file.floats(p + from))
            }
            try copy("token_embedding.weight", "embeddings.token_embedding.weight")
            try copy("positional_embedding", "embeddings.position_embedding.weight")
            try copy("ln_final.weight", "final_layer_norm.weight")
            try copy("ln_final.bias", "final_layer_norm.bias")
            for i in 0..<config.layers {
                let from = "transformer.resblocks.\(i).", to = "encoder.layers.\(i)."
                for (a, b) in [("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"), ("attn.out_proj", "self_attn.out_proj"),
                               ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")] {
                    try copy(from + a + ".weight", to + b + ".weight")
                    try copy(from + a + ".bias", to + b + ".bias")
                }
                let weight = try file.floats(p + from + "attn.in_proj_weight")
                let bias = try file.floats(p + from + "attn.in_proj_bias")
                guard weight.count == 3 * d * d, bias.count == 3 * d else {
                    throw ChiselError(.model, "in_proj of \(weight.count) values is not 3×\(d)×\(d)", file: path,
                                      tensor: p + from + "attn.in_proj_weight")
                }
                for (k, name) in ["q_proj", "k_proj", "v_proj"].enumerated() {
                    tensors["text_model.\(to)self_attn.\(name).weight"] = ([d, d], Array(weight[(k * d * d)..<((k + 1) * d * d)]))
                    tensors["text_model.\(to)self_attn.\(name).bias"] = ([d], Array(bias[(k * d)..<((k + 1) * d)]))
                }
            }
            return MemoryWeights(source: path, tensors: tensors)
        }
    }

    // MARK: Model

    public func model(precision: Precision = .f32) throws -> StableDiffusionModel {
        let unetConfig = try unetConfig()
        let layout = try unetLayout()
        let unetWeights = try SafeTensorsWeights(files: [file], source: path) { Self.unetName($0, layout: layout) }
        let vaeConfig = try vaeConfig()
        let levels = vaeConfig.blockOutChannels.count
        let vaeWeights = try SafeTensorsWeights(files: [file], source: path) { Self.vaeName($0, levels: levels) }
        let textConfig = try textConfig()
        let layout2 = try textLayout()
        let predictionName = hints["prediction_type"]?.stringValue ?? "epsilon"
        guard let prediction = PredictionType(rawValue: predictionName) else {
            throw ChiselError(.model, "prediction_type '\(predictionName)' is not epsilon, v_prediction or sample", file: path)
        }
        return StableDiffusionModel(
            path: path, family: layout2 == .openCLIP ? .sd2 : .sd1,
            textEncoder: try CLIPTextModel(config: textConfig, weights: textWeights(config: textConfig), precision: precision),
            vae: try AutoencoderKL(config: vaeConfig, weights: vaeWeights, precision: precision),
            unet: try UNet2DConditionModel(config: unetConfig, weights: unetWeights, precision: precision),
            predictionType: prediction, precision: precision)
    }
}
