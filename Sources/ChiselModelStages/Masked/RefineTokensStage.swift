import Foundation
import ChiselCore
import ChiselDiffusion
import ChiselModels
import ChiselTensor

/// Mask-Predict refinement of any image's tokens with the aMUSEd transformer: every token scored
/// by the model's probability of it given the others, the least confident re-masked and
/// predicted again over a few rounds with a decreasing fraction, and the input's and the final
/// confidence given out as masks, so a graph can find an image's implausible regions with this model and
/// repaint them with another (Ghazvininejad et al. 2019; docs/mvtm.md).
public enum RefineTokensStage: Stage {
    public static let model = MaskedTokenParams.model
    public static let tokens = Input<Tokens>("tokens", "A complete token grid (vq_encode of any image, or predict_tokens).")
    public static let conditioning = OptionalInput<Conditioning>(
        "conditioning", "A prompt to judge the image against (encode_prompt with this model); unset uses the empty prompt.")
    public static let region = OptionalInput<Mask>(
        "region", "Where tokens may change (1), at the image's size, resized to the grid as mask_tokens does; unset: anywhere. The rest is context: scored and seen, never replaced.")
    public static let refined = Output<Tokens>("tokens", "The refined grid; each token's confidence is its final pseudo-likelihood.")
    public static let lowConfidence = Output<Mask>(
        "mask", "1 where the refined grid is still below the threshold (judged by neighbourhood), at the image's size: the regions to repaint.")
    public static let confidenceMap = Output<Mask>("confidence", "Each token's final confidence, at the image's size.")
    public static let found = Output<Mask>(
        "found", "1 where the input grid was below the threshold (judged by neighbourhood), at the image's size: where the model found the input implausible.")
    public static let changed = Output<Mask>(
        "changed", "1 where refinement replaced a token, at the image's size: where a composite over the input may show the decode.")
    public static let iterations = Param<Int>("iterations", default: 4, range: 1...100, "Refinement rounds (K).")
    public static let fraction = Param<Double>("fraction", default: 0.3, range: 0.001...1,
                                               "Fraction of the grid re-masked in the first round; round k re-masks fraction × (K − k) / K.")
    public static let threshold = Param<Double>("threshold", default: 0.01, range: 0...1,
                                                "Tokens at or above this confidence are never changed; neighbourhoods below it make the masks.")
    public static let neighbourhood = Param<Int>(
        "neighbourhood", default: 1, range: 0...8,
        "The masks judge each token by the geometric mean of the confidences within this many tokens of it; 0 by the token alone.")
    public static let scoringStride = Param<Int>(
        "scoring_stride", default: 2, range: 1...8,
        "Score tokens in stride² interleaved groups, each masked while the model sees the rest; 1 scores in one pass with nothing masked.")
    public static let temperature = Param<Double>("temperature", default: 0, range: 0...100,
                                                  "0 re-predicts the most probable token; above 0 samples at this temperature.")
    public static let evidence = Param<Double>(
        "evidence", default: 1, range: 0...1000,
        "How much a re-predicted token keeps to the input's: each id's logit lowered by evidence × its codebook vector's squared distance to the input token's (over the codebook's mean). 0: plain Mask-Predict.")
    public static let guidance = Param<Double>("guidance", default: 1, range: 0...100,
                                               "Classifier-free guidance on the logits (with a conditioning); ≤ 1 unguided.")
    public static let aestheticScore = PredictTokensStage.aestheticScore
    public static let seed = MaskedTokenParams.seed

    public static let schema = StageSchema(
        "refine_tokens", "Mask-Predict refinement of a token grid: score, re-mask the least confident and re-predict; output the confidence as masks.",
        inputs: [model, tokens, conditioning, region], outputs: [refined, lowConfidence, confidenceMap, found, changed],
        params: [iterations, fraction, threshold, neighbourhood, evidence, scoringStride, temperature, guidance, aestheticScore, seed])

    public static func validate(_ check: inout StageCheck) throws {
        MaskedTokenParams.facts(&check)
    }

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let amused = try MaskedTokenParams.amused(call)
        let grid = try call[tokens]
        try MaskedTokenParams.checkFits(grid, amused, call: call, input: Self.tokens.name)
        guard grid.maskedCount == 0 else {
            throw call.failure("\(grid.maskedCount) tokens are masked; refinement needs a complete grid (predict_tokens first)",
                               code: .invalidParameter)
        }
        guard grid.ids.allSatisfy({ Int($0) < amused.codebookSize }) else {
            throw call.failure("the grid holds ids past the transformer's codebook of \(amused.codebookSize)",
                               code: .invalidParameter)
        }
        let refinement = try MaskPredictRefinement(
            iterations: call[iterations], initialFraction: call[fraction], threshold: Float(call[threshold]),
            scoringStride: call[scoringStride], temperature: Float(call[temperature]), neighbourhood: call[neighbourhood],
            evidence: Float(call[evidence]))
        let guided = try call[guidance] > 1
        let scale = Float(try call[guidance])
        let logits = try AmusedLogits(amused: amused, tokens: grid, conditioning: try call[conditioning], guided: guided,
                                      aestheticScore: try call[aestheticScore], crop: (0, 0), call: call)
        // Only sampling draws: a most-probable refinement neither needs nor reports a seed.
        var (generator, seed) = try call[temperature] > 0
            ? MaskedTokenParams.generator(call, continuing: grid)
            : (grid.maskGIT?.stream?.torchGenerator ?? TorchGenerator(seed: 0), grid.maskGIT?.stream?.seed ?? 0)
        let allowed = try call[region].map { TokenMask.flags($0, width: grid.width, height: grid.height) }
        let result = try refinement.run(
            tokens: grid.ids.map(Int.init), width: grid.width, height: grid.height, codebookSize: amused.codebookSize,
            maskTokenID: amused.maskTokenID, region: allowed, codebook: amused.vq.codebook, generator: &generator,
            logits: { input in
                guard guided else { return try logits(input, batch: 1) }
                return Ops.guided(try logits(input + input, batch: 2), scale: scale)
            },
            progress: { done, total in call.context.progress(completed: done, total: total) })
        Allocator.releaseWorkBuffers()
        call.context.note(String(format: "refined %d tokens in %d rounds; mean log-likelihood %.3f → %.3f",
                                 result.changedCount, result.rounds.count, result.initialLogLikelihood, result.logLikelihood))
        var out = grid
        out.ids = result.tokens.map { Int32($0) }
        out.confidence = result.confidence.map { min(1, max(0, $0)) }
        var state = grid.maskGIT ?? MaskGITState()
        if try call[temperature] > 0 { state.stream = NoiseStream(continuing: generator, seed: seed) }
        state.plan = nil
        out.state = state
        let limit = Float(try call[threshold])
        let radius = try call[neighbourhood]
        func below(_ confidence: [Float]) throws -> Mask {
            let judged = MaskPredictRefinement.neighbourhoodConfidence(confidence, width: out.width, height: out.height,
                                                                       radius: radius)
            return try VQPixels.mask(judged.map { $0 < limit ? 1 : 0 }, tokens: out)
        }
        let low = try below(out.confidence)
        let implausible = try below(result.initialConfidence)
        let replaced = try VQPixels.mask(zip(grid.ids, out.ids).map { $0 == $1 ? 0 : 1 }, tokens: out)
        return [refined(out), lowConfidence(low), confidenceMap(try VQPixels.mask(out.confidence, tokens: out)),
                found(implausible), changed(replaced)]
    }
}
