import ChiselBase

/// What one solver step returns.
public struct SchedulerStepOutput: Sendable {
    /// The latent for the next timestep (diffusers' `prev_sample`).
    public var prevSample: [Float]
    /// The clean-image estimate where the class returns one: `pred_original_sample`, or LCM's `denoised`.
    public var denoised: [Float]?
}

/// What a sampling run asks of the solver besides its config, as diffusers' pipelines pass it to
/// `step` (`eta`); given once, when the scheduler is made.
public struct StepOptions: Sendable, Equatable {
    /// DDIM's η: 0 deterministic, 1 DDPM-like noise. Classes without it ignore it, as diffusers'
    /// pipelines pass `eta` only to schedulers whose `step` takes it.
    public var eta: Double

    public init(eta: Double = 0) { self.eta = eta }
}

/// A diffusion sampler with diffusers' loop semantics: `setTimesteps`, then for each `t` of
/// `timesteps[beginIndex...]`: `scaleModelInput`, the model, `step`.
///
/// Latents are flat `[Float]` in N×C×H×W order; every operation is element-wise. Timesteps are
/// passed back as the scheduler handed them out, as diffusers' pipelines do, because some classes
/// (DDIM, DDPM, PNDM, LCM) index their tables by the timestep itself.
public protocol Scheduler: AnyObject {
    /// The diffusers class this instance reproduces.
    var schedulerClass: SchedulerClass { get }
    /// What the model is called with, in order; integral for most classes, fractional with Karras sigmas.
    var timesteps: [Double] { get }
    /// The noise levels per step, for sigma-based classes (`nil` for DDIM, DDPM, PNDM, LCM).
    var sigmas: [Float]? { get }
    /// Model calls per solver step (2 for Heun): img2img starts at `timesteps[tStart * order]`.
    var order: Int { get }
    /// Factor for the initial noise of a txt2img run (`latents = noise * initNoiseSigma`).
    var initNoiseSigma: Float { get }
    var beginIndex: Int? { get }
    var stepIndex: Int? { get }

    /// diffusers' `set_timesteps(num_inference_steps)`; resets the step position and history.
    func setTimesteps(_ count: Int) throws
    /// diffusers' `set_begin_index`: the img2img pipeline calls it with `tStart * order`.
    func setBeginIndex(_ index: Int)
    /// The model's input at `timestep` (divides by sqrt(sigma²+1) for sigma-based classes).
    func scaleModelInput(_ sample: [Float], timestep: Double) throws -> [Float]
    /// One solver step from `timestep`; stochastic classes draw their noise from `noise` exactly
    /// where diffusers calls `randn_tensor`, one draw of the whole latent's count.
    func step(modelOutput: [Float], timestep: Double, sample: [Float], noise: inout some NoiseSource) throws
        -> SchedulerStepOutput
    /// diffusers' `add_noise(original, noise, [timestep])`, as img2img and inpainting call it.
    func addNoise(original: [Float], noise: [Float], timestep: Double) throws -> [Float]
    /// Takes the run's step options; a class reads those its `step` has (DDIM: η).
    func apply(_ options: StepOptions)
}

extension Scheduler {
    public func apply(_ options: StepOptions) {}

    /// The img2img start: diffusers' `get_timesteps(num_inference_steps, strength)`. Returns the
    /// truncated timesteps after calling `setBeginIndex(tStart * order)`; call after `setTimesteps`.
    public func truncate(steps: Int, strength: Double) -> (tStart: Int, timesteps: ArraySlice<Double>) {
        let initTimestep = min(Int(Double(steps) * strength), steps)
        let tStart = max(steps - initTimestep, 0)
        let begin = min(tStart * order, timesteps.count)
        setBeginIndex(begin)
        return (tStart, timesteps[begin...])
    }
}

/// What every class reads from its config the same way: the noise schedule (or the one given),
/// the prediction type (checked against those the class implements), the timestep spacing and
/// offset (the class's own defaults where the config is silent).
public struct ScheduleBasics: Sendable {
    public let schedulerClass: SchedulerClass
    public let noiseSchedule: NoiseSchedule
    public let predictionType: PredictionType
    let spacing: TimestepSpacing
    let stepsOffset: Int

    init(config: SchedulerConfig, noiseSchedule: NoiseSchedule?, schedulerClass: SchedulerClass,
         predictionTypes: [PredictionType]) throws {
        self.schedulerClass = schedulerClass
        self.noiseSchedule = try noiseSchedule ?? NoiseSchedule(config: config, for: schedulerClass)
        predictionType = config.predictionType ?? .epsilon
        try predictionType.check(allowed: predictionTypes, in: schedulerClass)
        spacing = config.timestepSpacing ?? schedulerClass.defaults.timestepSpacing
        stepsOffset = config.stepsOffset ?? 0
    }
}

/// The two small requirements the shared scheduler code builds on, as protocol extensions: the
/// config facts every class reads the same way, and the step position every class keeps.
public protocol ScheduleTracking: Scheduler {
    var basics: ScheduleBasics { get }
    /// diffusers' `_step_index` and `_begin_index`.
    var cursor: StepCursor { get set }
}

extension ScheduleTracking {
    public var schedulerClass: SchedulerClass { basics.schedulerClass }
    public var noiseSchedule: NoiseSchedule { basics.noiseSchedule }
    public var predictionType: PredictionType { basics.predictionType }
    var spacing: TimestepSpacing { basics.spacing }
    var stepsOffset: Int { basics.stepsOffset }
    public var beginIndex: Int? { cursor.beginIndex }
    public var stepIndex: Int? { cursor.stepIndex }
    public func setBeginIndex(_ index: Int) { cursor.beginIndex = index }
}

/// `_step_index` / `_begin_index` bookkeeping shared by the classes that track their position.
public struct StepCursor: Sendable {
    var beginIndex: Int?
    var stepIndex: Int?

    public init() {}

    /// What `index_for_timestep` does when the timestep is not in the schedule.
    enum Missing {
        /// Euler, LMS, Heun, LCM: an error (diffusers raises IndexError).
        case fail
        /// DPM-Solver, UniPC: the last index.
        case lastIndex
    }

    /// diffusers' `index_for_timestep`: the second match when the timestep repeats, so that a
    /// schedule entered mid-way does not skip a sigma.
    static func index(of timestep: Double, in timesteps: [Double], missing: Missing) throws -> Int {
        let matches = timesteps.indices.filter { timesteps[$0] == timestep }
        if matches.count > 1 { return matches[1] }
        if let first = matches.first { return first }
        switch missing {
        case .lastIndex: return timesteps.count - 1
        case .fail: throw ChiselError(.invalidParameter, "timestep \(timestep) is not in the scheduler's timesteps")
        }
    }

    /// diffusers' `_init_step_index`: from `begin_index` when set, else from the timestep.
    mutating func current(for timestep: Double, in timesteps: [Double], missing: Missing) throws -> Int {
        if let stepIndex { return stepIndex }
        let index = try beginIndex ?? Self.index(of: timestep, in: timesteps, missing: missing)
        stepIndex = index
        return index
    }

    /// The index `add_noise` uses: the timestep's when no begin index, else the current or begin index.
    func noiseIndex(for timestep: Double, in timesteps: [Double], missing: Missing) throws -> Int {
        guard let beginIndex else { return try Self.index(of: timestep, in: timesteps, missing: missing) }
        return stepIndex ?? beginIndex
    }

    mutating func advance() { stepIndex = (stepIndex ?? 0) + 1 }
    mutating func reset() { stepIndex = nil; beginIndex = nil }
}

/// Reads `table[index]`, throwing instead of trapping when a loop runs past the schedule.
func element<T>(_ table: [T], _ index: Int, _ what: String) throws -> T {
    guard table.indices.contains(index) else {
        throw ChiselError(.invalidParameter, "\(what) index \(index) is outside the schedule (0..<\(table.count)); "
                          + "step called more times than there are timesteps")
    }
    return table[index]
}

/// Checks a step's inputs have the same element count.
func checkSameCount(_ a: [Float], _ b: [Float], _ what: String) throws {
    guard a.count == b.count else {
        throw ChiselError(.invalidParameter, "\(what): \(a.count) and \(b.count) elements differ")
    }
}

/// Checks the step count passed to `setTimesteps`.
func checkStepCount(_ count: Int, trainSteps: Int) throws {
    guard count >= 1 else { throw ChiselError(.invalidParameter, "the number of inference steps must be at least 1, not \(count)") }
    guard count <= trainSteps else {
        throw ChiselError(.invalidParameter, "\(count) inference steps exceed the \(trainSteps) training timesteps")
    }
}

/// One `randn_tensor(model_output.shape)` draw from the shared stream, checked for size.
func drawNormal(_ noise: inout some NoiseSource, count: Int) throws -> [Float] {
    let values = noise.normal(count: count)
    guard values.count == count else {
        throw ChiselError(.internal, "the noise source returned \(values.count) values for a draw of \(count)")
    }
    return values
}

/// Checks the history a multistep solver kept has the current latent's size (a caller changing
/// the latent shape mid-loop would otherwise index past an array).
func checkHistory(_ history: [[Float]?], count: Int, in schedulerClass: SchedulerClass) throws {
    guard history.allSatisfy({ ($0?.count ?? count) == count }) else {
        throw ChiselError(.invalidParameter,
                          "\(schedulerClass.rawValue): the latent changed size during the loop; call setTimesteps again")
    }
}

/// A timestep used as an index into ᾱ: must be a finite whole number.
func integerTimestep(_ timestep: Double) throws -> Int {
    guard timestep.isFinite, timestep == timestep.rounded(), abs(timestep) < 1e9 else {
        throw ChiselError(.invalidParameter, "timestep \(timestep) is not a whole training timestep")
    }
    return Int(timestep)
}
