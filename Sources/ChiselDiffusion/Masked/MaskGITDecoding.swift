import ChiselBase
import ChiselTensor

/// One MaskGIT decoding run, as the caller iterates it: ask `modelInput` for the tokens to give
/// the transformer, hand its logits to `step`, until `isFinished`. This is the loop of diffusers'
/// `AmusedPipeline`, `AmusedImg2ImgPipeline` and `AmusedInpaintPipeline`: steps `startStep..<N`
/// of the scheduler, classifier-free guidance on the logits when `guidance > 1` (the model sees
/// `[tokens (unconditional), tokens (conditional)]` and `u + s·(c − u)` goes to the scheduler),
/// and every draw from one generator.
public struct MaskGITDecoding: Sendable {
    public let scheduler: MaskGITScheduler
    public let codebookSize: Int
    public let batch: Int
    public let guidance: Double
    public let startingMaskRatio: Double
    /// The grid, batch × tokens, row-major; the scheduler's mask id where still unknown.
    public private(set) var tokens: [Int]
    /// The next step to run (0-based, of `scheduler.stepCount`).
    public private(set) var stepIndex: Int
    /// The first step this run takes.
    public let startStep: Int
    /// Each run step's sampled (or kept) tokens, the last one being the result.
    public private(set) var predicted: [Int]
    /// The probability each token had when it was sampled and kept (1 for the tokens that were
    /// known from the start).
    public private(set) var confidence: [Float]

    /// `scheduler` must have its timesteps set. `tokens` holds `batch` grids, with
    /// `scheduler.maskTokenID` where a token is to be predicted.
    public init(scheduler: MaskGITScheduler, tokens: [Int], batch: Int, codebookSize: Int, startStep: Int = 0,
                guidance: Double, startingMaskRatio: Double = 1) throws {
        guard scheduler.stepCount >= 1 else {
            throw ChiselError(.invalidParameter, "MaskGIT decoding needs at least one step")
        }
        guard (0...scheduler.stepCount).contains(startStep) else {
            throw ChiselError(.invalidParameter, "start step \(startStep) is outside 0…\(scheduler.stepCount)")
        }
        guard batch > 0, !tokens.isEmpty, tokens.count % batch == 0 else {
            throw ChiselError(.invalidParameter, "\(tokens.count) tokens do not split into \(batch) grids")
        }
        guard codebookSize > 0 else { throw ChiselError(.invalidParameter, "the codebook is empty") }
        self.scheduler = scheduler
        self.tokens = tokens
        self.predicted = tokens
        self.confidence = tokens.map { $0 == scheduler.maskTokenID ? 0 : 1 }
        self.batch = batch
        self.codebookSize = codebookSize
        self.stepIndex = startStep
        self.startStep = startStep
        self.guidance = guidance
        self.startingMaskRatio = startingMaskRatio
    }

    public var isGuided: Bool { guidance > 1 }
    public var isFinished: Bool { stepIndex >= scheduler.stepCount }
    /// The steps this run takes in all.
    public var stepsToRun: Int { scheduler.stepCount - startStep }
    /// How many steps have run.
    public var completedSteps: Int { stepIndex - startStep }

    /// The tokens for the transformer this step: the grid, twice over when guided
    /// (unconditional rows first, as the reference concatenates its embeddings), and the
    /// positions of that batch whose logits the step reads (the masked ones, in each copy).
    public var modelInput: (tokens: [Int], batch: Int, rows: [Int]) {
        let masked = MaskGITScheduler.maskedPositions(tokens, maskTokenID: scheduler.maskTokenID)
        return isGuided ? (tokens + tokens, 2 * batch, masked + masked.map { $0 + tokens.count }) : (tokens, batch, masked)
    }

    /// Runs the current step on the transformer's `logits` for every position of `modelInput`
    /// (its batch × tokens × codebook, row-major), drawing from `generator`.
    public mutating func step(logits: [Float], generator: inout TorchGenerator) throws {
        let input = modelInput
        guard logits.count == input.tokens.count * codebookSize else {
            throw ChiselError(.internal, "MaskGIT step: \(logits.count) logits, expected \(input.tokens.count * codebookSize)")
        }
        try step(maskedLogits: input.rows.flatMap { logits[($0 * codebookSize)..<(($0 + 1) * codebookSize)] },
                 generator: &generator)
    }

    /// Runs the current step on the logits of `modelInput.rows` only (rows × codebook, in that
    /// order): what the step reads of the full logits, the same values.
    public mutating func step(maskedLogits logits: [Float], generator: inout TorchGenerator) throws {
        guard !isFinished else { throw ChiselError(.internal, "MaskGIT decoding has already finished") }
        let rows = MaskGITScheduler.maskedPositions(tokens, maskTokenID: scheduler.maskTokenID).count * (isGuided ? 2 : 1)
        guard logits.count == rows * codebookSize else {
            throw ChiselError(.internal, "MaskGIT step: \(logits.count) logits for \(rows) rows of \(codebookSize)")
        }
        let guided: [Float]
        if isGuided {
            guided = Ops.guided(logits, scale: Float(guidance))
        } else {
            guided = logits
        }
        try advance(guided, generator: &generator)
    }

    /// Runs the current step on logits the caller has already guided (`u + s·(c − u)`, e.g. by
    /// `UVit2DModel.guidedLogits`), for the masked positions of one copy of the grid.
    public mutating func step(guidedMaskedLogits logits: [Float], generator: inout TorchGenerator) throws {
        guard !isFinished else { throw ChiselError(.internal, "MaskGIT decoding has already finished") }
        let rows = MaskGITScheduler.maskedPositions(tokens, maskTokenID: scheduler.maskTokenID).count
        guard logits.count == rows * codebookSize else {
            throw ChiselError(.internal, "MaskGIT step: \(logits.count) guided logits for \(rows) rows of \(codebookSize)")
        }
        try advance(logits, generator: &generator)
    }

    private mutating func advance(_ guided: [Float], generator: inout TorchGenerator) throws {
        let output = try KernelProfile.measure("maskgit step \(tokens.count)×\(codebookSize)") {
            try scheduler.step(maskedLogits: guided, codebookSize: codebookSize, tokens: tokens, batch: batch,
                               stepIndex: stepIndex, startingMaskRatio: startingMaskRatio, generator: &generator)
        }
        for i in tokens.indices where tokens[i] == scheduler.maskTokenID && output.tokens[i] != scheduler.maskTokenID {
            confidence[i] = output.probabilities[i]
        }
        tokens = output.tokens
        predicted = output.predicted
        stepIndex += 1
    }
}
