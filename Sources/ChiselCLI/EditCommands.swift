import ArgumentParser
import ChiselCore
import ChiselDiffusion
import ChiselModels
import ChiselModelStages
import ChiselStages
import Foundation

extension AddNoiseStage.StrengthMode: ExpressibleByArgument {}
extension VAETiling: ExpressibleByArgument {}
extension RNGKind: ExpressibleByArgument {}

/// The options `chisel img2img` and `chisel inpaint` share, named as diffusers, AUTOMATIC1111
/// and stable-diffusion.cpp users know them. Options a stage parameter carries take their
/// default, range and help from its key; left out, the graph leaves the stage's default.
struct EditOptions: ParsableArguments {
    enum DType: String, ExpressibleByArgument, CaseIterable {
        case fp32, bf16

        /// `f32` too, as `bench --precision` and the bench reports spell it.
        init?(argument: String) {
            self.init(rawValue: argument == "f32" ? "fp32" : argument)
        }
    }

    @Option(help: "A Stable Diffusion checkpoint (a diffusers folder or a single .safetensors file), an aMUSEd folder (masked-token edit), or builtin:NAME; default builtin:scenes, the bundled scene model.")
    var model: String?

    @Option(help: "The image to edit.")
    var image: String

    @Option(help: "What the result should show.")
    var prompt: String?

    @Option(help: "What it should not show.")
    var negativePrompt: String?

    @Option(help: ArgumentHelp("Inference steps of the schedule (with --strength-mode cut, int(steps × strength) of them run); "
                               + "default \(EditGraphs.diffusersSteps) (diffusers' pipelines), "
                               + "\(MaskTokensStage.steps.spec.defaultValue?.description ?? "") for aMUSEd (mask_tokens' steps)."))
    var steps: Int?

    @Option(help: ArgumentHelp("Classifier-free guidance scale; 1 or less runs the model once per step, unguided. Default "
                               + "\(DenoiseStage.guidance.spec.defaultValue?.description ?? ""), "
                               + "\(PredictTokensStage.guidance.spec.defaultValue?.description ?? "") for aMUSEd "
                               + "(\(RefineTokensStage.guidance.spec.defaultValue?.description ?? "") for inpaint --token-mode refine)."))
    var guidance: Double?

    @Option(help: ArgumentHelp("aMUSEd: " + PredictTokensStage.temperature.help))
    var temperature: Double?

    @Option(help: ArgumentHelp("aMUSEd: " + PredictTokensStage.temperatureEnd.help))
    var temperatureEnd: Double?

    @Option(help: ArgumentHelp(DenoiseStage.guidanceRescale.help))
    var guidanceRescale: Double?

    @Option(help: ArgumentHelp(DenoiseStage.guidanceStart.help))
    var guidanceStart: Double?

    @Option(help: ArgumentHelp(DenoiseStage.guidanceEnd.help + " 0.5 halves the work of the last half of the steps."))
    var guidanceEnd: Double?

    @Option(help: ArgumentHelp(DenoiseStage.cacheInterval.help))
    var cacheInterval: Int?

    @Option(help: ArgumentHelp(DenoiseStage.tokenMerging.help + " 0.5 is tomesd's default."))
    var tokenMerging: Double?

    @Option(help: ArgumentHelp(DenoiseStage.tokenMergingDownsample.help))
    var tokenMergingDownsample: Int?

    @Option(help: ArgumentHelp(AddNoiseStage.scheduler.help))
    var scheduler: String?

    @Option(help: "AUTOMATIC1111's Schedule type for --scheduler: automatic, uniform or karras (\"--scheduler 'DPM++ 2M' --schedule-type karras\").")
    var scheduleType: String?

    @Option(help: "Seed, 0…18446744073709551615 (PyTorch's range); -1 draws one at random and reports it.", transform: Seed.parse)
    var seed: Seed?

    @Option(help: ArgumentHelp(VAEEncodeStage.rng.help))
    var rng: RNGKind?

    @Option(help: ArgumentHelp(AddNoiseStage.strengthMode.help))
    var strengthMode: AddNoiseStage.StrengthMode?

    @Option(help: ArgumentHelp(EncodePromptStage.clipSkip.help))
    var clipSkip: Int?

    @Option(help: ArgumentHelp(DenoiseStage.eta.help))
    var eta: Double?

    @Option(help: "fp32 (also f32) or bf16: the graph's model option dtype, diffusers' torch_dtype.")
    var dtype: DType = .fp32

    @Option(name: .customLong("hint"),
            help: ArgumentHelp("For single files, a config value the tensors cannot tell (as chisel model inspect --hint). Repeatable.",
                               valueName: "key=value"))
    var hints: [KeyValueArgument] = []

    @Option(name: .customLong("lora"),
            help: ArgumentHelp("A LoRA file (kohya/AUTOMATIC1111 or diffusers/PEFT) merged into the UNet and text encoder at SCALE (default 1). Repeatable.",
                               valueName: "path[:scale]"),
            transform: LoRAArgument.parse)
    var loras: [LoRAArgument] = []

    @Option(help: "A VAE to encode and decode with instead of the checkpoint's: a diffusers AutoencoderKL or AutoencoderTiny (TAESD) folder, or TAESD's taesd_decoder.safetensors.")
    var vae: String?

    @Option(name: .customLong("embedding"),
            help: ArgumentHelp("A textual-inversion embedding (diffusers' learned_embeds .safetensors or .bin, AUTOMATIC1111's .pt or .safetensors; pickles read without running them), used in prompts by its token. Repeatable.",
                               valueName: "path"))
    var embeddings: [String] = []

    @Option(help: ArgumentHelp("VAE " + VAETiling.param.help))
    var vaeTiling: VAETiling?

    @Option(name: .customLong("controlnet"),
            help: ArgumentHelp("A ControlNet (a diffusers ControlNetModel folder) steering the edit at SCALE (default 1; diffusers' "
                               + "controlnet_conditioning_scale, A1111's Weight). Repeatable: several are summed (MultiControlNet).",
                               valueName: "path[:scale]"),
            transform: { try LoRAArgument.parse($0, flag: "--controlnet", example: "control_canny:0.8") })
    var controlNets: [LoRAArgument] = []

    @Option(name: .customLong("controlnet-hint"),
            help: ArgumentHelp("For single-file ControlNets, a config value the tensors cannot tell (norm_num_groups=32, "
                               + "attention_head_dim=8, global_pool_conditions=true). Repeatable.", valueName: "key=value"))
    var controlNetHints: [KeyValueArgument] = []

    @Option(name: .customLong("adapter"),
            help: ArgumentHelp("A T2I-Adapter (a diffusers T2IAdapter folder) at SCALE (default 1; adapter_conditioning_scale). "
                               + "Repeatable; its control image follows the --controlnet ones in --control-image.",
                               valueName: "path[:scale]"),
            transform: { try LoRAArgument.parse($0, flag: "--adapter", example: "t2i_sketch:0.8") })
    var adapters: [LoRAArgument] = []

    @Option(name: [.customLong("control-image"), .customLong("control")],
            help: ArgumentHelp("Each --controlnet's then each --adapter's control image, in order: a map made by any tool (PATH), or "
                               + "canny, tile or inpaint (ControlNets in inpaint only) to make it from the image being edited. "
                               + "Repeatable, one per --controlnet and --adapter.",
                               valueName: "path|canny|tile|inpaint"))
    var controlSources: [String] = []

    @Option(name: .customLong("control-start"),
            help: ArgumentHelp("The share of the steps before the ControlNets start (control_guidance_start, A1111's Guidance Start): "
                               + "one value for all, or one per --controlnet.", valueName: "fraction"))
    var controlStarts: [Double] = []

    @Option(name: .customLong("control-end"),
            help: ArgumentHelp("The share of the steps after which they stop (control_guidance_end): one value, or one per --controlnet.",
                               valueName: "fraction"))
    var controlEnds: [Double] = []

    @Flag(help: ArgumentHelp(ControlNetStage.guessMode.help))
    var guessMode = false

    @Option(help: ArgumentHelp("--control canny: " + CannyStage.low.help))
    var cannyLow: Double?

    @Option(help: ArgumentHelp("--control canny: " + CannyStage.high.help))
    var cannyHigh: Double?

    @Option(help: ArgumentHelp("--control tile: " + ControlTileStage.downsample.help))
    var tileDownsample: Double?

    @Flag(help: "Print the graph this command runs, as JSON, and exit.")
    var printGraph = false

    func validate() throws {
        try OptionCheck.check(steps, "--steps", AddNoiseStage.steps)
        try OptionCheck.check(guidance, "--guidance", DenoiseStage.guidance)
        try OptionCheck.check(temperature, "--temperature", PredictTokensStage.temperature)
        try OptionCheck.check(temperatureEnd, "--temperature-end", PredictTokensStage.temperatureEnd)
        try OptionCheck.check(guidanceRescale, "--guidance-rescale", DenoiseStage.guidanceRescale)
        try OptionCheck.check(clipSkip, "--clip-skip", EncodePromptStage.clipSkip)
        try OptionCheck.check(eta, "--eta", DenoiseStage.eta)
        try OptionCheck.check(guidanceStart, "--guidance-start", DenoiseStage.guidanceStart)
        try OptionCheck.check(guidanceEnd, "--guidance-end", DenoiseStage.guidanceEnd)
        try OptionCheck.check(cacheInterval, "--cache-interval", DenoiseStage.cacheInterval)
        try OptionCheck.check(tokenMerging, "--token-merging", DenoiseStage.tokenMerging)
        try OptionCheck.check(tokenMergingDownsample, "--token-merging-downsample", DenoiseStage.tokenMergingDownsample)
        if (guidanceStart ?? 0) >= (guidanceEnd ?? 1) {
            throw ValidationError("--guidance-start \(guidanceStart ?? 0) must be before --guidance-end \(guidanceEnd ?? 1)")
        }
        if (cacheInterval ?? 1) > 1, !controlNets.isEmpty || !adapters.isEmpty {
            throw ValidationError("--cache-interval cannot be used with --controlnet or --adapter (DeepCache skips the blocks they add to)")
        }
        for net in controlNets { try OptionCheck.check(net.scale, "--controlnet \(net.path):", ControlNetStage.scale) }
        for adapter in adapters { try OptionCheck.check(adapter.scale, "--adapter \(adapter.path):", T2IAdapterStage.scale) }
        for value in controlStarts { try OptionCheck.check(value, "--control-start", ControlNetStage.start) }
        for value in controlEnds { try OptionCheck.check(value, "--control-end", ControlNetStage.end) }
        try OptionCheck.check(cannyLow, "--canny-low", CannyStage.low)
        try OptionCheck.check(cannyHigh, "--canny-high", CannyStage.high)
        try OptionCheck.check(tileDownsample, "--tile-downsample", ControlTileStage.downsample)
        let count = controlNets.count + adapters.count
        if count == 0 {
            let given = [(!controlSources.isEmpty, "--control-image"), (!controlStarts.isEmpty, "--control-start"),
                         (!controlEnds.isEmpty, "--control-end"), (guessMode, "--guess-mode")].filter(\.0).map(\.1)
            if let first = given.first { throw ValidationError("\(first) needs a --controlnet or --adapter") }
            return
        }
        if guessMode && controlNets.isEmpty { throw ValidationError("--guess-mode applies to --controlnet, not to --adapter") }
        guard controlSources.count == count else {
            throw ValidationError("--control-image: \(controlSources.count) given for \(controlNets.count) --controlnet and \(adapters.count) "
                                  + "--adapter; give one per ControlNet, then one per adapter (a map's path, or canny, tile or inpaint)")
        }
        for (flag, values) in [("--control-start", controlStarts), ("--control-end", controlEnds)]
        where values.count > 1 && values.count != count {
            throw ValidationError("\(flag): \(values.count) values for \(count) ControlNets and adapters; give one, or one per --controlnet "
                                  + "then --adapter")
        }
        for i in 0..<count where Self.pick(controlStarts, i, 0) >= Self.pick(controlEnds, i, 1) {
            throw ValidationError("--control-start \(Self.pick(controlStarts, i, 0)) must be before --control-end \(Self.pick(controlEnds, i, 1))")
        }
    }

    /// The value for ControlNet `i`: its own, the one value for all, or the default.
    static func pick(_ values: [Double], _ i: Int, _ fallback: Double) -> Double {
        values.count > i ? values[i] : values.count == 1 ? values[0] : fallback
    }

    /// The ControlNets as the graph builders take them, each checked against the checkpoint.
    func controlRequests(checkpoint: StableDiffusionFacts?, inpainting: Bool) throws -> [ControlRequest] {
        let all = controlNets.map { ($0, false) } + adapters.map { ($0, true) }
        guard !all.isEmpty else { return [] }
        guard let checkpoint else {
            throw ChiselError(.invalidParameter, "--controlnet and --adapter apply to Stable Diffusion checkpoints (the model is an aMUSEd one)")
        }
        return try all.enumerated().map { i, entry in
            let (net, isAdapter) = entry
            let flag = isAdapter ? "--adapter" : "--controlnet"
            let path = cwd.resolve(net.path)
            do {
                let problem = isAdapter ? try T2IAdapterFacts(path: path).mismatch(with: checkpoint)
                    : try ControlNetFacts(path: path, hints: KeyValueArgument.dictionary(controlNetHints)).mismatch(with: checkpoint)
                if let problem { throw ChiselError(.model, problem, file: path) }
            } catch let error as ChiselError {
                throw ChiselError(.model, "\(flag) \(net.path): \(error.message)", file: error.file ?? path)
            }
            let source: ControlRequest.Source
            switch controlSources[i] {
            case "canny": source = .canny
            case "tile": source = .tile
            case "inpaint":
                guard !isAdapter else { throw ChiselError(.invalidParameter, "--control inpaint is for inpaint ControlNets, not --adapter") }
                guard inpainting else {
                    throw ChiselError(.invalidParameter, "--control inpaint makes the inpaint ControlNet's condition from the mask: use chisel inpaint")
                }
                source = .inpaint
            case let file:
                let resolved = cwd.resolve(file)
                guard FileManager.default.fileExists(atPath: resolved) else {
                    throw ChiselError(.io, "--control-image \(file): no such file (or give canny, tile or inpaint)", file: resolved)
                }
                source = .image(resolved)
            }
            var request = ControlRequest(model: path, source: source)
            request.adapter = isAdapter
            request.scale = net.scale
            request.start = Self.pick(controlStarts, i, 0)
            request.end = Self.pick(controlEnds, i, 1)
            request.guessMode = guessMode && !isAdapter
            request.cannyLow = cannyLow
            request.cannyHigh = cannyHigh
            request.tileDownsample = tileDownsample
            request.dtype = dtype.rawValue
            if !isAdapter, !controlNetHints.isEmpty {
                request.hints = KeyValueArgument.dictionary(controlNetHints)
            }
            return request
        }
    }

    var cwd: PathResolver { .workingDirectory }

    /// --model as given, or the bundled scene model.
    var modelLocation: String { model ?? BundledModel.scenes.location }
    /// The folder or file the edit reads: --model resolved, or a built-in model's folder.
    var modelPath: String {
        get throws { try ModelArgument.resolve(modelLocation, cwd: cwd) }
    }
    /// How the graph names the model: `builtin:NAME` as is (the graph stays portable), else the path.
    var graphModelPath: String {
        get throws { BuiltinModelLocation.name(in: modelLocation) != nil ? modelLocation : try modelPath }
    }
    /// What the model is, read from its configs: which edit the commands build, at what sizes.
    static let controlNetAsModel = ChiselError(.invalidParameter, "--model names a ControlNet or T2I-Adapter; give the checkpoint as --model "
                                               + "and it as --controlnet PATH[:SCALE] or --adapter PATH[:SCALE]")

    var facts: ModelFacts {
        get throws {
            try ModelFacts(path: modelPath, hints: KeyValueArgument.dictionary(hints), vae: vae.map { cwd.resolve($0) })
        }
    }

    /// The edit as the graph builders take it, saving to `output`.
    func request(output: String) throws -> EditRequest {
        var request = EditRequest(model: try graphModelPath, image: cwd.resolve(image), output: cwd.resolve(output))
        request.modelOptions = [("dtype", .string(dtype.rawValue))]
        let hintValues = KeyValueArgument.dictionary(hints)
        if !hintValues.isEmpty {
            request.modelOptions.append(("hints", .object(hintValues.sorted { $0.key < $1.key }.map { JSONMember(key: $0.key, value: $0.value) })))
        }
        if !loras.isEmpty { request.modelOptions.append(("loras", LoRAArgument.graphValue(loras, cwd: cwd))) }
        if let vae { request.modelOptions.append(("vae", .string(cwd.resolve(vae)))) }
        if !embeddings.isEmpty { request.modelOptions.append(("embeddings", .array(embeddings.map { .string(cwd.resolve($0)) }))) }
        request.prompt = try EncodePromptStage.prompt.value(or: prompt)
        request.negativePrompt = try EncodePromptStage.negativePrompt.value(or: negativePrompt)
        request.steps = steps
        request.guidance = guidance
        request.scheduler = scheduler
        if let scheduleType {
            let name = scheduler ?? "auto"
            var kind: SchedulerKind
            if name == "auto" {
                guard case .stableDiffusion(let sd) = try facts else {
                    throw ChiselError(.invalidParameter, "--schedule-type applies to Stable Diffusion models")
                }
                kind = try SchedulerKind.declared(by: sd.scheduler)
            } else {
                kind = try SchedulerKind(named: name)
            }
            kind = try kind.withScheduleType(scheduleType)
            request.scheduler = kind.rawValue
        }
        request.seed = try VAEEncodeStage.seed.value(or: seed)
        request.rng = rng
        request.strengthMode = strengthMode
        request.clipSkip = clipSkip
        request.eta = eta
        request.guidanceRescale = guidanceRescale
        request.guidanceStart = guidanceStart
        request.guidanceEnd = guidanceEnd
        request.cacheInterval = cacheInterval
        request.tokenMerging = tokenMerging
        request.tokenMergingDownsample = tokenMergingDownsample
        request.tiling = vaeTiling
        request.temperature = temperature
        request.temperatureEnd = temperatureEnd
        return request
    }

    /// The Stable Diffusion facts of --model, or an error saying the option needs such a checkpoint.
    func stableDiffusionFacts() throws -> StableDiffusionFacts {
        guard let facts = try facts.stableDiffusion else {
            throw ChiselError(.model, "\(modelLocation) is not a Stable Diffusion checkpoint")
        }
        return facts
    }

    /// Prints the graph, or compiles and runs it with a bar counting `total` steps.
    func run(_ graph: JSONValue, settings: RunSettings, total: Int) async throws {
        try await EditOptions.run(graph, printGraph: printGraph, cwd: cwd, settings: settings, total: total, unit: "steps")
    }

    static func run(_ graph: JSONValue, printGraph: Bool, cwd: PathResolver, settings: RunSettings, total: Int,
                    unit: String) async throws {
        if printGraph {
            Terminal.out(graph.prettySerialized())
            return
        }
        let registry = try ChiselCLI.makeRegistry()
        let plan = try GraphCompiler.compile(graph, file: nil, directory: cwd.base, registry: registry,
                                             options: GraphOptions(workingDirectory: cwd.base))
        try await RunCommand.run(plan, registry: registry, settings: settings,
                                 progress: ProgressRenderer(mode: settings.progress, total: total, unit: unit), countSteps: true)
    }
}

extension FeatherMaskStage.Mode: ExpressibleByArgument {}
extension InpaintRequest.MaskedContent: ExpressibleByArgument {}
extension InpaintRequest.TokenMode: ExpressibleByArgument {}

struct Img2ImgCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "img2img", abstract: "Edit an image with SDEdit / img2img in one line.",
        discussion: """
            Builds the graph load_image → encode_prompt → vae_encode → add_noise → denoise → \
            vae_decode → save_image (--print-graph writes it out) and runs it. With the defaults \
            the result is what diffusers' StableDiffusionImg2ImgPipeline returns for the same \
            arguments and seed. See docs/editing.md.
            """)

    @OptionGroup var edit: EditOptions
    @OptionGroup var settings: RunSettings

    @Option(help: ArgumentHelp("How far into the noise the edit goes: 0 keeps the image, 1 nearly ignores it. Default "
                               + "\(EditGraphs.diffusersImg2ImgStrength), \(EditGraphs.amusedImg2ImgStrength) for aMUSEd."))
    var strength: Double?

    @Option(help: "Output file; may use {stem}.")
    var output: String = "{stem}-img2img.png"

    @Option(help: "Rounds of noise-and-denoise (repeated SDEdit, Meng et al. 2022, §3): each round noises the previous result again.")
    var rounds: Int = 1

    func validate() throws {
        try OptionCheck.check(Double(rounds), "--rounds", range: 1...100)
        try OptionCheck.check(strength, "--strength", AddNoiseStage.strength)
    }

    func run() async throws {
        var request = try edit.request(output: output)
        let facts = try edit.facts
        request.controls = try edit.controlRequests(checkpoint: facts.stableDiffusion, inpainting: false)
        switch facts {
        case .controlNet, .t2iAdapter:
            throw EditOptions.controlNetAsModel
        case .amused(let facts):
            guard rounds == 1 else { throw ChiselError(.invalidParameter, "--rounds applies to Stable Diffusion models") }
            try edit.refuseDiffusionOnlyOptions()
            try await edit.run(EditGraphs.amused(request, inpaint: nil, strength: strength, facts: facts), settings: settings,
                               total: try EditGraphs.steps(request, amused: true))
        case .stableDiffusion(let facts):
            try await edit.run(EditGraphs.img2img(request, facts: facts, strength: strength, rounds: rounds), settings: settings,
                               total: try EditGraphs.steps(request, amused: false))
        }
    }
}

struct InpaintCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inpaint", abstract: "Repaint the masked part of an image in one line.",
        discussion: """
            White (or transparent) in --mask is repainted. 9-channel inpainting checkpoints take \
            the mask and the masked image as extra UNet channels; 4-channel ones blend the \
            original back outside the mask at every step, as diffusers' \
            StableDiffusionInpaintPipeline does. With --paste-back (the default) the result is \
            pasted onto the input through the (blurred) mask, so every pixel where the mask is 0 \
            is the input's, bit for bit. See docs/editing.md.
            """)

    @OptionGroup var edit: EditOptions
    @OptionGroup var settings: RunSettings

    @Option(help: "The mask: white (or transparent) = repaint.")
    var mask: String

    @Option(help: "How far into the noise the edit goes; 1 repaints from pure noise (default 1; SDXL 0.9999, as diffusers' SDXL inpainting).")
    var strength: Double?

    @Option(help: ArgumentHelp("Gaussian blur of the mask used to paste the result back: " + FeatherMaskStage.radius.help))
    var maskBlur: Double?

    @Option(help: ArgumentHelp("With paste-back: " + FeatherMaskStage.mode.help))
    var maskBlurMode: FeatherMaskStage.Mode?

    @Option(help: "Paste the result onto the input through the mask (pixels where the mask is 0 stay exact).")
    var pasteBack: Bool = true

    @Option(help: "Output file; may use {stem}.")
    var output: String = "{stem}-inpaint.png"

    @Option(help: "What the masked area starts from: original (diffusers), fill, latent_noise or latent_nothing (AUTOMATIC1111).")
    var maskedContent: InpaintRequest.MaskedContent = .original

    @Option(help: ArgumentHelp(
        "aMUSEd: predict (MaskGIT, aMUSEd's inpainting) or refine (Mask-Predict from the masked content's tokens).",
        discussion: "predict masks every token under the mask and decodes them anew; --steps, --temperature and --strength "
            + "apply to it. refine starts from the tokens of --masked-content there and re-predicts them, each weighed "
            + "against its starting token (refine_tokens inside the mask, unguided unless --guidance is given)."))
    var tokenMode: InpaintRequest.TokenMode = .predict

    @Flag(help: "4-channel models: read a grayscale mask as per-pixel strength (Differential Diffusion) instead of binarising it.")
    var softMask = false

    @Flag(help: "Inpaint only the mask's area: crop it with --only-masked-padding, work at --width × --height, paste back (AUTOMATIC1111).")
    var onlyMasked = false

    @Option(help: ArgumentHelp("With --only-masked: " + CropStage.padding.help))
    var onlyMaskedPadding: Int?

    @Option(help: "With --only-masked: the size the masked area is inpainted at.")
    var width: Int = 512

    @Option(help: "With --only-masked: see --width.")
    var height: Int = 512

    func validate() throws {
        if let strength { try OptionCheck.check(strength, "--strength", AddNoiseStage.strength) }
        try OptionCheck.check(maskBlur, "--mask-blur", FeatherMaskStage.radius)
        try OptionCheck.check(onlyMaskedPadding, "--only-masked-padding", CropStage.padding)
        try OptionCheck.check(Double(width), "--width", range: 8...16384)
        try OptionCheck.check(Double(height), "--height", range: 8...16384)
    }

    func run() async throws {
        var request = try edit.request(output: output)
        var inpaint = InpaintRequest(mask: edit.cwd.resolve(mask))
        let facts = try edit.facts
        request.controls = try edit.controlRequests(checkpoint: facts.stableDiffusion, inpainting: true)
        inpaint.strength = strength ?? (facts.stableDiffusion?.family.isXL == true ? EditGraphs.diffusersXLInpaintStrength
                                        : EditGraphs.diffusersInpaintStrength)
        inpaint.maskBlur = maskBlur
        inpaint.maskBlurMode = maskBlurMode
        inpaint.pasteBack = pasteBack
        inpaint.maskedContent = maskedContent
        inpaint.tokenMode = tokenMode
        inpaint.softMask = softMask
        if onlyMasked { inpaint.onlyMasked = (try CropStage.padding.value(or: onlyMaskedPadding), width, height) }
        switch facts {
        case .controlNet, .t2iAdapter:
            throw EditOptions.controlNetAsModel
        case .amused(let facts):
            guard maskedContent == .original || maskedContent == .fill, !softMask, !onlyMasked else {
                throw ChiselError(.invalidParameter, "--masked-content latent_noise/latent_nothing, --soft-mask and --only-masked "
                                  + "apply to Stable Diffusion models (aMUSEd takes --masked-content original or fill)")
            }
            guard tokenMode == .predict || inpaint.strength == 1 else {
                throw ChiselError(.invalidParameter, "--strength applies to --token-mode predict; refine re-predicts every token "
                                  + "under the mask from its starting token")
            }
            try edit.refuseDiffusionOnlyOptions()
            try await edit.run(EditGraphs.amused(request, inpaint: inpaint, facts: facts), settings: settings,
                               total: try EditGraphs.steps(request, amused: true))
        case .stableDiffusion(let facts):
            guard tokenMode == .predict else {
                throw ChiselError(.invalidParameter, "--token-mode applies to aMUSEd models, not to \(edit.modelLocation)")
            }
            try await edit.run(EditGraphs.inpaint(request, inpaint, facts: facts), settings: settings,
                               total: try EditGraphs.steps(request, amused: false))
        }
    }
}

/// `--model` values: `builtin:NAME` for a bundled model, else a path from the working directory.
enum ModelArgument {
    static func resolve(_ location: String, cwd: PathResolver) throws -> String {
        // Only a builtin: location needs the registry (and its list of built-in models).
        guard BuiltinModelLocation.name(in: location) != nil,
              let folder = try ChiselCLI.makeRegistry().builtinModelFolder(for: location) else {
            return cwd.resolve(location)
        }
        return folder
    }
}
