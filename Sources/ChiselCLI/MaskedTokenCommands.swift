import ArgumentParser
import ChiselCore
import ChiselModels
import ChiselModelStages
import ChiselStages
import Foundation

/// aMUSEd models in the one-line commands: masked-token edits (img2img, inpainting) and
/// Mask-Predict refinement, built as graphs of the MVTM stages.
extension EditOptions {
    /// What the commands need of an aMUSEd folder: the VQ downscale and the size a side must be a
    /// multiple of (twice the downscale when the transformer halves its grid).
    func amusedGrid() throws -> (downscale: Int, multiple: Int) {
        try Self.amusedGrid(modelPath)
    }

    static func amusedGrid(_ folder: String) throws -> (downscale: Int, multiple: Int) {
        let vq = try ConfigReader(file: folder + "/vqvae/config.json")
        let levels = try vq.sizes("block_out_channels", default: [64]).count
        let downscale = 1 << (levels - 1)
        let transformer = try ConfigReader(file: folder + "/transformer/config.json")
        let halves = (try? transformer.bool("downsample", default: false)) ?? false
        return (downscale, halves ? 2 * downscale : downscale)
    }

    /// Options of the Stable Diffusion edit that mean nothing to a masked-token model, refused
    /// rather than ignored.
    func refuseDiffusionOnlyOptions() throws {
        var set: [String] = []
        if scheduler != "auto" { set.append("--scheduler") }
        if rng != .cpu { set.append("--rng") }
        if strengthMode != .cut { set.append("--strength-mode") }
        if clipSkip != 0 { set.append("--clip-skip") }
        if eta != 0 { set.append("--eta") }
        if guidanceRescale != 0 { set.append("--guidance-rescale") }
        if !hints.isEmpty { set.append("--hint") }
        if !loras.isEmpty { set.append("--lora") }
        if vae != nil { set.append("--vae") }
        if !embeddings.isEmpty { set.append("--embedding") }
        if vaeTiling != .auto { set.append("--vae-tiling") }
        guard set.isEmpty else {
            throw ChiselError(.invalidParameter, "\(set.joined(separator: ", ")) apply to Stable Diffusion models, not to "
                              + "the aMUSEd model \(modelLocation)")
        }
    }

    /// aMUSEd img2img (no mask: a random fraction set by strength is predicted again) or
    /// inpainting (the mask's tokens), as diffusers' AmusedImg2ImgPipeline / AmusedInpaintPipeline.
    ///
    /// With `refine`, inpainting is Mask-Predict refinement inside the mask (refine_tokens with
    /// the mask as its region and threshold 1): the tokens of the (filled) image there are
    /// re-predicted from the context, each weighed against its starting token (the evidence),
    /// and the least confident again over the rounds; the rest of the image is context.
    func runAmused(strength: Double, mask: String?, fill: Bool = false, refine: Bool = false, pasteBack: Bool,
                   maskBlur: Double, maskBlurMode: FeatherMaskStage.Mode = .inside, output: String,
                   settings: RunSettings) async throws {
        try refuseDiffusionOnlyOptions()
        let (_, multiple) = try amusedGrid()
        var graph = GraphBuilder()
        graph.model("amused", path: try graphModelPath, dtype: dtype.rawValue)
        graph.node("input", "load_image", params: [("path", .string(cwd.resolve(image))), ("mode", "rgb")])
        // The pipelines round the size down to a multiple of the VQ's downscale (a no-op when it is one).
        graph.node("sized", "resize", inputs: [("image", "input.image")],
                   params: [("scale", .double(1)), ("multiple_of", .int(multiple))])
        graph.node("text", "encode_prompt", inputs: [("model", "amused")],
                   params: [("prompt", .string(prompt)), ("negative_prompt", .string(negativePrompt))])
        var maskParams: [(String, JSONValue)] = [("strength", .double(strength)), ("steps", .int(stepCount))]
        var maskInputs = [("model", "amused"), ("tokens", "tokens.tokens")]
        var encoded = "sized.image"
        if let mask {
            graph.node("mask", "load_mask", params: [("path", .string(cwd.resolve(mask)))])
            graph.node("fitted_mask", "match_mask", inputs: [("image", "input.image"), ("mask", "mask.mask")])
            graph.node("sized_mask", "resize", inputs: [("image", "input.image"), ("mask", "fitted_mask.mask")],
                       params: [("scale", .double(1)), ("multiple_of", .int(multiple))])
            if fill {
                // The masked tokens are predicted anyway; what the fill changes is the tokens along
                // the mask's edge, whose encoder window reaches into it (AUTOMATIC1111's "fill").
                graph.node("filled", "fill_masked", inputs: [("image", "sized.image"), ("mask", "sized_mask.mask")])
                encoded = "filled.image"
            }
            maskInputs.append(("mask", "sized_mask.mask"))
            maskParams.insert(("mode", "mask"), at: 0)
        } else {
            maskParams.insert(("mode", "strength"), at: 0)
            maskParams.append(("seed", seed.json))
        }
        graph.node("tokens", "vq_encode", inputs: [("model", "amused"), ("image", encoded)])
        if refine, mask != nil {
            // Threshold 1: every token under the mask is a candidate (the mask says where to
            // repaint); the starting tokens weigh in as evidence (refine_tokens' evidence).
            // Unguided unless --guidance says otherwise, as refine_tokens scores by default.
            graph.node("predicted", "refine_tokens",
                       inputs: [("model", "amused"), ("tokens", "tokens.tokens"), ("conditioning", "text.conditioning"),
                                ("region", "sized_mask.mask")],
                       params: [("threshold", .double(1)), ("guidance", .double(guidance ?? 1))])
        } else {
            graph.node("masked", "mask_tokens", inputs: maskInputs, params: maskParams)
            var predictParams: [(String, JSONValue)] = [
                ("guidance", .double(guidanceScale)), ("temperature", .double(temperature)),
                ("temperature_end", .double(temperatureEnd)),
            ]
            if mask != nil { predictParams.append(("seed", seed.json)) }
            graph.node("predicted", "predict_tokens",
                       inputs: [("model", "amused"), ("tokens", "masked.tokens"), ("conditioning", "text.conditioning")],
                       params: predictParams)
        }
        graph.node("decoded", "vq_decode", inputs: [("model", "amused"), ("tokens", "predicted.tokens")])
        var result = "decoded.image"
        if mask != nil, pasteBack {
            graph.pasteMask(blur: maskBlur, mode: maskBlurMode)
            result = graph.pasteBack("decoded.image")
        }
        graph.node("save", "save_image", inputs: [("image", result)], params: [("path", .string(cwd.resolve(output)))])
        try await run(graph.graph(description: "\(mask == nil ? "img2img" : "inpaint") (aMUSEd): \(prompt)"), settings: settings)
    }
}

struct RefineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "refine", abstract: "Mask-Predict refinement of any image with an aMUSEd model.",
        discussion: """
            Builds the graph load_image → vq_encode → refine_tokens → vq_decode → save_image \
            (--print-graph writes it out) and runs it: every token of the image is scored by the \
            model's probability of it given the others, the least confident are masked and \
            predicted again over --iterations rounds; the tokens of the input below --threshold \
            (where the model found it implausible) can be written as a mask (--found-output), and \
            those still below it after refinement (--mask-output) for SD inpainting. See docs/mvtm.md.
            """)

    @Option(help: "An aMUSEd model folder, or builtin:NAME; default builtin:scenes-mvtm, the bundled scene model.")
    var model: String = BundledModel.scenesMVTM.location

    @Option(help: "The image to refine (PNG or JPEG, any size: the model works at the nearest multiple of its token size below it, at least one, and the result is pasted back at the input's size).")
    var image: String

    @Option(help: "Output file; may use {stem}.")
    var output: String = "{stem}-refined.png"

    @Option(help: "Also write the low-confidence mask of the refined image (white = still implausible) here.")
    var maskOutput: String?

    @Option(help: "Also write where the model found the input implausible (white = its tokens below --threshold before refinement) here.")
    var foundOutput: String?

    @Option(help: "Also write the per-token confidence map here.")
    var confidenceOutput: String?

    @Option(help: "A prompt to judge the image against (default: none).")
    var prompt: String = ""

    @Option(help: "Refinement rounds.")
    var iterations: Int = 4

    @Option(help: "Fraction of the tokens re-masked in the first round (decreasing linearly).")
    var fraction: Double = 0.3

    @Option(help: "Tokens at or above this confidence never change; neighbourhoods below it make the masks.")
    var threshold: Double = 0.01

    @Option(help: "The masks judge each token by the geometric mean of the confidences within this many tokens of it (0: the token alone).")
    var neighbourhood: Int = 1

    @Option(help: "How much a re-predicted token keeps to the input's (its codebook vector's distance weighs against other ids); 0: plain Mask-Predict.")
    var evidence: Double = 1

    @Option(help: "Score tokens in stride² interleaved groups (1: one pass, nothing masked).")
    var scoringStride: Int = 2

    @Option(help: "0 re-predicts the most probable token; above 0 samples at this temperature.")
    var temperature: Double = 0

    @Option(help: "Seed (used when --temperature > 0), 0…18446744073709551615; -1 draws one.", transform: Seed.parse)
    var seed: Seed = .random

    @Option(help: "fp32 or bf16.")
    var dtype: EditOptions.DType = .fp32

    @Option(help: "Keep the input's own pixels wherever no token changed (the changed tokens' mask, feathered by --mask-blur).")
    var pasteBack: Bool = true

    @Option(help: "With --paste-back: feathering radius in pixels of the changed tokens' mask.")
    var maskBlur: Double = 2

    @Option(help: "With --paste-back: outward (the default here: changed tokens are replaced whole and the blend reaches into their neighbours) or inside (every pixel of an unchanged token stays the input's).")
    var maskBlurMode: FeatherMaskStage.Mode = .outward

    @Flag(help: "Print the graph this command runs, as JSON, and exit.")
    var printGraph = false

    @OptionGroup var settings: RunSettings

    func validate() throws {
        try OptionCheck.check(maskBlur, "--mask-blur", FeatherMaskStage.radius)
        try OptionCheck.check(iterations, "--iterations", RefineTokensStage.iterations)
        try OptionCheck.check(fraction, "--fraction", RefineTokensStage.fraction)
        try OptionCheck.check(threshold, "--threshold", RefineTokensStage.threshold)
        try OptionCheck.check(scoringStride, "--scoring-stride", RefineTokensStage.scoringStride)
        try OptionCheck.check(neighbourhood, "--neighbourhood", RefineTokensStage.neighbourhood)
        try OptionCheck.check(evidence, "--evidence", RefineTokensStage.evidence)
        try OptionCheck.check(temperature, "--temperature", RefineTokensStage.temperature)
    }

    func run() async throws {
        let cwd = PathResolver.workingDirectory
        let folder = try ModelArgument.resolve(model, cwd: cwd)
        guard AmusedModel.isFolder(folder) else {
            throw ChiselError(.model, "refine needs an aMUSEd model folder (model_index.json, vqvae/, transformer/, …)",
                              file: folder)
        }
        let (_, multiple) = try EditOptions.amusedGrid(folder)
        var graph = GraphBuilder()
        graph.model("amused", path: BuiltinModelLocation.name(in: model) != nil ? model : folder, dtype: dtype.rawValue)
        graph.node("input", "load_image", params: [("path", .string(cwd.resolve(image))), ("mode", "rgb")])
        graph.node("sized", "resize", inputs: [("image", "input.image")],
                   params: [("scale", .double(1)), ("multiple_of", .int(multiple))])
        graph.node("tokens", "vq_encode", inputs: [("model", "amused"), ("image", "sized.image")])
        var refineInputs = [("model", "amused"), ("tokens", "tokens.tokens")]
        if !prompt.isEmpty {
            graph.node("text", "encode_prompt", inputs: [("model", "amused")], params: [("prompt", .string(prompt))])
            refineInputs.append(("conditioning", "text.conditioning"))
        }
        graph.node("refined", "refine_tokens", inputs: refineInputs,
                   params: [("iterations", .int(iterations)), ("fraction", .double(fraction)),
                            ("threshold", .double(threshold)), ("neighbourhood", .int(neighbourhood)),
                            ("evidence", .double(evidence)),
                            ("scoring_stride", .int(scoringStride)),
                            ("temperature", .double(temperature)), ("seed", seed.json)])
        graph.node("decoded", "vq_decode", inputs: [("model", "amused"), ("tokens", "refined.tokens")])
        var result = "decoded.image"
        if pasteBack {
            // Unchanged tokens keep the input's own pixels, not the VQ model's reconstruction of them.
            // The changed tokens' mask at the input's size, so the paste keeps the input's own size and pixels.
            graph.node("changed_full", "match_mask", inputs: [("image", "input.image"), ("mask", "refined.changed")])
            graph.node("changed", "feather_mask", inputs: [("mask", "changed_full.mask")],
                       params: [("radius", .double(maskBlur)), ("mode", .string(maskBlurMode.rawValue))])
            graph.node("pasted", "composite", inputs: [("base", "input.image"), ("overlay", "decoded.image"), ("mask", "changed.mask")])
            result = "pasted.image"
        }
        graph.node("save", "save_image", inputs: [("image", result)], params: [("path", .string(cwd.resolve(output)))])
        for (port, path) in [("mask", maskOutput), ("found", foundOutput), ("confidence", confidenceOutput)] {
            guard let path else { continue }
            graph.node("\(port)_image", "mask_to_image", inputs: [("mask", "refined.\(port)")])
            graph.node("save_\(port)", "save_image", inputs: [("image", "\(port)_image.image")],
                       params: [("path", .string(cwd.resolve(path)))])
        }
        let json = graph.graph(description: "refine (aMUSEd)")
        if printGraph {
            Terminal.out(json.prettySerialized())
            return
        }
        let registry = try ChiselCLI.makeRegistry()
        let plan = try GraphCompiler.compile(json, file: nil, directory: cwd.base, registry: registry,
                                             options: GraphOptions(workingDirectory: cwd.base))
        try await RunCommand.run(plan, registry: registry, settings: settings,
                                 progress: ProgressRenderer(mode: settings.progress, total: iterations, unit: "passes"),
                                 countSteps: true)
    }
}
