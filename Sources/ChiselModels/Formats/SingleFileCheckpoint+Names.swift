/// The original (CompVis / Stability AI) tensor names of a single-file checkpoint → diffusers'
/// and transformers' names, as tables of rules (one per component).
extension SingleFileCheckpoint {
    /// Tensors of LDM checkpoints that no network reads: the training schedule's buffers and EMA counters.
    static let knownExtras: Set<String> = [
        "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
        "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
        "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2", "model_ema.decay",
        "model_ema.num_updates", "logvar",
    ]

    /// Inside a ResNet block: LDM's `in_layers`/`out_layers` sequences → diffusers' names.
    static let unetResnet = NameRules(unmatched: .keep, [
        .prefix("in_layers.0.", "norm1."), .prefix("in_layers.2.", "conv1."),
        .prefix("emb_layers.1.", "time_emb_proj."),
        .prefix("out_layers.0.", "norm2."), .prefix("out_layers.3.", "conv2."),
        .prefix("skip_connection.", "conv_shortcut."),
    ])

    /// `model.diffusion_model.*`. `input_blocks` count `layers + 1` entries per level (the last a
    /// downsampler, none after the last level); `output_blocks` count `layers + 1` per level.
    static func unetRules(layers: Int) -> NameRules {
        NameRules(unmatched: .drop, [.prefix(unetPrefix, "", inner: unetBlockRules(layers: layers))])
    }

    /// The UNet's names below `model.diffusion_model.` (what a ControlNet's copy of the encoder
    /// shares): `time_embed`, `label_emb`, `input_blocks`, `middle_block`, `output_blocks`, `out`.
    static func unetBlockRules(layers: Int) -> NameRules {
        let perLevel = layers + 1
        let down: @Sendable (Int) -> (level: Int, layer: Int) = { i in
            let (level, layer) = (i - 1).quotientAndRemainder(dividingBy: perLevel)
            return (level, layer)
        }
        let up: @Sendable (Int) -> (level: Int, layer: Int) = { i in
            let (level, layer) = i.quotientAndRemainder(dividingBy: perLevel)
            return (level, layer)
        }
        let blocks = NameRules(unmatched: .drop, [
            .prefix("time_embed.0.", "time_embedding.linear_1."), .prefix("time_embed.2.", "time_embedding.linear_2."),
            .prefix("label_emb.0.0.", "add_embedding.linear_1."), .prefix("label_emb.0.2.", "add_embedding.linear_2."),
            .prefix("out.0.", "conv_norm_out."), .prefix("out.2.", "conv_out."),
            .prefix("input_blocks.0.0.", "conv_in."),
            .prefix("input_blocks.#.0.op.") { i in
                let (level, layer) = down(i[0])
                return layer == layers ? "down_blocks.\(level).downsamplers.0.conv." : nil
            },
            .prefix("input_blocks.#.0.", inner: unetResnet) { i in
                let (level, layer) = down(i[0])
                return layer < layers ? "down_blocks.\(level).resnets.\(layer)." : nil
            },
            .prefix("input_blocks.#.1.") { i in
                let (level, layer) = down(i[0])
                return "down_blocks.\(level).attentions.\(layer)."
            },
            .prefix("middle_block.0.", "mid_block.resnets.0.", inner: unetResnet),
            .prefix("middle_block.1.", "mid_block.attentions.0."),
            .prefix("middle_block.2.", "mid_block.resnets.1.", inner: unetResnet),
            .prefix("output_blocks.#.0.", inner: unetResnet) { i in
                let (level, layer) = up(i[0])
                return "up_blocks.\(level).resnets.\(layer)."
            },
            // Upsamplers hold a `conv`; attention blocks never start with it.
            .prefix("output_blocks.#.#.conv.") { i in "up_blocks.\(up(i[0]).level).upsamplers.0.conv." },
            .prefix("output_blocks.#.#.") { i in
                let (level, layer) = up(i[0])
                return "up_blocks.\(level).attentions.\(layer)."
            },
        ])
        return blocks
    }

    /// A ControlNet in lllyasviel's layout (`control_model.` before every name in ControlNet
    /// 1.0's files, none in 1.1's): the UNet encoder's names, plus `input_hint_block` (the
    /// control-image embedding: convolutions at even indices, SiLU between, the last the
    /// embedding's output: 0, 2, …, 14 for the usual four widths), `zero_convs.N.0` and
    /// `middle_block_out.0`. `hintConvolutions` is the embedding's number of convolutions.
    static func controlNetRules(prefix: String, layers: Int, hintConvolutions: Int) -> NameRules {
        let own = NameRules(unmatched: .drop, [
            .prefix("input_hint_block.0.", "controlnet_cond_embedding.conv_in."),
            .prefix("input_hint_block.#.") { i in
                let n = i[0]
                guard n % 2 == 0, n > 0, n / 2 < hintConvolutions else { return nil }
                return n / 2 == hintConvolutions - 1 ? "controlnet_cond_embedding.conv_out." : "controlnet_cond_embedding.blocks.\(n / 2 - 1)."
            },
            .prefix("zero_convs.#.0.") { i in "controlnet_down_blocks.\(i[0])." },
            .prefix("middle_block_out.0.", "controlnet_mid_block."),
        ] + unetBlockRules(layers: layers).rules)
        return NameRules(unmatched: .drop, [.prefix(prefix, "", inner: own)])
    }

    /// A UNet module as kohya names it after the original checkpoints (`input_blocks_4_1_…`,
    /// `middle_block_0_in_layers_2`, `output_blocks_2_2_conv`, `label_emb_0_0`), as diffusers names
    /// it with `_` separators; nil for other names. `layers` is the UNet's layers per block.
    public static func diffusersModule(forOriginal module: String, layers: Int) -> String? {
        let parts = module.split(separator: "_", omittingEmptySubsequences: false).map(String.init)
        var dotted: String
        var rest: ArraySlice<String>
        func isIndex(_ i: Int) -> Bool { i < parts.count && Int(parts[i]) != nil }
        if parts.count >= 5, ["input", "output"].contains(parts[0]), parts[1] == "blocks", isIndex(2), isIndex(3) {
            dotted = "\(parts[0])_blocks.\(parts[2]).\(parts[3])."
            rest = parts[4...]
        } else if parts.count >= 4, parts[0] == "middle", parts[1] == "block", isIndex(2) {
            dotted = "middle_block.\(parts[2])."
            rest = parts[3...]
        } else if parts.count == 3, parts[0] == "time", parts[1] == "embed", isIndex(2) {
            dotted = "time_embed.\(parts[2])."
            rest = []
        } else if parts.count == 4, parts[0] == "label", parts[1] == "emb", isIndex(2), isIndex(3) {
            dotted = "label_emb.\(parts[2]).\(parts[3])."
            rest = []
        } else if parts.count == 2, parts[0] == "out", isIndex(1) {
            dotted = "out.\(parts[1])."
            rest = []
        } else {
            return nil
        }
        // The ResNet's sequences are indexed (`in_layers.2`); the rest keeps its own names.
        var inner = rest.joined(separator: "_")
        for sequence in ["in_layers", "out_layers", "emb_layers"] where inner.hasPrefix(sequence + "_") {
            inner = sequence + "." + inner.dropFirst(sequence.count + 1)
        }
        let stored = unetPrefix + dotted + (inner.isEmpty ? "" : inner + ".") + "weight"
        guard let renamed = unetRules(layers: layers).rename(stored).first?.name, renamed.hasSuffix(".weight") else { return nil }
        return String(renamed.dropLast(".weight".count)).replacingOccurrences(of: ".", with: "_")
    }

    static let vaeResnet = NameRules(unmatched: .keep, [.prefix("nin_shortcut.", "conv_shortcut.")])

    static let vaeAttention = NameRules(unmatched: .keep, [
        .prefix("norm.", "group_norm."), .prefix("q.", "to_q."), .prefix("k.", "to_k."), .prefix("v.", "to_v."),
        .prefix("proj_out.", "to_out.0."),
    ])

    /// `first_stage_model.*`; the decoder's `up` levels are numbered from the bottom in LDM and
    /// from the top in diffusers.
    static func vaeRules(levels: Int) -> NameRules {
        var rules: [NameRules.Rule] = []
        for part in ["encoder", "decoder"] {
            rules += [
                .prefix("\(part).norm_out.", "\(part).conv_norm_out."),
                .prefix("\(part).mid.block_1.", "\(part).mid_block.resnets.0.", inner: vaeResnet),
                .prefix("\(part).mid.block_2.", "\(part).mid_block.resnets.1.", inner: vaeResnet),
                .prefix("\(part).mid.attn_1.", "\(part).mid_block.attentions.0.", inner: vaeAttention),
            ]
        }
        rules += [
            .prefix("encoder.down.#.block.", inner: vaeBlocks) { i in "encoder.down_blocks.\(i[0]).resnets." },
            .prefix("encoder.down.#.downsample.") { i in "encoder.down_blocks.\(i[0]).downsamplers.0." },
            .prefix("decoder.up.#.block.", inner: vaeBlocks) { i in "decoder.up_blocks.\(levels - 1 - i[0]).resnets." },
            .prefix("decoder.up.#.upsample.") { i in "decoder.up_blocks.\(levels - 1 - i[0]).upsamplers.0." },
        ]
        return NameRules(unmatched: .drop, [.prefix(vaePrefix, "", inner: NameRules(unmatched: .keep, rules))])
    }

    /// `block.N.` inside a VAE level: the ResNet's own names.
    static let vaeBlocks = NameRules(unmatched: .keep, [.prefix("#.", inner: vaeResnet) { i in "\(i[0])." }])

    /// `cond_stage_model.transformer.*`: SD 1.x's CLIP in transformers' layout, with or without
    /// the `text_model.` level.
    static let clipRules = clipRules(prefix: clipPrefix)

    static func clipRules(prefix: String) -> NameRules {
        NameRules(unmatched: .drop, [
            .drop(prefix + "text_model.embeddings.position_ids"), .drop(prefix + "embeddings.position_ids"),
            .prefix(prefix + "text_model.", "text_model."),
            .prefix(prefix, "text_model."),
        ])
    }

    /// `cond_stage_model.model.*`: SD 2.x's OpenCLIP ViT-H, whose attention stores q, k and v
    /// stacked in one `in_proj`. SD 2.x conditions on the penultimate layer, so blocks from
    /// `layers` on are left out, as diffusers' conversion does.
    /// SDXL's OpenCLIP ViT-bigG under `prefix`: every layer, and `text_projection` (applied as
    /// x·P, so the Linear weight is its transpose).
    static func xlOpenCLIPRules(prefix: String) -> NameRules {
        var rules = openCLIPRules(layers: Int.max, prefix: prefix)
        rules.rules.insert(.transposed(prefix + "text_projection", "text_projection.weight"), at: 0)
        return rules
    }

    static func openCLIPRules(layers: Int, prefix: String = openCLIPPrefix) -> NameRules {
        let openCLIPPrefix = prefix
        let block = NameRules(unmatched: .drop, [
            .prefix("ln_1.", "layer_norm1."), .prefix("ln_2.", "layer_norm2."),
            .prefix("attn.out_proj.", "self_attn.out_proj."),
            .prefix("mlp.c_fc.", "mlp.fc1."), .prefix("mlp.c_proj.", "mlp.fc2."),
            .split("attn.in_proj_weight", into: ["self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"]),
            .split("attn.in_proj_bias", into: ["self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"]),
        ])
        return NameRules(unmatched: .drop, [
            .prefix(openCLIPPrefix + "token_embedding.weight", "text_model.embeddings.token_embedding.weight"),
            .prefix(openCLIPPrefix + "positional_embedding", "text_model.embeddings.position_embedding.weight"),
            .prefix(openCLIPPrefix + "ln_final.", "text_model.final_layer_norm."),
            .prefix(openCLIPPrefix + "transformer.resblocks.#.", inner: block) { i in
                i[0] < layers ? "text_model.encoder.layers.\(i[0])." : nil
            },
        ])
    }
}
