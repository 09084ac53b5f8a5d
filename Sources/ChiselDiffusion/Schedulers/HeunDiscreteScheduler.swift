import ChiselBase

/// diffusers' `HeunDiscreteScheduler`: Karras et al. 2022 (EDM), Algorithm 1 — Heun's 2nd-order
/// method on the probability-flow ODE. Each solver step is two model calls, so timesteps and
/// sigmas are doubled (`[t0, t1, t1, t2, t2, …]`) and `order` is 2; the first call
/// (`state_in_first_order`) takes an Euler step and keeps its derivative, the second averages.
public final class HeunDiscreteScheduler: SigmaSpaceScheduler {
    public let basics: ScheduleBasics
    public internal(set) var timesteps: [Double]
    public internal(set) var sigmaTable: [Float]
    public var cursor = StepCursor()
    let useKarras: Bool
    let sigmaMinOverride: Double?
    let sigmaMaxOverride: Double?
    let clipSample: Float?
    /// The first half-step's derivative, dt and sample; nil in the first-order state.
    var firstHalf: (derivative: [Float], dt: Float, sample: [Float])?

    public init(config: SchedulerConfig, noiseSchedule: NoiseSchedule? = nil) throws {
        useKarras = config.useKarrasSigmas ?? false
        sigmaMinOverride = config.sigmaMin
        sigmaMaxOverride = config.sigmaMax
        clipSample = (config.clipSample ?? false) ? Float(config.clipSampleRange ?? 1) : nil
        basics = try ScheduleBasics(config: config, noiseSchedule: noiseSchedule, schedulerClass: .heun, predictionTypes: [.epsilon, .vPrediction, .sample])
        (timesteps, sigmaTable) = Self.trainingSchedule(basics)
        try rejectUnimplementedSigmas(config, in: .heun)
        try setTimesteps(self.noiseSchedule.trainSteps)
    }

    public var order: Int { 2 }
    /// diffusers' `state_in_first_order`.
    public var stateInFirstOrder: Bool { firstHalf == nil }

    public func setTimesteps(_ count: Int) throws {
        try checkStepCount(count, trainSteps: .max)
        let (steps, sigmas) = discreteSchedule(count: count, karras: useKarras, sigmaMin: sigmaMinOverride,
                                               sigmaMax: sigmaMaxOverride, finalSigma: .zero)
        // [σ0, σ1, σ1, …, σ_{n−1}, σ_{n−1}, 0] and [t0, t1, t1, …, t_{n−1}, t_{n−1}].
        sigmaTable = [sigmas[0]] + sigmas.dropFirst().dropLast().flatMap { [$0, $0] } + [sigmas[sigmas.count - 1]]
        timesteps = [steps[0]] + steps.dropFirst().flatMap { [$0, $0] }
        firstHalf = nil
        cursor.reset()
    }

    public func step(modelOutput: [Float], timestep: Double, sample: [Float], noise: inout some NoiseSource) throws
        -> SchedulerStepOutput
    {
        try checkSameCount(modelOutput, sample, "model output and sample")
        try checkHistory([firstHalf?.derivative, firstHalf?.sample], count: sample.count, in: schedulerClass)
        let index = try cursor.current(for: timestep, in: timesteps, missing: .fail)
        let sigma = try element(sigmaTable, stateInFirstOrder ? index : index - 1, "sigma")
        let sigmaNext = try element(sigmaTable, stateInFirstOrder ? index + 1 : index, "sigma")
        // diffusers' σ̂ = σ·(γ + 1) with γ = 0 (no churn): σ itself.
        let sigmaHat = sigma
        let sigmaInput = stateInFirstOrder ? sigmaHat : sigmaNext
        var denoised = predictionType.denoisedSigmaSpace(modelOutput: modelOutput, sample: sample,
                                                         epsSigma: sigmaInput, vSigma: sigmaInput)
        if let clipSample { denoised = Elementwise.clamp(denoised, clipSample) }
        var prev = sample
        if let first = firstHalf {
            for i in prev.indices {
                let derivative = (sample[i] - denoised[i]) / sigmaNext
                let mean = (first.derivative[i] + derivative) / 2
                let change = mean * first.dt
                prev[i] = first.sample[i] + change
            }
            firstHalf = nil
        } else {
            let dt = sigmaNext - sigmaHat
            let derivative = zip(sample, denoised).map { ($0 - $1) / sigmaHat }
            for i in prev.indices {
                let change = derivative[i] * dt
                prev[i] = sample[i] + change
            }
            firstHalf = (derivative, dt, sample)
        }
        cursor.advance()
        return SchedulerStepOutput(prevSample: prev, denoised: denoised)
    }
}
