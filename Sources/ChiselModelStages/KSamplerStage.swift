import ChiselCore
import ChiselDiffusion
import ChiselModels
import ChiselTensor

extension KSamplerKind: ParamChoice {}
extension KSchedule: ParamChoice {}

/// ComfyUI's KSampler and KSamplerAdvanced as one stage, with ComfyUI's semantics rather than
/// diffusers': the noise is a CPU `torch.randn` of the latent's shape from `seed`; the sigma
/// list is ComfyUI's scheduler's, cut by `denoise` (the last steps + 1 sigmas of the schedule for
/// int(steps / denoise) steps) and by `start_at_step` / `end_at_step`; the network sees the
/// input scaled by 1/√(σ²+1) at the nearest integer timestep; guidance combines the two x₀
/// predictions; the samplers are k-diffusion's, and the ancestral ones draw their per-step noise
/// from a second generator seeded with the same seed. `chisel import comfy` translates ComfyUI's
/// sampler nodes to this stage (docs/interop.md).
public enum KSamplerStage: Stage {
    public static let model = DiffusionParams.model
    public static let latent = Input<Latent>(
        "latent", "The clean latent to start from: vae_encode (sampling mean, as ComfyUI's VAEEncode) or empty_latent.")
    public static let conditioning = Input<Conditioning>("conditioning", "The prompt's and the negative prompt's embeddings.")
    public static let mask = OptionalInput<Mask>(
        "mask", "ComfyUI's noise mask (SetLatentNoiseMask, vae_encode_for_inpaint): where to sample (1); elsewhere the "
            + "latent is kept, noised to each step's level. At the image's size; scaled to the latent grid bilinearly.")
    public static let denoised = Output<Latent>("latent", "The sampled latent.")
    public static let seed = Param<Seed>(seed: "seed", "The noise seed (ComfyUI's seed / noise_seed); -1 draws one at random (reported).")
    public static let steps = Param<Int>("steps", default: 20, range: 1...10000, "Steps of the schedule (before denoise's cut).")
    public static let cfg = Param<Double>("cfg", default: 8, range: 0...100, "Classifier-free guidance scale; 1 runs the model once per step.")
    public static let sampler = Param<KSamplerKind>("sampler_name", default: .euler, "ComfyUI's sampler.")
    public static let scheduler = Param<KSchedule>("scheduler", default: .normal, "ComfyUI's scheduler (the sigma list).")
    public static let denoise = Param<Double>(
        "denoise", default: 1, range: 0...1, "KSampler's denoise: the last steps of a schedule of int(steps / denoise) steps.")
    public static let startAtStep = Param<Int?>("start_at_step", range: 0...10000, "KSamplerAdvanced: the first step run.")
    public static let endAtStep = Param<Int?>("end_at_step", range: 0...10000, "KSamplerAdvanced: the step to stop at.")
    public static let addNoise = Param<Bool>("add_noise", default: true, "KSamplerAdvanced's add_noise: false starts from the latent as it is.")
    public static let leftoverNoise = Param<Bool>(
        "return_with_leftover_noise", default: false,
        "KSamplerAdvanced: true stops at end_at_step's sigma; false (KSampler) takes the last step to σ = 0.")

    public static let schema = StageSchema(
        "ksampler", "Sample as ComfyUI's KSampler / KSamplerAdvanced do: its noise, schedulers, samplers and denoise.",
        inputs: [model, latent, conditioning, mask], outputs: [denoised],
        params: [seed, steps, cfg, sampler, scheduler, denoise, startAtStep, endAtStep, addNoise, leftoverNoise])

    public static func validate(_ check: inout StageCheck) throws {
        guard let facts = DiffusionParams.facts(&check) else { return }
        if facts.family.isXL {
            check.reject(input: model, "ksampler takes Stable Diffusion 1.x/2.x checkpoints; SDXL's is not implemented yet", code: .model)
        }
        if facts.isInpainting {
            check.reject(input: model, "ksampler takes 4-channel models; this \(facts.unetChannels)-channel inpainting UNet "
                         + "needs its mask channels (use denoise with masked_image)", code: .model)
        }
        if let prediction = facts.scheduler.predictionType, prediction != .epsilon {
            check.reject(input: model, "ksampler implements ComfyUI's epsilon-prediction sampling; this checkpoint predicts "
                         + "\(prediction.rawValue)", code: .model)
        }
    }

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let sd = try DiffusionParams.stableDiffusion(call)
        let start = try call[latent]
        guard start.channels == sd.unet.config.outChannels, sd.unet.config.inChannels == start.channels else {
            throw call.failure("the latent has \(start.channels) channels; this UNet takes \(sd.unet.config.inChannels)",
                               code: .invalidParameter)
        }
        let sampling = try KModelSampling(config: sd.schedulerConfig)
        let kind = try call[sampler], schedule = try call[scheduler]
        let seedValue: UInt64
        if let fixed = try call[seed].value {
            seedValue = fixed
        } else {
            seedValue = RandomSeed.resolve(nil)
            call.context.note("seed \(seedValue) (drawn at random)")
            call.context.record(seed, .fixed(seedValue))
        }
        let stepCount = try call[steps]
        let strength = try call[denoise]
        let cut = KSigmas.sigmas(sampler: kind, schedule: schedule, steps: stepCount, denoise: strength, model: sampling,
                                 startStep: try call[startAtStep], lastStep: try call[endAtStep],
                                 forceFullDenoise: !(try call[leftoverNoise]))
        let layout = LatentLayout(start)
        let conditioning = try call[Self.conditioning]
        var latents = start.values
        if let sigmas = cut, sigmas.count > 1 {
            let scale = try call[cfg]
            let guided = abs(scale - 1) > 1e-9
            let context = try DenoiseStage.context(conditioning, guided: guided, width: sd.unet.config.crossAttentionDim)
            let clean = layout.channelsLast(start.values)
            var initial = [Float](repeating: 0, count: layout.count)
            if try call[addNoise] {
                var generator = TorchGenerator(seed: seedValue)
                initial = layout.channelsLast(generator.normal(count: layout.count))
            }
            let x = KDiffusion.noised(clean, noise: initial, sigma: sigmas[0], model: sampling)
            // Inpainting (KSamplerX0Inpaint): the model sees the latent, noised to σ with the
            // initial noise (ddim: a draw from seed + 1), outside the mask, and its prediction
            // there is the latent.
            var blend: (mask: [Float], noise: [Float])?
            if let noiseMask = try call[mask] {
                let small = Self.latentMask(noiseMask, width: start.width, height: start.height)
                var expanded = [Float](repeating: 0, count: layout.count)
                for b in 0..<start.batch {
                    for p in 0..<(start.width * start.height) {
                        for c in 0..<start.channels { expanded[(b * start.width * start.height + p) * start.channels + c] = small[p] }
                    }
                }
                var blendNoise = initial
                if kind == .ddim {
                    var generator = TorchGenerator(seed: seedValue &+ 1)
                    blendNoise = layout.channelsLast(generator.normal(count: layout.count))
                }
                blend = (expanded, blendNoise)
            }
            var ancestral = TorchGenerator(seed: seedValue)
            var calls = 0
            let sampled = try KDiffusion.sample(
                kind, x: x, sigmas: sigmas, noise: &ancestral, reorder: layout.channelsLast,
                progress: { done, total in call.context.progress(completed: done, total: total) }
            ) { current, sigma in
                calls += 1
                var x = current
                if let blend {
                    for j in x.indices {
                        let m = blend.mask[j]
                        x[j] = x[j] * m + (blend.noise[j] * sigma + clean[j]) * (1 - m)
                    }
                }
                let inputScale = 1 / (sigma * sigma + 1).squareRoot()
                let scaled = x.map { $0 * inputScale }
                let input = try Tensor(shape: layout.channelsLastShape(repeats: guided ? 2 : 1), data: guided ? scaled + scaled : scaled)
                let t = Double(sampling.timestep(sigma: sigma))
                let output = try sd.unet(input, timesteps: [t], context: context, timestepCondition: nil).data
                try FiniteCheck.require(output, network: "UNet", step: "call \(calls) (sigma \(sigma), timestep \(Int(t)))", call)
                var prediction = Self.denoised(x, output: output, sigma: sigma, cfg: Float(scale), guided: guided)
                if let blend {
                    for j in prediction.indices {
                        let m = blend.mask[j]
                        prediction[j] = prediction[j] * m + clean[j] * (1 - m)
                    }
                }
                return prediction
            }
            latents = layout.channelsFirst(sampled)
        } else {
            call.context.note("start_at_step leaves no step to run: the latent passes through unchanged")
        }
        let stream = NoiseStream(seed: seedValue, kind: .cpu)
        let generation = GenerationInfo(
            prompt: A1111Resources.prompt(conditioning.prompt, model: sd), negativePrompt: conditioning.negativePrompt,
            settings: try Self.settings(call, text: conditioning, kind: kind, schedule: schedule, seed: seedValue, model: sd,
                                        size: (start.width * sd.vae.downscale, start.height * sd.vae.downscale)))
        return [denoised(try Latent(shape: start.shape, values: latents,
                                    noise: DiffusionState(stream: stream, generation: generation), origin: start.origin))]
    }

    /// A mask at the image's size on the latent grid, as `torch.nn.functional.interpolate(mode:
    /// "bilinear")` scales it (half-pixel centres, no antialiasing), as ComfyUI's `reshape_mask` does.
    public static func latentMask(_ mask: Mask, width: Int, height: Int) -> [Float] {
        func taps(_ count: Int, _ source: Int) -> [(Int, Int, Float)] {
            let scale = Float(source) / Float(count)
            return (0..<count).map { i in
                let position = max(scale * (Float(i) + 0.5) - 0.5, 0)
                let low = min(Int(position), source - 1)
                let high = low < source - 1 ? low + 1 : low
                return (low, high, position - Float(low))
            }
        }
        let rows = taps(height, mask.height), columns = taps(width, mask.width)
        var out = [Float](repeating: 0, count: width * height)
        for (y, row) in rows.enumerated() {
            for (x, column) in columns.enumerated() {
                let top = (1 - column.2) * mask.values[row.0 * mask.width + column.0] + column.2 * mask.values[row.0 * mask.width + column.1]
                let bottom = (1 - column.2) * mask.values[row.1 * mask.width + column.0] + column.2 * mask.values[row.1 * mask.width + column.1]
                out[y * width + x] = (1 - row.2) * top + row.2 * bottom
            }
        }
        return out
    }

    /// x₀ = x − σ·ε for each half of the batch, combined as ComfyUI's `cfg_function`:
    /// uncond + (cond − uncond)·cfg (the negative half first, as `DenoiseStage.context` stacks it).
    static func denoised(_ x: [Float], output: [Float], sigma: Float, cfg: Float, guided: Bool) -> [Float] {
        guard guided else { return zip(x, output).map { $0 - $1 * sigma } }
        let n = x.count
        var result = [Float](repeating: 0, count: n)
        for j in 0..<n {
            let uncond = x[j] - output[j] * sigma, cond = x[j] - output[n + j] * sigma
            result[j] = uncond + (cond - uncond) * cfg
        }
        return result
    }

    /// The AUTOMATIC1111 infotext of the run, with ComfyUI's sampler and scheduler named as A1111
    /// names them where it has them (Euler, Euler a, Heun, DPM2, DPM++ 2M, LCM, DDIM; Karras,
    /// Exponential, SGM Uniform, Simple, DDIM uniform... as its Schedule type).
    static func settings(_ call: StageCall, text: Conditioning, kind: KSamplerKind, schedule: KSchedule, seed: UInt64, model: StableDiffusionModel,
                         size: (Int, Int)) throws -> [GenerationInfo.Setting] {
        let samplerName: String = switch kind {
        case .euler: "Euler"
        case .eulerAncestral: "Euler a"
        case .heun: "Heun"
        case .dpm2: "DPM2"
        case .dpmpp2M: "DPM++ 2M"
        case .lcm: "LCM"
        case .ddim: "DDIM"
        }
        let scheduleName: String = switch schedule {
        case .normal: "Automatic"
        case .karras: "Karras"
        case .exponential: "Exponential"
        case .sgmUniform: "SGM Uniform"
        case .simple: "Simple"
        case .ddimUniform: "DDIM"
        }
        var settings = [GenerationInfo.Setting("Steps", String(try call[steps])), GenerationInfo.Setting("Sampler", samplerName),
                        GenerationInfo.Setting("Schedule type", scheduleName),
                        GenerationInfo.Setting("CFG scale", DenoiseStage.number(try call[cfg])),
                        GenerationInfo.Setting("Seed", String(seed)), GenerationInfo.Setting("Size", "\(size.0)x\(size.1)")]
            + A1111Resources.model(model)
        let strength = try call[denoise]
        if strength < 1 { settings.append(GenerationInfo.Setting("Denoising strength", DenoiseStage.number(strength))) }
        settings += text.settings + A1111Resources.networks(model, prompts: [text.prompt, text.negativePrompt])
        settings.append(GenerationInfo.Setting("RNG", "CPU"))
        return settings
    }
}
