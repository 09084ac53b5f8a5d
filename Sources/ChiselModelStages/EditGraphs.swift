import ChiselCore
import ChiselDiffusion
import ChiselModels
import ChiselStages

/// What a one-line edit asks for, as `chisel img2img`, `chisel inpaint` and the edit benchmarks
/// give it. A setting left nil is the stage's own default; the few defaults that are the
/// commands' own (diffusers' pipelines': 50 steps, strength 0.8) are `EditGraphs`' constants.
public struct EditRequest: Sendable {
    /// The model as the graph names it: a path, or `builtin:NAME`.
    public var model: String
    /// The model entry's options besides its path (dtype, hints, loras, vae, embeddings).
    public var modelOptions: [(String, JSONValue)] = []
    public var image: String
    /// Where the result is saved.
    public var output: String
    public var prompt = ""
    public var negativePrompt = ""
    public var steps: Int?
    public var guidance: Double?
    public var scheduler: String?
    public var seed: Seed = .random
    public var rng: RNGKind?
    public var strengthMode: AddNoiseStage.StrengthMode?
    public var clipSkip: Int?
    public var eta: Double?
    public var guidanceRescale: Double?
    /// The share of the steps guidance acts on (denoise's guidance_start / guidance_end).
    public var guidanceStart: Double?
    public var guidanceEnd: Double?
    /// DeepCache's interval (denoise's cache_interval).
    public var cacheInterval: Int?
    /// ToMe's ratio and coarsest level (denoise's token_merging, token_merging_downsample).
    public var tokenMerging: Double?
    public var tokenMergingDownsample: Int?
    public var tiling: VAETiling?
    /// How the prompt is read: diffusers' truncate (the default) or A1111's chunks and emphasis.
    public var promptMode: EncodePromptStage.Mode?
    /// aMUSEd: the Gumbel-noise temperatures of the first and last decoding steps.
    public var temperature: Double?
    public var temperatureEnd: Double?
    /// ControlNets steering the denoise, in order (their residuals summed).
    public var controls: [ControlRequest] = []

    public init(model: String, image: String, output: String) {
        self.model = model
        self.image = image
        self.output = output
    }
}

/// One ControlNet of an edit and where its control image comes from.
public struct ControlRequest: Sendable {
    public enum Source: Sendable, Equatable {
        /// A control map made by any tool (depth, pose, line art, edges), resized to the edit's size.
        case image(String)
        /// Canny edges of the image being edited (the canny stage).
        case canny
        /// The image being edited itself, optionally downscaled and blurred (control_tile).
        case tile
        /// The image being edited with the mask's pixels at −1 (the inpaint ControlNet's condition).
        case inpaint

        /// AUTOMATIC1111's ControlNet extension's name of the preprocessor.
        var module: String {
            switch self {
            case .image: "none"
            case .canny: "canny"
            case .tile: "tile_resample"
            case .inpaint: "inpaint_only"
            }
        }
    }

    /// The ControlNet's (or T2I-Adapter's) folder.
    public var model: String
    /// A T2I-Adapter (t2i_adapter node) rather than a ControlNet.
    public var adapter = false
    public var source: Source
    public var scale = 1.0
    public var start = 0.0
    public var end = 1.0
    public var guessMode = false
    /// The canny stage's thresholds and the tile's downscaling, when the source uses them.
    public var cannyLow: Double?
    public var cannyHigh: Double?
    public var tileDownsample: Double?
    /// The model entry's dtype (the checkpoint's).
    public var dtype: String?
    /// A single-file ControlNet's config values its tensors cannot tell.
    public var hints: [String: JSONValue] = [:]

    public init(model: String, source: Source) {
        self.model = model
        self.source = source
    }
}

/// Inpainting's settings besides the edit's, named as AUTOMATIC1111 and diffusers name them.
public struct InpaintRequest: Sendable {
    public enum MaskedContent: String, Sendable, CaseIterable {
        /// The image as it is (diffusers).
        case original
        /// Colours blurred in from around the mask (AUTOMATIC1111's fill).
        case fill
        /// The latent's masked area replaced by noise.
        case latentNoise = "latent_noise"
        /// The latent's masked area replaced by zeros.
        case latentNothing = "latent_nothing"
    }

    public enum TokenMode: String, Sendable, CaseIterable {
        /// Every token under the mask masked and decoded anew (aMUSEd's inpainting pipeline).
        case predict
        /// Mask-Predict refinement under the mask, from the tokens of the masked content.
        case refine
    }

    public var mask: String
    public var strength = EditGraphs.diffusersInpaintStrength
    public var maskBlur: Double?
    public var maskBlurMode: FeatherMaskStage.Mode?
    public var pasteBack = true
    public var maskedContent: MaskedContent = .original
    public var tokenMode: TokenMode = .predict
    public var softMask = false
    /// AUTOMATIC1111's "only masked": the mask's area, with this much context, at `size`.
    public var onlyMasked: (padding: Int, width: Int, height: Int)?

    public init(mask: String) { self.mask = mask }
}

/// Mask-Predict refinement of a whole image (`chisel refine`); nil settings are refine_tokens' defaults.
public struct RefineRequest: Sendable {
    public var model: String
    public var dtype: String
    public var image: String
    public var output: String
    public var prompt = ""
    public var iterations: Int?
    public var fraction: Double?
    public var threshold: Double?
    public var neighbourhood: Int?
    public var evidence: Double?
    public var scoringStride: Int?
    public var temperature: Double?
    public var seed: Seed = .random
    /// Paste the changed tokens onto the input through their mask, feathered by `maskBlur`.
    public var pasteBack = true
    public var maskBlur = defaultMaskBlur
    public var maskBlurMode = defaultMaskBlurMode
    /// Refinement replaces whole tokens: their mask is blended outward over 2 pixels by default.
    public static let defaultMaskBlur = 2.0
    public static let defaultMaskBlurMode = FeatherMaskStage.Mode.outward
    /// Extra outputs: refine_tokens' low-confidence mask, what it found, its confidence map.
    public var maskOutput: String?
    public var foundOutput: String?
    public var confidenceOutput: String?

    public init(model: String, dtype: String, image: String, output: String) {
        self.model = model
        self.dtype = dtype
        self.image = image
        self.output = output
    }
}

/// The graphs of the one-line edits, built from the stages' typed keys: what `chisel img2img`,
/// `inpaint` and `refine` run and print with `--print-graph`, and what the edit benchmarks time.
public enum EditGraphs {
    /// diffusers' pipelines' number of inference steps, the commands' default for Stable Diffusion.
    public static let diffusersSteps = 50
    /// diffusers' img2img strength, the command's default for Stable Diffusion.
    public static let diffusersImg2ImgStrength = 0.8
    /// diffusers' inpainting strength, the command's default.
    public static let diffusersInpaintStrength = 1.0
    /// diffusers' StableDiffusionXLInpaintPipeline's default strength: just under 1, so the edit
    /// starts from the image noised to the first timestep rather than from pure noise.
    public static let diffusersXLInpaintStrength = 0.9999
    /// aMUSEd's img2img pipeline's strength.
    public static let amusedImg2ImgStrength = 0.5

    /// The step count the edit's schedule has: the request's, or its family's default.
    public static func steps(_ request: EditRequest, amused: Bool) throws -> Int {
        try amused ? MaskTokensStage.steps.value(or: request.steps) : request.steps ?? diffusersSteps
    }

    /// The start every edit shares: the model, the image as loaded, the image at a size the
    /// model encodes (diffusers rounds each side down to a multiple of the VAE's or VQ's
    /// downscale: a no-op when it is one), and the prompts.
    struct Start {
        var graph = GraphBuilder()
        let model: ModelRef
        let input: NodeRef
        let sized: NodeRef
        let text: NodeRef?

        init(model name: String, _ request: EditRequest, multiple: Int, encodePrompt: Bool = true,
             promptParams: [ParamSetting] = []) {
            model = graph.model(name, path: request.model, options: request.modelOptions)
            input = graph.node("input", LoadImageStage.self,
                               params: [LoadImageStage.path(request.image), LoadImageStage.mode(.rgb)])
            sized = graph.node("sized", ResizeStage.self, params: [ResizeStage.scale(1), ResizeStage.multipleOf(multiple)],
                               inputs: [ResizeStage.image(input[LoadImageStage.image])])
            text = encodePrompt ? graph.node("text", EncodePromptStage.self,
                                             params: [EncodePromptStage.prompt(request.prompt),
                                                      EncodePromptStage.negativePrompt(request.negativePrompt)] + promptParams,
                                             inputs: [EncodePromptStage.model(model)]) : nil
        }

        /// The user's mask at the input's size (`fitted_mask`) and at the model's (`sized_mask`).
        mutating func mask(_ path: String, multiple: Int) -> (fitted: NodeRef, sized: NodeRef) {
            let mask = graph.node("mask", LoadMaskStage.self, params: [LoadMaskStage.path(path)])
            let fitted = graph.node("fitted_mask", MatchMaskStage.self,
                                    inputs: [MatchMaskStage.image(input[LoadImageStage.image]), MatchMaskStage.mask(mask[LoadMaskStage.mask])])
            let sized = graph.node("sized_mask", ResizeStage.self, params: [ResizeStage.scale(1), ResizeStage.multipleOf(multiple)],
                                   inputs: [ResizeStage.image(input[LoadImageStage.image]),
                                            ResizeStage.mask(fitted[MatchMaskStage.matched])])
            return (fitted, sized)
        }

        /// Pastes `result` onto the input as loaded (at the input's size, even where the model
        /// worked on a rounded size) through the user's mask feathered: pixels where it is 0
        /// are the input's, bit for bit.
        mutating func pasteBack(_ result: Wire<Image>, mask fitted: NodeRef, blur: Double?,
                                mode: FeatherMaskStage.Mode?) throws -> Wire<Image> {
            let soft = try featheredMask(fitted, blur: blur, mode: mode)
            return graph.node("pasted", CompositeStage.self,
                              inputs: [CompositeStage.base(input[LoadImageStage.image]), CompositeStage.overlay(result),
                                       CompositeStage.mask(soft[FeatherMaskStage.feathered])])[CompositeStage.composite]
        }

        mutating func featheredMask(_ fitted: NodeRef, blur: Double?, mode: FeatherMaskStage.Mode?) throws -> NodeRef {
            graph.node("soft_mask", FeatherMaskStage.self,
                       params: [FeatherMaskStage.radius(try FeatherMaskStage.radius.value(or: blur)),
                                FeatherMaskStage.mode(try FeatherMaskStage.mode.value(or: mode))],
                       inputs: [FeatherMaskStage.mask(fitted[MatchMaskStage.matched])])
        }

        /// The chain of controlnet nodes for `controls`: each ControlNet as a model entry, its
        /// control image made from `image` (what the model works on: the sized input or the
        /// only-masked crop) by a preprocessor, or loaded from a file and, when `crop` is given
        /// (only masked), cropped and sized as the input was.
        mutating func controls(_ controls: [ControlRequest], image: Wire<Image>, mask: Wire<Mask>?,
                               crop: (mask: NodeRef, params: [ParamSetting], width: Int, height: Int, multiple: Int)?) throws -> Wire<Control>? {
            var chain: Wire<Control>?
            for (i, control) in controls.enumerated() {
                let kind = control.adapter ? "t2i_adapter" : "controlnet"
                let model = graph.model("\(kind)_\(i)", path: control.model,
                                        options: [("kind", .string(kind))] + (control.dtype.map { [("dtype", JSONValue.string($0))] } ?? [])
                                            + (control.hints.isEmpty ? [] : [("hints", JSONValue.object(control.hints.sorted { $0.key < $1.key }
                                                .map { JSONMember(key: $0.key, value: $0.value) }))]))
                var picture = image
                var inputs: [GraphConnection] = [ControlNetStage.model(model)]
                switch control.source {
                case .image(let path):
                    let loaded = graph.node("control_image_\(i)", LoadImageStage.self,
                                            params: [LoadImageStage.path(path), LoadImageStage.mode(.rgb)])
                    picture = loaded[LoadImageStage.image]
                    if let crop {
                        let cropped = graph.node("control_area_\(i)", CropStage.self, params: [CropStage.region(.mask)] + crop.params,
                                                 inputs: [CropStage.image(picture), CropStage.mask(crop.mask[MatchMaskStage.matched])])
                        picture = graph.node("control_work_\(i)", ResizeStage.self,
                                             params: [ResizeStage.width(crop.width), ResizeStage.height(crop.height),
                                                      ResizeStage.mode(.stretch), ResizeStage.multipleOf(crop.multiple)],
                                             inputs: [ResizeStage.image(cropped[CropStage.cropped])])[ResizeStage.resized]
                    }
                case .canny:
                    picture = graph.node("canny_\(i)", CannyStage.self,
                                         params: [CannyStage.low(try CannyStage.low.value(or: control.cannyLow)),
                                                  CannyStage.high(try CannyStage.high.value(or: control.cannyHigh))],
                                         inputs: [CannyStage.image(image)])[CannyStage.edges]
                case .tile:
                    picture = graph.node("tile_\(i)", ControlTileStage.self,
                                         params: [ControlTileStage.downsample(try ControlTileStage.downsample.value(or: control.tileDownsample))],
                                         inputs: [ControlTileStage.image(image)])[ControlTileStage.tile]
                case .inpaint:
                    guard let mask else {
                        throw ChiselError(.invalidParameter, "the inpaint control image needs a mask: use it with chisel inpaint")
                    }
                    inputs.append(ControlNetStage.mask(mask))
                }
                if control.adapter {
                    var adapterInputs = [T2IAdapterStage.model(model), T2IAdapterStage.image(picture)]
                    if let chain { adapterInputs.append(T2IAdapterStage.previous(chain)) }
                    chain = graph.node("t2i_adapter_\(i)", T2IAdapterStage.self,
                                       params: [T2IAdapterStage.scale(control.scale), T2IAdapterStage.start(control.start),
                                                T2IAdapterStage.end(control.end), T2IAdapterStage.module(control.source.module)],
                                       inputs: adapterInputs)[T2IAdapterStage.control]
                    continue
                }
                inputs.append(ControlNetStage.image(picture))
                if let chain { inputs.append(ControlNetStage.previous(chain)) }
                chain = graph.node("controlnet_\(i)", ControlNetStage.self,
                                   params: [ControlNetStage.scale(control.scale), ControlNetStage.start(control.start),
                                            ControlNetStage.end(control.end), ControlNetStage.guessMode(control.guessMode),
                                            ControlNetStage.module(control.source.module)],
                                   inputs: inputs)[ControlNetStage.control]
            }
            return chain
        }

        mutating func save(_ image: Wire<Image>, to path: String, id: String = "save", infotext: String = "") {
            graph.node(id, SaveImageStage.self,
                       params: [SaveImageStage.path(path)] + (infotext.isEmpty ? [] : [SaveImageStage.infotext(infotext)]),
                       inputs: [SaveImageStage.image(image)])
        }
    }

    // MARK: Stable Diffusion

    static func diffusionStart(_ request: EditRequest, facts: StableDiffusionFacts) throws -> Start {
        let guidance = try DenoiseStage.guidance.value(or: request.guidance)
        return Start(model: "sd", request, multiple: facts.vaeDownscale,
                     // Unguided, the negative side is never used: diffusers does not encode it.
                     promptParams: [EncodePromptStage.clipSkip(try EncodePromptStage.clipSkip.value(or: request.clipSkip))]
                         + (request.promptMode.map { [EncodePromptStage.mode($0)] } ?? [])
                         + (guidance <= 1 ? [EncodePromptStage.encodeNegative(false)] : []))
    }

    static func seedParams(_ request: EditRequest) -> [ParamSetting] {
        [VAEEncodeStage.seed(request.seed), VAEEncodeStage.rng(request.rng ?? .cpu)]
    }

    static func tilingParams(_ request: EditRequest) -> [ParamSetting] {
        request.tiling.map { $0 == .auto ? [] : [VAETiling.param($0)] } ?? []
    }

    static func noiseParams(_ request: EditRequest, strength: Double, pureNoise: Bool = false) throws -> [ParamSetting] {
        var params = [
            AddNoiseStage.scheduler(try AddNoiseStage.scheduler.value(or: request.scheduler)),
            AddNoiseStage.steps(try steps(request, amused: false)), AddNoiseStage.strength(strength),
            AddNoiseStage.strengthMode(try AddNoiseStage.strengthMode.value(or: request.strengthMode)),
        ]
        if pureNoise { params.append(AddNoiseStage.pureNoise(true)) }
        // AUTOMATIC1111 seeds only the noise (its VAE sample is unseeded): with its NV generator the
        // noise starts a fresh stream from the seed, so web-UI seeds give the same starting noise.
        if request.rng == .cuda, request.seed != .random { params += [AddNoiseStage.seed(request.seed), AddNoiseStage.rng(.cuda)] }
        return params
    }

    static func denoiseParams(_ request: EditRequest) throws -> [ParamSetting] {
        [DenoiseStage.guidance(try DenoiseStage.guidance.value(or: request.guidance)),
         DenoiseStage.guidanceRescale(try DenoiseStage.guidanceRescale.value(or: request.guidanceRescale)),
         DenoiseStage.eta(try DenoiseStage.eta.value(or: request.eta))]
            + (request.guidanceStart.map { [DenoiseStage.guidanceStart($0)] } ?? [])
            + (request.guidanceEnd.map { [DenoiseStage.guidanceEnd($0)] } ?? [])
            + (request.cacheInterval.map { [DenoiseStage.cacheInterval($0)] } ?? [])
            + (request.tokenMerging.map { [DenoiseStage.tokenMerging($0)] } ?? [])
            + (request.tokenMergingDownsample.map { [DenoiseStage.tokenMergingDownsample($0)] } ?? [])
    }

    /// SDEdit / img2img: encode, noise to the strength's timestep, denoise, decode; `rounds`
    /// repeats noise-and-denoise on the previous round's result (Meng et al. 2022, §3).
    public static func img2img(_ request: EditRequest, facts: StableDiffusionFacts, strength: Double? = nil,
                               rounds: Int = 1) throws -> JSONValue {
        let strength = strength ?? diffusersImg2ImgStrength
        var start = try diffusionStart(request, facts: facts)
        guard let text = start.text else { throw ChiselError(.internal, "img2img encodes its prompt") }
        let sd = start.model
        let latent = start.graph.node("latent", VAEEncodeStage.self, params: seedParams(request) + tilingParams(request),
                                      inputs: [VAEEncodeStage.model(sd), VAEEncodeStage.image(start.sized[ResizeStage.resized])])
        var clean = latent[VAEEncodeStage.latent]
        let control = try start.controls(request.controls, image: start.sized[ResizeStage.resized], mask: nil, crop: nil)
        for round in 1...max(1, rounds) {
            // Later rounds continue the same random stream from the previous round's result.
            let suffix = round == 1 ? "" : "_\(round)"
            let noised = start.graph.node("noised" + suffix, AddNoiseStage.self, params: try noiseParams(request, strength: strength),
                                          inputs: [AddNoiseStage.model(sd), AddNoiseStage.latent(clean)])
            let edited = start.graph.node("edited" + suffix, DenoiseStage.self, params: try denoiseParams(request),
                                          inputs: [DenoiseStage.model(sd), DenoiseStage.latent(noised[AddNoiseStage.noised]),
                                                   DenoiseStage.conditioning(text[EncodePromptStage.conditioning])]
                                              + (control.map { [DenoiseStage.control($0)] } ?? []))
            clean = edited[DenoiseStage.denoised]
        }
        let decoded = start.graph.node("decoded", VAEDecodeStage.self, params: tilingParams(request),
                                       inputs: [VAEDecodeStage.model(sd), VAEDecodeStage.latent(clean)])
        start.save(decoded[VAEDecodeStage.image], to: request.output)
        return start.graph.graph(description: "img2img: \(request.prompt)")
    }

    /// Inpainting with a 9-channel inpainting UNet (mask and masked image as extra channels) or
    /// a 4-channel one (the original blended back outside the mask at every step), with
    /// diffusers' order of random draws, AUTOMATIC1111's masked content and only-masked crop,
    /// and the result pasted back through the feathered mask.
    public static func inpaint(_ request: EditRequest, _ inpaint: InpaintRequest, facts: StableDiffusionFacts) throws -> JSONValue {
        var start = try diffusionStart(request, facts: facts)
        guard let text = start.text else { throw ChiselError(.internal, "inpainting encodes its prompt") }
        let sd = start.model
        let input = start.input[LoadImageStage.image]
        let (fitted, sizedMask) = start.mask(inpaint.mask, multiple: facts.vaeDownscale)
        // What the model works on: the whole image, or (only masked) the mask's area at the working size.
        var image = start.sized[ResizeStage.resized], area = sizedMask[ResizeStage.resizedMask]
        let cropParams: [ParamSetting] = inpaint.onlyMasked.map {
            [CropStage.padding($0.padding), CropStage.aspectWidth($0.width), CropStage.aspectHeight($0.height)]
        } ?? []
        if let crop = inpaint.onlyMasked {
            // The crop comes from the input itself, so it goes back into the input's own pixels.
            let cropped = start.graph.node("area", CropStage.self, params: [CropStage.region(.mask)] + cropParams,
                                           inputs: [CropStage.image(input), CropStage.mask(fitted[MatchMaskStage.matched])])
            let work = start.graph.node("work", ResizeStage.self,
                                        params: [ResizeStage.width(crop.width), ResizeStage.height(crop.height),
                                                 ResizeStage.mode(.stretch), ResizeStage.multipleOf(facts.vaeDownscale)],
                                        inputs: [ResizeStage.image(cropped[CropStage.cropped]),
                                                 ResizeStage.mask(cropped[CropStage.croppedMask])])
            (image, area) = (work[ResizeStage.resized], work[ResizeStage.resizedMask])
        }
        // The draws of diffusers' inpainting pipeline, in order: the image latent's sample (4-channel
        // models, or strength < 1), the initial noise, then the masked image's sample.
        let full = inpaint.strength >= 1
        let encodes = !facts.isInpainting || !full || inpaint.maskedContent != .original
        var startImage = image
        if inpaint.maskedContent == .fill {
            startImage = start.graph.node("filled", FillMaskedStage.self,
                                          inputs: [FillMaskedStage.image(image), FillMaskedStage.mask(area)])[FillMaskedStage.filled]
        }
        var clean: Wire<Latent>
        if encodes {
            clean = start.graph.node("latent", VAEEncodeStage.self, params: seedParams(request) + tilingParams(request),
                                     inputs: [VAEEncodeStage.model(sd), VAEEncodeStage.image(startImage)])[VAEEncodeStage.latent]
        } else {
            clean = start.graph.node("latent", EmptyLatentStage.self,
                                     inputs: [EmptyLatentStage.model(sd), EmptyLatentStage.like(image)])[EmptyLatentStage.latent]
        }
        if inpaint.maskedContent == .latentNoise || inpaint.maskedContent == .latentNothing {
            clean = start.graph.node("latent_fill", FillLatentStage.self,
                                     params: [FillLatentStage.fill(inpaint.maskedContent == .latentNoise ? .noise : .zeros)],
                                     inputs: [FillLatentStage.latent(clean), FillLatentStage.mask(area)])[FillLatentStage.filled]
        }
        var noiseParams = try noiseParams(request, strength: inpaint.strength, pureNoise: full)
        if !encodes, !noiseParams.contains(where: { $0.name == AddNoiseStage.seed.name }) {
            noiseParams += [AddNoiseStage.seed(request.seed), AddNoiseStage.rng(request.rng ?? .cpu)]
        }
        let noised = start.graph.node("noised", AddNoiseStage.self, params: noiseParams,
                                      inputs: [AddNoiseStage.model(sd), AddNoiseStage.latent(clean)])
        // The pipeline encodes the masked image for 4-channel models too, and its sample draw
        // comes before the loop's: the loop continues that stream.
        let masked = start.graph.node("masked", VAEEncodeStage.self, params: tilingParams(request),
                                      inputs: [VAEEncodeStage.model(sd), VAEEncodeStage.image(image), VAEEncodeStage.mask(area),
                                               VAEEncodeStage.stream(noised[AddNoiseStage.noised])])
        var denoiseInputs = [DenoiseStage.model(sd), DenoiseStage.latent(noised[AddNoiseStage.noised]),
                             DenoiseStage.conditioning(text[EncodePromptStage.conditioning]), DenoiseStage.mask(area),
                             DenoiseStage.stream(masked[VAEEncodeStage.latent])]
        denoiseInputs.append(facts.isInpainting ? DenoiseStage.maskedImage(masked[VAEEncodeStage.latent]) : DenoiseStage.original(clean))
        let cropShape = inpaint.onlyMasked.map { (mask: fitted, params: cropParams, width: $0.width, height: $0.height, multiple: facts.vaeDownscale) }
        if let control = try start.controls(request.controls, image: image, mask: area, crop: cropShape) {
            denoiseInputs.append(DenoiseStage.control(control))
        }
        let edited = start.graph.node("edited", DenoiseStage.self,
                                      params: try denoiseParams(request) + (inpaint.softMask ? [DenoiseStage.softMask(true)] : []),
                                      inputs: denoiseInputs)
        let decoded = start.graph.node("decoded", VAEDecodeStage.self, params: tilingParams(request),
                                       inputs: [VAEDecodeStage.model(sd), VAEDecodeStage.latent(edited[DenoiseStage.denoised])])
        var result = decoded[VAEDecodeStage.image]
        if inpaint.onlyMasked != nil {
            // The crop goes back into its box, through the feathered mask (or the box's mask without paste-back).
            let soft = inpaint.pasteBack ? try start.featheredMask(fitted, blur: inpaint.maskBlur, mode: inpaint.maskBlurMode) : nil
            result = start.graph.node("pasted", PasteCropStage.self, params: cropParams,
                                      inputs: [PasteCropStage.base(input), PasteCropStage.overlay(result),
                                               PasteCropStage.region(fitted[MatchMaskStage.matched])]
                                          + (soft.map { [PasteCropStage.mask($0[FeatherMaskStage.feathered])] } ?? []))[PasteCropStage.pasted]
        } else if inpaint.pasteBack {
            result = try start.pasteBack(result, mask: fitted, blur: inpaint.maskBlur, mode: inpaint.maskBlurMode)
        }
        start.save(result, to: request.output, infotext: try a1111Inpainting(inpaint))
        return start.graph.graph(description: "inpaint: \(request.prompt)")
    }

    /// AUTOMATIC1111's inpainting settings for the infotext: Mask blur (0 without paste-back),
    /// Masked content, and Inpaint area with its padding (Masked area padding) for only-masked.
    static func a1111Inpainting(_ inpaint: InpaintRequest) throws -> String {
        let blur = inpaint.pasteBack ? try FeatherMaskStage.radius.value(or: inpaint.maskBlur) : 0
        let content = switch inpaint.maskedContent {
        case .original: "original"
        case .fill: "fill"
        case .latentNoise: "latent noise"
        case .latentNothing: "latent nothing"
        }
        let blurText = blur == blur.rounded() ? String(Int(blur)) : String(blur)
        var settings = ["Mask blur: \(blurText)", "Masked content: \(content)"]
        if let crop = inpaint.onlyMasked { settings += ["Inpaint area: Only masked", "Masked area padding: \(crop.padding)"] }
        return settings.joined(separator: ", ")
    }

    // MARK: aMUSEd

    /// aMUSEd img2img (no mask: a random fraction set by strength is predicted again) or
    /// inpainting (the mask's tokens), as diffusers' AmusedImg2ImgPipeline / AmusedInpaintPipeline.
    ///
    /// With token mode refine, inpainting is Mask-Predict refinement inside the mask
    /// (refine_tokens with the mask as its region and threshold 1): the tokens of the (filled)
    /// image there are re-predicted from the context, each weighed against its starting token,
    /// and the least confident again over the rounds; the rest of the image is context.
    public static func amused(_ request: EditRequest, inpaint: InpaintRequest?, strength: Double? = nil,
                              facts: AmusedFacts) throws -> JSONValue {
        var start = Start(model: "amused", request, multiple: facts.sizeMultiple)
        guard let text = start.text else { throw ChiselError(.internal, "aMUSEd edits encode their prompt") }
        let model = start.model
        var encoded = start.sized[ResizeStage.resized]
        var maskParams: [ParamSetting]
        var maskInputs = [MaskTokensStage.model(model)]
        var fitted: NodeRef?
        var area: Wire<Mask>?
        let steps = try steps(request, amused: true)
        if let inpaint {
            let (fittedMask, sizedMask) = start.mask(inpaint.mask, multiple: facts.sizeMultiple)
            (fitted, area) = (fittedMask, sizedMask[ResizeStage.resizedMask])
            if inpaint.maskedContent == .fill {
                // The masked tokens are predicted anyway; what the fill changes is the tokens along
                // the mask's edge, whose encoder window reaches into it (AUTOMATIC1111's "fill").
                encoded = start.graph.node("filled", FillMaskedStage.self,
                                           inputs: [FillMaskedStage.image(encoded),
                                                    FillMaskedStage.mask(sizedMask[ResizeStage.resizedMask])])[FillMaskedStage.filled]
            }
            maskInputs.append(MaskTokensStage.mask(sizedMask[ResizeStage.resizedMask]))
            maskParams = [MaskTokensStage.mode(.mask), MaskTokensStage.strength(inpaint.strength), MaskTokensStage.steps(steps)]
        } else {
            maskParams = [MaskTokensStage.mode(.strength), MaskTokensStage.strength(strength ?? amusedImg2ImgStrength),
                          MaskTokensStage.steps(steps), MaskTokensStage.seed(request.seed)]
        }
        let tokens = start.graph.node("tokens", VQEncodeStage.self, inputs: [VQEncodeStage.model(model), VQEncodeStage.image(encoded)])
        let predicted: Wire<Tokens>
        if let inpaint, inpaint.tokenMode == .refine, let area {
            // Threshold 1: every token under the mask is a candidate (the mask says where to
            // repaint); the starting tokens weigh in as evidence. Unguided unless guidance is
            // given, as refine_tokens scores by default.
            predicted = start.graph.node(
                "predicted", RefineTokensStage.self,
                params: [RefineTokensStage.threshold(1), RefineTokensStage.guidance(try RefineTokensStage.guidance.value(or: request.guidance))],
                inputs: [RefineTokensStage.model(model), RefineTokensStage.tokens(tokens[VQEncodeStage.tokens]),
                         RefineTokensStage.conditioning(text[EncodePromptStage.conditioning]), RefineTokensStage.region(area)]
            )[RefineTokensStage.refined]
        } else {
            let masked = start.graph.node("masked", MaskTokensStage.self, params: maskParams,
                                          inputs: maskInputs + [MaskTokensStage.tokens(tokens[VQEncodeStage.tokens])])
            var predictParams = [
                PredictTokensStage.guidance(try PredictTokensStage.guidance.value(or: request.guidance)),
                PredictTokensStage.temperature(try PredictTokensStage.temperature.value(or: request.temperature)),
                PredictTokensStage.temperatureEnd(try PredictTokensStage.temperatureEnd.value(or: request.temperatureEnd)),
            ]
            if inpaint != nil { predictParams.append(PredictTokensStage.seed(request.seed)) }
            predicted = start.graph.node("predicted", PredictTokensStage.self, params: predictParams,
                                         inputs: [PredictTokensStage.model(model), PredictTokensStage.tokens(masked[MaskTokensStage.masked]),
                                                  PredictTokensStage.conditioning(text[EncodePromptStage.conditioning])])[PredictTokensStage.predicted]
        }
        let decoded = start.graph.node("decoded", VQDecodeStage.self, inputs: [VQDecodeStage.model(model), VQDecodeStage.tokens(predicted)])
        var result = decoded[VQDecodeStage.image]
        if let inpaint, inpaint.pasteBack, let fitted {
            result = try start.pasteBack(result, mask: fitted, blur: inpaint.maskBlur, mode: inpaint.maskBlurMode)
        }
        start.save(result, to: request.output)
        return start.graph.graph(description: "\(inpaint == nil ? "img2img" : "inpaint") (aMUSEd): \(request.prompt)")
    }

    /// Mask-Predict refinement of any image: load, encode to tokens, refine, decode, paste the
    /// changed tokens back onto the input, save; refine_tokens' masks as extra images on request.
    public static func refine(_ request: RefineRequest, facts: AmusedFacts) throws -> JSONValue {
        var edit = EditRequest(model: request.model, image: request.image, output: request.output)
        edit.modelOptions = [("dtype", .string(request.dtype))]
        edit.prompt = request.prompt
        var start = Start(model: "amused", edit, multiple: facts.sizeMultiple, encodePrompt: false)
        let model = start.model
        let input = start.input[LoadImageStage.image]
        let tokens = start.graph.node("tokens", VQEncodeStage.self,
                                      inputs: [VQEncodeStage.model(model), VQEncodeStage.image(start.sized[ResizeStage.resized])])
        var refineInputs = [RefineTokensStage.model(model), RefineTokensStage.tokens(tokens[VQEncodeStage.tokens])]
        if !request.prompt.isEmpty {
            let text = start.graph.node("text", EncodePromptStage.self, params: [EncodePromptStage.prompt(request.prompt)],
                                        inputs: [EncodePromptStage.model(model)])
            refineInputs.append(RefineTokensStage.conditioning(text[EncodePromptStage.conditioning]))
        }
        typealias R = RefineTokensStage
        let refined = start.graph.node(
            "refined", R.self,
            params: [R.iterations(try R.iterations.value(or: request.iterations)), R.fraction(try R.fraction.value(or: request.fraction)),
                     R.threshold(try R.threshold.value(or: request.threshold)),
                     R.neighbourhood(try R.neighbourhood.value(or: request.neighbourhood)),
                     R.evidence(try R.evidence.value(or: request.evidence)),
                     R.scoringStride(try R.scoringStride.value(or: request.scoringStride)),
                     R.temperature(try R.temperature.value(or: request.temperature)), R.seed(request.seed)],
            inputs: refineInputs)
        let decoded = start.graph.node("decoded", VQDecodeStage.self,
                                       inputs: [VQDecodeStage.model(model), VQDecodeStage.tokens(refined[R.refined])])
        var result = decoded[VQDecodeStage.image]
        if request.pasteBack {
            // Unchanged tokens keep the input's own pixels, not the VQ model's reconstruction of
            // them: the changed tokens' mask at the input's size, feathered.
            let changed = start.graph.node("changed_full", MatchMaskStage.self,
                                           inputs: [MatchMaskStage.image(input), MatchMaskStage.mask(refined[R.changed])])
            let soft = start.graph.node("changed", FeatherMaskStage.self,
                                        params: [FeatherMaskStage.radius(request.maskBlur), FeatherMaskStage.mode(request.maskBlurMode)],
                                        inputs: [FeatherMaskStage.mask(changed[MatchMaskStage.matched])])
            result = start.graph.node("pasted", CompositeStage.self,
                                      inputs: [CompositeStage.base(input), CompositeStage.overlay(result),
                                               CompositeStage.mask(soft[FeatherMaskStage.feathered])])[CompositeStage.composite]
        }
        start.save(result, to: request.output)
        for (id, port, path) in [("mask", R.lowConfidence, request.maskOutput), ("found", R.found, request.foundOutput),
                                 ("confidence", R.confidenceMap, request.confidenceOutput)] {
            guard let path else { continue }
            let image = start.graph.node("\(id)_image", MaskToImageStage.self, inputs: [MaskToImageStage.mask(refined[port])])
            start.save(image[MaskToImageStage.image], to: path, id: "save_\(id)")
        }
        return start.graph.graph(description: "refine (aMUSEd)")
    }
}
