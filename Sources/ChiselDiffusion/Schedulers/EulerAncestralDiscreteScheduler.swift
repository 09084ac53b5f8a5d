import ChiselBase

/// diffusers' `EulerAncestralDiscreteScheduler`: k-diffusion's `sample_euler_ancestral`
/// (Karras et al. 2022 sampler with ancestral noise): an Euler step down to σ_down, then fresh
/// noise of scale σ_up, where σ_up² = σ_next²(σ² − σ_next²)/σ² and σ_down² = σ_next² − σ_up².
public final class EulerAncestralDiscreteScheduler: SigmaSpaceScheduler {
    public let basics: ScheduleBasics
    public internal(set) var timesteps: [Double]
    public internal(set) var sigmaTable: [Float]
    public var cursor = StepCursor()
    public init(config: SchedulerConfig, noiseSchedule: NoiseSchedule? = nil) throws {
        // diffusers raises NotImplementedError for prediction_type "sample".
        basics = try ScheduleBasics(config: config, noiseSchedule: noiseSchedule, schedulerClass: .eulerAncestral, predictionTypes: [.epsilon, .vPrediction])
        (timesteps, sigmaTable) = Self.trainingSchedule(basics)
    }

    public var order: Int { 1 }

    public func setTimesteps(_ count: Int) throws {
        try checkStepCount(count, trainSteps: .max)
        (timesteps, sigmaTable) = discreteSchedule(count: count, karras: false, sigmaMin: nil, sigmaMax: nil, finalSigma: .zero)
        cursor.reset()
    }

    public func step(modelOutput: [Float], timestep: Double, sample: [Float], noise: inout some NoiseSource) throws
        -> SchedulerStepOutput
    {
        try checkSameCount(modelOutput, sample, "model output and sample")
        let index = try cursor.current(for: timestep, in: timesteps, missing: .fail)
        let sigma = try element(sigmaTable, index, "sigma")
        let sigmaTo = try element(sigmaTable, index + 1, "sigma")
        let denoised = predictionType.denoisedSigmaSpace(modelOutput: modelOutput, sample: sample,
                                                         epsSigma: sigma, vSigma: sigma)
        let sigmaUp = ((sigmaTo * sigmaTo) * (sigma * sigma - sigmaTo * sigmaTo) / (sigma * sigma)).squareRoot()
        let sigmaDown = (sigmaTo * sigmaTo - sigmaUp * sigmaUp).squareRoot()
        let dt = sigmaDown - sigma
        let fresh = try drawNormal(&noise, count: sample.count)
        var prev = sample
        for i in prev.indices {
            let derivative = (sample[i] - denoised[i]) / sigma
            let change = derivative * dt
            let euler = sample[i] + change
            let ancestral = fresh[i] * sigmaUp
            prev[i] = euler + ancestral
        }
        cursor.advance()
        return SchedulerStepOutput(prevSample: prev, denoised: denoised)
    }
}
