import ChiselBase
import ChiselDiffusion
import ChiselTensor
import Foundation

extension AmusedModel {
    /// The two public aMUSEd architectures (`amused/amused-256`, `amused/amused-512`): the same
    /// VQ-GAN and CLIP-L text encoder with projection; the 512 transformer halves its 32×32 grid.
    public enum Architecture: String, Sendable, CaseIterable {
        case amused256 = "amused-256"
        case amused512 = "amused-512"

        public var imageSide: Int { self == .amused256 ? 256 : 512 }
    }

    static let publicVQConfig = """
        {"act_fn": "silu", "block_out_channels": [128, 256, 256, 512, 768],
         "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
         "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
         "in_channels": 3, "out_channels": 3, "latent_channels": 64, "layers_per_block": 2, "lookup_from_codebook": true,
         "mid_block_add_attention": false, "norm_num_groups": 32, "norm_type": "group", "num_vq_embeddings": 8192,
         "sample_size": 32, "scaling_factor": 0.18215, "vq_embed_dim": null, "force_upcast": true}
        """

    static let publicTextConfig = """
        {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
         "max_position_embeddings": 77, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "vocab_size": 49408,
         "projection_dim": 768, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}
        """

    static func publicTransformerConfig(_ architecture: Architecture) -> String {
        let large = architecture == .amused512
        return """
            {"hidden_size": 1024, "use_bias": false, "hidden_dropout": 0.0, "cond_embed_dim": 768,
             "micro_cond_encode_dim": 256, "micro_cond_embed_dim": 1280, "encoder_hidden_size": 768, "vocab_size": 8256,
             "codebook_size": 8192, "in_channels": 768, "block_out_channels": 768, "num_res_blocks": 3,
             "downsample": \(large), "upsample": \(large), "block_num_heads": 12, "num_hidden_layers": 22,
             "num_attention_heads": 16, "attention_dropout": 0.0, "intermediate_size": 2816, "layer_norm_eps": 1e-6,
             "ln_elementwise_affine": true, "sample_size": \(large ? 32 : 16)}
            """
    }

    /// A public architecture with random weights, as `chisel bench --part amused` times it
    /// (speed does not depend on the values). `tokenizer` nil takes the bundled CLIP vocabulary.
    public static func random(_ architecture: Architecture, precision: Precision = .f32,
                              tokenizer: CLIPTokenizer? = nil) throws -> AmusedModel {
        func reader(_ json: String, _ name: String) throws -> ConfigReader {
            try ConfigReader(json: JSONParser.parse(json), file: "\(architecture.rawValue) \(name) config")
        }
        let weights = RandomWeights()
        let textConfig = try CLIPTextConfig(reader: reader(publicTextConfig, "text_encoder"))
        return AmusedModel(
            path: architecture.rawValue + "-random",
            vq: try VQModel(config: VQModelConfig(reader: reader(publicVQConfig, "vqvae")), weights: weights,
                            precision: precision),
            textEncoder: try CLIPTextModel(config: textConfig, weights: weights, precision: precision),
            tokenizer: try tokenizer ?? CLIPTokenizer.bundled(family: .sd1),
            transformer: try UVit2DModel(config: UVit2DConfig(reader: reader(publicTransformerConfig(architecture), "transformer")),
                                         weights: weights, precision: precision),
            maskTokenID: 8255, schedule: .cosine, precision: precision)
    }
}
