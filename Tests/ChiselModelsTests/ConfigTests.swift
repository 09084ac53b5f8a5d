import ChiselCore
import Foundation
import Testing

@testable import ChiselModels

/// Configs read diffusers' keys with diffusers' defaults, and refuse values that would make a
/// network impossible, with the file and key named (never a crash).
@Suite struct ConfigTests {
    static func reader(_ text: String) throws -> ConfigReader {
        try ConfigReader(json: JSONParser.parse(text), file: "config.json")
    }

    @Test func emptyConfigsTakeDiffusersDefaults() throws {
        let unet = try UNetConfig(reader: Self.reader("{}"))
        #expect(unet.blockOutChannels == [320, 640, 1280, 1280] && unet.heads == [8, 8, 8, 8] && unet.layersPerBlock == 2)
        #expect(unet.crossAttentionDim == 1280 && unet.flipSinToCos && unet.freqShift == 0 && !unet.useLinearProjection)
        let vae = try VAEConfig(reader: Self.reader("{}"))
        #expect(vae.blockOutChannels == [64] && vae.latentChannels == 4 && vae.scalingFactor == 0.18215)
        let text = try CLIPTextConfig(reader: Self.reader("{}"))
        #expect(text.vocabSize == 49408 && text.hiddenSize == 512 && text.activation.rawValue == "quick_gelu")
    }

    /// The configs are Codable with diffusers' key names: decoding gives what ConfigReader gives,
    /// encoding and decoding again gives the same config, and bad values still fail with the key.
    @Test func configsAreCodableWithDiffusersKeys() throws {
        for family in Reference.families {
            let folder = "\(Reference.root)/\(family)"
            let unetData = try Data(contentsOf: URL(fileURLWithPath: folder + "/unet/config.json"))
            let unet = try JSONDecoder().decode(UNetConfig.self, from: unetData)
            #expect(unet == (try UNetConfig(reader: ConfigReader(file: folder + "/unet/config.json"))))
            #expect(try JSONDecoder().decode(UNetConfig.self, from: JSONEncoder().encode(unet)) == unet)
            let vae = try JSONDecoder().decode(VAEConfig.self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/vae/config.json")))
            #expect(try JSONDecoder().decode(VAEConfig.self, from: JSONEncoder().encode(vae)) == vae)
            let text = try JSONDecoder().decode(CLIPTextConfig.self,
                                                from: Data(contentsOf: URL(fileURLWithPath: folder + "/text_encoder/config.json")))
            #expect(try JSONDecoder().decode(CLIPTextConfig.self, from: JSONEncoder().encode(text)) == text)
        }
        let encoded = String(decoding: try JSONEncoder().encode(try UNetConfig(reader: Self.reader("{}"))), as: UTF8.self)
        #expect(encoded.contains("\"cross_attention_dim\":1280") && encoded.contains("\"attention_head_dim\":[8,8,8,8]"))
        #expect(throws: ChiselError.self) { try JSONDecoder().decode(UNetConfig.self, from: Data(#"{"layers_per_block": 0}"#.utf8)) }
    }

    @Test(arguments: [
        (#"{"block_out_channels": []}"#, "block_out_channels"),
        (#"{"block_out_channels": [0, 640, 1280, 1280]}"#, "block_out_channels"),
        (#"{"block_out_channels": [321, 640, 1280, 1280], "norm_num_groups": 1}"#, "block_out_channels"),
        (#"{"layers_per_block": -1}"#, "layers_per_block"),
        (#"{"norm_num_groups": 0}"#, "norm_num_groups"),
        (#"{"attention_head_dim": 0}"#, "attention_head_dim"),
        (#"{"attention_head_dim": [8, 8]}"#, "attention_head_dim"),
        (#"{"attention_head_dim": 7}"#, "attention_head_dim"),
        (#"{"cross_attention_dim": "wide"}"#, "cross_attention_dim"),
        (#"{"down_block_types": ["SpecialBlock", "DownBlock2D", "DownBlock2D", "DownBlock2D"]}"#, "down_block_types"),
        (#"{"addition_embed_type": "image"}"#, "addition_embed_type"),
        (#"{"addition_embed_type": "text_time", "projection_class_embeddings_input_dim": 64}"#, "addition_time_embed_dim"),
        (#"{"transformer_layers_per_block": -2}"#, "transformer_layers_per_block"),
        (#"{"freq_shift": 1000}"#, "freq_shift"),
        (#"{"mid_block_scale_factor": 2}"#, "mid_block_scale_factor"),
    ])
    func badUNetConfigsAreNamed(text: String, key: String) throws {
        do {
            _ = try UNetConfig(reader: Self.reader(text))
            Issue.record("accepted \(text)")
        } catch let error as ChiselError {
            #expect(error.file == "config.json")
            #expect(error.message.contains("'\(key)'"), "\(error.message)")
        }
    }

    @Test(arguments: [
        (#"{"block_out_channels": [], "down_block_types": [], "up_block_types": []}"#, "block_out_channels"),
        (#"{"norm_num_groups": 0}"#, "norm_num_groups"),
        (#"{"layers_per_block": 0}"#, "layers_per_block"),
        (#"{"latent_channels": -4}"#, "latent_channels"),
        (#"{"block_out_channels": [64, 128]}"#, "down_block_types"),
        (#"{"shift_factor": 0.1159}"#, "shift_factor"),
    ])
    func badVAEConfigsAreNamed(text: String, key: String) throws {
        do {
            _ = try VAEConfig(reader: Self.reader(text))
            Issue.record("accepted \(text)")
        } catch let error as ChiselError {
            #expect(error.message.contains("'\(key)'"), "\(error.message)")
        }
    }

    @Test(arguments: [
        (#"{"num_attention_heads": 0}"#, "num_attention_heads"),
        (#"{"hidden_size": 30, "num_attention_heads": 4}"#, "num_attention_heads"),
        (#"{"hidden_act": "relu"}"#, "hidden_act"),
        (#"{"num_hidden_layers": 0}"#, "num_hidden_layers"),
    ])
    func badTextConfigsAreNamed(text: String, key: String) throws {
        do {
            _ = try CLIPTextConfig(reader: Self.reader(text))
            Issue.record("accepted \(text)")
        } catch let error as ChiselError {
            #expect(error.message.contains("'\(key)'"), "\(error.message)")
        }
    }

    /// A config field that is read is used: `upcast_attention` (set in sd2-tiny, as in SD 2.1)
    /// keeps a BF16 UNet's attention products in FP32; without it they are BF16.
    @Test func upcastAttentionIsUsed() throws {
        let sd2 = try StableDiffusionModel.load(path: "\(Reference.root)/sd2-tiny", precision: .bf16)
        #expect(sd2.unet.config.upcastAttention)
        #expect(sd2.unet.encoder.midTransformer.blocks.allSatisfy { $0.selfAttention.precision == .f32 && $0.crossAttention.precision == .f32 })
        let sd1 = try StableDiffusionModel.load(path: "\(Reference.root)/sd1-tiny", precision: .bf16)
        #expect(!sd1.unet.config.upcastAttention)
        #expect(sd1.unet.encoder.midTransformer.blocks.allSatisfy { $0.selfAttention.precision == .bf16 })
    }
}
