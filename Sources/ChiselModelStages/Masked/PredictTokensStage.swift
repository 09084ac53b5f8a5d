import ChiselCore
import ChiselDiffusion
import ChiselModels
import ChiselTensor

/// MaskGIT decoding of a grid's masked tokens with the aMUSEd transformer, as diffusers'
/// `AmusedPipeline` (all masked), `AmusedImg2ImgPipeline` and `AmusedInpaintPipeline` (the plan
/// `mask_tokens` put on the grid) run it: classifier-free guidance on the logits, the
/// temperature annealed from `temperature` to `temperature_end`, each step sampling every masked
/// token and re-masking the least confident, every draw from PyTorch's CPU generator in the
/// pipeline's order.
public enum PredictTokensStage: Stage {
    public static let model = MaskedTokenParams.model
    public static let tokens = Input<Tokens>("tokens", "The grid with the tokens to predict masked (empty_tokens or mask_tokens).")
    public static let conditioning = Input<Conditioning>("conditioning", "The prompt's and the negative prompt's encoding (encode_prompt with this model).")
    public static let predicted = Output<Tokens>("tokens", "The complete grid; each predicted token's confidence is the probability it was sampled with.")
    public static let steps = Param<Int?>(
        "steps", range: 1...1000, "Decoding steps; unset takes the plan mask_tokens made, or 12 (the pipelines' default).")
    public static let guidance = Param<Double>("guidance", default: 10, range: 0...100,
                                               "Classifier-free guidance on the logits; ≤ 1 runs the transformer once per step, unguided.")
    public static let temperature = Param<Double>("temperature", default: 2, range: 0...100,
                                                  "Gumbel-noise temperature of the first step (the confidence is log p + temperature × Gumbel).")
    public static let temperatureEnd = Param<Double>("temperature_end", default: 0, range: 0...100,
                                                     "Temperature of the last step; linear in between (torch.linspace).")
    public static let schedule = Param<MaskingScheduleChoice>(
        "schedule", default: .auto, "Masking schedule: auto (the plan's, or the model's), cosine or linear.")
    public static let aestheticScore = Param<Double>("aesthetic_score", default: 6, range: 0...10,
                                                     "Micro-conditioning: the aesthetic score asked for.")
    public static let cropTop = Param<Int>("crop_top", default: 0, range: 0...16384, "Micro-conditioning: crop coordinate (top).")
    public static let cropLeft = Param<Int>("crop_left", default: 0, range: 0...16384, "Micro-conditioning: crop coordinate (left).")
    public static let seed = MaskedTokenParams.seed

    public static let schema = StageSchema(
        "predict_tokens", "Predict a grid's masked tokens by MaskGIT decoding with an aMUSEd transformer (text-to-image, img2img, inpainting).",
        inputs: [model, tokens, conditioning], outputs: [predicted],
        params: [steps, guidance, temperature, temperatureEnd, schedule, aestheticScore, cropTop, cropLeft, seed])

    public static func validate(_ check: inout StageCheck) throws {
        MaskedTokenParams.facts(&check)
    }

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let amused = try MaskedTokenParams.amused(call)
        let grid = try call[tokens]
        try MaskedTokenParams.checkFits(grid, amused, call: call, input: Self.tokens.name)
        let state = grid.maskGIT ?? MaskGITState()
        let plan = state.plan
        if let asked = try call[steps], let plan, asked != plan.steps {
            throw call.failure("the tokens were masked for a \(plan.steps)-step schedule (mask_tokens' steps); steps \(asked) "
                               + "disagrees: set one of them", code: .invalidParameter)
        }
        let stepCount = try call[steps] ?? plan?.steps ?? 12
        let schedule: MaskGITScheduler.Schedule = switch try call[Self.schedule] {
        case .auto: plan?.schedule ?? amused.schedule
        case .cosine: .cosine
        case .linear: .linear
        }
        var scheduler = MaskGITScheduler(maskTokenID: amused.maskTokenID, schedule: schedule)
        try scheduler.setTimesteps(stepCount, temperature: .range(Float(try call[temperature]), Float(try call[temperatureEnd])))
        let guidance = try call[Self.guidance]
        var (generator, seed) = try MaskedTokenParams.generator(call, continuing: grid)
        let logits = try AmusedLogits(amused: amused, tokens: grid, conditioning: try call[conditioning], guided: guidance > 1,
                                      aestheticScore: try call[aestheticScore], crop: (try call[cropTop], try call[cropLeft]),
                                      call: call)
        var decoding = try MaskGITDecoding(
            scheduler: scheduler, tokens: MaskedTokenParams.modelIDs(grid, maskTokenID: amused.maskTokenID), batch: 1,
            codebookSize: amused.codebookSize, startStep: plan?.startStep ?? 0, guidance: guidance,
            startingMaskRatio: plan?.startingMaskRatio ?? 1)
        let total = decoding.stepsToRun
        while !decoding.isFinished {
            try Task.checkCancellation()
            let input = decoding.modelInput
            if decoding.isGuided, amused.precision == .bf16 {
                // bf16 has no exact-token promise (its roundings are not torch's either), so it
                // takes the cheaper order: guidance before the last projection, which then runs
                // once, and the layers before the first modulation once for the shared grid.
                let rows = Array(input.rows.prefix(input.rows.count / 2))
                try decoding.step(guidedMaskedLogits: logits.guided(decoding.tokens, scale: guidance, rows: rows),
                                  generator: &generator)
            } else {
                try decoding.step(maskedLogits: logits(input.tokens, batch: input.batch, rows: input.rows),
                                  generator: &generator)
            }
            call.context.progress(completed: decoding.completedSteps, total: total)
        }
        Allocator.releaseWorkBuffers()
        let conditioningValue = try call[conditioning]
        var settings: [(key: String, value: String)] = [
            ("Steps", String(stepCount)), ("Sampler", "MaskGIT (\(schedule.rawValue))"),
            ("CFG scale", DenoiseStage.number(guidance)), ("Seed", String(seed)),
            ("Size", "\(grid.width * grid.pixelsPerToken)x\(grid.height * grid.pixelsPerToken)"), ("Model", amused.name),
            ("Temperature", "\(DenoiseStage.number(try call[temperature]))-\(DenoiseStage.number(try call[temperatureEnd]))"),
        ]
        if let plan, plan.strength < 1 { settings.append(("Denoising strength", DenoiseStage.number(plan.strength))) }
        // aMUSEd draws from PyTorch's CPU generator; A1111 would read a missing RNG as GPU.
        settings.append(("RNG", "CPU"))
        let generation = GenerationInfo(prompt: conditioningValue.prompt, negativePrompt: conditioningValue.negativePrompt,
                                        settings: settings.map { GenerationInfo.Setting($0.key, $0.value) })
        var result = grid
        result.ids = decoding.tokens.map { Int32($0) }
        result.masked = Array(repeating: false, count: grid.count)
        result.confidence = decoding.confidence.map { min(1, $0) }
        result.codebookSize = max(amused.codebookSize, grid.codebookSize)
        result.state = MaskGITState(stream: NoiseStream(continuing: generator, seed: seed), plan: nil, generation: generation)
        return [predicted(result)]
    }
}
