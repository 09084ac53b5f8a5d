import ChiselBase
import Foundation

/// Noise-level (sigma) schedules of the k-diffusion style classes (Karras et al. 2022).
enum SigmaSchedule {
    /// `np.log` of the float32 training sigmas. numpy's float32 log is not correctly rounded
    /// (its SIMD kernel is off by one ulp in ~20% of cases); this is, so fractional timesteps
    /// from `sigmaToT` may differ from diffusers' in the last float32 bit.
    static func logSigmas(_ sigmas: [Float]) -> [Float] { sigmas.map { Float(Foundation.log(Double($0))) } }

    /// Karras et al. 2022, eq. 5 with rho = 7: `(max^(1/ρ) + ramp·(min^(1/ρ) − max^(1/ρ)))^ρ`, ramp = linspace(0, 1, n).
    static func karras(sigmaMin: Double, sigmaMax: Double, count: Int) -> [Double] {
        let rho = 7.0
        let minInvRho = pow(sigmaMin, 1 / rho), maxInvRho = pow(sigmaMax, 1 / rho)
        return NumPy.linspace(0, 1, count).map { pow(maxInvRho + $0 * (minInvRho - maxInvRho), rho) }
    }

    /// DPM-Solver's `_convert_to_lu` (Lu et al. 2022, "uniform logSNR"): λ linear from λ_max to λ_min.
    static func luLambdas(lambdaMin: Double, lambdaMax: Double, count: Int) -> [Double] {
        NumPy.linspace(0, 1, count).map { ramp in lambdaMax + ramp * (lambdaMin - lambdaMax) }
    }

    /// diffusers' `_sigma_to_t`: the fractional training timestep whose log-sigma is `sigma`'s,
    /// by linear interpolation between the two neighbouring training log-sigmas (ascending).
    static func sigmaToT(_ sigma: Double, logSigmas: [Float]) -> Double {
        let logSigma = Foundation.log(max(sigma, 1e-10))
        // Last index whose log-sigma is <= logSigma (0 when none), capped so that high = low + 1 exists.
        var low = 0
        for (i, value) in logSigmas.enumerated() where logSigma - Double(value) >= 0 { low = i }
        low = min(low, logSigmas.count - 2)
        let high = low + 1
        let lowValue = logSigmas[low], highValue = logSigmas[high]
        // numpy subtracts the two float32 neighbours in float32; the numerator is float64.
        let width = Double(lowValue - highValue)
        let w = min(max((Double(lowValue) - logSigma) / width, 0), 1)
        return (1 - w) * Double(low) + w * Double(high)
    }

    /// `((1 − ᾱ₀) / ᾱ₀) ** 0.5` in float32: the smallest training sigma, `final_sigmas_type = sigma_min`.
    static func trainingSigmaMin(_ schedule: NoiseSchedule) -> Float {
        let a0 = schedule.alphasCumprod[0]
        return ((1 - a0) / a0).squareRoot()
    }

    /// Sigma-space `add_noise` of the Karras-style classes: `x0 + noise·sigma` (Karras et al. 2022, eq. 1).
    static func addNoise(original: [Float], noise: [Float], sigma: Float) throws -> [Float] {
        try checkSameCount(original, noise, "add_noise sample and noise")
        return Elementwise.addScaled(original, noise, sigma)
    }

    /// The Karras-style model input: `sample / sqrt(sigma² + 1)` (Karras et al. 2022, c_in of Table 1).
    static func scaleInput(_ sample: [Float], sigma: Float) -> [Float] {
        Elementwise.divide(sample, (sigma * sigma + 1).squareRoot())
    }

    /// `init_noise_sigma` of the Karras-style classes: the largest sigma for linspace/trailing,
    /// sqrt(σ_max² + 1) for leading (diffusers' convention).
    static func initNoiseSigma(_ sigmas: [Float], spacing: TimestepSpacing) -> Float {
        let maxSigma = sigmas.max() ?? 1
        switch spacing {
        case .linspace, .trailing: return maxSigma
        case .leading: return (maxSigma * maxSigma + 1).squareRoot()
        }
    }
}

/// The model parameterisation: turning the network's output into the clean-image estimate x0,
/// per `prediction_type` (Salimans & Ho 2022 for v). Sigma-space form: x = x0 + sigma·eps.
extension PredictionType {
    /// x0 in sigma space (Euler, LMS, Heun): eps: `x − σ·ε`; v: `v·(−σ/√(σ²+1)) + x/(σ²+1)`; sample: the output.
    /// `epsSigma` is the sigma the eps form uses (Euler's sigma_hat), `vSigma` the v form's.
    func denoisedSigmaSpace(modelOutput: [Float], sample: [Float], epsSigma: Float, vSigma: Float) -> [Float] {
        switch self {
        case .epsilon:
            var out = sample
            for i in out.indices { let p = epsSigma * modelOutput[i]; out[i] = sample[i] - p }
            return out
        case .vPrediction:
            let c = -vSigma / (vSigma * vSigma + 1).squareRoot()
            let d = vSigma * vSigma + 1
            var out = sample
            for i in out.indices { let p = modelOutput[i] * c; let q = sample[i] / d; out[i] = p + q }
            return out
        case .sample, .flowPrediction:
            return modelOutput
        }
    }

    /// x0 in alpha space (DDIM, DDPM, LCM; Ho et al. 2020 eq. 15): eps: `(x − √(1−ᾱ)·ε)/√ᾱ`; v: `√ᾱ·x − √(1−ᾱ)·v`.
    func denoisedAlphaSpace(modelOutput: [Float], sample: [Float], alphaProd: Float) -> [Float] {
        let sqrtAlpha = alphaProd.squareRoot(), sqrtBeta = (1 - alphaProd).squareRoot()
        return denoisedVP(modelOutput: modelOutput, sample: sample, alpha: sqrtAlpha, sigma: sqrtBeta)
    }

    /// x0 for a variance-preserving state with signal `alpha` and noise `sigma` (DPM-Solver, UniPC, DDIM):
    /// eps: `(x − σ·ε)/α`; v: `α·x − σ·v`; sample: the output.
    func denoisedVP(modelOutput: [Float], sample: [Float], alpha: Float, sigma: Float) -> [Float] {
        switch self {
        case .epsilon:
            var out = sample
            for i in out.indices { let p = sigma * modelOutput[i]; out[i] = (sample[i] - p) / alpha }
            return out
        case .vPrediction:
            var out = sample
            for i in out.indices { let p = alpha * sample[i], q = sigma * modelOutput[i]; out[i] = p - q }
            return out
        case .sample, .flowPrediction:
            return modelOutput
        }
    }

    /// Checks this prediction type is one `schedulerClass` implements.
    func check(allowed: [PredictionType], in schedulerClass: SchedulerClass) throws {
        guard allowed.contains(self) else {
            throw unsupportedConfigValue(.predictionType, "'\(rawValue)'", in: schedulerClass)
        }
    }
}

/// `_sigma_to_alpha_sigma_t`: the variance-preserving signal and noise scales of a sigma:
/// α = 1/√(σ²+1), σ_t = σ·α (float32, as diffusers' 0-dim tensors).
func alphaSigma(_ sigma: Float) -> (alpha: Float, sigma: Float) {
    let alpha = 1 / (sigma * sigma + 1).squareRoot()
    return (alpha, sigma * alpha)
}
