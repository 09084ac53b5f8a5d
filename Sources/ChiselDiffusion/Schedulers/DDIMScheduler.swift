import ChiselBase

/// diffusers' `DDIMScheduler`: Song et al. 2021 (DDIM), eq. 12 — x_{t−1} = √ᾱ_{t−1}·x0 +
/// √(1 − ᾱ_{t−1} − σ_t²)·ε + σ_t·z with σ_t = η·√((1−ᾱ_{t−1})/(1−ᾱ_t)·(1 − ᾱ_t/ᾱ_{t−1})) (eq. 16).
public final class DDIMScheduler: AlphaIndexedScheduler {
    public let basics: ScheduleBasics
    public internal(set) var timesteps: [Double]
    public let finalAlpha: Float
    public internal(set) var inferenceSteps: Int?
    public var cursor = StepCursor()
    let clip: Float?
    /// DDIM's η: 0 is deterministic DDIM, 1 is DDPM-like; the pipeline's `eta` argument.
    public var eta: Float = 0

    public func apply(_ options: StepOptions) { eta = Float(options.eta) }
    /// diffusers' `use_clipped_model_output`.
    public var useClippedModelOutput = false

    public init(config: SchedulerConfig, noiseSchedule: NoiseSchedule? = nil) throws {
        clip = clipRange(config, .ddim)
        basics = try ScheduleBasics(config: config, noiseSchedule: noiseSchedule, schedulerClass: .ddim, predictionTypes: [.epsilon, .sample, .vPrediction])
        timesteps = Self.trainingTimesteps(basics)
        finalAlpha = finalAlphaCumprod(config, .ddim, basics.noiseSchedule)
        try rejectThresholding(config, in: .ddim)
    }

    public var order: Int { 1 }

    public func setTimesteps(_ count: Int) throws {
        try checkStepCount(count, trainSteps: noiseSchedule.trainSteps)
        inferenceSteps = count
        timesteps = Spacing.discreteInteger(spacing, count: count, trainSteps: noiseSchedule.trainSteps, offset: stepsOffset)
    }

    public func step(modelOutput: [Float], timestep: Double, sample: [Float], noise: inout some NoiseSource) throws
        -> SchedulerStepOutput
    {
        try checkSameCount(modelOutput, sample, "model output and sample")
        let count = try requireInferenceSteps()
        let t = try integerTimestep(timestep)
        // DDIM steps back by the fixed stride, whatever the spacing.
        let prevT = t - noiseSchedule.trainSteps / count
        let alphaProd = try noiseSchedule.alphaProd(at: t, final: finalAlpha)
        let alphaProdPrev = try noiseSchedule.alphaProd(at: prevT, final: finalAlpha)
        let betaProd = 1 - alphaProd
        let sqrtAlpha = alphaProd.squareRoot(), sqrtBeta = betaProd.squareRoot()
        var x0: [Float], eps: [Float]
        switch predictionType {
        case .epsilon:
            x0 = predictionType.denoisedVP(modelOutput: modelOutput, sample: sample, alpha: sqrtAlpha, sigma: sqrtBeta)
            eps = modelOutput
        case .sample, .flowPrediction:
            x0 = modelOutput
            eps = epsilon(from: x0, sample: sample, sqrtAlpha: sqrtAlpha, sqrtBeta: sqrtBeta)
        case .vPrediction:
            x0 = predictionType.denoisedVP(modelOutput: modelOutput, sample: sample, alpha: sqrtAlpha, sigma: sqrtBeta)
            eps = Elementwise.combine(sqrtAlpha, modelOutput, sqrtBeta, sample)
        }
        if let clip { x0 = Elementwise.clamp(x0, clip) }
        // _get_variance: (1−ᾱ_{t−1})/(1−ᾱ_t)·(1 − ᾱ_t/ᾱ_{t−1}).
        let betaProdPrev = 1 - alphaProdPrev
        let variance = betaProdPrev / betaProd * (1 - alphaProd / alphaProdPrev)
        let stdDev = eta * variance.squareRoot()
        if useClippedModelOutput { eps = epsilon(from: x0, sample: sample, sqrtAlpha: sqrtAlpha, sqrtBeta: sqrtBeta) }
        let direction = (1 - alphaProdPrev - stdDev * stdDev).squareRoot()
        var prev = Elementwise.combine(alphaProdPrev.squareRoot(), x0, direction, eps)
        if eta > 0 {
            let fresh = try drawNormal(&noise, count: sample.count)
            prev = Elementwise.addScaled(prev, fresh, stdDev)
        }
        return SchedulerStepOutput(prevSample: prev, denoised: x0)
    }

    /// ε from x0: (x − √ᾱ·x0)/√(1−ᾱ).
    private func epsilon(from x0: [Float], sample: [Float], sqrtAlpha: Float, sqrtBeta: Float) -> [Float] {
        zip(sample, x0).map { x, d in let p = sqrtAlpha * d; return (x - p) / sqrtBeta }
    }
}
