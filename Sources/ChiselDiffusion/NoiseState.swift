/// Where a latent sits on a diffusion schedule, so that the stage that adds noise and the
/// stage that removes it agree without sharing anything but the value on the wire.
public struct NoiseState: Sendable, Equatable {
    /// The scheduler the noise level belongs to.
    public var scheduler: SchedulerKind
    /// What the model that will denoise it predicts.
    public var predictionType: PredictionType
    /// The number of inference steps of the whole schedule.
    public var steps: Int
    /// The index of the next step to take in that schedule.
    public var stepIndex: Int
    /// The model timestep at `stepIndex`.
    public var timestep: Double
    /// The noise standard deviation at `stepIndex` (σ in the Karras et al. 2022 formulation).
    public var sigma: Double
    /// The strength of the edit that put the latent here (1 for text-to-image).
    public var strength: Double

    public init(scheduler: SchedulerKind, predictionType: PredictionType, steps: Int, stepIndex: Int,
                timestep: Double, sigma: Double, strength: Double = 1) {
        self.scheduler = scheduler
        self.predictionType = predictionType
        self.steps = steps
        self.stepIndex = stepIndex
        self.timestep = timestep
        self.sigma = sigma
        self.strength = strength
    }

    /// `euler, step 5 of 20 (t 749, σ 2.54)`, for logs and messages; the seed is the stream's
    /// (`DiffusionState.summary` names both).
    public var summary: String {
        "\(scheduler.rawValue), step \(stepIndex) of \(steps) (t \(timestep), σ \(sigma))"
    }
}
