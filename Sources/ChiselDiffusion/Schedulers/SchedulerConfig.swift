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

    /// Reads a `scheduler_config.json` (or a graph's `scheduler_config` object) through the one
    /// config reader; a value of the wrong type or one Chisel does not know names the file and key.
    public init(reader: ConfigReader) throws {
        func value<T>(_ key: CodingKeys, _ read: (String) throws -> T) throws -> T? {
            reader.has(key.rawValue) ? try read(key.rawValue) : nil
        }
        className = try value(.className) { try reader.string($0) }
        numTrainTimesteps = try value(.numTrainTimesteps) { try reader.int($0) }
        betaStart = try value(.betaStart) { try reader.double($0) }
        betaEnd = try value(.betaEnd) { try reader.double($0) }
        betaSchedule = try Self.choice(reader, .betaSchedule)
        trainedBetas = try value(.trainedBetas) { try reader.doubles($0) }
        predictionType = try Self.predictionType(reader)
        timestepSpacing = try Self.choice(reader, .timestepSpacing)
        stepsOffset = try value(.stepsOffset) { try reader.int($0) }
        setAlphaToOne = try value(.setAlphaToOne) { try reader.bool($0, default: false) }
        rescaleBetasZeroSnr = try value(.rescaleBetasZeroSnr) { try reader.bool($0, default: false) }
        clipSample = try value(.clipSample) { try reader.bool($0, default: false) }
        clipSampleRange = try value(.clipSampleRange) { try reader.double($0) }
        thresholding = try value(.thresholding) { try reader.bool($0, default: false) }
        dynamicThresholdingRatio = try value(.dynamicThresholdingRatio) { try reader.double($0) }
        sampleMaxValue = try value(.sampleMaxValue) { try reader.double($0) }
        finalSigmasType = try Self.choice(reader, .finalSigmasType)
        useKarrasSigmas = try value(.useKarrasSigmas) { try reader.bool($0, default: false) }
        useExponentialSigmas = try value(.useExponentialSigmas) { try reader.bool($0, default: false) }
        useBetaSigmas = try value(.useBetaSigmas) { try reader.bool($0, default: false) }
        useFlowSigmas = try value(.useFlowSigmas) { try reader.bool($0, default: false) }
        useLuLambdas = try value(.useLuLambdas) { try reader.bool($0, default: false) }
        useDynamicShifting = try value(.useDynamicShifting) { try reader.bool($0, default: false) }
        sigmaMin = try value(.sigmaMin) { try reader.double($0) }
        sigmaMax = try value(.sigmaMax) { try reader.double($0) }
        skipPrkSteps = try value(.skipPrkSteps) { try reader.bool($0, default: false) }
        interpolationType = try Self.choice(reader, .interpolationType)
        timestepType = try Self.choice(reader, .timestepType)
        solverOrder = try value(.solverOrder) { try reader.int($0) }
        algorithmType = try Self.choice(reader, .algorithmType)
        solverType = try Self.choice(reader, .solverType)
        lowerOrderFinal = try value(.lowerOrderFinal) { try reader.bool($0, default: false) }
        eulerAtFinal = try value(.eulerAtFinal) { try reader.bool($0, default: false) }
        lambdaMinClipped = try Self.lambdaMinClipped(reader)
        varianceType = try Self.choice(reader, .varianceType)
        predictX0 = try value(.predictX0) { try reader.bool($0, default: false) }
        disableCorrector = try value(.disableCorrector) { try reader.ints($0) }
        shiftTerminal = try value(.shiftTerminal) { try reader.double($0) }
        originalInferenceSteps = try value(.originalInferenceSteps) { try reader.int($0) }
        timestepScaling = try value(.timestepScaling) { try reader.double($0) }
    }

    /// A `scheduler_config.json` file.
    public init(file: String) throws {
        try self.init(reader: ConfigReader(file: file))
    }

    /// Decoding (fixtures, other programs) goes through the same reader as the files.
    public init(from decoder: any Decoder) throws {
        try self.init(reader: ConfigReader(json: JSONValue(from: decoder), file: "scheduler config"))
    }

    /// A string-valued key; an unknown value is an `invalidParameter` error naming the key and the accepted values.
    private static func choice<E: RawRepresentable & CaseIterable>(_ reader: ConfigReader, _ key: CodingKeys) throws -> E?
    where E.RawValue == String {
        guard reader.has(key.rawValue) else { return nil }
        let raw = try reader.string(key.rawValue)
        if let value = E(rawValue: raw) { return value }
        let accepted = E.allCases.map(\.rawValue).joined(separator: ", ")
        throw ChiselError(.invalidParameter, "unknown value '\(raw)' for scheduler config key '\(key.rawValue)'; accepted: \(accepted)",
                          jsonPath: key.rawValue)
    }

    /// diffusers' Euler also accepts `original_sample` as a spelling of `sample`.
    private static func predictionType(_ reader: ConfigReader) throws -> PredictionType? {
        if case .string("original_sample")? = reader.json[CodingKeys.predictionType.rawValue] { return .sample }
        return try choice(reader, .predictionType)
    }

    /// Python writes `-inf` as the JSON extension `-Infinity`; accept it as a string too.
    private static func lambdaMinClipped(_ reader: ConfigReader) throws -> Double? {
        let key = CodingKeys.lambdaMinClipped.rawValue
        guard reader.has(key) else { return nil }
        if case .string(let text)? = reader.json[key] {
            switch text.lowercased() {
            case "-inf", "-infinity": return -.infinity
            default:
                throw ChiselError(.invalidParameter, "scheduler config key 'lambda_min_clipped' must be a number, not '\(text)'",
                                  jsonPath: key)
            }
        }
        return try reader.double(key)
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
