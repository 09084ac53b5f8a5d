import ChiselBase
import Foundation

/// The diffusers scheduler classes Chisel reproduces, by their `_class_name`.
public enum SchedulerClass: String, Sendable, CaseIterable {
    case ddim = "DDIMScheduler"
    case ddpm = "DDPMScheduler"
    case pndm = "PNDMScheduler"
    case lms = "LMSDiscreteScheduler"
    case euler = "EulerDiscreteScheduler"
    case eulerAncestral = "EulerAncestralDiscreteScheduler"
    case heun = "HeunDiscreteScheduler"
    case dpmSolverMultistep = "DPMSolverMultistepScheduler"
    case uniPCMultistep = "UniPCMultistepScheduler"
    case lcm = "LCMScheduler"

    /// The `__init__` defaults of this class where they differ between classes.
    var defaults: ClassDefaults {
        switch self {
        case .ddim: ClassDefaults(timestepSpacing: .leading, setAlphaToOne: true, clipSample: true, readsZeroSNR: true)
        case .ddpm: ClassDefaults(timestepSpacing: .leading, clipSample: true, readsZeroSNR: true)
        case .pndm: ClassDefaults(timestepSpacing: .leading, readsZeroSNR: false)
        case .lms: ClassDefaults(readsZeroSNR: false)
        case .euler, .eulerAncestral, .dpmSolverMultistep, .uniPCMultistep:
            ClassDefaults(readsZeroSNR: true, pinsTerminalAlpha: true)
        case .heun: ClassDefaults(betaStart: 0.00085, betaEnd: 0.012, readsZeroSNR: false)
        case .lcm:
            ClassDefaults(betaStart: 0.00085, betaEnd: 0.012, betaSchedule: .scaledLinear, timestepSpacing: .leading,
                          setAlphaToOne: true, readsZeroSNR: true)
        }
    }
}

/// Per-class defaults of the keys whose defaults differ between diffusers classes.
struct ClassDefaults {
    var betaStart = 0.0001
    var betaEnd = 0.02
    var betaSchedule = BetaSchedule.linear
    var timestepSpacing = TimestepSpacing.linspace
    var setAlphaToOne = false
    var clipSample = false
    /// Whether the class's `__init__` takes `rescale_betas_zero_snr` (PNDM, LMS and Heun ignore it, as in diffusers).
    var readsZeroSNR: Bool
    /// Whether, after that rescale, the class pins the last ᾱ to 2^-24 so its sigma stays finite
    /// (the sigma-based classes); DDIM, DDPM and LCM keep ᾱ_T = 0.
    var pinsTerminalAlpha = false
}

/// The scheduler a user picks: a diffusers class plus the config overrides that name implies
/// (`X.from_config(config, use_karras_sigmas=True)`), under the names Chisel, AUTOMATIC1111 and ComfyUI use.
public enum SchedulerKind: String, Sendable, CaseIterable {
    case ddim, ddpm, pndm, lms, lmsKarras = "lms_karras", euler, eulerKarras = "euler_karras"
    case eulerAncestral = "euler_a", heun, heunKarras = "heun_karras"
    case dpmpp2M = "dpmpp_2m", dpmpp2MKarras = "dpmpp_2m_karras"
    case dpmpp2MSDE = "dpmpp_2m_sde", dpmpp2MSDEKarras = "dpmpp_2m_sde_karras"
    case dpmpp3M = "dpmpp_3m", dpmpp3MKarras = "dpmpp_3m_karras"
    case unipc, lcm

    /// One row per kind: its class, the overrides it implies, and every other name it answers to.
    /// Names are matched case-insensitively. AUTOMATIC1111's "PLMS" maps to PNDM (as the checkpoint
    /// configures it; SD 1.x ships `skip_prk_steps: true`, i.e. pseudo linear multistep), but A1111's
    /// PLMS warm-up is not bit-identical to diffusers', so results differ slightly.
    struct Entry {
        let kind: SchedulerKind
        let schedulerClass: SchedulerClass
        let overrides: SchedulerConfig
        let aliases: [String]
    }

    static let table: [Entry] = {
        var karras = SchedulerConfig(); karras.useKarrasSigmas = true
        var sde = SchedulerConfig(); sde.algorithmType = .sdeDPMSolverPlusPlus
        var sdeKarras = sde; sdeKarras.useKarrasSigmas = true
        var third = SchedulerConfig(); third.solverOrder = 3
        var thirdKarras = third; thirdKarras.useKarrasSigmas = true
        let none = SchedulerConfig()
        return [
            Entry(kind: .ddim, schedulerClass: .ddim, overrides: none, aliases: ["DDIM"]),
            Entry(kind: .ddpm, schedulerClass: .ddpm, overrides: none, aliases: ["DDPM"]),
            Entry(kind: .pndm, schedulerClass: .pndm, overrides: none, aliases: ["PLMS"]),
            Entry(kind: .lms, schedulerClass: .lms, overrides: none, aliases: ["LMS", "k_lms"]),
            Entry(kind: .lmsKarras, schedulerClass: .lms, overrides: karras, aliases: ["LMS Karras"]),
            Entry(kind: .euler, schedulerClass: .euler, overrides: none, aliases: ["Euler", "k_euler"]),
            Entry(kind: .eulerKarras, schedulerClass: .euler, overrides: karras, aliases: ["Euler Karras"]),
            Entry(kind: .eulerAncestral, schedulerClass: .eulerAncestral, overrides: none,
                  aliases: ["Euler a", "euler_ancestral", "k_euler_a", "k_euler_ancestral"]),
            Entry(kind: .heun, schedulerClass: .heun, overrides: none, aliases: ["Heun", "k_heun"]),
            Entry(kind: .heunKarras, schedulerClass: .heun, overrides: karras, aliases: ["Heun Karras"]),
            Entry(kind: .dpmpp2M, schedulerClass: .dpmSolverMultistep, overrides: none, aliases: ["DPM++ 2M", "k_dpmpp_2m"]),
            Entry(kind: .dpmpp2MKarras, schedulerClass: .dpmSolverMultistep, overrides: karras,
                  aliases: ["DPM++ 2M Karras", "k_dpmpp_2m_ka"]),
            Entry(kind: .dpmpp2MSDE, schedulerClass: .dpmSolverMultistep, overrides: sde, aliases: ["DPM++ 2M SDE", "k_dpmpp_2m_sde"]),
            Entry(kind: .dpmpp2MSDEKarras, schedulerClass: .dpmSolverMultistep, overrides: sdeKarras,
                  aliases: ["DPM++ 2M SDE Karras", "k_dpmpp_2m_sde_ka"]),
            Entry(kind: .dpmpp3M, schedulerClass: .dpmSolverMultistep, overrides: third, aliases: ["DPM++ 3M"]),
            Entry(kind: .dpmpp3MKarras, schedulerClass: .dpmSolverMultistep, overrides: thirdKarras,
                  aliases: ["DPM++ 3M Karras"]),
            Entry(kind: .unipc, schedulerClass: .uniPCMultistep, overrides: none, aliases: ["UniPC", "uni_pc"]),
            Entry(kind: .lcm, schedulerClass: .lcm, overrides: none, aliases: ["LCM", "k_lcm"]),
        ]
    }()

    private var entry: Entry {
        // The table has a row for every case (a test checks it); the fallback keeps this total.
        Self.table.first { $0.kind == self } ?? Entry(kind: self, schedulerClass: .euler, overrides: .init(), aliases: [])
    }

    /// The canonical name, e.g. `dpmpp_2m_karras`.
    public var name: String { rawValue }
    /// The diffusers class this kind builds.
    public var schedulerClass: SchedulerClass { entry.schedulerClass }
    /// The config keys this kind sets on top of the checkpoint's config.
    public var overrides: SchedulerConfig { entry.overrides }
    /// The name AUTOMATIC1111 shows, as its infotext's `Sampler` writes it.
    public var a1111Name: String { entry.aliases.first ?? rawValue }

    /// The `Sampler` AUTOMATIC1111 1.9+ writes for this kind: the sampler without its schedule
    /// (`Schedule type` carries that). Kinds A1111 does not have keep names it does not know
    /// (DDPM, DPM++ 3M), so that it refuses them rather than taking them for another.
    public var a1111Sampler: String {
        switch self {
        case .lmsKarras: "LMS"
        case .eulerKarras: "Euler"
        case .heunKarras: "Heun"
        case .dpmpp2MKarras: "DPM++ 2M"
        case .dpmpp2MSDEKarras: "DPM++ 2M SDE"
        case .dpmpp3MKarras: "DPM++ 3M"
        default: a1111Name
        }
    }

    /// This sampler with A1111's `Schedule type` (`--schedule-type`): Karras picks the Karras-sigma
    /// variant, Uniform or Automatic the plain one; the schedules Chisel does not implement
    /// (Exponential, SGM Uniform, …) are refused by name.
    public func withScheduleType(_ type: String) throws -> SchedulerKind {
        let wanted = type.trimmingCharacters(in: .whitespaces).lowercased().replacingOccurrences(of: " ", with: "_")
        let plain: [SchedulerKind: SchedulerKind] = [.lmsKarras: .lms, .eulerKarras: .euler, .heunKarras: .heun,
                                                     .dpmpp2MKarras: .dpmpp2M, .dpmpp2MSDEKarras: .dpmpp2MSDE, .dpmpp3MKarras: .dpmpp3M]
        let base = plain[self] ?? self
        switch wanted {
        case "automatic", "uniform":
            return base
        case "karras":
            guard let karras = plain.first(where: { $0.value == base })?.key else {
                throw ChiselError(.invalidParameter, "\(base.a1111Sampler) has no Karras schedule in Chisel")
            }
            return karras
        default:
            throw ChiselError(.invalidParameter, "schedule type '\(type)' is not implemented by Chisel; it has Automatic, Uniform and Karras")
        }
    }

    /// The `Schedule type` AUTOMATIC1111 1.9+ writes: Karras for the Karras-sigma kinds, Uniform
    /// for the other σ-based ones (A1111's "Automatic" would read DPM++ 2M as Karras and the SDE
    /// samplers as Exponential), none for DDIM, DDPM, PLMS, UniPC and LCM, which have their own.
    public var a1111ScheduleType: String? {
        switch self {
        case .lmsKarras, .eulerKarras, .heunKarras, .dpmpp2MKarras, .dpmpp2MSDEKarras, .dpmpp3MKarras: "Karras"
        case .lms, .euler, .eulerAncestral, .heun, .dpmpp2M, .dpmpp2MSDE, .dpmpp3M: "Uniform"
        case .ddim, .ddpm, .pndm, .unipc, .lcm: nil
        }
    }
    /// Every name this kind answers to: canonical first, then A1111 and ComfyUI names.
    public var names: [String] { [rawValue] + entry.aliases }

    /// Every accepted name, for error messages and help.
    public static var acceptedNames: [String] { table.flatMap { [$0.kind.rawValue] + $0.aliases } }

    /// AUTOMATIC1111's samplers Chisel does not implement, refused by name rather than taken
    /// for another.
    public static let unimplementedA1111 = ["DPM++ SDE", "DPM++ 2S a", "DPM2", "DPM2 a", "DPM fast", "DPM adaptive", "Restart",
                                            "DDIM CFG++", "DPM++ 3M SDE", "Euler CFG++", "Heun PP2", "LMS Karras PP2"]

    /// The kind called `name` (canonical, A1111 or ComfyUI spelling, any case).
    public init(named name: String) throws {
        let wanted = name.trimmingCharacters(in: .whitespaces).lowercased()
        // The longest label that names it ("DPM2 a Karras" is DPM2 a's, not DPM2's).
        if let a1111 = Self.unimplementedA1111.filter({ wanted == $0.lowercased() || wanted.hasPrefix($0.lowercased() + " ") })
            .max(by: { $0.count < $1.count }) {
            throw ChiselError(.invalidParameter, "AUTOMATIC1111's sampler '\(a1111)' is not implemented by Chisel; "
                              + "it runs DDIM, DDPM, PLMS, LMS, Euler, Euler a, Heun, DPM++ 2M, DPM++ 2M SDE, DPM++ 3M, UniPC and LCM")
        }
        guard let row = Self.table.first(where: { row in
            row.kind.rawValue == wanted || row.aliases.contains { $0.lowercased() == wanted }
        }) else {
            throw ChiselError(.invalidParameter,
                              "unknown scheduler '\(name)'; accepted: \(Self.acceptedNames.joined(separator: ", "))")
        }
        self = row.kind
    }

    /// The kind a checkpoint's `scheduler_config.json` declares: its `_class_name`, refined by the
    /// keys a kind overrides (a DPMSolverMultistepScheduler config with `use_karras_sigmas` is `dpmpp_2m_karras`).
    public static func declared(by config: SchedulerConfig) throws -> SchedulerKind {
        guard let className = config.className else {
            throw ChiselError(.invalidParameter, "scheduler config has no '_class_name'", jsonPath: "_class_name")
        }
        guard let schedulerClass = SchedulerClass(rawValue: className) else {
            let known = SchedulerClass.allCases.map(\.rawValue).joined(separator: ", ")
            throw ChiselError(.unsupportedFormat, "scheduler class '\(className)' is not supported; supported: \(known)",
                              jsonPath: "_class_name")
        }
        // Most specific first: the row whose overrides all hold in the config and that overrides the most keys.
        let rows = table.filter { $0.schedulerClass == schedulerClass && $0.overrides.holds(in: config) }
        let best = rows.max { $0.overrides.setKeyCount < $1.overrides.setKeyCount }
        return best?.kind ?? .euler
    }

    /// The scheduler of this kind for a checkpoint's config: like diffusers' `X.from_config(config, **overrides)`,
    /// the checkpoint's keys (betas, prediction type, spacing, ...) are kept, the class and overrides are this kind's.
    public func makeScheduler(config: SchedulerConfig, options: StepOptions = StepOptions()) throws -> any Scheduler {
        var merged = config.overridden(by: overrides)
        merged.className = schedulerClass.rawValue
        let scheduler = try schedulerClass.makeScheduler(config: merged)
        scheduler.apply(options)
        return scheduler
    }
}

extension SchedulerClass {
    /// An instance of this class from a config, as `Class.from_config(config)`; `noiseSchedule`,
    /// when given, replaces the betas and ᾱ the config describes (e.g. reference values).
    public func makeScheduler(config: SchedulerConfig, noiseSchedule: NoiseSchedule? = nil) throws -> any Scheduler {
        switch self {
        case .ddim: try DDIMScheduler(config: config, noiseSchedule: noiseSchedule)
        case .ddpm: try DDPMScheduler(config: config, noiseSchedule: noiseSchedule)
        case .pndm: try PNDMScheduler(config: config, noiseSchedule: noiseSchedule)
        case .lms: try LMSDiscreteScheduler(config: config, noiseSchedule: noiseSchedule)
        case .euler: try EulerDiscreteScheduler(config: config, noiseSchedule: noiseSchedule)
        case .eulerAncestral: try EulerAncestralDiscreteScheduler(config: config, noiseSchedule: noiseSchedule)
        case .heun: try HeunDiscreteScheduler(config: config, noiseSchedule: noiseSchedule)
        case .dpmSolverMultistep: try DPMSolverMultistepScheduler(config: config, noiseSchedule: noiseSchedule)
        case .uniPCMultistep: try UniPCMultistepScheduler(config: config, noiseSchedule: noiseSchedule)
        case .lcm: try LCMScheduler(config: config, noiseSchedule: noiseSchedule)
        }
    }
}

extension SchedulerConfig {
    /// How many keys are set (for picking the most specific kind).
    var setKeyCount: Int {
        var count = 0
        if useKarrasSigmas != nil { count += 1 }
        if algorithmType != nil { count += 1 }
        if solverOrder != nil { count += 1 }
        return count
    }

    /// Whether every key a kind overrides has that value in `config`, defaults counting as unset.
    func holds(in config: SchedulerConfig) -> Bool {
        if let v = useKarrasSigmas, (config.useKarrasSigmas ?? false) != v { return false }
        if let v = algorithmType, (config.algorithmType ?? .dpmsolverPlusPlus) != v { return false }
        if let v = solverOrder, (config.solverOrder ?? 2) != v { return false }
        return true
    }
}
