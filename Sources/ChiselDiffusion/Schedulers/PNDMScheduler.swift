import ChiselBase

/// diffusers' `PNDMScheduler`: Liu et al. 2022 (PNDM, "pseudo numerical methods"), eq. 11's
/// transfer φ(x, ε, t, t−δ) driven by pseudo linear multistep (PLMS, eq. 12: Adams–Bashforth on
/// ε) after either three pseudo Runge–Kutta warm-up steps (PRK, 12 model calls) or, with
/// `skip_prk_steps` (SD 1.x), the first step taken twice (an improved-Euler start).
public final class PNDMScheduler: AlphaIndexedScheduler {
    public let basics: ScheduleBasics
    public internal(set) var timesteps: [Double]
    public let finalAlpha: Float
    public internal(set) var inferenceSteps: Int?
    public var cursor = StepCursor()
    let skipPRK: Bool
    var prkTimesteps: [Double] = []
    /// diffusers' `counter`, `ets`, `cur_model_output`, `cur_sample`.
    var counter = 0
    var ets: [[Float]] = []
    var curModelOutput: [Float]?
    var curSample: [Float]?

    public init(config: SchedulerConfig, noiseSchedule: NoiseSchedule? = nil) throws {
        skipPRK = config.skipPrkSteps ?? false
        basics = try ScheduleBasics(config: config, noiseSchedule: noiseSchedule, schedulerClass: .pndm, predictionTypes: [.epsilon, .vPrediction])
        timesteps = Self.trainingTimesteps(basics)
        finalAlpha = finalAlphaCumprod(config, .pndm, basics.noiseSchedule)
    }

    public var order: Int { 1 }

    public func setTimesteps(_ count: Int) throws {
        try checkStepCount(count, trainSteps: noiseSchedule.trainSteps)
        let trainSteps = noiseSchedule.trainSteps
        // The ascending base schedule `_timesteps`.
        let base: [Double]
        switch spacing {
        case .linspace: base = NumPy.linspace(0, Double(trainSteps - 1), count).map(NumPy.round)
        case .leading: base = Spacing.leading(count: count, ratio: trainSteps / count, offset: stepsOffset).reversed()
        case .trailing: base = Spacing.trailing(from: trainSteps, ratio: Double(trainSteps) / Double(count)).reversed()
        }
        if skipPRK {
            // [t_{n−1}, t_{n−2}, t_{n−2}, t_{n−3}, …, t_0]: the first timestep after the start repeated.
            let n = base.count
            let plms = Array(base.prefix(n - 1)) + (n >= 2 ? [base[n - 2]] : []) + [base[n - 1]]
            prkTimesteps = []
            timesteps = plms.reversed()
        } else {
            guard base.count >= 4 else {
                throw ChiselError(.invalidParameter, "PNDM with PRK steps needs at least 4 inference steps, not \(count)",
                                  jsonPath: SchedulerConfig.CodingKeys.skipPrkSteps.rawValue)
            }
            let half = Double(trainSteps / count / 2)
            // Each of the last 4 timesteps with its half step, then every entry doubled and trimmed.
            let pairs = base.suffix(4).flatMap { [$0, $0 + half] }
            let doubled = pairs.dropLast().flatMap { [$0, $0] }
            prkTimesteps = Array(doubled.dropFirst().dropLast()).reversed()
            timesteps = prkTimesteps + Array(base.dropLast(3).reversed())
        }
        inferenceSteps = count
        counter = 0
        ets = []
        curModelOutput = nil
        curSample = nil
    }

    public func step(modelOutput: [Float], timestep: Double, sample: [Float], noise: inout some NoiseSource) throws
        -> SchedulerStepOutput
    {
        try checkSameCount(modelOutput, sample, "model output and sample")
        try checkHistory(ets + [curSample, curModelOutput], count: sample.count, in: schedulerClass)
        let count = try requireInferenceSteps()
        if counter < prkTimesteps.count, !skipPRK {
            return try stepPRK(modelOutput: modelOutput, timestep: try integerTimestep(timestep), sample: sample, count: count)
        }
        return try stepPLMS(modelOutput: modelOutput, timestep: try integerTimestep(timestep), sample: sample, count: count)
    }

    /// `step_prk`: Runge–Kutta combination 1/6, 1/3, 1/3, 1/6 over four calls from the same sample.
    private func stepPRK(modelOutput: [Float], timestep: Int, sample: [Float], count: Int) throws -> SchedulerStepOutput {
        let diff = counter % 2 == 1 ? 0 : noiseSchedule.trainSteps / count / 2
        let prevT = timestep - diff
        let t = Int(try element(prkTimesteps, counter / 4 * 4, "prk timestep"))
        var epsilon = modelOutput
        switch counter % 4 {
        case 0:
            curModelOutput = accumulate(curModelOutput, modelOutput, Float(1.0 / 6.0))
            ets.append(modelOutput)
            curSample = sample
        case 1, 2:
            curModelOutput = accumulate(curModelOutput, modelOutput, Float(1.0 / 3.0))
        default:
            let scaled = Elementwise.scale(modelOutput, Float(1.0 / 6.0))
            epsilon = curModelOutput.map { acc in zip(acc, scaled).map { $0 + $1 } } ?? scaled
            curModelOutput = nil
        }
        let prev = try previousSample(curSample ?? sample, t, prevT, epsilon)
        counter += 1
        return SchedulerStepOutput(prevSample: prev, denoised: nil)
    }

    /// `cur_model_output += c * model_output` (diffusers starts from the integer 0).
    private func accumulate(_ acc: [Float]?, _ x: [Float], _ c: Float) -> [Float] {
        let scaled = Elementwise.scale(x, c)
        guard let acc else { return scaled }
        return zip(acc, scaled).map { $0 + $1 }
    }

    /// `step_plms`: Adams–Bashforth combinations of the last ε's (Liu et al. 2022, eq. 12).
    private func stepPLMS(modelOutput: [Float], timestep: Int, sample: [Float], count: Int) throws -> SchedulerStepOutput {
        if !skipPRK, ets.count < 3 {
            throw ChiselError(.invalidParameter, "PNDM: PLMS steps need the PRK warm-up first")
        }
        let stride = noiseSchedule.trainSteps / count
        var t = timestep, prevT = timestep - stride
        if counter != 1 {
            ets = Array(ets.suffix(3))
            ets.append(modelOutput)
        } else {
            // The repeated start: step again from the first sample, to the same target.
            prevT = timestep
            t = timestep + stride
        }
        var x = sample
        let epsilon: [Float]
        let e = ets
        if e.count == 1, counter == 0 {
            epsilon = modelOutput
            curSample = sample
        } else if e.count == 1, counter == 1 {
            epsilon = zip(modelOutput, e[0]).map { ($0 + $1) / 2 }
            x = curSample ?? sample
            curSample = nil
        } else if e.count == 2 {
            epsilon = (0..<sample.count).map { i in (3 * e[1][i] - e[0][i]) / 2 }
        } else if e.count == 3 {
            epsilon = (0..<sample.count).map { i in
                let a = 23 * e[2][i], b = 16 * e[1][i], c = 5 * e[0][i]
                return (a - b + c) / 12
            }
        } else {
            let c = Float(1.0 / 24.0)
            let n = e.count
            epsilon = (0..<sample.count).map { i in
                let a = 55 * e[n - 1][i], b = 59 * e[n - 2][i], d = 37 * e[n - 3][i], f = 9 * e[n - 4][i]
                return c * (a - b + d - f)
            }
        }
        let prev = try previousSample(x, t, prevT, epsilon)
        counter += 1
        return SchedulerStepOutput(prevSample: prev, denoised: nil)
    }

    /// `_get_prev_sample`, eq. 11: x_{t−δ} = √(ᾱ_{t−δ}/ᾱ_t)·x − (ᾱ_{t−δ} − ᾱ_t)·ε / (ᾱ_t√(1−ᾱ_{t−δ}) + √(ᾱ_t(1−ᾱ_t)ᾱ_{t−δ})).
    private func previousSample(_ sample: [Float], _ t: Int, _ prevT: Int, _ modelOutput: [Float]) throws -> [Float] {
        let alphaProd = try noiseSchedule.alphaProd(at: t, final: finalAlpha)
        let alphaProdPrev = try noiseSchedule.alphaProd(at: prevT, final: finalAlpha)
        let betaProd = 1 - alphaProd, betaProdPrev = 1 - alphaProdPrev
        var epsilon = modelOutput
        if predictionType == .vPrediction {
            epsilon = Elementwise.combine(alphaProd.squareRoot(), modelOutput, betaProd.squareRoot(), sample)
        }
        let sampleCoeff = (alphaProdPrev / alphaProd).squareRoot()
        let denom = alphaProd * betaProdPrev.squareRoot() + (alphaProd * betaProd * alphaProdPrev).squareRoot()
        let diff = alphaProdPrev - alphaProd
        return (0..<sample.count).map { i in
            let p = sampleCoeff * sample[i]
            let q = diff * epsilon[i] / denom
            return p - q
        }
    }
}
