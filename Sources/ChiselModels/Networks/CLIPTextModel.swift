import ChiselBase
import ChiselTensor

/// transformers' `CLIPTextModel`: token and position embeddings, pre-norm transformer layers
/// with causal self-attention, and a final LayerNorm; with `text_projection` weights, also
/// `CLIPTextModelWithProjection`'s projection of the pooled state (aMUSEd's text encoder).
public final class CLIPTextModel: Sendable {
    public let config: CLIPTextConfig
    let tokenEmbedding: [Float], positionEmbedding: [Float]
    let layers: [Layer]
    let finalNorm: LayerNorm
    /// `text_projection` (no bias), when the weights have it.
    let projection: Linear?

    public var hasProjection: Bool { projection != nil }

    final class Layer: Sendable {
        let norm1: LayerNorm, attention: MultiHeadAttention
        let norm2: LayerNorm, fc1: Linear, fc2: Linear
        let activation: Activation

        init(_ w: ScopedWeights, config: CLIPTextConfig, precision: Precision) throws {
            let d = config.hiddenSize
            norm1 = try Load.layerNorm(w, "layer_norm1", features: d, epsilon: config.layerNormEpsilon)
            attention = try MultiHeadAttention(w.scoped("self_attn."), queryDim: d, contextDim: nil, heads: config.heads,
                                               precision: precision, names: ("q_proj", "k_proj", "v_proj", "out_proj"))
            norm2 = try Load.layerNorm(w, "layer_norm2", features: d, epsilon: config.layerNormEpsilon)
            fc1 = try Load.linear(w, "mlp.fc1", in: d, out: config.intermediateSize, precision: precision)
            fc2 = try Load.linear(w, "mlp.fc2", in: config.intermediateSize, out: d, precision: precision)
            activation = config.activation == .gelu ? .gelu : .quickGelu
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            let h = try attention(normalizing: norm1, x, residual: x, causal: true)
            return try fc2(activation(fc1.afterNorm(norm2, h)), adding: h)
        }
    }

    private init(extending model: CLIPTextModel, config: CLIPTextConfig, tokenEmbedding: [Float]) {
        self.config = config
        self.tokenEmbedding = tokenEmbedding
        positionEmbedding = model.positionEmbedding
        layers = model.layers
        finalNorm = model.finalNorm
        projection = model.projection
    }

    /// The same model with `rows` appended to its token embeddings, for token ids from
    /// `config.vocabSize` on (transformers' `resize_token_embeddings`, then the rows set, as
    /// diffusers' `load_textual_inversion` does).
    public func addingTokenEmbeddings(_ rows: [[Float]]) throws -> CLIPTextModel {
        var table = tokenEmbedding
        for row in rows {
            guard row.count == config.hiddenSize else {
                throw ChiselError(.model, "an embedding of \(row.count) values does not fit the text encoder's width \(config.hiddenSize)")
            }
            table += row
        }
        var extended = config
        extended.vocabSize += rows.count
        return CLIPTextModel(extending: self, config: extended, tokenEmbedding: table)
    }

    /// Weights named as transformers saves them (`text_model.…`, and `text_projection.weight` at
    /// the top level for `CLIPTextModelWithProjection`).
    public init(config: CLIPTextConfig, weights: any WeightStore, precision: Precision = .f32) throws {
        let w = weights.scoped("text_model.")
        self.config = config
        tokenEmbedding = try w.floats("embeddings.token_embedding.weight", shape: [config.vocabSize, config.hiddenSize])
        positionEmbedding = try w.floats("embeddings.position_embedding.weight",
                                         shape: [config.maxPositions, config.hiddenSize])
        layers = try (0..<config.layers).map { try Layer(w.scoped("encoder.layers.\($0)."), config: config, precision: precision) }
        finalNorm = try Load.layerNorm(w, "final_layer_norm", features: config.hiddenSize, epsilon: config.layerNormEpsilon)
        projection = weights.contains("text_projection.weight")
            ? try Load.linear(weights, "text_projection", in: config.hiddenSize, out: config.projectionDim,
                              precision: precision)
            : nil
    }

    /// The hidden states for `ids` (batch × length token ids).
    ///
    /// `skip` is diffusers' `clip_skip`: 0 returns the last layer's output after the final
    /// LayerNorm (`last_hidden_state`); k > 0 returns the output k layers before the last, also
    /// passed through the final LayerNorm, as `StableDiffusionPipeline.encode_prompt` does.
    public func encode(_ ids: [[Int]], skip: Int = 0) throws -> Tensor {
        guard (0..<config.layers).contains(skip) else {
            throw ChiselError(.invalidParameter, "clip skip \(skip) is outside 0..<\(config.layers)")
        }
        var x = try embed(ids)
        for layer in layers.prefix(config.layers - skip) { x = try layer(x) }
        return try finalNorm(x)
    }

    /// What aMUSEd's pipelines take from `CLIPTextModelWithProjection(ids, output_hidden_states=True)`:
    /// `hidden_states[-2]` (the input of the last layer, without the final LayerNorm; the
    /// embeddings for a one-layer model), batch × length × hidden, and `text_embeds`, the
    /// projection of the final-normed last state at the pooled position, batch × projectionDim.
    /// The pooled position is transformers' (`CLIPTextTransformer.forward`): with `eos_token_id`
    /// 2, the first position of the row's largest id; otherwise the first position holding
    /// `eos_token_id` (position 0 when there is none).
    ///
    /// `skip` > 0 takes `hidden_states[-(skip + 2)]` instead, as SDXL's pipelines do for `clip_skip`.
    public func encodeWithProjection(_ ids: [[Int]], skip: Int = 0) throws -> (penultimate: Tensor, textEmbeds: Tensor) {
        guard let projection else {
            throw ChiselError(.model, "this text encoder has no text_projection weights (not a CLIPTextModelWithProjection)")
        }
        let (penultimate, last) = try hiddenStates(ids, skip: skip)
        let x = last
        let d = config.hiddenSize, length = ids[0].count
        var pooled = Tensor(zeros: [ids.count, d])
        for (b, row) in ids.enumerated() {
            let position = config.eosTokenId == 2 ? Self.firstLargest(row) : row.firstIndex(of: config.eosTokenId) ?? 0
            let source = (b * length + position) * d
            pooled.data.replaceSubrange((b * d)..<((b + 1) * d), with: x.data[source..<(source + d)])
        }
        return (penultimate, try projection(finalNorm(pooled)))
    }

    /// `hidden_states[-(skip + 2)]` (no final LayerNorm) and the last layer's output, for `ids`:
    /// what SDXL's pipelines take from each text encoder.
    public func hiddenStates(_ ids: [[Int]], skip: Int = 0) throws -> (penultimate: Tensor, last: Tensor) {
        guard (0..<max(1, config.layers)).contains(skip) else {
            throw ChiselError(.invalidParameter, "clip skip \(skip) is outside 0..<\(config.layers)")
        }
        var x = try embed(ids)
        var penultimate = x
        for (i, layer) in layers.enumerated() {
            if i == layers.count - 1 - skip { penultimate = x }
            x = try layer(x)
        }
        return (penultimate, x)
    }

    /// `argmax`: the first position of the largest value.
    static func firstLargest(_ row: [Int]) -> Int {
        var best = 0
        for i in row.indices where row[i] > row[best] { best = i }
        return best
    }

    /// Token plus position embeddings of `ids` (batch × length), checked against the vocabulary
    /// and the positions.
    private func embed(_ ids: [[Int]]) throws -> Tensor {
        guard let length = ids.first?.count, length > 0, ids.allSatisfy({ $0.count == length }) else {
            throw ChiselError(.invalidParameter, "token id rows must be non-empty and of one length")
        }
        guard length <= config.maxPositions else {
            throw ChiselError(.invalidParameter, "\(length) tokens exceed the text encoder's \(config.maxPositions) positions")
        }
        let d = config.hiddenSize
        var x = Tensor(zeros: [ids.count, length, d])
        for (b, row) in ids.enumerated() {
            for (p, id) in row.enumerated() {
                guard id >= 0, id < config.vocabSize else {
                    throw ChiselError(.invalidParameter, "token id \(id) is outside the vocabulary of \(config.vocabSize)")
                }
                let dst = (b * length + p) * d
                for i in 0..<d { x.data[dst + i] = tokenEmbedding[id * d + i] + positionEmbedding[p * d + i] }
            }
        }
        return x
    }
}
