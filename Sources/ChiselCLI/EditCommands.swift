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
/// and stable-diffusion.cpp users know them.
struct EditOptions: ParsableArguments {
    enum DType: String, ExpressibleByArgument, CaseIterable {
        case fp32, bf16
    }

    @Option(help: "A Stable Diffusion checkpoint (a diffusers folder or a single .safetensors file), an aMUSEd folder (masked-token edit), or builtin:NAME; default builtin:scenes, the bundled scene model.")
    var model: String?

    @Option(help: "The image to edit.")
    var image: String

    @Option(help: "What the result should show.")
    var prompt: String = ""

    @Option(help: "What it should not show.")
    var negativePrompt: String = ""

    @Option(help: "Inference steps of the schedule (with --strength-mode cut, int(steps × strength) of them run); default 50, 12 for aMUSEd.")
    var steps: Int?

    @Option(help: "Classifier-free guidance scale; 1 or less runs the model once per step, unguided. Default 7.5, 10 for aMUSEd (1 for inpaint --token-mode refine).")
    var guidance: Double?

    @Option(help: "aMUSEd: the Gumbel-noise temperature of the first decoding step.")
    var temperature: Double = 2

    @Option(help: "aMUSEd: the temperature of the last decoding step.")
    var temperatureEnd: Double = 0

    @Option(help: "Guidance rescale φ (0 = off).")
    var guidanceRescale: Double = 0

    @Option(help: "Sampler: auto (the checkpoint's), euler, euler_a, dpmpp_2m_karras, \"DPM++ 2M Karras\", ddim, …")
    var scheduler: String = "auto"

    @Option(help: "Seed, 0…18446744073709551615 (PyTorch's range); -1 draws one at random and reports it.", transform: Seed.parse)
    var seed: Seed = .random

    @Option(help: "Random generator: cpu (PyTorch's CPU generator) or cuda (AUTOMATIC1111's NV).")
    var rng: RNGKind = .cpu

    @Option(help: "cut: run the last steps×strength steps (diffusers, A1111); exact: run exactly --steps (ComfyUI's denoise).")
    var strengthMode: AddNoiseStage.StrengthMode = .cut

    @Option(help: "Text-encoder layers to skip (diffusers' clip_skip; AUTOMATIC1111's Clip skip minus 1).")
    var clipSkip: Int = 0

    @Option(help: "DDIM's η.")
    var eta: Double = 0

    @Option(help: "fp32 or bf16.")
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
            help: ArgumentHelp("A textual-inversion embedding (.safetensors: diffusers' learned_embeds or AUTOMATIC1111's emb_params), used in prompts by its token. Repeatable.",
                               valueName: "path"))
    var embeddings: [String] = []

    @Option(help: "VAE tiling: on (as diffusers' vae.enable_tiling()), off, or auto (on where an untiled pass would need over 4 GiB).")
    var vaeTiling: VAETiling = .auto

    @Flag(help: "Print the graph this command runs, as JSON, and exit.")
    var printGraph = false

    /// The VAE nodes' `tiling` parameter, when not the default.
    var tilingParams: [(String, JSONValue)] { vaeTiling == .auto ? [] : [("tiling", .string(vaeTiling.rawValue))] }

    func validate() throws {
        try OptionCheck.check(steps, "--steps", AddNoiseStage.steps)
        try OptionCheck.check(guidance, "--guidance", DenoiseStage.guidance)
        try OptionCheck.check(temperature, "--temperature", PredictTokensStage.temperature)
        try OptionCheck.check(temperatureEnd, "--temperature-end", PredictTokensStage.temperatureEnd)
        try OptionCheck.check(guidanceRescale, "--guidance-rescale", DenoiseStage.guidanceRescale)
        try OptionCheck.check(clipSkip, "--clip-skip", EncodePromptStage.clipSkip)
        try OptionCheck.check(eta, "--eta", DenoiseStage.eta)
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
    /// Whether --model is an aMUSEd folder: the commands then run a masked-token edit.
    var isAmused: Bool { (try? modelPath).map(AmusedModel.isFolder) ?? false }
    var stepCount: Int { steps ?? (isAmused ? 12 : 50) }
    var guidanceScale: Double { guidance ?? (isAmused ? 10 : 7.5) }
}

extension FeatherMaskStage.Mode: ExpressibleByArgument {}

/// A graph under construction: nodes in order, each a stage with parameters and wired inputs.
struct GraphBuilder {
    /// The paste mask: the user's mask at the input's size (`fitted_mask`), feathered.
    mutating func pasteMask(blur: Double, mode: FeatherMaskStage.Mode) {
        node("soft_mask", "feather_mask", inputs: [("mask", "fitted_mask.mask")],
             params: [("radius", .double(blur)), ("mode", .string(mode.rawValue))])
    }

    /// Pastes `result` onto the input as loaded (at the input's size, even where the model worked
    /// on a rounded size) through `soft_mask`: pixels where it is 0 are the input's, bit for bit.
    mutating func pasteBack(_ result: String) -> String {
        node("pasted", "composite", inputs: [("base", "input.image"), ("overlay", result), ("mask", "soft_mask.mask")])
        return "pasted.image"
    }

    private var nodes: [JSONMember] = []
    private var models: [JSONMember] = []

    mutating func model(_ name: String, path: String, dtype: String, hints: [String: JSONValue] = [:],
                        extra: [(String, JSONValue)] = []) {
        var entry = [JSONMember(key: "path", value: .string(path)), JSONMember(key: "dtype", value: .string(dtype))]
        if !hints.isEmpty {
            entry.append(JSONMember(key: "hints", value: .object(hints.sorted { $0.key < $1.key }.map { JSONMember(key: $0.key, value: $0.value) })))
        }
        entry += extra.map { JSONMember(key: $0.0, value: $0.1) }
        models.append(JSONMember(key: name, value: .object(entry)))
    }

    mutating func node(_ id: String, _ stage: String, inputs: [(String, String)] = [], params: [(String, JSONValue)] = []) {
        var members = [JSONMember(key: "stage", value: .string(stage))]
        if !inputs.isEmpty {
            members.append(JSONMember(key: "inputs", value: .object(inputs.map { JSONMember(key: $0.0, value: .string($0.1)) })))
        }
        if !params.isEmpty { members.append(JSONMember(key: "params", value: .object(params.map { JSONMember(key: $0.0, value: $0.1) }))) }
        nodes.append(JSONMember(key: id, value: .object(members)))
    }

    func graph(description: String) -> JSONValue {
        .object([
            JSONMember(key: "chisel", value: .int(GraphCompiler.formatVersion)),
            JSONMember(key: "description", value: .string(description)),
            JSONMember(key: "models", value: .object(models)),
            JSONMember(key: "nodes", value: .object(nodes)),
        ])
    }
}

extension EditOptions {
    /// What the commands need to know of the checkpoint before building the graph.
    func checkpoint() throws -> (downscale: Int, unetChannels: Int, latentChannels: Int) {
        let source = try StableDiffusionSource(path: modelPath, hints: KeyValueArgument.dictionary(hints))
        let vae = try source.vae().config
        return (vae.downscale, try source.unet().config.inChannels, vae.latentChannels)
    }

    /// The nodes every edit starts with: the model, the image at a size the VAE takes, the prompts.
    func startGraph(downscale: Int) throws -> GraphBuilder {
        var graph = GraphBuilder()
        graph.model("sd", path: try graphModelPath, dtype: dtype.rawValue, hints: KeyValueArgument.dictionary(hints),
                    extra: (loras.isEmpty ? [] : [("loras", LoRAArgument.graphValue(loras, cwd: cwd))])
                        + (vae.map { [("vae", JSONValue.string(cwd.resolve($0)))] } ?? [])
                        + (embeddings.isEmpty ? [] : [("embeddings", .array(embeddings.map { .string(cwd.resolve($0)) }))]))
        graph.node("input", "load_image", params: [("path", .string(cwd.resolve(image))), ("mode", "rgb")])
        // diffusers rounds the size down to a multiple of the VAE's downscale (a no-op when it is one).
        graph.node("sized", "resize", inputs: [("image", "input.image")],
                   params: [("scale", .double(1)), ("multiple_of", .int(downscale))])
        graph.node("text", "encode_prompt", inputs: [("model", "sd")],
                   params: [("prompt", .string(prompt)), ("negative_prompt", .string(negativePrompt)),
                            ("clip_skip", .int(clipSkip))]
                       // Unguided, the negative side is never used: diffusers does not encode it.
                       + (guidanceScale <= 1 ? [("encode_negative", .bool(false))] : []))
        return graph
    }

    func noiseParams(strength: Double, pureNoise: Bool = false) -> [(String, JSONValue)] {
        var params: [(String, JSONValue)] = [
            ("scheduler", .string(scheduler)), ("steps", .int(stepCount)), ("strength", .double(strength)),
            ("strength_mode", .string(strengthMode.rawValue)),
        ]
        if pureNoise { params.append(("pure_noise", .bool(true))) }
        // AUTOMATIC1111 seeds only the noise (its VAE sample is unseeded): with its NV generator the
        // noise starts a fresh stream from the seed, so web-UI seeds give the same starting noise.
        if rng == .cuda, seed != .random { params += seedParams }
        return params
    }

    var denoiseParams: [(String, JSONValue)] {
        [("guidance", .double(guidanceScale)), ("guidance_rescale", .double(guidanceRescale)), ("eta", .double(eta))]
    }

    var seedParams: [(String, JSONValue)] { [("seed", seed.json), ("rng", .string(rng.rawValue))] }

    /// Prints the graph, or compiles and runs it with a bar counting denoising steps.
    func run(_ graph: JSONValue, settings: RunSettings) async throws {
        if printGraph {
            Terminal.out(graph.prettySerialized())
            return
        }
        let registry = try ChiselCLI.makeRegistry()
        let plan = try GraphCompiler.compile(graph, file: nil, directory: cwd.base, registry: registry,
                                             options: GraphOptions(workingDirectory: cwd.base))
        try await RunCommand.run(plan, registry: registry, settings: settings,
                                 progress: ProgressRenderer(mode: settings.progress, total: stepCount, unit: "steps"), countSteps: true)
    }
}

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

    @Option(help: "How far into the noise the edit goes: 0 keeps the image, 1 nearly ignores it. Default 0.8, 0.5 for aMUSEd.")
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
        if edit.isAmused {
            guard rounds == 1 else { throw ChiselError(.invalidParameter, "--rounds applies to Stable Diffusion models") }
            try await edit.runAmused(strength: strength ?? 0.5, mask: nil, pasteBack: false, maskBlur: 0, output: output,
                                     settings: settings)
            return
        }
        let strength = self.strength ?? 0.8
        let (downscale, _, _) = try edit.checkpoint()
        var graph = try edit.startGraph(downscale: downscale)
        graph.node("latent", "vae_encode", inputs: [("model", "sd"), ("image", "sized.image")],
                   params: edit.seedParams + edit.tilingParams)
        var clean = "latent.latent"
        for round in 1...rounds {
            // Later rounds continue the same random stream from the previous round's result.
            let suffix = round == 1 ? "" : "_\(round)"
            graph.node("noised" + suffix, "add_noise", inputs: [("model", "sd"), ("latent", clean)],
                       params: edit.noiseParams(strength: strength))
            graph.node("edited" + suffix, "denoise",
                       inputs: [("model", "sd"), ("latent", "noised\(suffix).latent"), ("conditioning", "text.conditioning")],
                       params: edit.denoiseParams)
            clean = "edited\(suffix).latent"
        }
        graph.node("decoded", "vae_decode", inputs: [("model", "sd"), ("latent", clean)], params: edit.tilingParams)
        graph.node("save", "save_image", inputs: [("image", "decoded.image")],
                   params: [("path", .string(edit.cwd.resolve(output)))])
        try await edit.run(graph.graph(description: "img2img: \(edit.prompt)"), settings: settings)
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

    @Option(help: "How far into the noise the edit goes; 1 repaints from pure noise.")
    var strength: Double = 1.0

    @Option(help: "Gaussian blur (σ in pixels) of the mask used to paste the result back.")
    var maskBlur: Double = 4

    @Option(help: "inside: the blurred mask never exceeds yours, so pixels where it is 0 stay the input's; outward: the plain blur, which also changes pixels up to about 3σ outside the mask (AUTOMATIC1111's mask blur).")
    var maskBlurMode: FeatherMaskStage.Mode = .inside

    @Option(help: "Paste the result onto the input through the mask (pixels where the mask is 0 stay exact).")
    var pasteBack: Bool = true

    @Option(help: "Output file; may use {stem}.")
    var output: String = "{stem}-inpaint.png"

    enum MaskedContent: String, ExpressibleByArgument, CaseIterable {
        /// The image as it is (diffusers).
        case original
        /// Colours blurred in from around the mask (AUTOMATIC1111's fill).
        case fill
        /// The latent's masked area replaced by noise.
        case latentNoise = "latent_noise"
        /// The latent's masked area replaced by zeros.
        case latentNothing = "latent_nothing"
    }

    @Option(help: "What the masked area starts from: original (diffusers), fill, latent_noise or latent_nothing (AUTOMATIC1111).")
    var maskedContent: MaskedContent = .original

    enum TokenMode: String, ExpressibleByArgument, CaseIterable {
        /// Every token under the mask masked and decoded anew (aMUSEd's inpainting pipeline).
        case predict
        /// Mask-Predict refinement under the mask, from the tokens of --masked-content.
        case refine
    }

    @Option(help: "aMUSEd: predict masks every token under the mask and decodes them anew (aMUSEd's inpainting, MaskGIT); refine starts from the tokens of --masked-content there and re-predicts them by Mask-Predict, each weighed against its starting token (refine_tokens inside the mask, unguided unless --guidance is given; --steps, --temperature and --strength apply to predict).")
    var tokenMode: TokenMode = .predict

    @Flag(help: "4-channel models: read a grayscale mask as per-pixel strength (Differential Diffusion) instead of binarising it.")
    var softMask = false

    @Flag(help: "Inpaint only the mask's area: crop it with --only-masked-padding, work at --width × --height, paste back (AUTOMATIC1111).")
    var onlyMasked = false

    @Option(help: "With --only-masked: pixels of context around the mask.")
    var onlyMaskedPadding: Int = 32

    @Option(help: "With --only-masked: the size the masked area is inpainted at.")
    var width: Int = 512

    @Option(help: "With --only-masked: see --width.")
    var height: Int = 512

    func validate() throws {
        try OptionCheck.check(strength, "--strength", AddNoiseStage.strength)
        try OptionCheck.check(maskBlur, "--mask-blur", FeatherMaskStage.radius)
        try OptionCheck.check(onlyMaskedPadding, "--only-masked-padding", CropStage.padding)
        try OptionCheck.check(Double(width), "--width", range: 8...16384)
        try OptionCheck.check(Double(height), "--height", range: 8...16384)
    }

    func run() async throws {
        if edit.isAmused {
            guard maskedContent == .original || maskedContent == .fill, !softMask, !onlyMasked else {
                throw ChiselError(.invalidParameter, "--masked-content latent_noise/latent_nothing, --soft-mask and --only-masked "
                                  + "apply to Stable Diffusion models (aMUSEd takes --masked-content original or fill)")
            }
            guard tokenMode == .predict || strength == 1 else {
                throw ChiselError(.invalidParameter, "--strength applies to --token-mode predict; refine re-predicts every token "
                                  + "under the mask from its starting token")
            }
            try await edit.runAmused(strength: strength, mask: mask, fill: maskedContent == .fill,
                                     refine: tokenMode == .refine, pasteBack: pasteBack, maskBlur: maskBlur,
                                     maskBlurMode: maskBlurMode, output: output,
                                     settings: settings)
            return
        }
        guard tokenMode == .predict else {
            throw ChiselError(.invalidParameter, "--token-mode applies to aMUSEd models, not to \(edit.modelLocation)")
        }
        let (downscale, unetChannels, latentChannels) = try edit.checkpoint()
        let nineChannel = unetChannels == 2 * latentChannels + 1
        var graph = try edit.startGraph(downscale: downscale)
        graph.node("mask", "load_mask", params: [("path", .string(edit.cwd.resolve(mask)))])
        graph.node("fitted_mask", "match_mask", inputs: [("image", "input.image"), ("mask", "mask.mask")])
        graph.node("sized_mask", "resize", inputs: [("image", "input.image"), ("mask", "fitted_mask.mask")],
                   params: [("scale", .double(1)), ("multiple_of", .int(downscale))])
        // What the model works on: the whole image, or (only masked) the mask's area at the working size.
        var image = "sized.image", area = "sized_mask.mask"
        let cropParams: [(String, JSONValue)] = [("padding", .int(onlyMaskedPadding)), ("aspect_width", .int(width)),
                                                 ("aspect_height", .int(height))]
        if onlyMasked {
            // The crop comes from the input itself, so it goes back into the input's own pixels.
            graph.node("area", "crop", inputs: [("image", "input.image"), ("mask", "fitted_mask.mask")],
                       params: [("region", "mask")] + cropParams)
            graph.node("work", "resize", inputs: [("image", "area.image"), ("mask", "area.mask")],
                       params: [("width", .int(width)), ("height", .int(height)), ("mode", "stretch"),
                                ("multiple_of", .int(downscale))])
            (image, area) = ("work.image", "work.mask")
        }
        // The draws of diffusers' inpainting pipeline, in order: the image latent's sample (4-channel
        // models, or strength < 1), the initial noise, then the masked image's sample.
        let full = strength >= 1
        let encodes = !nineChannel || !full || maskedContent != .original
        var start = image
        if maskedContent == .fill {
            graph.node("filled", "fill_masked", inputs: [("image", image), ("mask", area)])
            start = "filled.image"
        }
        if encodes {
            graph.node("latent", "vae_encode", inputs: [("model", "sd"), ("image", start)], params: edit.seedParams + edit.tilingParams)
        } else {
            graph.node("latent", "empty_latent", inputs: [("model", "sd"), ("like", image)])
        }
        var clean = "latent.latent"
        if maskedContent == .latentNoise || maskedContent == .latentNothing {
            graph.node("latent_fill", "fill_latent", inputs: [("latent", clean), ("mask", area)],
                       params: [("fill", .string(maskedContent == .latentNoise ? "noise" : "zeros"))])
            clean = "latent_fill.latent"
        }
        var noiseParams = edit.noiseParams(strength: strength, pureNoise: full)
        if !encodes, !noiseParams.contains(where: { $0.0 == "seed" }) { noiseParams += edit.seedParams }
        graph.node("noised", "add_noise", inputs: [("model", "sd"), ("latent", clean)], params: noiseParams)
        var denoiseInputs = [("model", "sd"), ("latent", "noised.latent"), ("conditioning", "text.conditioning"), ("mask", area)]
        // The pipeline encodes the masked image for 4-channel models too, and its sample draw
        // comes before the loop's: the loop continues that stream.
        graph.node("masked", "vae_encode", inputs: [("model", "sd"), ("image", image), ("mask", area), ("stream", "noised.latent")],
                   params: edit.tilingParams)
        denoiseInputs.append(("stream", "masked.latent"))
        denoiseInputs.append(nineChannel ? ("masked_image", "masked.latent") : ("original", clean))
        graph.node("edited", "denoise", inputs: denoiseInputs, params: edit.denoiseParams + (softMask ? [("soft_mask", true)] : []))
        graph.node("decoded", "vae_decode", inputs: [("model", "sd"), ("latent", "edited.latent")], params: edit.tilingParams)
        var result = "decoded.image"
        if pasteBack { graph.pasteMask(blur: maskBlur, mode: maskBlurMode) }
        if onlyMasked {
            // The crop goes back into its box, through the feathered mask (or the box's mask without paste-back).
            graph.node("pasted", "paste_crop",
                       inputs: [("base", "input.image"), ("overlay", "decoded.image"), ("region", "fitted_mask.mask")]
                           + (pasteBack ? [("mask", "soft_mask.mask")] : []),
                       params: cropParams)
            result = "pasted.image"
        } else if pasteBack {
            result = graph.pasteBack("decoded.image")
        }
        graph.node("save", "save_image", inputs: [("image", result)], params: [("path", .string(edit.cwd.resolve(output)))])
        try await edit.run(graph.graph(description: "inpaint: \(edit.prompt)"), settings: settings)
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
