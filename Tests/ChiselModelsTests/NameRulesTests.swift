import Testing

@testable import ChiselModels

/// The single-file renaming tables, rule by rule, on names from real SD 1.x/2.x checkpoints
/// (the parity tests check whole files end to end).
@Suite struct NameRulesTests {
    static func names(_ rules: NameRules, _ stored: String) -> [String] { rules.rename(stored).map(\.name) }

    @Test(arguments: [
        ("model.diffusion_model.time_embed.0.weight", "time_embedding.linear_1.weight"),
        ("model.diffusion_model.input_blocks.0.0.bias", "conv_in.bias"),
        ("model.diffusion_model.input_blocks.1.0.in_layers.0.weight", "down_blocks.0.resnets.0.norm1.weight"),
        ("model.diffusion_model.input_blocks.2.1.proj_in.weight", "down_blocks.0.attentions.1.proj_in.weight"),
        ("model.diffusion_model.input_blocks.3.0.op.weight", "down_blocks.0.downsamplers.0.conv.weight"),
        ("model.diffusion_model.input_blocks.4.0.skip_connection.weight", "down_blocks.1.resnets.0.conv_shortcut.weight"),
        ("model.diffusion_model.middle_block.2.out_layers.3.weight", "mid_block.resnets.1.conv2.weight"),
        ("model.diffusion_model.output_blocks.2.1.conv.weight", "up_blocks.0.upsamplers.0.conv.weight"),
        ("model.diffusion_model.output_blocks.5.2.conv.bias", "up_blocks.1.upsamplers.0.conv.bias"),
        ("model.diffusion_model.output_blocks.4.1.norm.weight", "up_blocks.1.attentions.1.norm.weight"),
        ("model.diffusion_model.out.2.weight", "conv_out.weight"),
    ])
    func unetNamesFollowSD15sLayout(stored: String, expected: String) {
        #expect(Self.names(SingleFileCheckpoint.unetRules(layers: 2), stored) == [expected])
    }

    @Test func vaeDecoderLevelsAreReversed() {
        let rules = SingleFileCheckpoint.vaeRules(levels: 4)
        #expect(Self.names(rules, "first_stage_model.decoder.up.3.block.0.conv1.weight") == ["decoder.up_blocks.0.resnets.0.conv1.weight"])
        #expect(Self.names(rules, "first_stage_model.decoder.up.0.upsample.conv.weight") == ["decoder.up_blocks.3.upsamplers.0.conv.weight"])
        #expect(Self.names(rules, "first_stage_model.encoder.down.1.block.0.nin_shortcut.weight")
                == ["encoder.down_blocks.1.resnets.0.conv_shortcut.weight"])
        #expect(Self.names(rules, "first_stage_model.encoder.mid.attn_1.proj_out.bias") == ["encoder.mid_block.attentions.0.to_out.0.bias"])
        #expect(Self.names(rules, "first_stage_model.quant_conv.weight") == ["quant_conv.weight"])
        #expect(Self.names(rules, "model.diffusion_model.out.2.weight").isEmpty)
    }

    @Test func openCLIPSplitsFusedProjectionsAndDropsTheLastBlock() {
        let rules = SingleFileCheckpoint.openCLIPRules(layers: 23)
        let parts = rules.rename("cond_stage_model.model.transformer.resblocks.4.attn.in_proj_weight")
        #expect(parts == [
            WeightName(name: "text_model.encoder.layers.4.self_attn.q_proj.weight", part: 0, of: 3),
            WeightName(name: "text_model.encoder.layers.4.self_attn.k_proj.weight", part: 1, of: 3),
            WeightName(name: "text_model.encoder.layers.4.self_attn.v_proj.weight", part: 2, of: 3),
        ])
        #expect(rules.rename("cond_stage_model.model.transformer.resblocks.23.ln_1.weight").isEmpty)
        #expect(Self.names(rules, "cond_stage_model.model.ln_final.bias") == ["text_model.final_layer_norm.bias"])
        #expect(rules.rename("cond_stage_model.model.text_projection").isEmpty)
    }

    @Test func clipDropsPositionIDs() {
        let rules = SingleFileCheckpoint.clipRules
        #expect(rules.rename("cond_stage_model.transformer.text_model.embeddings.position_ids").isEmpty)
        #expect(Self.names(rules, "cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight")
                == ["text_model.encoder.layers.0.mlp.fc1.weight"])
        #expect(Self.names(rules, "cond_stage_model.transformer.final_layer_norm.weight") == ["text_model.final_layer_norm.weight"])
    }
}
