import ChiselBase
import ChiselTensor

/// diffusers' `UVit2DModel`, aMUSEd's transformer: token embeddings of a grid of VQ ids, a
/// `UVitBlock` down, `num_hidden_layers` adaptive-norm transformer layers over the (possibly
/// halved) grid, a `UVitBlock` up, and logits over the codebook for every token. Conditioning
/// is the projected, RMS-normed text hidden states (cross-attention) and a vector from the
/// pooled text and the micro-conditioning (adaptive norms and ConvNeXt modulation).
public final class UVit2DModel: Sendable {
    public let config: UVit2DConfig
    let encoderProjection: Linear, encoderNorm: RMSNorm
    /// `embed.embeddings.weight`, vocabSize × inChannels.
    let embedding: [Float]
    let embeddingNorm: RMSNorm, embeddingConv: Linear
    let conditionLinear1: Linear, conditionLinear2: Linear
    let downBlock: UVitBlock
    let toHiddenNorm: RMSNorm, toHidden: Linear
    let layers: [AdaNormTransformerBlock]
    let fromHiddenNorm: RMSNorm, fromHidden: Linear
    let upBlock: UVitBlock
    let mlmConv1: Linear, mlmNorm: RMSNorm, mlmConv2: Linear

    /// Weights named as diffusers saves them (`encoder_proj`, `embed.…`, `cond_embed.…`,
    /// `down_block.…`, `transformer_layers.{i}.…`, `up_block.…`, `mlm_layer.…`); biases are
    /// read where stored (`use_bias`).
    public init(config: UVit2DConfig, weights w: any WeightStore, precision: Precision = .f32) throws {
        self.config = config
        let hidden = config.hiddenSize, c = config.blockOutChannels, eps = config.layerNormEpsilon
        let affine = config.elementwiseAffine
        encoderProjection = try Load.linear(w, "encoder_proj", in: config.encoderHiddenSize, out: hidden,
                                            precision: precision)
        encoderNorm = try Load.rmsNorm(w, "encoder_proj_layer_norm", features: hidden, epsilon: eps, affine: affine)
        embedding = try w.floats("embed.embeddings.weight", shape: [config.vocabSize, config.inChannels])
        embeddingNorm = try Load.rmsNorm(w, "embed.layer_norm", features: config.inChannels, epsilon: eps, affine: affine)
        embeddingConv = try Load.linear(w, "embed.conv", in: config.inChannels, out: c, precision: precision)
        conditionLinear1 = try Load.linear(w, "cond_embed.linear_1", in: config.condEmbedDim + config.microCondEmbedDim,
                                           out: hidden, precision: precision)
        conditionLinear2 = try Load.linear(w, "cond_embed.linear_2", in: hidden, out: hidden, precision: precision)
        downBlock = try UVitBlock(w.scoped("down_block."), config: config, downsample: config.downsample, upsample: false,
                                  precision: precision)
        toHiddenNorm = try Load.rmsNorm(w, "project_to_hidden_norm", features: c, epsilon: eps, affine: affine)
        toHidden = try Load.linear(w, "project_to_hidden", in: c, out: hidden, precision: precision)
        layers = try (0..<config.layers).map {
            try AdaNormTransformerBlock(w.scoped("transformer_layers.\($0)."), config: config, precision: precision)
        }
        fromHiddenNorm = try Load.rmsNorm(w, "project_from_hidden_norm", features: hidden, epsilon: eps, affine: affine)
        fromHidden = try Load.linear(w, "project_from_hidden", in: hidden, out: c, precision: precision)
        upBlock = try UVitBlock(w.scoped("up_block."), config: config, downsample: false, upsample: config.upsample,
                                precision: precision)
        mlmConv1 = try Load.linear(w, "mlm_layer.conv1", in: c, out: config.inChannels, precision: precision)
        mlmNorm = try Load.rmsNorm(w, "mlm_layer.layer_norm", features: config.inChannels, epsilon: eps, affine: affine)
        mlmConv2 = try Load.linear(w, "mlm_layer.conv2", in: config.inChannels, out: config.codebookSize,
                                   precision: precision)
    }

    /// What the transformer takes from the text and micro-conditioning, made once and reused
    /// for every step of a decoding: the text states projected and normed, the cross-attention
    /// keys and values of every block and layer, and every adaptive norm's scale and shift.
    public struct Conditioning: Sendable {
        public let batch: Int
        let down: UVitBlock.Prepared
        let layers: [AdaNormTransformerBlock.Prepared]
        let up: UVitBlock.Prepared
    }

    /// The conditioning for `batch` images: `encoderHiddenStates` is batch × S ×
    /// encoder_hidden_size (CLIP's penultimate hidden states), `pooledText` batch ×
    /// cond_embed_dim (CLIP's `text_embeds`), `microConditioning` batch × 5 row-major: width,
    /// height, crop top, crop left, aesthetic score of each image (diffusers' order).
    public func conditioning(encoderHiddenStates: Tensor, pooledText: Tensor, microConditioning: [Float]) throws
        -> Conditioning
    {
        let batch = pooledText.rank == 2 ? pooledText.shape[0] : 0
        try check(batch: batch, encoderHiddenStates: encoderHiddenStates, pooledText: pooledText,
                  microConditioning: microConditioning)
        let context = try encoderNorm(encoderProjection(encoderHiddenStates))
        let condition = try Activation.silu(conditionVector(pooledText: pooledText, microConditioning: microConditioning))
        return Conditioning(batch: batch, down: try downBlock.prepare(condition: condition, context: context),
                            layers: try layers.map { try $0.prepare(condition: condition, context: context) },
                            up: try upBlock.prepare(condition: condition, context: context))
    }

    /// `UVit2DModel.forward`'s logits for `batch` grids of height × width token ids (row-major
    /// (b, y, x), each below `vocab_size`; the mask id included), as batch × (height·width) ×
    /// codebookSize, channels-last: row b·h·w + y·w + x holds that token's logits over the
    /// codebook (diffusers returns the same values as B×V×h×w). The conditioning inputs are as
    /// for `conditioning(encoderHiddenStates:pooledText:microConditioning:)`.
    public func logits(ids: [Int32], batch: Int, height: Int, width: Int, encoderHiddenStates: Tensor,
                       pooledText: Tensor, microConditioning: [Float]) throws -> Tensor {
        try check(ids: ids, batch: batch, height: height, width: width)
        defer { Allocator.releaseWorkBuffers() }
        let prepared = try conditioning(encoderHiddenStates: encoderHiddenStates, pooledText: pooledText,
                                        microConditioning: microConditioning)
        return try logits(ids: ids, batch: batch, height: height, width: width, conditioning: prepared)
    }

    /// The logits with conditioning made beforehand (the same values as the call that makes it).
    /// With `rows` (positions of the batch × height·width grid, row-major), only those positions'
    /// logits, rows.count × codebookSize: the MLM head works per position, so they are the same
    /// values for less work (MaskGIT samples only the masked positions).
    public func logits(ids: [Int32], batch: Int, height: Int, width: Int, conditioning: Conditioning,
                       rows: [Int]? = nil) throws -> Tensor {
        try check(ids: ids, batch: batch, height: height, width: width)
        guard conditioning.batch == batch else {
            throw ChiselError(.invalidParameter, "conditioning for \(conditioning.batch) images used for a batch of \(batch)")
        }
        defer { Allocator.releaseWorkBuffers() }
        var h = try embeddingConv.afterNorm(embeddingNorm, embed(ids, batch: batch, height: height, width: width))
        h = try downBlock(h, conditioning.down)
        let (gridHeight, gridWidth, c) = (h.shape[1], h.shape[2], h.shape[3])
        var tokens = try toHidden.afterNorm(toHiddenNorm, h.reshaped([batch, gridHeight * gridWidth, c]))
        for (layer, prepared) in zip(layers, conditioning.layers) { tokens = try layer(tokens, prepared) }
        h = try fromHidden.afterNorm(fromHiddenNorm, tokens).reshaped([batch, gridHeight, gridWidth, c])
        h = try upBlock(h, conditioning.up)
        if let rows {
            try Self.checkRows(rows, positions: batch * height * width)
            return try mlmConv2.afterNorm(mlmNorm, mlmConv1(pickRows(h, rows)))
        }
        let logits = try mlmConv2.afterNorm(mlmNorm, mlmConv1(h))
        return try logits.reshaped([batch, height * width, config.codebookSize])
    }

    /// Classifier-free-guided logits, `uncond + guidanceScale · (cond − uncond)`, for `batch`
    /// grids of token ids that both halves of a guidance batch share, as diffusers' aMUSEd
    /// pipelines run them (`cat([latents, latents])`): `conditioning` is for 2·batch images, the
    /// unconditional ones first. Returns batch × (height·width) × codebookSize.
    ///
    /// The same values as combining `logits(…)` of the doubled batch, up to rounding, with less
    /// work: the layers before the first modulation run once per grid, and the guidance is
    /// applied before the last (linear) projection, which then runs for one half only.
    /// With `rows` (positions of the batch × height·width grid), only those positions' logits,
    /// rows.count × codebookSize.
    public func guidedLogits(ids: [Int32], batch: Int, height: Int, width: Int, conditioning: Conditioning,
                             guidanceScale: Float, rows: [Int]? = nil) throws -> Tensor {
        try check(ids: ids, batch: batch, height: height, width: width)
        guard conditioning.batch == 2 * batch else {
            throw ChiselError(.invalidParameter,
                              "guidance needs conditioning for \(2 * batch) images (unconditional, then conditional), "
                              + "got \(conditioning.batch)")
        }
        defer { Allocator.releaseWorkBuffers() }
        let pair = 2 * batch
        var h = try embeddingConv.afterNorm(embeddingNorm, embed(ids, batch: batch, height: height, width: width))
        h = try downBlock(h, conditioning.down, repeats: 2)
        let (gridHeight, gridWidth, c) = (h.shape[1], h.shape[2], h.shape[3])
        var tokens = try toHidden.afterNorm(toHiddenNorm, h.reshaped([pair, gridHeight * gridWidth, c]))
        for (layer, prepared) in zip(layers, conditioning.layers) { tokens = try layer(tokens, prepared) }
        h = try fromHidden.afterNorm(fromHiddenNorm, tokens).reshaped([pair, gridHeight, gridWidth, c])
        h = try upBlock(h, conditioning.up)
        if let rows {
            // The first half's rows, then the same rows of the second half.
            let positions = batch * height * width
            try Self.checkRows(rows, positions: positions)
            let picked = try pickRows(h, rows + rows.map { $0 + positions })
            return try mlmConv2(Ops.guided(mlmNorm(mlmConv1(picked)).reshaped([2, rows.count, config.inChannels]),
                                           scale: guidanceScale).reshaped([rows.count, config.inChannels]))
        }
        let guided = try Ops.guided(mlmNorm(mlmConv1(h)), scale: guidanceScale)
        return try mlmConv2(guided).reshaped([batch, height * width, config.codebookSize])
    }

    /// `cond_embed` of [pooled text | micro-conditioning embedding], batch × hidden_size: the
    /// micro-conditioning values embedded by `get_timestep_embedding` (cosines first, no shift)
    /// and laid side by side per sample, then Linear → SiLU → Linear.
    func conditionVector(pooledText: Tensor, microConditioning: [Float]) throws -> Tensor {
        let batch = pooledText.shape[0], pooledWidth = config.condEmbedDim, microWidth = config.microCondEmbedDim
        let micro = SinusoidalEmbedding.embed(microConditioning, dim: config.microCondEncodeDim, flipSinToCos: true)
        var joined = Tensor(uninitialized: [batch, pooledWidth + microWidth])
        for b in 0..<batch {
            let row = b * (pooledWidth + microWidth)
            joined.data.replaceSubrange(row..<(row + pooledWidth),
                                        with: pooledText.data[(b * pooledWidth)..<((b + 1) * pooledWidth)])
            joined.data.replaceSubrange((row + pooledWidth)..<(row + pooledWidth + microWidth),
                                        with: micro.data[(b * microWidth)..<((b + 1) * microWidth)])
        }
        return try conditionLinear2(Activation.silu(conditionLinear1(joined)))
    }

    /// The positions `rows` of a N×H×W×C map (its (n, y, x) rows, row-major), rows.count × C.
    private func pickRows(_ h: Tensor, _ rows: [Int]) throws -> Tensor {
        let width = h.shape[h.rank - 1]
        var picked = Tensor(uninitialized: [rows.count, width])
        for (k, row) in rows.enumerated() {
            picked.data.replaceSubrange((k * width)..<((k + 1) * width), with: h.data[(row * width)..<((row + 1) * width)])
        }
        return picked
    }

    private static func checkRows(_ rows: [Int], positions: Int) throws {
        guard rows.allSatisfy({ (0..<positions).contains($0) }) else {
            throw ChiselError(.invalidParameter, "logit rows must lie in 0..<\(positions)")
        }
    }

    /// The embedding rows of the ids, batch × height × width × in_channels.
    private func embed(_ ids: [Int32], batch: Int, height: Int, width: Int) throws -> Tensor {
        let d = config.inChannels
        var out = Tensor(uninitialized: [batch, height, width, d])
        for (p, id) in ids.enumerated() {
            out.data.replaceSubrange((p * d)..<((p + 1) * d), with: embedding[(Int(id) * d)..<((Int(id) + 1) * d)])
        }
        return out
    }

    private func check(ids: [Int32], batch: Int, height: Int, width: Int) throws {
        func fail(_ message: String) -> ChiselError { ChiselError(.invalidParameter, message) }
        guard batch > 0, height > 0, width > 0, ids.count == batch * height * width else {
            throw fail("\(ids.count) token ids do not fill \(batch) grids of \(height)×\(width)")
        }
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= config.vocabSize }) {
            throw fail("token id \(bad) is outside the transformer's vocabulary of \(config.vocabSize)")
        }
        if config.downsample, height % 2 != 0 || width % 2 != 0 {
            throw fail("a \(height)×\(width) token grid cannot be halved: this transformer downsamples, so both sides must be even")
        }
    }

    private func check(batch: Int, encoderHiddenStates: Tensor, pooledText: Tensor, microConditioning: [Float]) throws {
        func fail(_ message: String) -> ChiselError { ChiselError(.invalidParameter, message) }
        guard pooledText.shape == [batch, config.condEmbedDim], batch > 0 else {
            throw fail("pooled text embeddings must be N×\(config.condEmbedDim), got \(pooledText.shape)")
        }
        guard encoderHiddenStates.rank == 3, encoderHiddenStates.shape[0] == batch,
            encoderHiddenStates.shape[1] > 0, encoderHiddenStates.shape[2] == config.encoderHiddenSize
        else {
            throw fail("text hidden states must be \(batch)×S×\(config.encoderHiddenSize), got \(encoderHiddenStates.shape)")
        }
        guard microConditioning.count == batch * UVit2DConfig.microConditions else {
            throw fail("micro-conditioning needs \(UVit2DConfig.microConditions) values per image (\(batch * 5)), "
                       + "got \(microConditioning.count)")
        }
    }
}
