import ChiselBase

/// What the ᾱ-indexed classes (DDIM, DDPM, PNDM, LCM) share: integer timesteps that index
/// `alphas_cumprod` directly, identity model-input scaling, unit initial noise and the
/// alpha-based `add_noise` (Ho et al. 2020, eq. 4).
public protocol AlphaIndexedScheduler: ScheduleTracking {
    /// diffusers' `num_inference_steps` (nil before `set_timesteps`).
    var inferenceSteps: Int? { get }
    /// `final_alpha_cumprod`, ᾱ "before" timestep 0 (DDIM, PNDM, LCM; DDPM uses 1).
    var finalAlpha: Float { get }
}

extension AlphaIndexedScheduler {
    public var sigmas: [Float]? { nil }
    public var initNoiseSigma: Float { 1 }
    public func scaleModelInput(_ sample: [Float], timestep: Double) throws -> [Float] { sample }

    public func addNoise(original: [Float], noise: [Float], timestep: Double) throws -> [Float] {
        try noiseSchedule.addNoise(original: original, noise: noise, timestep: timestep)
    }

    /// What diffusers holds before `set_timesteps`: every training timestep, noisiest first.
    static func trainingTimesteps(_ basics: ScheduleBasics) -> [Double] {
        (0..<basics.noiseSchedule.trainSteps).reversed().map(Double.init)
    }

    /// The step count, after diffusers' check against the training timesteps.
    func requireInferenceSteps() throws -> Int {
        guard let inferenceSteps else {
            throw ChiselError(.invalidParameter, "\(schedulerClass.rawValue): set_timesteps must run before step")
        }
        return inferenceSteps
    }
}

/// The clip applied to x0 by DDIM, DDPM and LCM when `clip_sample` is set (nil when off).
func clipRange(_ config: SchedulerConfig, _ schedulerClass: SchedulerClass) -> Float? {
    (config.clipSample ?? schedulerClass.defaults.clipSample) ? Float(config.clipSampleRange ?? 1) : nil
}

/// `final_alpha_cumprod`: 1 with `set_alpha_to_one`, else ᾱ₀.
func finalAlphaCumprod(_ config: SchedulerConfig, _ schedulerClass: SchedulerClass, _ schedule: NoiseSchedule) -> Float {
    (config.setAlphaToOne ?? schedulerClass.defaults.setAlphaToOne) ? 1 : schedule.alphasCumprod[0]
}
