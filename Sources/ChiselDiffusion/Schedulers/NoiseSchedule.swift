import ChiselBase
import Foundation

/// The training noise schedule: betas and ᾱ (`alphas_cumprod`), in float32 as diffusers keeps them.
public struct NoiseSchedule: Sendable, Equatable {
    public let betas: [Float]
    public let alphasCumprod: [Float]
    public var trainSteps: Int { alphasCumprod.count }

    public init(betas: [Float], alphasCumprod: [Float]) {
        self.betas = betas
        self.alphasCumprod = alphasCumprod
    }

    /// The betas a class builds from `config` (its `__init__`: `trained_betas`, else `beta_schedule`,
    /// then `rescale_zero_terminal_snr` if the class reads that key).
    init(config: SchedulerConfig, for schedulerClass: SchedulerClass) throws {
        let defaults = schedulerClass.defaults
        let count = config.numTrainTimesteps ?? 1000
        guard count >= 2 else {
            throw ChiselError(.invalidParameter, "num_train_timesteps must be at least 2, not \(count)",
                              jsonPath: SchedulerConfig.CodingKeys.numTrainTimesteps.rawValue)
        }
        var betas: [Float]
        if let trained = config.trainedBetas {
            guard trained.count == count else {
                throw ChiselError(.invalidParameter, "trained_betas has \(trained.count) values, num_train_timesteps is \(count)",
                                  jsonPath: SchedulerConfig.CodingKeys.trainedBetas.rawValue)
            }
            betas = trained.map { Float($0) }
        } else {
            let start = config.betaStart ?? defaults.betaStart
            let end = config.betaEnd ?? defaults.betaEnd
            switch config.betaSchedule ?? defaults.betaSchedule {
            case .linear:
                betas = Self.torchLinspace(start, end, count)
            case .scaledLinear:
                betas = Self.torchLinspace(start.squareRoot(), end.squareRoot(), count).map { $0 * $0 }
            case .squaredcosCapV2:
                betas = Self.cosineBetas(count)
            case let other:
                throw unsupportedConfigValue(.betaSchedule, "'\(other.rawValue)'", in: schedulerClass)
            }
        }
        let rescale = defaults.readsZeroSNR && (config.rescaleBetasZeroSnr ?? false)
        if rescale { betas = Self.rescaledToZeroTerminalSNR(betas) }
        self.init(betas: betas, alphasCumprod: Self.cumprod(betas.map { 1 - $0 }))
        if rescale && defaults.pinsTerminalAlpha { self = pinningTerminalAlpha() }
    }

    /// This schedule with the last ᾱ set to 2^-24, as the sigma-based classes do after the zero-SNR
    /// rescale so that σ_max stays finite (4096).
    public func pinningTerminalAlpha() -> NoiseSchedule {
        var alphas = alphasCumprod
        if !alphas.isEmpty { alphas[alphas.count - 1] = 0x1p-24 }
        return NoiseSchedule(betas: betas, alphasCumprod: alphas)
    }

    /// `torch.linspace(start, end, steps, dtype=float32)` on CPU, bit for bit.
    ///
    /// torch fills from the start below `steps/2` and from the end above it, one scalar at a time;
    /// its AVX2/AVX-512 builds contract `start + step·i` into a fused multiply-add, so we do too
    /// (torch's no-SIMD `DEFAULT` build rounds twice and differs in the last bit of some betas).
    static func torchLinspace(_ startValue: Double, _ endValue: Double, _ steps: Int) -> [Float] {
        guard steps > 1 else { return steps == 1 ? [Float(startValue)] : [] }
        let start = Float(startValue), end = Float(endValue)
        let step = (end - start) / Float(steps - 1)
        let halfway = steps / 2
        return (0..<steps).map { idx in
            idx < halfway ? start.addingProduct(step, Float(idx)) : end.addingProduct(-step, Float(steps - idx - 1))
        }
    }

    /// `torch.cumprod` of float32 on CPU: accumulated in double, each prefix rounded to float.
    static func cumprod(_ values: [Float]) -> [Float] {
        var acc = 1.0
        return values.map { acc *= Double($0); return Float(acc) }
    }

    /// diffusers' `betas_for_alpha_bar` with the cosine ᾱ of Nichol & Dhariwal 2021 (eq. 17), beta capped at 0.999.
    static func cosineBetas(_ count: Int) -> [Float] {
        func alphaBar(_ t: Double) -> Double { pow(cos((t + 0.008) / 1.008 * Double.pi / 2), 2) }
        return (0..<count).map { i in
            let t1 = Double(i) / Double(count), t2 = Double(i + 1) / Double(count)
            return Float(min(1 - alphaBar(t2) / alphaBar(t1), 0.999))
        }
    }

    /// diffusers' `rescale_zero_terminal_snr` (Lin et al. 2023, Algorithm 1) in float32.
    static func rescaledToZeroTerminalSNR(_ betas: [Float]) -> [Float] {
        var root = cumprod(betas.map { 1 - $0 }).map { $0.squareRoot() }
        guard let first = root.first, let last = root.last else { return betas }
        let scale = first / (first - last)
        root = root.map { ($0 - last) * scale }
        let alphaBar = root.map { $0 * $0 }
        var alphas = [alphaBar[0]]
        for i in 1..<alphaBar.count { alphas.append(alphaBar[i] / alphaBar[i - 1]) }
        return alphas.map { 1 - $0 }
    }

    /// ᾱ at an integer timestep, or `final` for timesteps below 0 (`final_alpha_cumprod`).
    func alphaProd(at timestep: Int, final: Float) throws -> Float {
        if timestep < 0 { return final }
        return try element(alphasCumprod, timestep, "timestep")
    }

    /// The training sigmas sqrt((1-ᾱ)/ᾱ), ascending with t, in float32 as diffusers computes them.
    var trainingSigmas: [Float] { alphasCumprod.map { ((1 - $0) / $0).squareRoot() } }

    /// The alpha-based `add_noise` of DDIM, DDPM, PNDM and LCM: sqrt(ᾱ)·x0 + sqrt(1-ᾱ)·noise (Ho et al. 2020, eq. 4).
    func addNoise(original: [Float], noise: [Float], timestep: Double) throws -> [Float] {
        try checkSameCount(original, noise, "add_noise sample and noise")
        let alphaProd = try element(alphasCumprod, try integerTimestep(timestep), "timestep")
        return Elementwise.combine(alphaProd.squareRoot(), original, (1 - alphaProd).squareRoot(), noise)
    }
}

/// Element-wise float32 arithmetic in the operation order of diffusers' torch expressions.
enum Elementwise {
    /// `a * x + b * y`, each product rounded before the sum as torch does.
    static func combine(_ a: Float, _ x: [Float], _ b: Float, _ y: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        for i in out.indices {
            let p = a * x[i], q = b * y[i]
            out[i] = p + q
        }
        return out
    }

    /// `x + y * b`.
    static func addScaled(_ x: [Float], _ y: [Float], _ b: Float) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        for i in out.indices {
            let q = y[i] * b
            out[i] = x[i] + q
        }
        return out
    }

    /// `x * a`.
    static func scale(_ x: [Float], _ a: Float) -> [Float] { x.map { $0 * a } }

    /// `x / a`.
    static func divide(_ x: [Float], _ a: Float) -> [Float] { x.map { $0 / a } }

    /// `x.clamp(-limit, limit)`.
    static func clamp(_ x: [Float], _ limit: Float) -> [Float] { x.map { min(max($0, -limit), limit) } }
}

extension Elementwise {
    /// `c0·x0 + c1·x1 + …` summed left to right, each product rounded first: the order of a torch
    /// expression like `a * x - b * d0 - c * d1` once its scalar factors are folded (signs fold exactly).
    static func linear(_ terms: [(Float, [Float])]) -> [Float] {
        guard let first = terms.first else { return [] }
        var out = first.1.map { first.0 * $0 }
        for (c, x) in terms.dropFirst() {
            for i in out.indices { let p = c * x[i]; out[i] = out[i] + p }
        }
        return out
    }

    /// `(1 / r) * (a − b)`: diffusers' divided differences D1 = (m0 − m1)/r0.
    static func divided(_ a: [Float], _ b: [Float], by r: Float) -> [Float] {
        let inv = 1 / r
        var out = a
        for i in out.indices { let d = a[i] - b[i]; out[i] = inv * d }
        return out
    }
}
