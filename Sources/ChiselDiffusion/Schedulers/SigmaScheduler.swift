import ChiselBase
import Foundation

/// What the Karras-style classes (Euler, Euler ancestral, LMS, Heun) share: sigma-space state
/// x = x0 + σ·ε, the model input scaled by 1/√(σ²+1), `add_noise` as x0 + σ·noise, and the
/// discrete sigma schedule of `set_timesteps`. A class keeps its timesteps and sigmas; the rest
/// comes from this extension.
public protocol SigmaSpaceScheduler: ScheduleTracking {
    var timesteps: [Double] { get }
    /// The sigma of each timestep, then the final sigma.
    var sigmaTable: [Float] { get }
}

extension SigmaSpaceScheduler {
    public var sigmas: [Float]? { sigmaTable }
    public var initNoiseSigma: Float { SigmaSchedule.initNoiseSigma(sigmaTable, spacing: spacing) }

    /// `scale_model_input`: sample / √(σ²+1) at the current step (initialising the step index as diffusers does).
    public func scaleModelInput(_ sample: [Float], timestep: Double) throws -> [Float] {
        let index = try cursor.current(for: timestep, in: timesteps, missing: .fail)
        return SigmaSchedule.scaleInput(sample, sigma: try element(sigmaTable, index, "sigma"))
    }

    /// `add_noise`: x0 + σ·noise at the begin index (img2img) or the timestep's index.
    public func addNoise(original: [Float], noise: [Float], timestep: Double) throws -> [Float] {
        let index = try cursor.noiseIndex(for: timestep, in: timesteps, missing: .fail)
        return try SigmaSchedule.addNoise(original: original, noise: noise, sigma: try element(sigmaTable, index, "sigma"))
    }

    /// What diffusers holds before `set_timesteps`: the full training schedule, noisiest first.
    static func trainingSchedule(_ basics: ScheduleBasics) -> (timesteps: [Double], sigmas: [Float]) {
        ((0..<basics.noiseSchedule.trainSteps).reversed().map(Double.init), basics.noiseSchedule.trainingSigmas.reversed() + [0])
    }

    /// The discrete-timestep sigma schedule of `set_timesteps` shared by the Karras-style classes:
    /// timesteps by spacing, sigmas by `np.interp` on the training sigmas, optionally Karras sigmas
    /// with timesteps from `_sigma_to_t`, then the final sigma appended; all stored as float32.
    func discreteSchedule(count: Int, karras: Bool, sigmaMin: Double?, sigmaMax: Double?,
                          finalSigma: FinalSigmasType) -> (timesteps: [Double], sigmas: [Float]) {
        var steps = Spacing.discreteFloat(spacing, count: count, trainSteps: noiseSchedule.trainSteps, offset: stepsOffset)
        let train = noiseSchedule.trainingSigmas
        var sigmas = steps.map { NumPy.interp($0, train) }
        if karras, let first = sigmas.first, let last = sigmas.last {
            sigmas = SigmaSchedule.karras(sigmaMin: sigmaMin ?? last, sigmaMax: sigmaMax ?? first, count: count)
            let logSigmas = SigmaSchedule.logSigmas(train)
            steps = sigmas.map { SigmaSchedule.sigmaToT($0, logSigmas: logSigmas) }
        }
        let lastSigma: Float = finalSigma == .sigmaMin ? SigmaSchedule.trainingSigmaMin(noiseSchedule) : 0
        return (steps.map { Double(Float($0)) }, sigmas.map { Float($0) } + [lastSigma])
    }
}

/// Rejects the sigma-schedule options Chisel does not implement (exponential, beta, flow sigmas).
func rejectUnimplementedSigmas(_ config: SchedulerConfig, in schedulerClass: SchedulerClass, flow: Bool = false) throws {
    if config.useExponentialSigmas == true { throw unsupportedConfigValue(.useExponentialSigmas, "true", in: schedulerClass) }
    if config.useBetaSigmas == true { throw unsupportedConfigValue(.useBetaSigmas, "true", in: schedulerClass) }
    if flow, config.useFlowSigmas == true { throw unsupportedConfigValue(.useFlowSigmas, "true", in: schedulerClass) }
}

/// Rejects `thresholding: true` (dynamic thresholding, Saharia et al. 2022) for the classes that read it.
func rejectThresholding(_ config: SchedulerConfig, in schedulerClass: SchedulerClass) throws {
    if config.thresholding == true { throw unsupportedConfigValue(.thresholding, "true", in: schedulerClass) }
}
