import ChiselBase

/// diffusers' `LMSDiscreteScheduler`: k-diffusion's linear multistep sampler (Karras et al. 2022,
/// after Crowson): x_{i+1} = x_i + Σ_j c_j·d_{i−j}, where c_j integrates the Lagrange basis
/// polynomial of the last `order` sigmas over [σ_i, σ_{i+1}] (diffusers uses scipy's quad; we
/// integrate the polynomial exactly).
public final class LMSDiscreteScheduler: SigmaSpaceScheduler {
    public let basics: ScheduleBasics
    public internal(set) var timesteps: [Double]
    public internal(set) var sigmaTable: [Float]
    public var cursor = StepCursor()
    let useKarras: Bool
    /// diffusers' `step(order=4)` default.
    let maxOrder = 4
    var derivatives: [[Float]] = []

    public init(config: SchedulerConfig, noiseSchedule: NoiseSchedule? = nil) throws {
        useKarras = config.useKarrasSigmas ?? false
        basics = try ScheduleBasics(config: config, noiseSchedule: noiseSchedule, schedulerClass: .lms, predictionTypes: [.epsilon, .vPrediction, .sample])
        (timesteps, sigmaTable) = Self.trainingSchedule(basics)
        try rejectUnimplementedSigmas(config, in: .lms)
    }

    public var order: Int { 1 }

    public func setTimesteps(_ count: Int) throws {
        try checkStepCount(count, trainSteps: .max)
        // LMS's _convert_to_karras ignores config sigma_min/sigma_max.
        (timesteps, sigmaTable) = discreteSchedule(count: count, karras: useKarras, sigmaMin: nil, sigmaMax: nil, finalSigma: .zero)
        cursor.reset()
        derivatives = []
    }

    /// diffusers' `get_lms_coefficient(order, t, current_order)`: ∫_{σ_t}^{σ_{t+1}} ∏_{k≠j} (τ − σ_{t−k})/(σ_{t−j} − σ_{t−k}) dτ,
    /// in closed form: the basis polynomial's coefficients in float64, integrated term by term.
    func lmsCoefficient(order: Int, index t: Int, current j: Int) throws -> Double {
        var poly: [Double] = [1]  // coefficients, lowest degree first
        let nodeJ = Double(try element(sigmaTable, t - j, "sigma"))
        for k in 0..<order where k != j {
            let nodeK = Double(try element(sigmaTable, t - k, "sigma"))
            let denom = nodeJ - nodeK
            // poly *= (τ − nodeK) / denom
            var next = [Double](repeating: 0, count: poly.count + 1)
            for (m, c) in poly.enumerated() {
                next[m + 1] += c / denom
                next[m] -= c * nodeK / denom
            }
            poly = next
        }
        let a = Double(try element(sigmaTable, t, "sigma")), b = Double(try element(sigmaTable, t + 1, "sigma"))
        var integral = 0.0
        var powA = a, powB = b
        for (m, c) in poly.enumerated() {
            integral += c * (powB - powA) / Double(m + 1)
            powA *= a
            powB *= b
        }
        return integral
    }

    public func step(modelOutput: [Float], timestep: Double, sample: [Float], noise: inout some NoiseSource) throws
        -> SchedulerStepOutput
    {
        try checkSameCount(modelOutput, sample, "model output and sample")
        try checkHistory(derivatives, count: sample.count, in: schedulerClass)
        let index = try cursor.current(for: timestep, in: timesteps, missing: .fail)
        let sigma = try element(sigmaTable, index, "sigma")
        let denoised = predictionType.denoisedSigmaSpace(modelOutput: modelOutput, sample: sample,
                                                         epsSigma: sigma, vSigma: sigma)
        derivatives.append(zip(sample, denoised).map { ($0 - $1) / sigma })
        if derivatives.count > maxOrder { derivatives.removeFirst() }
        // diffusers takes the order from the step index, not from the history, so an img2img run
        // starting mid-schedule applies the first of several coefficients to its single derivative.
        let order = min(index + 1, maxOrder)
        let coefficients = try (0..<order).map { try lmsCoefficient(order: order, index: index, current: $0) }
        var total: [Float]?
        for (coefficient, derivative) in zip(coefficients, derivatives.reversed()) {
            let term = Elementwise.scale(derivative, Float(coefficient))
            total = total.map { acc in zip(acc, term).map { $0 + $1 } } ?? term
        }
        var prev = sample
        if let total { for i in prev.indices { prev[i] = sample[i] + total[i] } }
        cursor.advance()
        return SchedulerStepOutput(prevSample: prev, denoised: denoised)
    }
}
