import ChiselBase
import Foundation

/// diffusers' `DDPMScheduler`: Ho et al. 2020 (DDPM), eq. 7 — the posterior mean
/// μ = √ᾱ_{t−1}·β_t/(1−ᾱ_t)·x0 + √α_t·(1−ᾱ_{t−1})/(1−ᾱ_t)·x_t, plus noise of the posterior
/// variance β̃_t = (1−ᾱ_{t−1})/(1−ᾱ_t)·β_t (`fixed_small`) or β_t (`fixed_large`), with the
/// "previous" timestep being the next one in the schedule.
public final class DDPMScheduler: AlphaIndexedScheduler {
    public let basics: ScheduleBasics
    public internal(set) var timesteps: [Double]
    public let finalAlpha: Float
    public internal(set) var inferenceSteps: Int?
    public var cursor = StepCursor()
    let clip: Float?
    let varianceType: VarianceType

    public init(config: SchedulerConfig, noiseSchedule: NoiseSchedule? = nil) throws {
        clip = clipRange(config, .ddpm)
        varianceType = config.varianceType ?? .fixedSmall
        basics = try ScheduleBasics(config: config, noiseSchedule: noiseSchedule, schedulerClass: .ddpm, predictionTypes: [.epsilon, .sample, .vPrediction])
        timesteps = Self.trainingTimesteps(basics)
        finalAlpha = finalAlphaCumprod(config, .ddpm, basics.noiseSchedule)
        try rejectThresholding(config, in: .ddpm)
        if varianceType == .learned || varianceType == .learnedRange {
            throw unsupportedConfigValue(.varianceType, "'\(varianceType.rawValue)'", in: .ddpm)
        }
    }

    public var order: Int { 1 }

    public func setTimesteps(_ count: Int) throws {
        try checkStepCount(count, trainSteps: noiseSchedule.trainSteps)
        inferenceSteps = count
        timesteps = Spacing.discreteInteger(spacing, count: count, trainSteps: noiseSchedule.trainSteps, offset: stepsOffset)
    }

    /// diffusers' `previous_timestep`: the next entry of the schedule, −1 after the last.
    func previousTimestep(_ t: Double) -> Int {
        guard inferenceSteps != nil else { return Int(t) - 1 }
        guard let index = timesteps.firstIndex(of: t), index + 1 < timesteps.count else { return -1 }
        return Int(timesteps[index + 1])
    }

    public func step(modelOutput: [Float], timestep: Double, sample: [Float], noise: inout some NoiseSource) throws
        -> SchedulerStepOutput
    {
        try checkSameCount(modelOutput, sample, "model output and sample")
        let t = try integerTimestep(timestep)
        let prevT = previousTimestep(timestep)
        let alphaProd = try noiseSchedule.alphaProd(at: t, final: 1)
        let alphaProdPrev = try noiseSchedule.alphaProd(at: prevT, final: 1)
        let betaProd = 1 - alphaProd, betaProdPrev = 1 - alphaProdPrev
        let currentAlpha = alphaProd / alphaProdPrev
        let currentBeta = 1 - currentAlpha
        var x0 = predictionType.denoisedAlphaSpace(modelOutput: modelOutput, sample: sample, alphaProd: alphaProd)
        if let clip { x0 = Elementwise.clamp(x0, clip) }
        let x0Coeff = alphaProdPrev.squareRoot() * currentBeta / betaProd
        let sampleCoeff = currentAlpha.squareRoot() * betaProdPrev / betaProd
        var prev = Elementwise.combine(x0Coeff, x0, sampleCoeff, sample)
        if t > 0 {
            let fresh = try drawNormal(&noise, count: sample.count)
            // _get_variance, clamped at 1e-20 before the square root.
            var variance = max((1 - alphaProdPrev) / (1 - alphaProd) * (1 - alphaProd / alphaProdPrev), 1e-20)
            let scale: Float
            switch varianceType {
            case .fixedSmall: scale = variance.squareRoot()
            case .fixedSmallLog: scale = exp(0.5 * log(variance))
            case .fixedLarge: variance = currentBeta; scale = variance.squareRoot()
            case .fixedLargeLog: scale = log(currentBeta).squareRoot()
            case .learned, .learnedRange: scale = variance.squareRoot()
            }
            prev = zip(prev, fresh).map { p, z in let q = scale * z; return p + q }
        }
        return SchedulerStepOutput(prevSample: prev, denoised: x0)
    }
}
