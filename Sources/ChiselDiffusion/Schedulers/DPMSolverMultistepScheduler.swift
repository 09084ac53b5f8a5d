import ChiselBase
import Foundation

/// diffusers' `DPMSolverMultistepScheduler`: DPM-Solver (Lu et al. 2022, arXiv:2206.00927) and
/// DPM-Solver++ (Lu et al. 2022, arXiv:2211.01095, Algorithm 2 "2M" and the 3M variant), with the
/// SDE variants (`sde-dpmsolver++`, Lu et al. 2022 appendix / k-diffusion `sample_dpmpp_2m_sde`),
/// midpoint or heun second-order corrections, Karras or uniform-λ sigmas.
public final class DPMSolverMultistepScheduler: ScheduleTracking {
    public let basics: ScheduleBasics
    let algorithm: DPMSolverAlgorithm
    let solverType: SolverType
    let solverOrder: Int
    let lowerOrderFinal: Bool
    let eulerAtFinal: Bool
    let useKarras: Bool
    let useLuLambdas: Bool
    let finalSigmas: FinalSigmasType
    let lambdaMinClipped: Double
    let roundsKarrasTimesteps: Bool
    let sigmaMinOverride: Double?
    let sigmaMaxOverride: Double?

    public private(set) var timesteps: [Double]
    var sigmaTable: [Float]
    public var cursor = StepCursor()
    /// The last `solver_order` converted model outputs, oldest first (diffusers' `model_outputs`).
    var modelOutputs: [[Float]?]
    /// diffusers' `lower_order_nums`: how many steps have run, capped at the order (warm-up).
    public private(set) var lowerOrderNums = 0

    public init(config: SchedulerConfig, noiseSchedule: NoiseSchedule? = nil) throws {
        let cls = SchedulerClass.dpmSolverMultistep
        basics = try ScheduleBasics(config: config, noiseSchedule: noiseSchedule, schedulerClass: cls,
                                    predictionTypes: [.epsilon, .sample, .vPrediction])
        try rejectThresholding(config, in: cls)
        try rejectUnimplementedSigmas(config, in: cls, flow: true)
        if config.useDynamicShifting == true { throw unsupportedConfigValue(.useDynamicShifting, "true", in: cls) }
        if let variance = config.varianceType { throw unsupportedConfigValue(.varianceType, "'\(variance.rawValue)'", in: cls) }
        // diffusers maps deis to dpmsolver++ and the UniPC/logrho solver names to midpoint.
        algorithm = config.algorithmType.map { $0 == .deis ? .dpmsolverPlusPlus : $0 } ?? .dpmsolverPlusPlus
        solverType = config.solverType.map { $0 == .heun ? .heun : .midpoint } ?? .midpoint
        solverOrder = config.solverOrder ?? 2
        guard (1...3).contains(solverOrder) else {
            throw ChiselError(.invalidParameter, "solver_order must be 1, 2 or 3, not \(solverOrder)",
                              jsonPath: SchedulerConfig.CodingKeys.solverOrder.rawValue)
        }
        if solverOrder == 3, algorithm == .sdeDPMSolver {
            throw unsupportedConfigValue(.solverOrder, "3 with algorithm_type 'sde-dpmsolver'", in: cls)
        }
        lowerOrderFinal = config.lowerOrderFinal ?? true
        eulerAtFinal = config.eulerAtFinal ?? false
        useKarras = config.useKarrasSigmas ?? false
        useLuLambdas = config.useLuLambdas ?? false
        finalSigmas = config.finalSigmasType ?? .zero
        if algorithm == .dpmsolver || algorithm == .sdeDPMSolver, finalSigmas == .zero {
            throw ChiselError(.invalidParameter,
                              "final_sigmas_type 'zero' is not supported with algorithm_type '\(algorithm.rawValue)'; use 'sigma_min'",
                              jsonPath: SchedulerConfig.CodingKeys.finalSigmasType.rawValue)
        }
        lambdaMinClipped = config.lambdaMinClipped ?? -.infinity
        roundsKarrasTimesteps = (config.betaSchedule ?? cls.defaults.betaSchedule) != .squaredcosCapV2
        sigmaMinOverride = config.sigmaMin
        sigmaMaxOverride = config.sigmaMax
        sigmaTable = basics.noiseSchedule.trainingSigmas
        timesteps = (0..<basics.noiseSchedule.trainSteps).reversed().map(Double.init)
        modelOutputs = Array(repeating: nil, count: solverOrder)
    }

    public var order: Int { 1 }
    public var sigmas: [Float]? { sigmaTable }
    public var initNoiseSigma: Float { 1 }

    public func setTimesteps(_ count: Int) throws {
        try checkStepCount(count, trainSteps: .max)
        let trainSteps = noiseSchedule.trainSteps
        let train = noiseSchedule.trainingSigmas
        // λ_min clipping (searchsorted on the ascending flipped λ): drop the noisiest tail.
        let lambdas = noiseSchedule.alphasCumprod.map { ac in log(ac.squareRoot()) - log((1 - ac).squareRoot()) }
        let clipped = lambdas.reversed().prefix { Double($0) < lambdaMinClipped }.count
        let last = trainSteps - clipped
        var steps = Spacing.multistep(spacing, count: count, trainSteps: trainSteps, last: last, offset: stepsOffset)
        var sigmas: [Double]
        let logSigmas = SigmaSchedule.logSigmas(train)
        if useKarras {
            sigmas = SigmaSchedule.karras(sigmaMin: sigmaMinOverride ?? Double(train[0]),
                                          sigmaMax: sigmaMaxOverride ?? Double(train[trainSteps - 1]), count: count)
            steps = sigmas.map { SigmaSchedule.sigmaToT($0, logSigmas: logSigmas) }
            if roundsKarrasTimesteps { steps = steps.map(NumPy.round) }
        } else if useLuLambdas {
            let logs = SigmaSchedule.luLambdas(lambdaMin: Double(logSigmas[0]), lambdaMax: Double(logSigmas[trainSteps - 1]),
                                               count: count)
            sigmas = logs.map { Foundation.exp($0) }
            steps = sigmas.map { SigmaSchedule.sigmaToT($0, logSigmas: logSigmas) }
            if roundsKarrasTimesteps { steps = steps.map(NumPy.round) }
        } else {
            sigmas = steps.map { NumPy.interp($0, train) }
        }
        let lastSigma: Float = finalSigmas == .sigmaMin ? SigmaSchedule.trainingSigmaMin(noiseSchedule) : 0
        sigmaTable = sigmas.map { Float($0) } + [lastSigma]
        // `.to(torch.int64)` truncates toward zero (matters for unrounded cosine-schedule Karras timesteps).
        timesteps = steps.map { $0.rounded(.towardZero) }
        modelOutputs = Array(repeating: nil, count: solverOrder)
        lowerOrderNums = 0
        cursor.reset()
    }

    public func scaleModelInput(_ sample: [Float], timestep: Double) throws -> [Float] { sample }

    public func addNoise(original: [Float], noise: [Float], timestep: Double) throws -> [Float] {
        try checkSameCount(original, noise, "add_noise sample and noise")
        let index = try cursor.noiseIndex(for: timestep, in: timesteps, missing: .lastIndex)
        let (alpha, sigma) = alphaSigma(try element(sigmaTable, index, "sigma"))
        return Elementwise.combine(alpha, original, sigma, noise)
    }

    /// diffusers' `convert_model_output`: x0 for the ++ (data-prediction) algorithms, ε otherwise.
    func convert(_ modelOutput: [Float], sample: [Float], sigma: Float) -> [Float] {
        let (alpha, sigmaT) = alphaSigma(sigma)
        switch algorithm {
        case .dpmsolverPlusPlus, .sdeDPMSolverPlusPlus, .deis:
            return predictionType.denoisedVP(modelOutput: modelOutput, sample: sample, alpha: alpha, sigma: sigmaT)
        case .dpmsolver, .sdeDPMSolver:
            switch predictionType {
            case .epsilon, .flowPrediction:
                return modelOutput
            case .sample:
                return zip(sample, modelOutput).map { x, m in let p = alpha * m; return (x - p) / sigmaT }
            case .vPrediction:
                return Elementwise.combine(alpha, modelOutput, sigmaT, sample)
            }
        }
    }

    /// Signal scale, noise scale and λ = log α − log σ of the sigma at `index` (float32, as diffusers).
    private func state(_ index: Int) throws -> (alpha: Float, sigma: Float, lambda: Float) {
        let (alpha, sigma) = alphaSigma(try element(sigmaTable, index, "sigma"))
        return (alpha, sigma, log(alpha) - log(sigma))
    }

    public func step(modelOutput: [Float], timestep: Double, sample: [Float], noise: inout some NoiseSource) throws
        -> SchedulerStepOutput
    {
        try checkSameCount(modelOutput, sample, "model output and sample")
        try checkHistory(modelOutputs, count: sample.count, in: schedulerClass)
        let index = try cursor.current(for: timestep, in: timesteps, missing: .lastIndex)
        let count = timesteps.count
        let finalLowOrder = index == count - 1 && (eulerAtFinal || (lowerOrderFinal && count < 15) || finalSigmas == .zero)
        let secondLowOrder = index == count - 2 && lowerOrderFinal && count < 15
        let converted = convert(modelOutput, sample: sample, sigma: try element(sigmaTable, index, "sigma"))
        modelOutputs.removeFirst()
        modelOutputs.append(converted)
        let isSDE = algorithm == .sdeDPMSolver || algorithm == .sdeDPMSolverPlusPlus
        let fresh = isSDE ? try drawNormal(&noise, count: sample.count) : nil

        let t = try state(index + 1), s0 = try state(index)
        let h = t.lambda - s0.lambda
        var terms: [(Float, [Float])]
        if solverOrder == 1 || lowerOrderNums < 1 || finalLowOrder {
            terms = firstOrderTerms(t: t, s0: s0, h: h, sample: sample, d0: converted)
        } else if solverOrder == 2 || lowerOrderNums < 2 || secondLowOrder {
            let s1 = try state(index - 1)
            let m1 = modelOutputs[solverOrder - 2] ?? converted
            let r0 = (s0.lambda - s1.lambda) / h
            let d1 = Elementwise.divided(converted, m1, by: r0)
            terms = secondOrderTerms(t: t, s0: s0, h: h, sample: sample, d0: converted, d1: d1)
        } else {
            let s1 = try state(index - 1), s2 = try state(index - 2)
            let m1 = modelOutputs[solverOrder - 2] ?? converted, m2 = modelOutputs[solverOrder - 3] ?? converted
            let r0 = (s0.lambda - s1.lambda) / h, r1 = (s1.lambda - s2.lambda) / h
            let d10 = Elementwise.divided(converted, m1, by: r0), d11 = Elementwise.divided(m1, m2, by: r1)
            let weight = r0 / (r0 + r1)
            var d1 = d10, d2 = d10
            let inv = 1 / (r0 + r1)
            for i in d1.indices {
                let diff = d10[i] - d11[i]
                let scaled = weight * diff
                d1[i] = d10[i] + scaled
                d2[i] = inv * diff
            }
            terms = try thirdOrderTerms(t: t, s0: s0, h: h, sample: sample, d0: converted, d1: d1, d2: d2)
        }
        if let fresh {
            // The SDE noise term σ_t·√(1 − e^{−2h})·z (++), or σ_t·√(e^{2h} − 1)·z.
            let scale = algorithm == .sdeDPMSolver ? t.sigma * (exp(2 * h) - 1).squareRoot()
                                                   : t.sigma * (1 - exp(-2 * h)).squareRoot()
            terms.append((scale, fresh))
        }
        if lowerOrderNums < solverOrder { lowerOrderNums += 1 }
        cursor.advance()
        return SchedulerStepOutput(prevSample: Elementwise.linear(terms), denoised: nil)
    }

    typealias State = (alpha: Float, sigma: Float, lambda: Float)

    /// `dpm_solver_first_order_update` (DPM-Solver-1 = DDIM in λ; Lu et al. 2022 eq. 5 / ++ eq. 8).
    private func firstOrderTerms(t: State, s0: State, h: Float, sample: [Float], d0: [Float]) -> [(Float, [Float])] {
        switch algorithm {
        case .dpmsolverPlusPlus, .deis:
            return [(t.sigma / s0.sigma, sample), (-(t.alpha * (exp(-h) - 1)), d0)]
        case .dpmsolver:
            return [(t.alpha / s0.alpha, sample), (-(t.sigma * (exp(h) - 1)), d0)]
        case .sdeDPMSolverPlusPlus:
            return [(t.sigma / s0.sigma * exp(-h), sample), (t.alpha * (1 - exp(-2 * h)), d0)]
        case .sdeDPMSolver:
            return [(t.alpha / s0.alpha, sample), (-(2 * (t.sigma * (exp(h) - 1))), d0)]
        }
    }

    /// `multistep_dpm_solver_second_order_update` (DPM-Solver++(2M), Lu et al. 2022 Algorithm 2).
    private func secondOrderTerms(t: State, s0: State, h: Float, sample: [Float], d0: [Float], d1: [Float])
        -> [(Float, [Float])]
    {
        let midpoint = solverType == .midpoint
        switch algorithm {
        case .dpmsolverPlusPlus, .deis:
            let c = t.alpha * (exp(-h) - 1)
            let c1 = midpoint ? -(0.5 * c) : t.alpha * ((exp(-h) - 1) / h + 1)
            return [(t.sigma / s0.sigma, sample), (-c, d0), (c1, d1)]
        case .dpmsolver:
            let c = t.sigma * (exp(h) - 1)
            let c1 = midpoint ? -(0.5 * c) : -(t.sigma * ((exp(h) - 1) / h - 1))
            return [(t.alpha / s0.alpha, sample), (-c, d0), (c1, d1)]
        case .sdeDPMSolverPlusPlus:
            let c = t.alpha * (1 - exp(-2 * h))
            let c1 = midpoint ? 0.5 * c : t.alpha * ((1 - exp(-2 * h)) / (-2 * h) + 1)
            return [(t.sigma / s0.sigma * exp(-h), sample), (c, d0), (c1, d1)]
        case .sdeDPMSolver:
            let c = t.sigma * (exp(h) - 1)
            let c1 = midpoint ? -c : -(2 * (t.sigma * ((exp(h) - 1) / h - 1)))
            return [(t.alpha / s0.alpha, sample), (-(2 * c), d0), (c1, d1)]
        }
    }

    /// `multistep_dpm_solver_third_order_update` (DPM-Solver++(3M)).
    private func thirdOrderTerms(t: State, s0: State, h: Float, sample: [Float], d0: [Float], d1: [Float], d2: [Float])
        throws -> [(Float, [Float])]
    {
        switch algorithm {
        case .dpmsolverPlusPlus, .deis:
            let e = exp(-h) - 1
            return [(t.sigma / s0.sigma, sample), (-(t.alpha * e), d0), (t.alpha * (e / h + 1), d1),
                    (-(t.alpha * ((e + h) / (h * h) - 0.5)), d2)]
        case .dpmsolver:
            let e = exp(h) - 1
            return [(t.alpha / s0.alpha, sample), (-(t.sigma * e), d0), (-(t.sigma * (e / h - 1)), d1),
                    (-(t.sigma * ((e - h) / (h * h) - 0.5)), d2)]
        case .sdeDPMSolverPlusPlus:
            let e = 1 - exp(-2 * h)
            let twoH = 2 * h
            return [(t.sigma / s0.sigma * exp(-h), sample), (t.alpha * e, d0), (t.alpha * (e / (-2 * h) + 1), d1),
                    (t.alpha * ((e - twoH) / (twoH * twoH) - 0.5), d2)]
        case .sdeDPMSolver:
            throw unsupportedConfigValue(.solverOrder, "3 with algorithm_type 'sde-dpmsolver'", in: schedulerClass)
        }
    }
}
