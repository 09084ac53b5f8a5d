import ChiselBase

/// `beta_schedule`: how betas are laid out over the training timesteps.
public enum BetaSchedule: String, Codable, Sendable, CaseIterable {
    case linear
    case scaledLinear = "scaled_linear"
    case squaredcosCapV2 = "squaredcos_cap_v2"
    /// Known to diffusers (DDPM's sigmoid and laplace, Heun's exp) but not implemented; rejected when read.
    case sigmoid, laplace, exp
}

/// `timestep_spacing`: how inference timesteps are picked among the training ones.
public enum TimestepSpacing: String, Codable, Sendable, CaseIterable {
    case leading, trailing, linspace
}

/// `final_sigmas_type`: the sigma after the last step.
public enum FinalSigmasType: String, Codable, Sendable, CaseIterable {
    case zero
    case sigmaMin = "sigma_min"
}

/// DPM-Solver's `algorithm_type`.
public enum DPMSolverAlgorithm: String, Codable, Sendable, CaseIterable {
    case dpmsolver
    case dpmsolverPlusPlus = "dpmsolver++"
    case sdeDPMSolver = "sde-dpmsolver"
    case sdeDPMSolverPlusPlus = "sde-dpmsolver++"
    /// diffusers maps `deis` to `dpmsolver++` with a warning; so do we.
    case deis
}

/// `solver_type`: DPM-Solver's midpoint/heun, UniPC's bh1/bh2 (each class maps the other's names as diffusers does).
public enum SolverType: String, Codable, Sendable, CaseIterable {
    case midpoint, heun, logrho, bh1, bh2
}

/// Euler's `interpolation_type`.
public enum InterpolationType: String, Codable, Sendable, CaseIterable {
    case linear
    case logLinear = "log_linear"
}

/// Euler's `timestep_type`.
public enum TimestepType: String, Codable, Sendable, CaseIterable {
    case discrete, continuous
}

/// DDPM's and DPM-Solver's `variance_type`.
public enum VarianceType: String, Codable, Sendable, CaseIterable {
    case fixedSmall = "fixed_small"
    case fixedSmallLog = "fixed_small_log"
    case fixedLarge = "fixed_large"
    case fixedLargeLog = "fixed_large_log"
    case learned
    case learnedRange = "learned_range"
}

/// A diffusers `scheduler_config.json`, key for key.
///
/// Every field is optional: `nil` means the key is absent, and the scheduler class that reads the
/// config supplies its own default (defaults differ per class, e.g. `timestep_spacing`). That is
/// also how diffusers' `X.from_config(other.config)` behaves: keys the source class only defaulted
/// are not carried over, keys set in the file are. A value Chisel does not implement is rejected,
/// naming the key, by the class that reads it (see `SchedulerClass.readKeys`).
public struct SchedulerConfig: Codable, Sendable, Equatable {
    /// `_class_name`: the diffusers class the checkpoint ships.
    public var className: String?
    public var numTrainTimesteps: Int?
    public var betaStart: Double?
    public var betaEnd: Double?
    public var betaSchedule: BetaSchedule?
    public var trainedBetas: [Double]?
    public var predictionType: PredictionType?
    public var timestepSpacing: TimestepSpacing?
    public var stepsOffset: Int?
    public var setAlphaToOne: Bool?
    public var rescaleBetasZeroSnr: Bool?
    public var clipSample: Bool?
    public var clipSampleRange: Double?
    public var thresholding: Bool?
    public var dynamicThresholdingRatio: Double?
    public var sampleMaxValue: Double?
    public var finalSigmasType: FinalSigmasType?
    public var useKarrasSigmas: Bool?
    public var useExponentialSigmas: Bool?
    public var useBetaSigmas: Bool?
    public var useFlowSigmas: Bool?
    public var useLuLambdas: Bool?
    public var useDynamicShifting: Bool?
    public var sigmaMin: Double?
    public var sigmaMax: Double?
    public var skipPrkSteps: Bool?
    public var interpolationType: InterpolationType?
    public var timestepType: TimestepType?
    public var solverOrder: Int?
    public var algorithmType: DPMSolverAlgorithm?
    public var solverType: SolverType?
    public var lowerOrderFinal: Bool?
    public var eulerAtFinal: Bool?
    public var lambdaMinClipped: Double?
    public var varianceType: VarianceType?
    public var predictX0: Bool?
    public var disableCorrector: [Int]?
    public var shiftTerminal: Double?
    public var originalInferenceSteps: Int?
    public var timestepScaling: Double?

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case className = "_class_name"
        case numTrainTimesteps = "num_train_timesteps"
        case betaStart = "beta_start"
        case betaEnd = "beta_end"
        case betaSchedule = "beta_schedule"
        case trainedBetas = "trained_betas"
        case predictionType = "prediction_type"
        case timestepSpacing = "timestep_spacing"
        case stepsOffset = "steps_offset"
        case setAlphaToOne = "set_alpha_to_one"
        case rescaleBetasZeroSnr = "rescale_betas_zero_snr"
        case clipSample = "clip_sample"
        case clipSampleRange = "clip_sample_range"
        case thresholding
        case dynamicThresholdingRatio = "dynamic_thresholding_ratio"
        case sampleMaxValue = "sample_max_value"
        case finalSigmasType = "final_sigmas_type"
        case useKarrasSigmas = "use_karras_sigmas"
        case useExponentialSigmas = "use_exponential_sigmas"
        case useBetaSigmas = "use_beta_sigmas"
        case useFlowSigmas = "use_flow_sigmas"
        case useLuLambdas = "use_lu_lambdas"
        case useDynamicShifting = "use_dynamic_shifting"
        case sigmaMin = "sigma_min"
        case sigmaMax = "sigma_max"
        case skipPrkSteps = "skip_prk_steps"
        case interpolationType = "interpolation_type"
        case timestepType = "timestep_type"
        case solverOrder = "solver_order"
        case algorithmType = "algorithm_type"
        case solverType = "solver_type"
        case lowerOrderFinal = "lower_order_final"
        case eulerAtFinal = "euler_at_final"
        case lambdaMinClipped = "lambda_min_clipped"
        case varianceType = "variance_type"
        case predictX0 = "predict_x0"
        case disableCorrector = "disable_corrector"
        case shiftTerminal = "shift_terminal"
        case originalInferenceSteps = "original_inference_steps"
        case timestepScaling = "timestep_scaling"
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        className = try c.decodeIfPresent(String.self, forKey: .className)
        numTrainTimesteps = try c.decodeIfPresent(Int.self, forKey: .numTrainTimesteps)
        betaStart = try c.decodeIfPresent(Double.self, forKey: .betaStart)
        betaEnd = try c.decodeIfPresent(Double.self, forKey: .betaEnd)
        betaSchedule = try Self.decodeEnum(c, .betaSchedule)
        trainedBetas = try c.decodeIfPresent([Double].self, forKey: .trainedBetas)
        predictionType = try Self.decodePredictionType(c)
        timestepSpacing = try Self.decodeEnum(c, .timestepSpacing)
        stepsOffset = try c.decodeIfPresent(Int.self, forKey: .stepsOffset)
        setAlphaToOne = try c.decodeIfPresent(Bool.self, forKey: .setAlphaToOne)
        rescaleBetasZeroSnr = try c.decodeIfPresent(Bool.self, forKey: .rescaleBetasZeroSnr)
        clipSample = try c.decodeIfPresent(Bool.self, forKey: .clipSample)
        clipSampleRange = try c.decodeIfPresent(Double.self, forKey: .clipSampleRange)
        thresholding = try c.decodeIfPresent(Bool.self, forKey: .thresholding)
        dynamicThresholdingRatio = try c.decodeIfPresent(Double.self, forKey: .dynamicThresholdingRatio)
        sampleMaxValue = try c.decodeIfPresent(Double.self, forKey: .sampleMaxValue)
        finalSigmasType = try Self.decodeEnum(c, .finalSigmasType)
        useKarrasSigmas = try c.decodeIfPresent(Bool.self, forKey: .useKarrasSigmas)
        useExponentialSigmas = try c.decodeIfPresent(Bool.self, forKey: .useExponentialSigmas)
        useBetaSigmas = try c.decodeIfPresent(Bool.self, forKey: .useBetaSigmas)
        useFlowSigmas = try c.decodeIfPresent(Bool.self, forKey: .useFlowSigmas)
        useLuLambdas = try c.decodeIfPresent(Bool.self, forKey: .useLuLambdas)
        useDynamicShifting = try c.decodeIfPresent(Bool.self, forKey: .useDynamicShifting)
        sigmaMin = try c.decodeIfPresent(Double.self, forKey: .sigmaMin)
        sigmaMax = try c.decodeIfPresent(Double.self, forKey: .sigmaMax)
        skipPrkSteps = try c.decodeIfPresent(Bool.self, forKey: .skipPrkSteps)
        interpolationType = try Self.decodeEnum(c, .interpolationType)
        timestepType = try Self.decodeEnum(c, .timestepType)
        solverOrder = try c.decodeIfPresent(Int.self, forKey: .solverOrder)
        algorithmType = try Self.decodeEnum(c, .algorithmType)
        solverType = try Self.decodeEnum(c, .solverType)
        lowerOrderFinal = try c.decodeIfPresent(Bool.self, forKey: .lowerOrderFinal)
        eulerAtFinal = try c.decodeIfPresent(Bool.self, forKey: .eulerAtFinal)
        lambdaMinClipped = try Self.decodeLambdaMinClipped(c)
        varianceType = try Self.decodeEnum(c, .varianceType)
        predictX0 = try c.decodeIfPresent(Bool.self, forKey: .predictX0)
        disableCorrector = try c.decodeIfPresent([Int].self, forKey: .disableCorrector)
        shiftTerminal = try c.decodeIfPresent(Double.self, forKey: .shiftTerminal)
        originalInferenceSteps = try c.decodeIfPresent(Int.self, forKey: .originalInferenceSteps)
        timestepScaling = try c.decodeIfPresent(Double.self, forKey: .timestepScaling)
    }

    /// Decodes a string-valued key; an unknown value is an `invalidParameter` error naming the key and the accepted values.
    private static func decodeEnum<E: RawRepresentable & CaseIterable>(
        _ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys
    ) throws -> E? where E.RawValue == String {
        guard let raw = try c.decodeIfPresent(String.self, forKey: key) else { return nil }
        if let value = E(rawValue: raw) { return value }
        let accepted = E.allCases.map(\.rawValue).joined(separator: ", ")
        throw ChiselError(.invalidParameter, "unknown value '\(raw)' for scheduler config key '\(key.rawValue)'; accepted: \(accepted)",
                          jsonPath: key.rawValue)
    }

    /// diffusers' Euler also accepts `original_sample` as a spelling of `sample`.
    private static func decodePredictionType(_ c: KeyedDecodingContainer<CodingKeys>) throws -> PredictionType? {
        if let raw = try? c.decodeIfPresent(String.self, forKey: .predictionType), raw == "original_sample" { return .sample }
        return try decodeEnum(c, .predictionType)
    }

    /// Python writes `-inf` as the JSON extension `-Infinity`, which Foundation rejects; accept it as a string too.
    private static func decodeLambdaMinClipped(_ c: KeyedDecodingContainer<CodingKeys>) throws -> Double? {
        if let text = try? c.decodeIfPresent(String.self, forKey: .lambdaMinClipped) {
            switch text.lowercased() {
            case "-inf", "-infinity": return -.infinity
            default:
                throw ChiselError(.invalidParameter, "scheduler config key 'lambda_min_clipped' must be a number, not '\(text)'",
                                  jsonPath: CodingKeys.lambdaMinClipped.rawValue)
            }
        }
        return try c.decodeIfPresent(Double.self, forKey: .lambdaMinClipped)
    }

    /// This config with every key set in `overrides` replacing its own (diffusers' `from_config(config, **kwargs)`).
    public func overridden(by overrides: SchedulerConfig) -> SchedulerConfig {
        var merged = self
        func take<T>(_ key: WritableKeyPath<SchedulerConfig, T?>) {
            if let value = overrides[keyPath: key] { merged[keyPath: key] = value }
        }
        take(\.className); take(\.numTrainTimesteps); take(\.betaStart); take(\.betaEnd); take(\.betaSchedule)
        take(\.trainedBetas); take(\.predictionType); take(\.timestepSpacing); take(\.stepsOffset)
        take(\.setAlphaToOne); take(\.rescaleBetasZeroSnr); take(\.clipSample); take(\.clipSampleRange)
        take(\.thresholding); take(\.dynamicThresholdingRatio); take(\.sampleMaxValue); take(\.finalSigmasType)
        take(\.useKarrasSigmas); take(\.useExponentialSigmas); take(\.useBetaSigmas); take(\.useFlowSigmas)
        take(\.useLuLambdas); take(\.useDynamicShifting); take(\.sigmaMin); take(\.sigmaMax); take(\.skipPrkSteps)
        take(\.interpolationType); take(\.timestepType); take(\.solverOrder); take(\.algorithmType)
        take(\.solverType); take(\.lowerOrderFinal); take(\.eulerAtFinal); take(\.lambdaMinClipped)
        take(\.varianceType); take(\.predictX0); take(\.disableCorrector); take(\.shiftTerminal)
        take(\.originalInferenceSteps); take(\.timestepScaling)
        return merged
    }
}

/// The error for a config value Chisel knows but does not implement.
func unsupportedConfigValue(_ key: SchedulerConfig.CodingKeys, _ value: String, in schedulerClass: SchedulerClass) -> ChiselError {
    ChiselError(.invalidParameter,
                "scheduler config key '\(key.rawValue)' = \(value) is not supported by Chisel's \(schedulerClass.rawValue)",
                jsonPath: key.rawValue)
}
