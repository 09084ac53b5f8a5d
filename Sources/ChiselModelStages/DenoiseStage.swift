import ChiselCore
import ChiselDiffusion
import ChiselModels
import ChiselTensor

/// The guided sampling loop, from wherever the latent's noise state says to the end of its
/// schedule (or to `stop_at`, so another stage can take over), as diffusers' pipelines run it:
/// classifier-free guidance as one batch of [negative, positive] when guidance > 1, one unguided
/// evaluation per step otherwise; inpainting by latent blending for 4-channel models and by the
/// extra mask and masked-image channels for 9-channel ones.
public enum DenoiseStage: Stage {
    public static let model = DiffusionParams.model
    public static let latent = Input<Latent>("latent", "The noised latent (add_noise), carrying its schedule and stream.")
    public static let conditioning = Input<Conditioning>("conditioning", "The prompt's and the negative prompt's embeddings.")
    public static let mask = OptionalInput<Mask>("mask", "Inpainting: where to repaint (1), at the image's size; binarised at 0.5.")
    public static let original = OptionalInput<Latent>(
        "original", "Inpainting with a 4-channel model: the clean image latent, blended back outside the mask at every step.")
    public static let maskedImage = OptionalInput<Latent>(
        "masked_image", "Inpainting with a 9-channel model: the latent of the image with the masked area blanked (vae_encode with mask).")
    public static let stream = OptionalInput<Latent>(
        "stream", "A latent whose random stream the loop continues (the inpainting pipelines draw the masked image's sample before the loop).")
    public static let control = OptionalInput<Control>(
        "control", "ControlNets with their control images (controlnet nodes), whose residuals steer the UNet.")
    public static let denoised = Output<Latent>("latent", "The denoised latent (or, with stop_at, the latent at that step).")
    public static let guidance = Param<Double>("guidance", default: 7.5, range: 0...100,
                                               "Classifier-free guidance scale; ≤ 1 runs the model once per step, unguided.")
    public static let guidanceRescale = Param<Double>(
        "guidance_rescale", default: 0, range: 0...1, "Rescales guided noise toward the positive prediction's deviation (Lin et al. 2024, §3.4).")
    public static let eta = Param<Double>("eta", default: 0, range: 0...1, "DDIM's η: 0 deterministic, 1 DDPM-like noise.")
    public static let guidanceStart = Param<Double>(
        "guidance_start", default: 0, range: 0...1,
        "Guidance only from this share of the steps (Kynkäänniemi et al. 2024); before it, one unguided evaluation per step.")
    public static let guidanceEnd = Param<Double>(
        "guidance_end", default: 1, range: 0...1,
        "Guidance only until this share of the steps; after it, one unguided evaluation per step (half the work).")
    public static let cacheInterval = Param<Int>(
        "cache_interval", default: 1, range: 1...50,
        "DeepCache (Ma et al. 2024): every Nth step runs the whole UNet, the others only its outermost layers on the kept deep features; 1 is off.")
    public static let tokenMerging = Param<Double>(
        "token_merging", default: 0, range: 0...1,
        "ToMe (Bolya & Hoffman 2023), as AUTOMATIC1111's Token merging ratio: the share of tokens the self-attention of the "
            + "finest levels merges with their most similar neighbours (at most 0.75 takes effect); 0 is off.")
    public static let tokenMergingDownsample = Param<Int>(
        "token_merging_downsample", default: 1, range: 1...8,
        "The coarsest level token merging reaches, as the latent's downsampling there: 1 the full-resolution levels only "
            + "(SDXL has no attention there: use 2), 2 also the next.")
    public static let softMask = Param<Bool>(
        "soft_mask", default: false,
        "4-channel inpainting: read the mask as per-pixel strength (Differential Diffusion, Levin & Fried 2023): a pixel of mask m "
            + "joins the denoising once the timestep falls to m × the first one, and the result is blended by m.")
    public static let stopAt = Param<Int?>("stop_at", range: 1...10000,
                                           "Stop before this step of the schedule and hand the latent on; unset runs to the end.")
    public static let originalWidth = Param<Int?>("original_width", range: 1...65536,
                                                  "SDXL's original_size width (default: the latent's pixel width).")
    public static let originalHeight = Param<Int?>("original_height", range: 1...65536,
                                                   "SDXL's original_size height (default: the latent's pixel height).")
    public static let targetWidth = Param<Int?>("target_width", range: 1...65536, "SDXL's target_size width (default: the latent's).")
    public static let targetHeight = Param<Int?>("target_height", range: 1...65536, "SDXL's target_size height (default: the latent's).")
    public static let cropTop = Param<Int>("crop_top", default: 0, range: 0...65536, "SDXL's crops_coords_top_left, top.")
    public static let cropLeft = Param<Int>("crop_left", default: 0, range: 0...65536, "SDXL's crops_coords_top_left, left.")
    public static let aestheticScore = Param<Double>("aesthetic_score", default: 6, range: 0...10,
                                                     "SDXL refiner: the aesthetic score conditioning the prompt.")
    public static let negativeAestheticScore = Param<Double>("negative_aesthetic_score", default: 2.5, range: 0...10,
                                                             "SDXL refiner: the aesthetic score conditioning the negative prompt.")

    public static let schema = StageSchema(
        "denoise", "Run the guided denoising loop from the latent's noise level (SDEdit, inpainting, text-to-image).",
        inputs: [model, latent, conditioning, mask, original, maskedImage, stream, control], outputs: [denoised],
        params: [guidance, guidanceRescale, eta, guidanceStart, guidanceEnd, cacheInterval, tokenMerging,
                 tokenMergingDownsample, softMask, stopAt, originalWidth, originalHeight, targetWidth, targetHeight, cropTop,
                 cropLeft, aestheticScore, negativeAestheticScore])

    public static func validate(_ check: inout StageCheck) throws {
        if try check[guidanceStart] >= check[guidanceEnd] {
            check.reject(guidanceEnd, "guidance_end (\(try check[guidanceEnd])) must be after guidance_start (\(try check[guidanceStart]))")
        }
        if try check[cacheInterval] > 1, check.isConnected(control) {
            check.reject(cacheInterval, "DeepCache skips the UNet's deep blocks, where ControlNets and adapters add their residuals: "
                         + "use cache_interval 1 with a control input")
        }
        if check.isConnected(original) || check.isConnected(maskedImage), !check.isConnected(mask) {
            check.reject(input: mask, "inpainting inputs (original, masked_image) need the mask connected")
        }
        if check.isConnected(mask), !check.isConnected(original), !check.isConnected(maskedImage) {
            check.reject(input: mask, "a mask needs original (4-channel models) or masked_image (9-channel models) connected")
        }
        guard let facts = DiffusionParams.facts(&check) else { return }
        ControlInputs.validate(&check, checkpoint: facts)
        if facts.isInpainting {
            if !check.isConnected(maskedImage) || !check.isConnected(mask) {
                check.reject(input: maskedImage, "the checkpoint's UNet takes \(facts.unetChannels) channels (an inpainting model): "
                             + "connect mask and masked_image (vae_encode with the mask)", code: .model)
            }
            if try check[softMask] {
                check.warn(softMask, "soft_mask applies to 4-channel latent blending; this \(facts.unetChannels)-channel UNet "
                           + "takes the binarised mask")
            }
            if check.isConnected(original) {
                check.warn(input: original, "original is for 4-channel models; this 9-channel UNet takes the mask as channels instead")
            }
        } else if check.isConnected(maskedImage) {
            check.reject(input: maskedImage, "the checkpoint's UNet takes \(facts.unetChannels) channels: masked_image is for "
                         + "9-channel inpainting models; a 4-channel model inpaints by blending with original", code: .model)
        }
    }

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let sd = try DiffusionParams.stableDiffusion(call)
        let start = try call[latent]
        guard let state = start.noiseState, let ownStream = start.diffusion?.stream else {
            throw call.failure("the latent carries no noise state: noise it with add_noise first", code: .invalidParameter)
        }
        var stream = ownStream
        if let other = try call[Self.stream] {
            guard let continued = other.diffusion?.stream else {
                throw call.failure("the stream input carries no random stream", code: .invalidParameter)
            }
            stream = continued
        }
        let conditioning = try call[Self.conditioning]
        let inpaint = try InpaintInputs(call, latent: start, unet: sd.unet.config, soft: try call[softMask])
        let controls = try ControlInputs(call, model: sd, latent: start)

        let scheduler = try state.scheduler.makeScheduler(config: sd.schedulerConfig, options: StepOptions(eta: try call[eta]))
        try scheduler.setTimesteps(state.steps)
        scheduler.setBeginIndex(state.stepIndex)
        let end = min(scheduler.timesteps.count, try call[stopAt] ?? scheduler.timesteps.count)
        guard state.stepIndex < end else {
            throw call.failure("stop_at \(end) is not after the latent's step \(state.stepIndex)", code: .invalidParameter)
        }
        let timesteps = Array(scheduler.timesteps[state.stepIndex..<end])

        let scale = try call[guidance]
        // A guidance-distilled UNet (time_cond_proj_dim, LCM) takes the scale as an embedding of
        // scale − 1 and runs once per step, as diffusers' pipelines run it.
        let distilled = sd.unet.config.timeConditionDim
        let guided = scale > 1 && distilled == nil
        let (guideFrom, guideTo) = (try call[guidanceStart], try call[guidanceEnd])
        guard guideFrom < guideTo else {
            throw call.failure("guidance_end (\(guideTo)) must be after guidance_start (\(guideFrom))", code: .invalidParameter)
        }
        let size = (start.width * sd.vae.downscale, start.height * sd.vae.downscale)
        let context = try Self.context(conditioning, guided: guided, width: sd.unet.config.crossAttentionDim)
        let added = try Self.added(call, sd: sd, conditioning: conditioning, guided: guided, size: size)
        // Steps outside the guidance interval run the prompt alone, as an unguided loop does.
        let unguidedContext = guided ? try Self.context(conditioning, guided: false, width: sd.unet.config.crossAttentionDim) : context
        let unguidedAdded = guided ? try Self.added(call, sd: sd, conditioning: conditioning, guided: false, size: size) : added
        let interval = try call[cacheInterval]
        if interval > 1, !controls.units.isEmpty || !controls.adapters.isEmpty {
            throw call.failure("cache_interval \(interval) cannot be used with ControlNets or adapters (DeepCache skips the blocks they "
                               + "add to)", code: .invalidParameter)
        }
        let cache = interval > 1 ? UNetCache() : nil
        let ratio = try call[tokenMerging]
        let merging = ratio > 0 ? TokenMerging(ratio: ratio, maxDownsample: try call[tokenMergingDownsample]) : nil
        let batch = start.batch
        // The loop keeps the latent channels-last, the UNet's layout: the schedulers' arithmetic
        // is element-wise, and their draws are laid out channels-last as they are made
        // (`ChannelsLastDraws`), so each element gets the number diffusers' N×C×H×W loop gives it.
        let layout = LatentLayout(start)
        var latents = layout.channelsLast(start.values)
        var draws = ChannelsLastDraws(source: stream, layout: layout)
        for (i, t) in timesteps.enumerated() {
            try Task.checkCancellation()
            let scaled = try scheduler.scaleModelInput(latents, timestep: t)
            let count = Double(timesteps.count)
            // diffusers' window rule (as control_guidance_start/end): inside unless i/n < start or (i + 1)/n > end.
            let cfg = guided && !(Double(i) / count < guideFrom || Double(i + 1) / count > guideTo)
            let (stepContext, stepAdded) = cfg ? (context, added) : (unguidedContext, unguidedAdded)
            var input = try Tensor(shape: layout.channelsLastShape(repeats: cfg ? 2 : 1), data: cfg ? scaled + scaled : scaled)
            let residuals = try controls.residuals(step: i, of: timesteps.count, timestep: t, input: input, guided: cfg,
                                                   context: stepContext, added: stepAdded)
            if let extra = inpaint.extraChannels { input = try Ops.concatChannels(input, cfg ? extra.doubled : extra.single) }
            let condition = distilled.map { UNet2DConditionModel.guidanceEmbedding(Array(repeating: scale - 1, count: batch), dim: $0) }
            let features = try controls.adapterFeatures(step: i, of: timesteps.count, rows: input.shape[0])
            cache?.reuse = i % interval != 0
            let output = try sd.unet(input, timesteps: [t], context: stepContext, timestepCondition: condition, added: stepAdded,
                                     control: residuals, adapter: features, cache: cache,
                                     tokenMerging: merging).data
            try FiniteCheck.require(output, network: "UNet", step: "step \(i + 1) of \(timesteps.count) (timestep \(t))", call)
            let prediction = cfg ? Self.guide(output, scale: Float(scale), rescale: Float(try call[guidanceRescale])) : output
            latents = try scheduler.step(modelOutput: prediction, timestep: t, sample: latents, noise: &draws).prevSample
            if let blend = inpaint.blend {
                // diffusers noises the original to the next timestep and keeps it outside the mask.
                var proper = blend.original
                let last = i + 1 == timesteps.count
                if !last {
                    proper = try scheduler.addNoise(original: blend.original, noise: blend.noise, timestep: timesteps[i + 1])
                }
                if blend.soft {
                    // Differential Diffusion: free where strength ≥ the next timestep's share of the first; at the end, blend by strength.
                    let threshold = last ? 0 : Float(timesteps[i + 1] / max(timesteps[0], 1e-9))
                    for j in latents.indices {
                        let m = last ? blend.mask[j] : (blend.mask[j] >= threshold && blend.mask[j] > 0 ? 1 : 0)
                        latents[j] = (1 - m) * proper[j] + m * latents[j]
                    }
                } else {
                    for j in latents.indices {
                        let m = blend.mask[j]
                        latents[j] = (1 - m) * proper[j] + m * latents[j]
                    }
                }
            }
            call.context.progress(completed: i + 1, total: timesteps.count)
        }
        stream = draws.source
        latents = layout.channelsFirst(latents)
        var next = state
        next.stepIndex = end
        if end < scheduler.timesteps.count {
            next.timestep = scheduler.timesteps[end]
            next.sigma = Double(scheduler.sigmas?[end] ?? 0)
        }
        // An edit of an image (img2img, inpainting) says its strength even at 1, as A1111 does.
        let edit = state.strength < 1 || inpaint.blend != nil || inpaint.extraChannels != nil || start.origin != nil
        let generation = GenerationInfo(
            prompt: A1111Resources.prompt(conditioning.prompt, model: sd), negativePrompt: conditioning.negativePrompt,
            settings: Self.settings(state: state, stream: stream, guidance: scale, model: sd,
                                    size: (start.width * sd.vae.downscale, start.height * sd.vae.downscale),
                                    edit: edit, eta: try call[eta],
                                    encoding: conditioning.settings
                                        + A1111Resources.networks(sd, prompts: [conditioning.prompt, conditioning.negativePrompt])
                                        + controls.settings,
                                    tokenMerging: ratio))
        let info = DiffusionState(stream: stream, schedule: end < scheduler.timesteps.count ? next : nil,
                                  initialNoise: start.diffusion?.initialNoise, generation: generation)
        return [denoised(try Latent(shape: start.shape, values: latents, noise: info, origin: start.origin))]
    }

    /// AUTOMATIC1111's infotext keys for this run, in its order: Steps, Sampler, Schedule type,
    /// CFG scale, Seed, Size, Model hash, Model, VAE hash, VAE, Denoising strength (edits, also at
    /// 1), the encoding's (Clip skip, Emphasis) and networks' (Lora hashes, TI hashes), Eta DDIM
    /// (when not 0), Token merging ratio (when not 0), RNG (always: A1111 reads a missing one as GPU).
    static func settings(state: NoiseState, stream: NoiseStream, guidance: Double, model: StableDiffusionModel,
                         size: (Int, Int), edit: Bool, eta: Double, encoding: [GenerationInfo.Setting],
                         tokenMerging: Double = 0) -> [GenerationInfo.Setting] {
        var settings = [GenerationInfo.Setting("Steps", String(state.steps)),
                        GenerationInfo.Setting("Sampler", state.scheduler.a1111Sampler)]
        if let type = state.scheduler.a1111ScheduleType { settings.append(GenerationInfo.Setting("Schedule type", type)) }
        settings += [GenerationInfo.Setting("CFG scale", Self.number(guidance)), GenerationInfo.Setting("Seed", String(stream.seed)),
                     GenerationInfo.Setting("Size", "\(size.0)x\(size.1)")] + A1111Resources.model(model)
        if edit { settings.append(GenerationInfo.Setting("Denoising strength", Self.number(state.strength))) }
        settings += encoding
        if state.scheduler.schedulerClass == .ddim, eta != 0 { settings.append(GenerationInfo.Setting("Eta DDIM", Self.number(eta))) }
        if tokenMerging > 0 { settings.append(GenerationInfo.Setting("Token merging ratio", Self.number(tokenMerging))) }
        settings.append(GenerationInfo.Setting("RNG", stream.kind == .cpu ? "CPU" : "NV"))
        return settings
    }

    /// 7.5 as "7.5", 7 as "7.0" — as Python prints floats.
    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) + ".0" : "\(value)"
    }

    /// The UNet's text context: [negative, positive] for guidance (diffusers' order), else the positive alone.
    static func context(_ conditioning: Conditioning, guided: Bool, width: Int) throws -> Tensor {
        let positive = conditioning.positive
        guard positive.shape[2] == width else {
            throw ChiselError(.invalidParameter, "the conditioning is \(positive.shape[2]) wide but the UNet takes \(width): "
                              + "it was encoded by another model's text encoder")
        }
        guard guided else { return try Tensor(shape: positive.shape, data: positive.hiddenStates) }
        guard let negative = conditioning.negative else {
            throw ChiselError(.invalidParameter, "guidance > 1 needs the negative prompt's embedding")
        }
        guard negative.shape == positive.shape else {
            throw ChiselError(.invalidParameter, "negative and positive embeddings differ in shape: \(negative.shape) vs \(positive.shape)")
        }
        return try Tensor(shape: [positive.shape[0] * 2, positive.shape[1], width],
                          data: negative.hiddenStates + positive.hiddenStates)
    }

    /// SDXL's added conditioning, as its pipelines' `_get_add_time_ids` make it: the pooled text
    /// embeddings ([negative, positive] when guided) and per row the original size, the crop's
    /// top-left corner and the target size (height before width), or for the refiner the
    /// original size, the crop and the aesthetic score (negative_aesthetic_score for the negative
    /// row). Sizes default to the image's; the negative row is the same but for the refiner's
    /// score. Nil for SD 1.x/2.x.
    static func added(_ call: StageCall, sd: StableDiffusionModel, conditioning: Conditioning, guided: Bool,
                      size: (width: Int, height: Int)) throws -> (textEmbeds: Tensor, timeIds: [[Double]])? {
        guard sd.unet.config.textTime != nil else { return nil }
        guard let positive = conditioning.positive.pooled else {
            throw call.failure("the conditioning has no pooled text embedding: encode the prompt with this SDXL checkpoint",
                               code: .invalidParameter)
        }
        let original = (Double(try call[originalHeight] ?? size.height), Double(try call[originalWidth] ?? size.width))
        let target = (Double(try call[targetHeight] ?? size.height), Double(try call[targetWidth] ?? size.width))
        let crop = (Double(try call[cropTop]), Double(try call[cropLeft]))
        let refiner = sd.xl?.requiresAestheticsScore ?? false
        let ids = refiner ? [original.0, original.1, crop.0, crop.1, try call[aestheticScore]]
            : [original.0, original.1, crop.0, crop.1, target.0, target.1]
        guard guided else { return (try Tensor(shape: [1, positive.count], data: positive), [ids]) }
        guard let negative = conditioning.negative?.pooled, negative.count == positive.count else {
            throw call.failure("guidance > 1 needs the negative prompt's pooled embedding", code: .invalidParameter)
        }
        let negativeIds = refiner ? [original.0, original.1, crop.0, crop.1, try call[negativeAestheticScore]] : ids
        return (try Tensor(shape: [2, positive.count], data: negative + positive), [negativeIds, ids])
    }

    /// noise = uncond + s·(cond − uncond) (`Ops.guided`), rescaled by φ as diffusers' `rescale_noise_cfg`.
    static func guide(_ output: [Float], scale: Float, rescale: Float) -> [Float] {
        Ops.rescaledGuidance(Ops.guided(output, scale: scale), positive: output[(output.count / 2)...], rescale: rescale)
    }
}

/// The inpainting inputs of a denoise, checked against the UNet: extra channels for 9-channel
/// models, the blend for 4-channel ones.
struct InpaintInputs {
    /// The blend's arrays, channels-last as the loop keeps the latent.
    struct Blend {
        var original: [Float]
        var noise: [Float]
        /// Binary (diffusers), or per-pixel strength in [0, 1] when `soft`.
        var mask: [Float]
        var soft: Bool
    }

    var extraChannels: (single: Tensor, doubled: Tensor)?
    var blend: Blend?

    init(_ call: StageCall, latent: Latent, unet: UNetConfig, soft: Bool) throws {
        let mask = try call[DenoiseStage.mask]
        let original = try call[DenoiseStage.original]
        let maskedImage = try call[DenoiseStage.maskedImage]
        let (unetChannels, latentChannels) = (unet.inChannels, latent.channels)
        guard latentChannels == unet.outChannels else {
            throw call.failure("a UNet of \(unetChannels) input channels does not take \(latentChannels)-channel latents",
                               code: .invalidParameter)
        }
        guard let mask else {
            guard !unet.isInpainting else {
                throw call.failure("this is a \(unetChannels)-channel inpainting UNet: connect mask and masked_image",
                                   code: .invalidParameter)
            }
            guard unetChannels == latentChannels else {
                throw call.failure("a UNet of \(unetChannels) input channels does not take \(latentChannels)-channel latents",
                                   code: .invalidParameter)
            }
            return
        }
        let (h, w) = (latent.height, latent.width)
        let small = LatentMask.values(mask, width: w, height: h)
        if !small.contains(where: { $0 > 0 }) {
            call.context.warn("the mask is empty (all black): nothing to repaint; pasted back, the input comes back unchanged")
        }
        if unet.isInpainting {
            guard let maskedImage else {
                throw call.failure("a \(unetChannels)-channel inpainting UNet needs masked_image (vae_encode with the mask)",
                                   code: .invalidParameter)
            }
            guard maskedImage.shape == latent.shape else {
                throw call.failure("masked_image is \(maskedImage.shape) but the latent is \(latent.shape)", code: .invalidParameter)
            }
            let values = Array(repeating: small, count: latent.batch).flatMap { $0 }
            let maskTensor = try Latent(shape: [latent.batch, 1, h, w], values: values).channelsLast()
            let single = try Ops.concatChannels(maskTensor, maskedImage.channelsLast())
            let doubled = try Tensor(shape: [2 * single.shape[0]] + single.shape.dropFirst(), data: single.data + single.data)
            extraChannels = (single, doubled)
        } else if unetChannels == latentChannels {
            guard let original else {
                throw call.failure("inpainting with a 4-channel UNet needs original (the clean image latent) to blend",
                                   code: .invalidParameter)
            }
            guard original.shape == latent.shape else {
                throw call.failure("original is \(original.shape) but the latent is \(latent.shape)", code: .invalidParameter)
            }
            guard let noise = latent.diffusion?.initialNoise, noise.count == latent.values.count else {
                throw call.failure("the latent does not carry the noise add_noise drew, which blending reuses", code: .invalidParameter)
            }
            if maskedImage != nil {
                throw call.failure("masked_image is for 9-channel inpainting models; this \(unetChannels)-channel UNet "
                                   + "inpaints by blending with original", code: .invalidParameter)
            }
            let perPixel = soft ? LatentMask.values(mask, width: w, height: h, binarize: false) : small
            // Channels-last, as the loop keeps the latent: each pixel's value for each of its channels.
            let channels = latent.channels
            var expanded = [Float](repeating: 0, count: latent.values.count)
            for b in 0..<latent.batch {
                for p in 0..<(h * w) {
                    for c in 0..<channels { expanded[(b * h * w + p) * channels + c] = perPixel[p] }
                }
            }
            let layout = LatentLayout(latent)
            blend = Blend(original: layout.channelsLast(original.values), noise: layout.channelsLast(noise), mask: expanded, soft: soft)
        } else {
            throw call.failure("a UNet of \(unetChannels) input channels does not take \(latentChannels)-channel latents",
                               code: .invalidParameter)
        }
    }
}
