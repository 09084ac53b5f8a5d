import ChiselCore
import ChiselDiffusion
import ChiselModels
import ChiselTensor

extension MaskGITScheduler.Schedule: ParamChoice {}

/// The masking schedule a masked-token stage uses.
public enum MaskingScheduleChoice: String, ParamChoice {
    /// The model's scheduler config (cosine for aMUSEd), or linear for masks from an image, as the
    /// inpainting pipeline sets it.
    case auto
    case cosine, linear
}

/// The parameters and conversions the masked-token (MVTM) stages share.
enum MaskedTokenParams {
    static let model = ModelInput("model", "An aMUSEd checkpoint from the graph's models section.")
    static let seed = Param<Seed>(
        seed: "seed",
        "Seed of PyTorch's CPU generator; -1 continues the tokens' stream, or draws a random seed (reported) when they carry none.")

    /// What validation knows of the aMUSEd model on the model input; a Stable Diffusion
    /// checkpoint there is reported. Nil when the model's configs cannot be read before loading.
    @discardableResult
    static func facts(_ check: inout StageCheck) -> AmusedFacts? {
        switch ModelFacts(check.source(of: model)) {
        case .amused(let facts)?:
            return facts
        case .stableDiffusion?:
            check.reject(input: model, "this stage takes an aMUSEd model; the model is a Stable Diffusion checkpoint "
                         + "(vae_encode, add_noise, denoise and vae_decode edit with it)", code: .model)
            return nil
        case .controlNet?, .t2iAdapter?:
            check.reject(input: model, "this stage takes an aMUSEd model; the model is a ControlNet", code: .model)
            return nil
        case nil:
            return nil
        }
    }

    static func amused(_ call: StageCall) throws -> AmusedModel {
        try call.model(model, as: AmusedModel.self)
    }

    /// The generator a stage draws from: a fresh one for an explicit seed, else the one the
    /// tokens carry, else one from a random seed (reported).
    static func generator(_ call: StageCall, continuing tokens: Tokens?) throws -> (TorchGenerator, UInt64) {
        if let seed = try call[Self.seed].value { return (TorchGenerator(seed: seed), seed) }
        if let stream = tokens?.maskGIT?.stream {
            guard let generator = stream.torchGenerator else {
                throw call.failure("the tokens carry a Philox stream; masked-token stages draw from PyTorch's CPU generator",
                                   code: .invalidParameter)
            }
            return (generator, stream.seed)
        }
        let drawn = RandomSeed.resolve(nil)
        call.context.note("seed \(drawn) (drawn at random)")
        call.context.record(Self.seed, .fixed(drawn))
        return (TorchGenerator(seed: drawn), drawn)
    }

    /// The grid's ids as the transformer reads them: the mask id where masked.
    static func modelIDs(_ tokens: Tokens, maskTokenID: Int) -> [Int] {
        zip(tokens.ids, tokens.masked).map { $1 ? maskTokenID : Int($0) }
    }

    /// Refuses a grid another VQ model made, or one the transformer's grid rules reject.
    static func checkFits(_ tokens: Tokens, _ amused: AmusedModel, call: StageCall, input: String) throws {
        guard tokens.codebookSize <= amused.transformer.config.vocabSize,
              tokens.codebookSize <= amused.vq.codebookSize else {
            throw call.failure("input '\(input)' holds ids of a \(tokens.codebookSize)-entry codebook; this model's VQ has "
                               + "\(amused.vq.codebookSize) and its transformer predicts \(amused.codebookSize): "
                               + "the tokens come from another model", code: .invalidParameter)
        }
        guard tokens.pixelsPerToken == amused.vq.scaleFactor else {
            throw call.failure("input '\(input)' has \(tokens.pixelsPerToken) pixels per token; this model's VQ has "
                               + "\(amused.vq.scaleFactor): the tokens come from another model", code: .invalidParameter)
        }
        if amused.transformer.config.downsample, tokens.width % 2 != 0 || tokens.height % 2 != 0 {
            throw call.failure("the \(tokens.width)×\(tokens.height) token grid must have even sides for this transformer "
                               + "(it halves the grid); use an image whose sides are multiples of \(2 * amused.vq.scaleFactor)",
                               code: .invalidParameter)
        }
    }
}

/// The transformer's logits for token grids under one conditioning: the prompt's (and, when
/// guided, the negative prompt's first) text states, and the micro-conditioning of the image
/// size, crop and aesthetic score, as the aMUSEd pipelines pass them.
struct AmusedLogits {
    let amused: AmusedModel
    let width: Int, height: Int
    let positive: (hidden: Tensor, pooled: Tensor)
    let negative: (hidden: Tensor, pooled: Tensor)?
    let microConditioning: [Float]
    let unguidedConditioning: UVit2DModel.Conditioning?
    let guidedConditioning: UVit2DModel.Conditioning?

    init(amused: AmusedModel, tokens: Tokens, conditioning: Conditioning?, guided: Bool, aestheticScore: Double,
         crop: (Int, Int), call: StageCall) throws {
        self.amused = amused
        width = tokens.width
        height = tokens.height
        func tensors(_ e: TextEmbedding, _ role: String) throws -> (hidden: Tensor, pooled: Tensor) {
            let config = amused.transformer.config
            guard e.shape[0] == 1, e.shape[2] == config.encoderHiddenSize,
                  let pooled = e.pooled, pooled.count == config.condEmbedDim else {
                throw call.failure("the \(role) conditioning is not an aMUSEd text encoding (\(e.shape[2])-wide states"
                                   + "\(e.pooled == nil ? ", no pooled embedding" : ""); the transformer takes "
                                   + "\(config.encoderHiddenSize) and a \(config.condEmbedDim)-wide pooled embedding): "
                                   + "encode the prompt with this model", code: .invalidParameter)
            }
            return (try Tensor(shape: e.shape, data: e.hiddenStates), try Tensor(shape: [1, pooled.count], data: pooled))
        }
        if let conditioning {
            positive = try tensors(conditioning.positive, "prompt")
            if guided {
                guard let negative = conditioning.negative else {
                    throw call.failure("guidance above 1 needs the negative prompt's encoding", code: .invalidParameter)
                }
                self.negative = try tensors(negative, "negative prompt")
            } else {
                negative = nil
            }
        } else {
            let empty = try amused.encodePrompts([""])
            positive = (empty.hiddenStates, empty.pooled)
            negative = guided ? positive : nil
        }
        let side = amused.vq.scaleFactor
        microConditioning = [Float(tokens.width * side), Float(tokens.height * side), Float(crop.0), Float(crop.1),
                             Float(aestheticScore)]
        // The text's keys and values and the adaptive norms' scales depend only on the conditioning:
        // made once for the whole decoding, not at every step.
        if let negative {
            unguidedConditioning = nil
            guidedConditioning = try amused.transformer.conditioning(
                encoderHiddenStates: Self.stack([negative.hidden, positive.hidden]),
                pooledText: Self.stack([negative.pooled, positive.pooled]),
                microConditioning: microConditioning + microConditioning)
        } else {
            unguidedConditioning = try amused.transformer.conditioning(encoderHiddenStates: positive.hidden, pooledText: positive.pooled,
                                                         microConditioning: microConditioning)
            guidedConditioning = nil
        }
    }

    /// Guided logits `u + s·(c − u)` of one grid's positions `rows`, rows × codebook, with the
    /// guidance applied before the transformer's last (linear) projection
    /// (`UVit2DModel.guidedLogits`): the same values up to rounding, for less work.
    func guided(_ grid: [Int], scale: Double, rows: [Int]) throws -> [Float] {
        guard let conditioning = guidedConditioning else {
            throw ChiselError(.internal, "no guided transformer conditioning")
        }
        let logits = try amused.transformer.guidedLogits(ids: grid.map { Int32($0) }, batch: 1, height: height, width: width,
                                                         conditioning: conditioning, guidanceScale: Float(scale), rows: rows).data
        try FiniteCheck.require(logits, network: "transformer", step: "its token logits")
        return logits
    }

    /// Logits (batch × tokens × codebook) for `batch` grids; a guided batch is [negative…, positive…].
    /// With `rows`, only those positions' (rows × codebook).
    func callAsFunction(_ grids: [Int], batch: Int, rows: [Int]? = nil) throws -> [Float] {
        let conditioning = batch == 2 && guidedConditioning != nil ? guidedConditioning : unguidedConditioning
        guard let conditioning, conditioning.batch == batch else {
            throw ChiselError(.internal, "no transformer conditioning for a batch of \(batch)")
        }
        let logits = try amused.transformer.logits(ids: grids.map { Int32($0) }, batch: batch, height: height, width: width,
                                                   conditioning: conditioning, rows: rows).data
        try FiniteCheck.require(logits, network: "transformer", step: "its token logits")
        return logits
    }

    static func stack(_ parts: [Tensor]) throws -> Tensor {
        guard var shape = parts.first?.shape else { throw ChiselError(.internal, "nothing to stack") }
        shape[0] = parts.reduce(0) { $0 + $1.shape[0] }
        return try Tensor(shape: shape, data: parts.flatMap(\.data))
    }
}
