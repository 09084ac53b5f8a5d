import ArgumentParser
import ChiselCore
import ChiselModels
import ChiselModelStages
import ChiselStages
import Foundation

/// aMUSEd models in the one-line commands: masked-token edits (img2img, inpainting) and
/// Mask-Predict refinement, built by `EditGraphs` from the MVTM stages.
extension EditOptions {
    /// Options of the Stable Diffusion edit that mean nothing to a masked-token model, refused
    /// rather than ignored.
    func refuseDiffusionOnlyOptions() throws {
        var set: [String] = []
        func given<V: Equatable>(_ value: V?, _ param: Param<V>, _ option: String) {
            if let value, value != param.defaultValue { set.append(option) }
        }
        given(scheduler, AddNoiseStage.scheduler, "--scheduler")
        if scheduleType != nil { set.append("--schedule-type") }
        given(rng, VAEEncodeStage.rng, "--rng")
        given(strengthMode, AddNoiseStage.strengthMode, "--strength-mode")
        given(clipSkip, EncodePromptStage.clipSkip, "--clip-skip")
        given(eta, DenoiseStage.eta, "--eta")
        given(guidanceRescale, DenoiseStage.guidanceRescale, "--guidance-rescale")
        given(guidanceStart, DenoiseStage.guidanceStart, "--guidance-start")
        given(guidanceEnd, DenoiseStage.guidanceEnd, "--guidance-end")
        given(cacheInterval, DenoiseStage.cacheInterval, "--cache-interval")
        given(tokenMerging, DenoiseStage.tokenMerging, "--token-merging")
        given(tokenMergingDownsample, DenoiseStage.tokenMergingDownsample, "--token-merging-downsample")
        if !hints.isEmpty { set.append("--hint") }
        if !loras.isEmpty { set.append("--lora") }
        if vae != nil { set.append("--vae") }
        if !embeddings.isEmpty { set.append("--embedding") }
        given(vaeTiling, VAETiling.param, "--vae-tiling")
        if !controlNets.isEmpty { set.append("--controlnet") }
        if !adapters.isEmpty { set.append("--adapter") }
        guard set.isEmpty else {
            throw ChiselError(.invalidParameter, "\(set.joined(separator: ", ")) apply to Stable Diffusion models, not to "
                              + "the aMUSEd model \(modelLocation)")
        }
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
    var prompt: String?

    @Option(help: ArgumentHelp(RefineTokensStage.iterations.help))
    var iterations: Int?

    @Option(help: ArgumentHelp(RefineTokensStage.fraction.help))
    var fraction: Double?

    @Option(help: ArgumentHelp(RefineTokensStage.threshold.help))
    var threshold: Double?

    @Option(help: ArgumentHelp(RefineTokensStage.neighbourhood.help))
    var neighbourhood: Int?

    @Option(help: ArgumentHelp(RefineTokensStage.evidence.help))
    var evidence: Double?

    @Option(help: ArgumentHelp(RefineTokensStage.scoringStride.help))
    var scoringStride: Int?

    @Option(help: ArgumentHelp(RefineTokensStage.temperature.help))
    var temperature: Double?

    @Option(help: "Seed (used when --temperature > 0), 0…18446744073709551615; -1 draws one.", transform: Seed.parse)
    var seed: Seed?

    @Option(help: "fp32 or bf16.")
    var dtype: EditOptions.DType = .fp32

    @Option(help: "Keep the input's own pixels wherever no token changed (the changed tokens' mask, feathered by --mask-blur).")
    var pasteBack: Bool = true

    @Option(help: "With --paste-back: feathering radius in pixels of the changed tokens' mask.")
    var maskBlur: Double = RefineRequest.defaultMaskBlur

    @Option(help: "With --paste-back: outward (the default here: changed tokens are replaced whole and the blend reaches into their neighbours) or inside (every pixel of an unchanged token stays the input's).")
    var maskBlurMode: FeatherMaskStage.Mode = RefineRequest.defaultMaskBlurMode

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
        var request = RefineRequest(model: BuiltinModelLocation.name(in: model) != nil ? model : folder, dtype: dtype.rawValue,
                                    image: cwd.resolve(image), output: cwd.resolve(output))
        request.prompt = try EncodePromptStage.prompt.value(or: prompt)
        request.iterations = iterations
        request.fraction = fraction
        request.threshold = threshold
        request.neighbourhood = neighbourhood
        request.evidence = evidence
        request.scoringStride = scoringStride
        request.temperature = temperature
        request.seed = try RefineTokensStage.seed.value(or: seed)
        request.pasteBack = pasteBack
        request.maskBlur = maskBlur
        request.maskBlurMode = maskBlurMode
        request.maskOutput = maskOutput.map { cwd.resolve($0) }
        request.foundOutput = foundOutput.map { cwd.resolve($0) }
        request.confidenceOutput = confidenceOutput.map { cwd.resolve($0) }
        try await EditOptions.run(EditGraphs.refine(request, facts: AmusedFacts(folder: folder)), printGraph: printGraph, cwd: cwd,
                                  settings: settings, total: try RefineTokensStage.iterations.value(or: iterations), unit: "passes")
    }
}
