import ChiselBase

/// diffusers' `EulerDiscreteScheduler`: Karras et al. 2022 (EDM), Algorithm 2 without churn —
/// one Euler step of the probability-flow ODE dx/dσ = (x − x0)/σ per timestep.
public final class EulerDiscreteScheduler: SigmaSpaceScheduler {
    public let basics: ScheduleBasics
    public internal(set) var timesteps: [Double]
    public internal(set) var sigmaTable: [Float]
    public var cursor = StepCursor()
    let useKarras: Bool
    let sigmaMinOverride: Double?
    let sigmaMaxOverride: Double?
    let finalSigmas: FinalSigmasType

    public init(config: SchedulerConfig, noiseSchedule: NoiseSchedule? = nil) throws {
        useKarras = config.useKarrasSigmas ?? false
        sigmaMinOverride = config.sigmaMin
        sigmaMaxOverride = config.sigmaMax
        finalSigmas = config.finalSigmasType ?? .zero
        basics = try ScheduleBasics(config: config, noiseSchedule: noiseSchedule, schedulerClass: .euler, predictionTypes: [.epsilon, .vPrediction, .sample])
        (timesteps, sigmaTable) = Self.trainingSchedule(basics)
        try rejectUnimplementedSigmas(config, in: .euler)
        if config.interpolationType == .logLinear { throw unsupportedConfigValue(.interpolationType, "'log_linear'", in: .euler) }
        if config.timestepType == .continuous, predictionType == .vPrediction {
            throw unsupportedConfigValue(.timestepType, "'continuous'", in: .euler)
        }
    }

    public var order: Int { 1 }

    public func setTimesteps(_ count: Int) throws {
        try checkStepCount(count, trainSteps: .max)
        (timesteps, sigmaTable) = discreteSchedule(count: count, karras: useKarras, sigmaMin: sigmaMinOverride,
                                                   sigmaMax: sigmaMaxOverride, finalSigma: finalSigmas)
        cursor.reset()
    }

    public func step(modelOutput: [Float], timestep: Double, sample: [Float], noise: inout some NoiseSource) throws
        -> SchedulerStepOutput
    {
        try checkSameCount(modelOutput, sample, "model output and sample")
        let index = try cursor.current(for: timestep, in: timesteps, missing: .fail)
        let sigma = try element(sigmaTable, index, "sigma")
        let sigmaNext = try element(sigmaTable, index + 1, "sigma")
        // s_churn = 0 (diffusers' default): γ = 0, so σ̂ = σ·(γ + 1) is σ.
        let sigmaHat = sigma
        let denoised = predictionType.denoisedSigmaSpace(modelOutput: modelOutput, sample: sample,
                                                         epsSigma: sigmaHat, vSigma: sigma)
        let dt = sigmaNext - sigmaHat
        var prev = sample
        for i in prev.indices {
            let derivative = (sample[i] - denoised[i]) / sigmaHat
            let change = derivative * dt
            prev[i] = sample[i] + change
        }
        cursor.advance()
        return SchedulerStepOutput(prevSample: prev, denoised: denoised)
    }
}
