import ChiselBase

/// diffusers' `LCMScheduler`: latent consistency models (Luo et al. 2023, arXiv:2310.04378),
/// multistep consistency sampling (Song et al. 2023, Algorithm 1): each step maps to the
/// consistency-boundary output c_skip·x + c_out·x0 (`denoised`), then re-noises it to the next
/// timestep with fresh noise, except after the last step.
public final class LCMScheduler: AlphaIndexedScheduler {
    public let basics: ScheduleBasics
    public internal(set) var timesteps: [Double]
    public let finalAlpha: Float
    public internal(set) var inferenceSteps: Int?
    public var cursor = StepCursor()
    let clip: Float?
    let originalInferenceSteps: Int
    let timestepScaling: Float

    public init(config: SchedulerConfig, noiseSchedule: NoiseSchedule? = nil) throws {
        clip = clipRange(config, .lcm)
        originalInferenceSteps = config.originalInferenceSteps ?? 50
        timestepScaling = Float(config.timestepScaling ?? 10)
        basics = try ScheduleBasics(config: config, noiseSchedule: noiseSchedule, schedulerClass: .lcm, predictionTypes: [.epsilon, .sample, .vPrediction])
        timesteps = Self.trainingTimesteps(basics)
        finalAlpha = finalAlphaCumprod(config, .lcm, basics.noiseSchedule)
        try rejectThresholding(config, in: .lcm)
    }

    public var order: Int { 1 }

    public func setTimesteps(_ count: Int) throws { try setTimesteps(count, strength: 1) }

    /// diffusers' `set_timesteps(num_inference_steps, strength=...)`: the LCM img2img pipeline passes
    /// its strength here (shortening the original schedule); the SD img2img pipeline does not.
    public func setTimesteps(_ count: Int, strength: Double) throws {
        let trainSteps = noiseSchedule.trainSteps
        guard originalInferenceSteps <= trainSteps else {
            throw ChiselError(.invalidParameter, "original_inference_steps \(originalInferenceSteps) exceeds num_train_timesteps",
                              jsonPath: SchedulerConfig.CodingKeys.originalInferenceSteps.rawValue)
        }
        try checkStepCount(count, trainSteps: trainSteps)
        let k = trainSteps / originalInferenceSteps
        // The LCM training schedule: every k-th timestep, ending at k − 1, newest first.
        let origin = (1...max(Int(Double(originalInferenceSteps) * strength), 1)).map { $0 * k - 1 }.reversed().map(Double.init)
        guard origin.count / count >= 1 else {
            throw ChiselError(.invalidParameter,
                              "LCM: \(count) inference steps exceed the \(origin.count) steps of original_inference_steps × strength")
        }
        // np.floor(np.linspace(0, len, num=count, endpoint=False)).
        let indices = (0..<count).map { Int((Double($0) * (Double(origin.count) / Double(count))).rounded(.down)) }
        timesteps = indices.map { origin[$0] }
        inferenceSteps = count
        cursor.reset()
    }

    /// `get_scalings_for_boundary_condition_discrete`: c_skip = σ_d²/(s² + σ_d²), c_out = s/√(s² + σ_d²),
    /// s = t·timestep_scaling, σ_d = 0.5 (float32, as the int64 timestep tensor promotes).
    func boundaryScalings(_ timestep: Double) -> (cSkip: Float, cOut: Float) {
        let scaled = Float(timestep) * timestepScaling
        let sigmaData: Float = 0.25
        return (sigmaData / (scaled * scaled + sigmaData), scaled / (scaled * scaled + sigmaData).squareRoot())
    }

    public func step(modelOutput: [Float], timestep: Double, sample: [Float], noise: inout some NoiseSource) throws
        -> SchedulerStepOutput
    {
        try checkSameCount(modelOutput, sample, "model output and sample")
        let count = try requireInferenceSteps()
        let index = try cursor.current(for: timestep, in: timesteps, missing: .fail)
        let prevT = index + 1 < timesteps.count ? timesteps[index + 1] : timestep
        let alphaProd = try noiseSchedule.alphaProd(at: try integerTimestep(timestep), final: finalAlpha)
        let alphaProdPrev = try noiseSchedule.alphaProd(at: Int(prevT), final: finalAlpha)
        let betaProdPrev = 1 - alphaProdPrev
        let (cSkip, cOut) = boundaryScalings(timestep)
        var x0 = predictionType.denoisedAlphaSpace(modelOutput: modelOutput, sample: sample, alphaProd: alphaProd)
        if let clip { x0 = Elementwise.clamp(x0, clip) }
        let denoised = Elementwise.combine(cOut, x0, cSkip, sample)
        var prev = denoised
        if index != count - 1 {
            let fresh = try drawNormal(&noise, count: sample.count)
            prev = Elementwise.combine(alphaProdPrev.squareRoot(), denoised, betaProdPrev.squareRoot(), fresh)
        }
        cursor.advance()
        return SchedulerStepOutput(prevSample: prev, denoised: denoised)
    }
}
