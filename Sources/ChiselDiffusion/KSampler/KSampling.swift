import ChiselBase
import Foundation

/// ComfyUI's discrete model sampling for epsilon-prediction Stable Diffusion models
/// (`ModelSamplingDiscrete` with `EPS`): the training sigmas computed in double from the betas and
/// kept as float32, the noise level of a fractional timestep by interpolation in log-sigma, and the
/// timestep the network is called with for a sigma — the *nearest integer* timestep in log-sigma,
/// not diffusers' fractional `_sigma_to_t`.
public struct KModelSampling: Sendable {
    /// σ_t for t = 0 … T−1, ascending.
    public let sigmas: [Float]
    public let logSigmas: [Float]
    public var sigmaMin: Float { sigmas.first ?? 0 }
    public var sigmaMax: Float { sigmas.last ?? 0 }

    /// The schedule of `config`'s betas: `scaled_linear` is ComfyUI's (and LDM's) "linear",
    /// √β linear from √β_start to √β_end; `linear` is β linear. Computed in double, as ComfyUI does.
    public init(config: SchedulerConfig) throws {
        let count = config.numTrainTimesteps ?? 1000
        let start = config.betaStart ?? 0.00085, end = config.betaEnd ?? 0.012
        guard count >= 2 else { throw ChiselError(.invalidParameter, "num_train_timesteps must be at least 2, not \(count)") }
        let betas: [Double]
        switch config.betaSchedule ?? .scaledLinear {
        case .scaledLinear: betas = Self.linspace(start.squareRoot(), end.squareRoot(), count).map { $0 * $0 }
        case .linear: betas = Self.linspace(start, end, count)
        case let other:
            throw ChiselError(.invalidParameter, "KSampler sampling takes scaled_linear or linear betas, not '\(other.rawValue)'")
        }
        var product = 1.0
        var sigmas: [Float] = [], logs: [Float] = []
        for beta in betas {
            product *= 1 - beta
            let sigma = ((1 - product) / product).squareRoot()
            sigmas.append(Float(sigma))
            logs.append(Float(log(sigma)))
        }
        self.sigmas = sigmas
        self.logSigmas = logs
    }

    /// No sigmas (for a test's fallback).
    static let empty = KModelSampling(sigmas: [], logSigmas: [])

    private init(sigmas: [Float], logSigmas: [Float]) {
        self.sigmas = sigmas
        self.logSigmas = logSigmas
    }

    /// `torch.linspace` in float64: from the start below the middle, from the end above it.
    static func linspace(_ start: Double, _ end: Double, _ count: Int) -> [Double] {
        guard count > 1 else { return count == 1 ? [start] : [] }
        let step = (end - start) / Double(count - 1)
        return (0..<count).map { i in i < count / 2 ? start + step * Double(i) : end - step * Double(count - 1 - i) }
    }

    /// `sigma(t)`: t clamped to [0, T−1], log-sigma interpolated between floor and ceil, in float32.
    public func sigma(timestep t: Float) -> Float {
        let clamped = min(max(t, 0), Float(sigmas.count - 1))
        let low = Int(clamped.rounded(.down)), high = Int(clamped.rounded(.up))
        let w = clamped - Float(low)
        return Foundation.exp((1 - w) * logSigmas[low] + w * logSigmas[high])
    }

    /// `timestep(sigma)`: the training timestep whose log-sigma is nearest (the first on a tie).
    public func timestep(sigma: Float) -> Int {
        let target = Foundation.log(sigma)
        var best = 0
        var distance = Float.infinity
        for (i, value) in logSigmas.enumerated() where abs(target - value) < distance {
            distance = abs(target - value)
            best = i
        }
        return best
    }
}

/// ComfyUI's schedulers: the sigma list for a number of steps, ending in 0.
public enum KSchedule: String, Sendable, CaseIterable {
    case normal, karras, exponential
    case sgmUniform = "sgm_uniform"
    case simple
    case ddimUniform = "ddim_uniform"

    /// ComfyUI's schedulers Chisel does not implement, refused by name.
    public static let unimplemented = ["beta", "linear_quadratic", "kl_optimal", "AYS SD1", "AYS SDXL", "gits"]

    public func sigmas(steps: Int, model s: KModelSampling) -> [Float] {
        guard steps > 0 else { return [] }
        switch self {
        case .normal, .sgmUniform:
            // Timesteps linear from t(σ_max) to t(σ_min) (sgm: steps + 1 of them, the last dropped).
            let start = Float(s.timestep(sigma: s.sigmaMax)), end = Float(s.timestep(sigma: s.sigmaMin))
            var count = steps
            var appendZero = true
            var ts: [Float]
            if self == .sgmUniform {
                ts = Array(Self.linspace32(start, end, steps + 1).dropLast())
            } else {
                if abs(s.sigma(timestep: end)) <= 0.00001 {
                    count += 1
                    appendZero = false
                }
                ts = Self.linspace32(start, end, count)
            }
            return ts.map { s.sigma(timestep: $0) } + (appendZero ? [0] : [])
        case .karras:
            let rho: Float = 7
            // As torch computes it: Python-float scalars (double) applied to a float32 ramp.
            let minInv = pow(Double(s.sigmaMin), 1 / 7.0), maxInv = pow(Double(s.sigmaMax), 1 / 7.0)
            let (base, span) = (Float(maxInv), Float(minInv - maxInv))
            return Self.linspace32(0, 1, steps).map { ramp in Foundation.pow(base + ramp * span, rho) } + [0]
        case .exponential:
            return Self.linspace32(Float(log(Double(s.sigmaMax))), Float(log(Double(s.sigmaMin))), steps).map { Foundation.exp($0) } + [0]
        case .simple:
            let stride = Double(s.sigmas.count) / Double(steps)
            return (0..<steps).map { x in s.sigmas[s.sigmas.count - 1 - Int(Double(x) * stride)] } + [0]
        case .ddimUniform:
            var count = steps
            var sigs: [Float] = []
            if abs(s.sigmas[1]) <= 0.00001 { count += 1 } else { sigs = [0] }
            let stride = max(s.sigmas.count / count, 1)
            var x = 1
            while x < s.sigmas.count {
                sigs.append(s.sigmas[x])
                x += stride
            }
            return sigs.reversed()
        }
    }

    /// `torch.linspace` in float32 (steps computed in float, filled from both ends).
    static func linspace32(_ start: Float, _ end: Float, _ count: Int) -> [Float] {
        guard count > 1 else { return count == 1 ? [start] : [] }
        let step = (end - start) / Float(count - 1)
        return (0..<count).map { i in
            i < count / 2 ? start.addingProduct(step, Float(i)) : end.addingProduct(-step, Float(count - 1 - i))
        }
    }
}

/// ComfyUI's samplers (k-diffusion's, as ComfyUI ships them) that Chisel implements.
public enum KSamplerKind: String, Sendable, CaseIterable {
    case euler
    case eulerAncestral = "euler_ancestral"
    case heun
    case dpm2 = "dpm_2"
    case dpmpp2M = "dpmpp_2m"
    case lcm
    /// ComfyUI's `ddim` is Euler (deterministic DDIM is Euler in sigma space); it differs only in
    /// inpainting, where the masked latent's noise comes from seed + 1.
    case ddim

    /// ComfyUI's samplers Chisel does not implement, refused by name.
    public static let unimplemented = [
        "euler_cfg_pp", "euler_ancestral_cfg_pp", "heunpp2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive",
        "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde",
        "dpmpp_2m_sde_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "ipndm", "ipndm_v", "deis", "res_multistep",
        "uni_pc", "uni_pc_bh2", "gradient_estimation", "er_sde", "seeds_2", "seeds_3", "sa_solver",
    ]

    /// Samplers for which ComfyUI computes one more sigma and drops the penultimate one.
    public var discardsPenultimateSigma: Bool { self == .dpm2 }
}

/// ComfyUI's KSampler / KSamplerAdvanced sigma selection.
public enum KSigmas {
    /// `KSampler.set_steps`: the schedule for `steps`, or with `denoise` < 1 the last steps + 1
    /// sigmas of the schedule for int(steps / denoise) steps; then KSampler.sample's `last_step`
    /// (with `forceFullDenoise` the last sigma set to 0) and `start_step` cuts.
    /// Nil when `start_step` leaves nothing to run (ComfyUI returns the latent unchanged).
    public static func sigmas(sampler: KSamplerKind, schedule: KSchedule, steps: Int, denoise: Double,
                              model: KModelSampling, startStep: Int? = nil, lastStep: Int? = nil,
                              forceFullDenoise: Bool = false) -> [Float]? {
        func calculate(_ count: Int) -> [Float] {
            guard sampler.discardsPenultimateSigma else { return schedule.sigmas(steps: count, model: model) }
            let all = schedule.sigmas(steps: count + 1, model: model)
            guard all.count >= 2 else { return all }
            return Array(all.dropLast(2)) + [all[all.count - 1]]
        }
        var sigmas: [Float]
        if denoise > 0.9999 {
            sigmas = calculate(steps)
        } else if denoise <= 0 {
            sigmas = []
        } else {
            let all = calculate(Int(Double(steps) / denoise))
            sigmas = Array(all.suffix(steps + 1))
        }
        if let lastStep, lastStep < sigmas.count - 1 {
            sigmas = Array(sigmas.prefix(lastStep + 1))
            if forceFullDenoise, !sigmas.isEmpty { sigmas[sigmas.count - 1] = 0 }
        }
        if let startStep {
            guard startStep < sigmas.count - 1 else { return nil }
            sigmas = Array(sigmas[startStep...])
        }
        return sigmas
    }
}

/// The samplers' loops over a sigma list, calling `denoise(x, σ)` (the guided x₀ prediction) as
/// k-diffusion's functions do; `noise` draws the ancestral noise (ComfyUI: a generator seeded with
/// the KSampler's seed, one latent-sized draw per step that adds noise). Latents are flat and
/// element-wise; `reorder` lays a draw out as the caller keeps the latent.
public enum KDiffusion {
    public static func sample(_ kind: KSamplerKind, x start: [Float], sigmas: [Float], noise: inout some NoiseSource,
                              reorder: ([Float]) -> [Float] = { $0 }, progress: (Int, Int) -> Void = { _, _ in },
                              denoise: ([Float], Float) throws -> [Float]) throws -> [Float] {
        var x = start
        let steps = max(sigmas.count - 1, 0)
        var oldDenoised: [Float]?
        for i in 0..<steps {
            try Task.checkCancellation()
            let sigma = sigmas[i], next = sigmas[i + 1]
            let denoised = try denoise(x, sigma)
            switch kind {
            case .euler, .ddim:
                let dt = next - sigma
                for j in x.indices { x[j] += (x[j] - denoised[j]) / sigma * dt }
            case .eulerAncestral:
                let (down, up) = ancestralStep(from: sigma, to: next)
                if down == 0 {
                    x = denoised
                } else {
                    let dt = down - sigma
                    for j in x.indices { x[j] += (x[j] - denoised[j]) / sigma * dt }
                    if next > 0 {
                        let draw = reorder(noise.normal(count: x.count))
                        for j in x.indices { x[j] += draw[j] * up }
                    }
                }
            case .heun:
                let dt = next - sigma
                let d = zip(x, denoised).map { ($0 - $1) / sigma }
                if next == 0 {
                    for j in x.indices { x[j] += d[j] * dt }
                } else {
                    let x2 = zip(x, d).map { $0 + $1 * dt }
                    let denoised2 = try denoise(x2, next)
                    for j in x.indices { x[j] += (d[j] + (x2[j] - denoised2[j]) / next) / 2 * dt }
                }
            case .dpm2:
                let d = zip(x, denoised).map { ($0 - $1) / sigma }
                if next == 0 {
                    let dt = next - sigma
                    for j in x.indices { x[j] += d[j] * dt }
                } else {
                    let mid = Foundation.exp((Foundation.log(sigma) + Foundation.log(next)) / 2)
                    let x2 = zip(x, d).map { $0 + $1 * (mid - sigma) }
                    let denoised2 = try denoise(x2, mid)
                    let dt2 = next - sigma
                    for j in x.indices { x[j] += (x2[j] - denoised2[j]) / mid * dt2 }
                }
            case .dpmpp2M:
                // t = −log σ; h = t_next − t. The first step and the last (σ_next = 0) are first order.
                let t = -Foundation.log(sigma), tNext = -Foundation.log(next)
                let h = tNext - t
                let ratio = Foundation.exp(-tNext) / Foundation.exp(-t)
                let factor = -Foundation.expm1(-h)   // x ← (σ_next/σ)·x − expm1(−h)·D
                if let old = oldDenoised, next != 0 {
                    let hLast = t + Foundation.log(sigmas[i - 1])
                    let r = hLast / h
                    let (a, b) = (1 + 1 / (2 * r), 1 / (2 * r))
                    for j in x.indices { x[j] = ratio * x[j] + factor * (a * denoised[j] - b * old[j]) }
                } else {
                    for j in x.indices { x[j] = ratio * x[j] + factor * denoised[j] }
                }
                oldDenoised = denoised
            case .lcm:
                x = denoised
                if next > 0 {
                    let draw = reorder(noise.normal(count: x.count))
                    for j in x.indices { x[j] += draw[j] * next }
                }
            }
            progress(i + 1, steps)
        }
        return x
    }

    /// k-diffusion's `get_ancestral_step` with η = 1: the deterministic step to σ_down and the noise σ_up.
    static func ancestralStep(from sigma: Float, to next: Float) -> (down: Float, up: Float) {
        let up = min(next, (next * next * (sigma * sigma - next * next) / (sigma * sigma)).squareRoot())
        return ((next * next - up * up).squareRoot(), up)
    }

    /// ComfyUI's `noise_scaling` for epsilon models: latent + noise·σ, or noise·√(1+σ²) when the
    /// schedule starts at (or above) the model's σ_max (`max_denoise`).
    public static func noised(_ latent: [Float], noise: [Float], sigma: Float, model: KModelSampling) -> [Float] {
        let maxDenoise = abs(sigma - model.sigmaMax) <= 1e-5 * max(abs(sigma), abs(model.sigmaMax)) || sigma > model.sigmaMax
        let scale = maxDenoise ? (1 + sigma * sigma).squareRoot() : sigma
        return zip(latent, noise).map { $0 + $1 * scale }
    }
}
