import ChiselCore
import ChiselTensor
import Foundation
import Testing

@testable import ChiselModels

/// What the aMUSEd networks refuse, and how they say it: a missing tensor names the tensor and
/// the folder, a bad config value its key and file, bad inputs the mismatch.
@Suite struct AmusedErrorTests {
    static func reader(_ text: String) throws -> ConfigReader {
        try ConfigReader(json: JSONParser.parse(text), file: "config.json")
    }

    @Test(arguments: [
        ("vqvae", "quantize.embedding.weight"),
        ("vqvae", "decoder.up_blocks.0.resnets.1.conv2.weight"),
        ("transformer", "mlm_layer.conv2.weight"),
        ("transformer", "transformer_layers.0.norm3.linear.weight"),
        ("transformer", "down_block.res_blocks.0.channelwise_norm.gamma"),
        ("text_encoder", "text_model.final_layer_norm.weight"),
    ])
    func missingTensorsAreNamed(component: String, tensor: String) throws {
        let folder = "\(AmusedReference.root)/tiny/\(component)"
        let loaded = try DiffusersComponent(folder: folder, base: component == "text_encoder" ? "model" : "diffusion_pytorch_model",
                                            rename: { $0 == tensor ? nil : $0 })
        let error = expectModelError {
            switch component {
            case "vqvae": _ = try VQModel(config: VQModelConfig(reader: loaded.config), weights: loaded.weights)
            case "transformer": _ = try UVit2DModel(config: UVit2DConfig(reader: loaded.config), weights: loaded.weights)
            default: _ = try CLIPTextModel(config: CLIPTextConfig(reader: loaded.config), weights: loaded.weights)
            }
        }
        #expect(error?.tensor == tensor && error?.file == folder, "\(String(describing: error))")
    }

    @Test func emptyConfigsTakeDiffusersDefaults() throws {
        let uvit = try UVit2DConfig(reader: Self.reader("{}"))
        #expect(uvit.hiddenSize == 1024 && uvit.layers == 22 && uvit.codebookSize == 8192 && uvit.vocabSize == 8256)
        #expect(uvit.microCondEmbedDim == 1280 && !uvit.useBias && uvit.layerNormEpsilon == 1e-6 && uvit.sampleSize == 64)
        #expect(uvit.resBlocks == 3 && uvit.blockHeads == 12 && uvit.heads == 16 && uvit.intermediateSize == 2816)
        // VQModel's own default for lookup_from_codebook is False, which Chisel refuses.
        let vq = try VQModelConfig(reader: Self.reader(#"{"lookup_from_codebook": true}"#))
        #expect(vq.blockOutChannels == [64] && vq.latentChannels == 3 && vq.codebookSize == 256 && vq.embedDim == 3)
        #expect(vq.downscale == 1)
        let text = try CLIPTextConfig(reader: Self.reader("{}"))
        #expect(text.eosTokenId == 49407 && text.bosTokenId == 49406 && text.padTokenId == 1)
    }

    @Test(arguments: [
        (#"{"micro_cond_embed_dim": 1024}"#, "micro_cond_embed_dim"),
        (#"{"block_num_heads": 7}"#, "block_num_heads"),
        (#"{"num_attention_heads": 3}"#, "num_attention_heads"),
        (#"{"downsample": true}"#, "upsample"),
        (#"{"upsample": true}"#, "downsample"),
        (#"{"downsample": true, "upsample": true, "sample_size": 33}"#, "sample_size"),
        (#"{"hidden_size": 0}"#, "hidden_size"),
        (#"{"use_bias": "yes"}"#, "use_bias"),
        (#"{"num_res_blocks": -1}"#, "num_res_blocks"),
    ])
    func badTransformerConfigsAreNamed(text: String, key: String) throws {
        let error = expectModelError { _ = try UVit2DConfig(reader: Self.reader(text)) }
        #expect(error?.message.contains("'\(key)'") == true && error?.file == "config.json", "\(String(describing: error))")
    }

    @Test(arguments: [
        (#"{}"#, "lookup_from_codebook"),
        (#"{"lookup_from_codebook": true, "norm_type": "spatial"}"#, "norm_type"),
        (#"{"lookup_from_codebook": true, "vq_embed_dim": 4}"#, "vq_embed_dim"),
        (#"{"lookup_from_codebook": true, "block_out_channels": [48], "norm_num_groups": 32}"#, "norm_num_groups"),
        (#"{"lookup_from_codebook": true, "down_block_types": ["DownBlock2D"]}"#, "down_block_types"),
        (#"{"lookup_from_codebook": true, "num_vq_embeddings": 0}"#, "num_vq_embeddings"),
    ])
    func badVQConfigsAreNamed(text: String, key: String) throws {
        let error = expectModelError { _ = try VQModelConfig(reader: Self.reader(text)) }
        #expect(error?.message.contains("'\(key)'") == true, "\(String(describing: error))")
    }

    @Test func clipEndOfTextMustBeOneId() throws {
        let error = expectModelError { _ = try CLIPTextConfig(reader: Self.reader(#"{"eos_token_id": [2, 3]}"#)) }
        #expect(error?.message.contains("'eos_token_id'") == true)
    }

    @Test func transformerInputsAreChecked() throws {
        let small = try AmusedReference.transformer("small", precision: .f32)
        let c = small.config
        let context = Tensor(zeros: [1, 77, c.encoderHiddenSize]), pooled = Tensor(zeros: [1, c.condEmbedDim])
        let micro: [Float] = [16, 16, 0, 0, 6]
        func call(ids: [Int32]? = nil, height: Int = 8, width: Int = 8, context: Tensor = context, pooled: Tensor = pooled,
                  micro: [Float] = micro) -> ChiselError? {
            expectModelError {
                _ = try small.logits(ids: ids ?? [Int32](repeating: 3, count: height * width), batch: 1, height: height,
                                     width: width, encoderHiddenStates: context, pooledText: pooled,
                                     microConditioning: micro)
            }
        }
        #expect(call(ids: [Int32](repeating: Int32(c.vocabSize), count: 64))?.message.contains("outside") == true)
        #expect(call(ids: [Int32](repeating: -1, count: 64))?.message.contains("outside") == true)
        #expect(call(ids: [Int32](repeating: 0, count: 63))?.message.contains("do not fill") == true)
        #expect(call(height: 7)?.message.contains("even") == true)
        #expect(call(context: Tensor(zeros: [1, 77, c.encoderHiddenSize + 1]))?.message.contains("text hidden states") == true)
        #expect(call(context: Tensor(zeros: [2, 77, c.encoderHiddenSize]))?.message.contains("text hidden states") == true)
        #expect(call(pooled: Tensor(zeros: [1, c.condEmbedDim + 1]))?.message.contains("pooled") == true)
        #expect(call(micro: [16, 16, 0, 0])?.message.contains("micro-conditioning") == true)
        // The mask id (vocab_size − 1) is a valid input; an odd grid is fine without downsampling.
        let tiny = try AmusedReference.transformer("tiny", precision: .f32)
        let logits = try tiny.logits(ids: [Int32](repeating: Int32(tiny.config.vocabSize - 1), count: 15), batch: 1,
                                     height: 3, width: 5, encoderHiddenStates: Tensor(zeros: [1, 5, 8]),
                                     pooledText: Tensor(zeros: [1, 8]), microConditioning: micro)
        #expect(logits.shape == [1, 15, tiny.config.codebookSize])
    }

    @Test func vqInputsAreChecked() throws {
        let vq = try AmusedReference.vq("tiny", precision: .f32)
        let outside = expectModelError { _ = try vq.decode(ids: [Int32(vq.codebookSize)], batch: 1, height: 1, width: 1) }
        #expect(outside?.message.contains("outside the codebook") == true)
        let count = expectModelError { _ = try vq.decode(ids: [0, 1, 2], batch: 1, height: 2, width: 2) }
        #expect(count?.message.contains("do not fill") == true)
        let channels = expectModelError { _ = try vq.encode(Tensor(zeros: [1, 8, 8, 4])) }
        #expect(channels?.message.contains("N×H×W×3") == true)
        let latents = expectModelError { _ = try vq.quantize(Tensor(zeros: [1, 2, 2, vq.config.embedDim + 1])) }
        #expect(latents?.message.contains("latents") == true)
    }

    /// The SD text encoders have no projection; asking for one says so.
    @Test func projectionNeedsItsWeights() throws {
        let model = try StableDiffusionModel.load(path: "\(Reference.root)/sd1-tiny")
        #expect(!model.textEncoder.hasProjection)
        let error = expectModelError { _ = try model.textEncoder.encodeWithProjection([[1, 2, 3]]) }
        #expect(error?.message.contains("text_projection") == true)
        let amused = try AmusedReference.textEncoder("tiny", precision: .f32)
        #expect(amused.hasProjection && amused.config.eosTokenId == 2)
    }

    /// transformers' pooled position: with eos_token_id 2 the first largest id, else the first
    /// eos_token_id (position 0 without one).
    @Test func pooledPositionFollowsTransformers() throws {
        #expect(CLIPTextModel.firstLargest([0, 5, 999, 3, 999, 1]) == 2)
        #expect(CLIPTextModel.firstLargest([7]) == 0)
        let encoder = try AmusedReference.textEncoder("tiny", precision: .f32)
        let (_, a) = try encoder.encodeWithProjection([[998, 5, 999, 999, 999]])
        let (_, b) = try encoder.encodeWithProjection([[998, 5, 999, 4, 4]])
        #expect(a.data == b.data)
    }
}
