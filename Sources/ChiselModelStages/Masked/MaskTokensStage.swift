import ChiselCore
import ChiselDiffusion
import ChiselModels
import ChiselStages

/// Chooses which tokens of a grid to predict again, and where decoding starts:
///
/// - `mask`: the tokens a mask image covers, as aMUSEd's inpainting pipeline does (the mask
///   resized to the token grid with a Lanczos filter and binarised at 0.5; the linear schedule,
///   scaled by the masked fraction; `strength` sets the first step). No draw.
/// - `strength`: a random fraction from the seed, as aMUSEd's img2img pipeline does
///   (`scheduler.add_noise` at step `N − int(N × strength)` of `steps`: each token masked where
///   a uniform draw falls below the schedule's mask ratio there).
/// - `confidence`: the tokens whose confidence is below `threshold` (after `refine_tokens` or
///   `predict_tokens`), planned like a mask.
public enum MaskTokensStage: Stage {
    public enum Mode: String, ParamChoice {
        case mask, strength, confidence
    }

    public static let model = MaskedTokenParams.model
    public static let tokens = Input<Tokens>("tokens", "The token grid (vq_encode).")
    public static let mask = OptionalInput<Mask>("mask", "mode mask: where to repaint (1), at the image's size.")
    public static let masked = Output<Tokens>("tokens", "The grid with the chosen tokens masked, carrying the decoding plan.")
    public static let mode = Param<Mode>("mode", default: .strength,
                                         "mask (a mask image, as inpainting), strength (random, as img2img) or confidence (below threshold).")
    public static let strength = Param<Double?>(
        "strength", range: 0...1,
        "How much of the schedule to run: decoding starts at step N − int(N × strength). Unset: 0.5 for mode strength (img2img's default), 1 otherwise (inpainting's).")
    public static let steps = Param<Int>("steps", default: 12, range: 1...1000, "Decoding steps of the whole schedule (N).")
    public static let schedule = Param<MaskingScheduleChoice>(
        "schedule", default: .auto, "Masking schedule: auto (the model's for strength, linear for mask and confidence, as the pipelines), cosine or linear.")
    public static let threshold = Param<Double>("threshold", default: 0.5, range: 0...1,
                                                "mode confidence: tokens below this confidence are masked.")
    public static let seed = MaskedTokenParams.seed

    public static let schema = StageSchema(
        "mask_tokens", "Mask tokens of a grid for prediction: from a mask image (inpainting), at random by strength (img2img), or by low confidence.",
        inputs: [model, tokens, mask], outputs: [masked], params: [mode, strength, steps, schedule, threshold, seed])

    public static func validate(_ check: inout StageCheck) throws {
        MaskedTokenParams.facts(&check)
        let mode = try check[Self.mode]
        if mode == .mask, !check.isConnected(mask) {
            check.reject(input: mask, "mode mask needs the mask input connected")
        } else if mode != .mask, check.isConnected(mask) {
            check.reject(input: mask, "a mask is read only in mode mask; set mode to mask")
        }
    }

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let amused = try MaskedTokenParams.amused(call)
        var grid = try call[tokens]
        try MaskedTokenParams.checkFits(grid, amused, call: call, input: Self.tokens.name)
        let mode = try call[Self.mode]
        let steps = try call[Self.steps]
        let strength = try call[Self.strength] ?? (mode == .strength ? 0.5 : 1)
        let start = MaskGITPlan.startStep(steps: steps, strength: strength)
        let chosen: MaskGITScheduler.Schedule = switch try call[schedule] {
        case .auto: mode == .strength ? amused.schedule : .linear
        case .cosine: .cosine
        case .linear: .linear
        }
        var state = grid.maskGIT ?? MaskGITState()
        switch mode {
        case .strength:
            var scheduler = MaskGITScheduler(maskTokenID: amused.maskTokenID, schedule: chosen)
            try scheduler.setTimesteps(steps)
            var (generator, seed) = try MaskedTokenParams.generator(call, continuing: grid)
            // The pipeline masks at timesteps[start − 1]; with start 0 that is the last step (nothing masked).
            let noised = try scheduler.addNoise(MaskedTokenParams.modelIDs(grid, maskTokenID: amused.maskTokenID),
                                                stepIndex: start == 0 ? steps - 1 : start - 1, generator: &generator)
            grid.masked = noised.map { $0 == amused.maskTokenID }
            state.stream = NoiseStream(continuing: generator, seed: seed)
            state.plan = MaskGITPlan(steps: steps, startStep: start, schedule: chosen, strength: strength)
        case .mask, .confidence:
            let flags: [Bool]
            if mode == .mask {
                guard let image = try call[mask] else { throw call.failure("mode mask needs a mask", code: .invalidParameter) }
                flags = TokenMask.flags(image, width: grid.width, height: grid.height)
            } else {
                let threshold = Float(try call[Self.threshold])
                flags = grid.confidence.map { $0 < threshold }
            }
            let count = flags.reduce(0) { $0 + ($1 ? 1 : 0) }
            if count == 0 {
                // As SD inpainting does with an empty mask: say so and go on; nothing will be predicted.
                call.context.warn((mode == .mask
                    ? "the mask covers no token (no \(grid.pixelsPerToken)×\(grid.pixelsPerToken) block of it is mostly white)"
                    : "no token's confidence is below the threshold \(try call[Self.threshold])")
                    + ": nothing to repaint; pasted back, the input comes back unchanged")
            }
            grid.masked = zip(grid.masked, flags).map { $0 || $1 }
            // The pipeline's starting_mask_ratio: the masked fraction, computed in float32.
            let ratio = Float(grid.maskedCount) / Float(grid.count)
            state.plan = MaskGITPlan(steps: steps, startStep: start, schedule: chosen, startingMaskRatio: Double(ratio),
                                     strength: strength)
        }
        for i in grid.confidence.indices where grid.masked[i] { grid.confidence[i] = 0 }
        grid.state = state
        return [masked(grid)]
    }
}

/// A mask image on the token grid, as aMUSEd's mask processor makes it: resized to the grid with
/// a Lanczos filter (PIL's, in floating point here) to 8 bits and binarised at 0.5 (1 = predict).
enum TokenMask {
    static func flags(_ mask: Mask, width: Int, height: Int) -> [Bool] {
        let values = mask.width == width && mask.height == height ? mask.values
            : Resampler.resample(mask.values, planes: 1, width: mask.width, height: mask.height, outWidth: width,
                                 outHeight: height, filter: .lanczos)
        // PIL resizes 8-bit masks: a sample counts as white from 128/255 up.
        return values.map { ($0 * 255).rounded() >= 128 }
    }
}
