import ChiselCore
import ChiselDiffusion
import ChiselModels

/// Takes a clean latent to z_t: builds the schedule, picks where an edit of this strength
/// starts, draws the noise and adds it as the scheduler's `add_noise` does (SDEdit, Meng et al.
/// 2022). The latent records where it sits, so `denoise` continues from there.
public enum AddNoiseStage: Stage {
    public enum StrengthMode: String, ParamChoice {
        /// diffusers: run the last int(steps × strength) steps of a `steps`-step schedule.
        case cut
        /// ComfyUI's denoise: build the schedule for int(steps ÷ strength) steps and run exactly `steps`.
        case exact
        /// AUTOMATIC1111's img2img: the last int(steps × min(strength, 0.999)) + 1 steps of a `steps`-step schedule.
        case a1111
    }

    public static let model = DiffusionParams.model
    public static let latent = Input<Latent>("latent", "The clean latent (vae_encode, or empty_latent with pure_noise).")
    public static let noised = Output<Latent>("latent", "The noised latent with its schedule position and stream.")
    public static let scheduler = Param<String>(
        "scheduler", default: "auto",
        "Sampler: auto (the checkpoint's), ddim, ddpm, pndm, lms, euler, euler_a, heun, dpmpp_2m, dpmpp_2m_karras, "
            + "dpmpp_2m_sde_karras, unipc, lcm, … or an AUTOMATIC1111 / ComfyUI name (\"DPM++ 2M Karras\", euler_ancestral).")
    public static let steps = Param<Int>("steps", default: 20, range: 1...1000, "Inference steps of the schedule.")
    public static let strength = Param<Double>("strength", default: 0.75, range: 0...1,
                                               "How far into the noise the edit goes: 1 starts from (almost) pure noise.")
    public static let strengthMode = Param<StrengthMode>(
        "strength_mode", default: .cut, "cut: the last steps×strength of `steps` (diffusers, A1111); exact: run `steps` (ComfyUI).")
    public static let pureNoise = Param<Bool>(
        "pure_noise", default: false,
        "At strength 1, start from noise × the scheduler's initial σ instead of noising the latent (text-to-image, diffusers' inpainting).")
    public static let seed = DiffusionParams.seed
    public static let rng = DiffusionParams.rng

    public static let schema = StageSchema(
        "add_noise", "Noise a clean latent to where an edit of a given strength starts on a scheduler's schedule.",
        inputs: [model, latent], outputs: [noised], params: [scheduler, steps, strength, strengthMode, pureNoise, seed, rng])

    public static func validate(_ check: inout StageCheck) throws {
        let facts = DiffusionParams.facts(&check)
        let name = try check[scheduler]
        do {
            // auto runs the checkpoint's own scheduler, which must be one Chisel implements.
            if name != "auto" {
                _ = try SchedulerKind(named: name)
            } else if let facts {
                _ = try SchedulerKind.declared(by: facts.scheduler)
            }
        } catch let error as ChiselError {
            check.reject(scheduler, error.message)
        }
        let (steps, strength) = (try check[Self.steps], try check[Self.strength])
        guard strength > 0 else {
            check.reject(Self.strength, "strength must be in (0, 1]; 0 would leave the image as it is")
            return
        }
        if try check[strengthMode] == .cut, Int(Double(steps) * strength) < 1 {
            check.reject(Self.strength, "\(steps) steps at strength \(strength) leave no step to run (int(steps × strength) = 0)")
        }
        if try check[pureNoise], strength < 1 {
            check.reject(pureNoise, "pure_noise starts from noise only at strength 1")
        }
    }

    /// The scheduler kind a parameter names, `auto` being the checkpoint's.
    static func kind(_ name: String, config: SchedulerConfig) throws -> SchedulerKind {
        name == "auto" ? try SchedulerKind.declared(by: config) : try SchedulerKind(named: name)
    }

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let sd = try DiffusionParams.stableDiffusion(call)
        let clean = try call[latent]
        let kind = try Self.kind(call[scheduler], config: sd.schedulerConfig)
        let scheduler = try kind.makeScheduler(config: sd.schedulerConfig)
        let (steps, strength) = (try call[Self.steps], try call[Self.strength])
        let total: Int, begin: Int
        switch try call[strengthMode] {
        case .cut:
            total = steps
            try scheduler.setTimesteps(total)
            begin = scheduler.truncate(steps: total, strength: strength).tStart * scheduler.order
        case .exact:
            total = max(steps, Int(Double(steps) / strength))
            try scheduler.setTimesteps(total)
            begin = (total - steps) * scheduler.order
            scheduler.setBeginIndex(begin)
        case .a1111:
            total = steps
            try scheduler.setTimesteps(total)
            let run = min(steps, Int(min(strength, 0.999) * Double(steps)) + 1)
            begin = (steps - run) * scheduler.order
            scheduler.setBeginIndex(begin)
        }
        guard begin < scheduler.timesteps.count else {
            throw call.failure("\(steps) steps at strength \(strength) leave no step to run", code: .invalidParameter)
        }
        var stream = try DiffusionParams.stream(call, continuing: clean)
        let noise = stream.normal(count: clean.values.count)
        let timestep = scheduler.timesteps[begin]
        let values = try call[pureNoise]
            ? noise.map { $0 * scheduler.initNoiseSigma }
            : try scheduler.addNoise(original: clean.values, noise: noise, timestep: timestep)
        let state = NoiseState(scheduler: kind, predictionType: sd.predictionType, steps: total, stepIndex: begin,
                               timestep: timestep, sigma: Double(scheduler.sigmas?[begin] ?? 0), strength: strength)
        return [noised(try Latent(shape: clean.shape, values: values,
                                  noise: DiffusionState(stream: stream, schedule: state, initialNoise: noise),
                                  origin: clean.origin))]
    }
}
