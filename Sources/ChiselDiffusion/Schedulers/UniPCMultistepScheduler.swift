import ChiselBase
import Foundation

/// diffusers' `UniPCMultistepScheduler`: UniPC (Zhao et al. 2023, arXiv:2302.04867) — the UniP
/// predictor (Algorithm 2) followed, from the second step on, by the UniC corrector (Algorithm 1)
/// applied to the previous step's result (`last_sample`) once the new model output is known;
/// B(h) = e^h − 1 (bh2, default) or h (bh1); data prediction (`predict_x0`) by default.
public final class UniPCMultistepScheduler: ScheduleTracking {
    public let basics: ScheduleBasics
    let solverOrder: Int
    let predictX0: Bool
    let bh2: Bool
    let lowerOrderFinal: Bool
    let disableCorrector: Set<Int>
    let useKarras: Bool
    let finalSigmas: FinalSigmasType
    let sigmaMinOverride: Double?
    let sigmaMaxOverride: Double?

    public private(set) var timesteps: [Double]
    var sigmaTable: [Float]
    public var cursor = StepCursor()
    /// The last `solver_order` converted model outputs, oldest first.
    var modelOutputs: [[Float]?]
    public private(set) var lowerOrderNums = 0
    /// The sample the last predictor started from; the corrector refines the step taken from it.
    var lastSample: [Float]?
    /// The order the last predictor used (diffusers' `this_order`), which the corrector reuses.
    var thisOrder = 1

    public init(config: SchedulerConfig, noiseSchedule: NoiseSchedule? = nil) throws {
        let cls = SchedulerClass.uniPCMultistep
        basics = try ScheduleBasics(config: config, noiseSchedule: noiseSchedule, schedulerClass: cls,
                                    predictionTypes: [.epsilon, .sample, .vPrediction])
        try rejectThresholding(config, in: cls)
        try rejectUnimplementedSigmas(config, in: cls, flow: true)
        if config.useDynamicShifting == true { throw unsupportedConfigValue(.useDynamicShifting, "true", in: cls) }
        if let shift = config.shiftTerminal { throw unsupportedConfigValue(.shiftTerminal, "\(shift)", in: cls) }
        solverOrder = config.solverOrder ?? 2
        guard (1...3).contains(solverOrder) else {
            throw ChiselError(.invalidParameter, "solver_order must be 1, 2 or 3, not \(solverOrder)",
                              jsonPath: SchedulerConfig.CodingKeys.solverOrder.rawValue)
        }
        predictX0 = config.predictX0 ?? true
        // diffusers maps DPM-Solver's solver names to bh2.
        bh2 = config.solverType != .bh1
        lowerOrderFinal = config.lowerOrderFinal ?? true
        disableCorrector = Set(config.disableCorrector ?? [])
        useKarras = config.useKarrasSigmas ?? false
        finalSigmas = config.finalSigmasType ?? .zero
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
        var steps = Spacing.multistep(spacing, count: count, trainSteps: trainSteps, last: trainSteps, offset: stepsOffset)
        if useKarras {
            let logSigmas = SigmaSchedule.logSigmas(train)
            let sigmas = SigmaSchedule.karras(sigmaMin: sigmaMinOverride ?? Double(train[0]),
                                              sigmaMax: sigmaMaxOverride ?? Double(train[trainSteps - 1]), count: count)
            steps = sigmas.map { NumPy.round(SigmaSchedule.sigmaToT($0, logSigmas: logSigmas)) }
            // With Karras sigmas, `sigma_min` means the last Karras sigma, not the training minimum.
            let last = finalSigmas == .sigmaMin ? sigmas[sigmas.count - 1] : 0
            sigmaTable = (sigmas + [last]).map { Float($0) }
        } else {
            let last: Float = finalSigmas == .sigmaMin ? SigmaSchedule.trainingSigmaMin(noiseSchedule) : 0
            sigmaTable = steps.map { Float(NumPy.interp($0, train)) } + [last]
        }
        timesteps = steps.map { $0.rounded(.towardZero) }
        modelOutputs = Array(repeating: nil, count: solverOrder)
        lowerOrderNums = 0
        lastSample = nil
        cursor.reset()
    }

    public func scaleModelInput(_ sample: [Float], timestep: Double) throws -> [Float] { sample }

    public func addNoise(original: [Float], noise: [Float], timestep: Double) throws -> [Float] {
        try checkSameCount(original, noise, "add_noise sample and noise")
        let index = try cursor.noiseIndex(for: timestep, in: timesteps, missing: .lastIndex)
        let (alpha, sigma) = alphaSigma(try element(sigmaTable, index, "sigma"))
        return Elementwise.combine(alpha, original, sigma, noise)
    }

    private func lambda(_ index: Int) throws -> (alpha: Float, sigma: Float, lambda: Float) {
        let (alpha, sigma) = alphaSigma(try element(sigmaTable, index, "sigma"))
        return (alpha, sigma, log(alpha) - log(sigma))
    }

    /// diffusers' `convert_model_output`: x0 (predict_x0) or ε.
    func convert(_ modelOutput: [Float], sample: [Float], index: Int) throws -> [Float] {
        let (alpha, sigma) = alphaSigma(try element(sigmaTable, index, "sigma"))
        if predictX0 { return predictionType.denoisedVP(modelOutput: modelOutput, sample: sample, alpha: alpha, sigma: sigma) }
        switch predictionType {
        case .epsilon, .flowPrediction: return modelOutput
        case .sample: return zip(sample, modelOutput).map { x, m in let p = alpha * m; return (x - p) / sigma }
        case .vPrediction: return Elementwise.combine(alpha, modelOutput, sigma, sample)
        }
    }

    /// The shared part of UniP and UniC: h, the φ-function right-hand side b, B(h), and the rks
    /// ratios with their divided differences D1 against the newest model output m0.
    private struct Update {
        var h: Float
        var hh: Float
        var hPhi1: Float
        var bh: Float
        var rks: [Float]
        var rhs: [Float]
        var d1s: [[Float]]
    }

    /// `t` is the target index, `s0` the source; `history` gives the older (index, output) pairs.
    private func prepare(t: Int, s0: Int, order: Int, m0: [Float], history: [(index: Int, output: [Float])]) throws -> Update {
        let lt = try lambda(t).lambda, ls0 = try lambda(s0).lambda
        let h = lt - ls0
        var rks: [Float] = [], d1s: [[Float]] = []
        for (index, output) in history.prefix(order - 1) {
            let rk = (try lambda(index).lambda - ls0) / h
            rks.append(rk)
            d1s.append(zip(output, m0).map { ($0 - $1) / rk })
        }
        rks.append(1)
        let hh = predictX0 ? -h : h
        let hPhi1 = expm1(hh)
        var hPhiK = hPhi1 / hh - 1
        var factorial = 1
        let bh = bh2 ? expm1(hh) : hh
        var rhs: [Float] = []
        for k in 1...order {
            rhs.append(hPhiK * Float(factorial) / bh)
            factorial *= k + 1
            hPhiK = hPhiK / hh - Float(1 / Double(factorial))
        }
        return Update(h: h, hh: hh, hPhi1: hPhi1, bh: bh, rks: rks, rhs: rhs, d1s: d1s)
    }

    /// `R[i][j] = rks[j]^i` (diffusers' `torch.pow(rks, i)` rows), the first `n` rows and columns.
    private func vandermonde(_ rks: [Float], _ n: Int) -> [[Float]] {
        (0..<n).map { i in (0..<n).map { j in i == 0 ? 1 : (i == 1 ? rks[j] : pow(rks[j], Float(i))) } }
    }

    /// x_t_ = (σ_t/σ_s0)·x − (α_t·φ1)·m0 for x0 prediction, (α_t/α_s0)·x − (σ_t·φ1)·m0 otherwise.
    private func baseTerms(t: Int, s0: Int, x: [Float], m0: [Float], update: Update) throws -> ([Float], Float) {
        let target = try lambda(t), source = try lambda(s0)
        if predictX0 {
            return (Elementwise.linear([(target.sigma / source.sigma, x), (-(target.alpha * update.hPhi1), m0)]),
                    target.alpha * update.bh)
        }
        return (Elementwise.linear([(target.alpha / source.alpha, x), (-(target.sigma * update.hPhi1), m0)]),
                target.sigma * update.bh)
    }

    public func step(modelOutput: [Float], timestep: Double, sample: [Float], noise: inout some NoiseSource) throws
        -> SchedulerStepOutput
    {
        try checkSameCount(modelOutput, sample, "model output and sample")
        try checkHistory(modelOutputs + [lastSample], count: sample.count, in: schedulerClass)
        let index = try cursor.current(for: timestep, in: timesteps, missing: .lastIndex)
        let converted = try convert(modelOutput, sample: sample, index: index)
        var x = sample
        if index > 0, !disableCorrector.contains(index - 1), let last = lastSample {
            x = try corrector(modelT: converted, lastSample: last, thisSample: sample, index: index, order: thisOrder)
        }
        modelOutputs.removeFirst()
        modelOutputs.append(converted)
        let wanted = lowerOrderFinal ? min(solverOrder, timesteps.count - index) : solverOrder
        thisOrder = min(wanted, lowerOrderNums + 1)
        lastSample = x
        let prev = try predictor(x: x, index: index, order: thisOrder)
        if lowerOrderNums < solverOrder { lowerOrderNums += 1 }
        cursor.advance()
        return SchedulerStepOutput(prevSample: prev, denoised: converted)
    }

    /// Older outputs paired with their sigma indices, newest first: output −(k+1) at index `newest − k`.
    private func history(newestIndex: Int) -> [(index: Int, output: [Float])] {
        var pairs: [(index: Int, output: [Float])] = []
        for k in 1..<max(solverOrder, 1) {
            guard let output = modelOutputs[solverOrder - 1 - k] else { break }
            pairs.append((newestIndex - k, output))
        }
        return pairs
    }

    /// `multistep_uni_p_bh_update`: UniP-p from index to index + 1.
    private func predictor(x: [Float], index: Int, order: Int) throws -> [Float] {
        guard let m0 = modelOutputs[solverOrder - 1] else { return x }
        let update = try prepare(t: index + 1, s0: index, order: order, m0: m0, history: history(newestIndex: index))
        let (base, scale) = try baseTerms(t: index + 1, s0: index, x: x, m0: m0, update: update)
        guard !update.d1s.isEmpty else { return base }
        let rhos: [Float] = order == 2 ? [0.5] : try solveLU(vandermonde(update.rks, order - 1), Array(update.rhs.prefix(order - 1)))
        let res = Elementwise.linear(zip(rhos, update.d1s).map { ($0, $1) })
        return zip(base, res).map { b, r in let p = scale * r; return b - p }
    }

    /// `multistep_uni_c_bh_update`: UniC, refining the step from index − 1 to index with `modelT`.
    private func corrector(modelT: [Float], lastSample: [Float], thisSample: [Float], index: Int, order: Int) throws -> [Float] {
        guard let m0 = modelOutputs[solverOrder - 1] else { return thisSample }
        // Before the shift, output −(k+1) belongs to sigma index `index − 1 − k`.
        let update = try prepare(t: index, s0: index - 1, order: order, m0: m0, history: history(newestIndex: index - 1))
        let (base, scale) = try baseTerms(t: index, s0: index - 1, x: lastSample, m0: m0, update: update)
        let rhos: [Float] = order == 1 ? [0.5] : try solveLU(vandermonde(update.rks, order), update.rhs)
        let rhoT = rhos[rhos.count - 1]
        var out = base
        let corr = update.d1s.isEmpty ? nil : Elementwise.linear(zip(rhos.dropLast(), update.d1s).map { ($0, $1) })
        for i in out.indices {
            let d1t = modelT[i] - m0[i]
            let q = rhoT * d1t
            let inner = corr.map { $0[i] + q } ?? q
            let p = scale * inner
            out[i] = base[i] - p
        }
        return out
    }
}

/// `torch.linalg.solve` for the small systems UniPC builds: LU with partial pivoting (LAPACK
/// getrf/getrs order: pivot by largest magnitude, scale by the pivot's reciprocal) in float32.
func solveLU(_ matrix: [[Float]], _ rhs: [Float]) throws -> [Float] {
    let n = rhs.count
    var a = matrix, b = rhs
    for col in 0..<n {
        var pivot = col
        for row in (col + 1)..<max(n, col + 1) where abs(a[row][col]) > abs(a[pivot][col]) { pivot = row }
        guard a[pivot][col] != 0 else { throw ChiselError(.stageFailed, "UniPC: singular coefficient matrix") }
        if pivot != col { a.swapAt(pivot, col); b.swapAt(pivot, col) }
        let inv = 1 / a[col][col]
        for row in (col + 1)..<max(n, col + 1) {
            let l = a[row][col] * inv
            a[row][col] = l
            for k in (col + 1)..<n { let p = l * a[col][k]; a[row][k] = a[row][k] - p }
        }
    }
    // Forward substitution with the unit-lower L, then back substitution with U.
    for row in 0..<n { for k in 0..<row { let p = a[row][k] * b[k]; b[row] = b[row] - p } }
    for row in stride(from: n - 1, through: 0, by: -1) {
        for k in (row + 1)..<n { let p = a[row][k] * b[k]; b[row] = b[row] - p }
        b[row] = b[row] / a[row][row]
    }
    return b
}
