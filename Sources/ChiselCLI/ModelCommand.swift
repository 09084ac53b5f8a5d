import ArgumentParser
import ChiselCore
import ChiselModels
import Foundation

struct ModelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model", abstract: "Work with checkpoints.", subcommands: [InspectCommand.self])
}

struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Say what a checkpoint is and list every problem found in it.",
        discussion: """
            PATH is a diffusers folder (with model_index.json), a single .safetensors checkpoint \
            in the original Stable Diffusion layout, a LoRA file, or a VAE (an AutoencoderKL or \
            AutoencoderTiny folder, a TAESD file). Each component's network is built from its \
            tensors to check them against its configuration. Exit status 1 when a problem is found.
            """)

    @Argument(help: "A diffusers folder, a .safetensors file, or builtin:NAME (a bundled model).")
    var path: String

    @Option(name: .customLong("hint"),
            help: ArgumentHelp("For single files, a config value the tensors cannot tell: unet.attention_head_dim=8, vae.norm_num_groups=32, text_encoder.num_attention_heads=12, prediction_type=v_prediction. Repeatable.",
                               valueName: "key=value"))
    var hints: [KeyValueArgument] = []

    @Flag(help: "Also read every weight for NaN and infinity (as long as loading the checkpoint: every byte is read).")
    var deep = false

    func run() async throws {
        let resolved = try ModelArgument.resolve(path, cwd: PathResolver.workingDirectory)
        if AmusedModel.isFolder(resolved) { return try Self.inspectAmused(resolved) }
        if ControlNetSource.recognizes(path: resolved) { return try Self.inspectControlNet(resolved, hints: KeyValueArgument.dictionary(hints)) }
        if T2IAdapterSource.recognizes(path: resolved) { return try Self.inspectAdapter(resolved) }
        if LoRAFile.isLoRA(path: resolved) { return try Self.inspectLoRA(resolved) }
        if VAESource.isVAE(path: resolved) { return try Self.inspectVAE(resolved) }
        let report = ModelInspection.inspect(path: resolved, hints: KeyValueArgument.dictionary(hints), deep: deep)
        Terminal.out(report.path)
        Terminal.out("  layout:            \(report.layout)")
        if let family = report.family { Terminal.out("  family:            \(family)") }
        if let inpainting = report.inpainting { Terminal.out("  inpainting:        \(inpainting ? "yes (9-channel UNet)" : "no")") }
        if let prediction = report.predictionType { Terminal.out("  prediction type:   \(prediction)") }
        if let latent = report.latentChannels { Terminal.out("  latent channels:   \(latent)") }
        if let context = report.contextDimension { Terminal.out("  context dimension: \(context)") }
        if !report.guessed.isEmpty {
            Terminal.out("  assumed:           \(report.guessed.joined(separator: ", ")) (a single file cannot tell; --hint KEY=VALUE)")
        }
        for component in report.components {
            let dtypes = component.dtypes.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            Terminal.out("  \(component.name): \(Self.grouped(component.parameters)) parameters in \(component.tensors) tensors (\(dtypes))")
            for detail in component.details { Terminal.out("    \(detail)") }
            for file in component.files { Terminal.out("    file: \(file)") }
            if !component.unused.isEmpty {
                Terminal.out("    \(component.unused.count) tensors not used by the network, e.g. \(component.unused.prefix(3).joined(separator: ", "))")
            }
        }
        if report.problems.isEmpty {
            Terminal.out("  problems: none")
        } else {
            Terminal.out("  problems: \(report.problems.count)")
            for problem in report.problems { Terminal.err("error: \(problem)") }
            throw ExitCode.failure
        }
    }

    /// A ControlNet folder (what `--controlnet` takes): the family it steers, its control image,
    /// built from its tensors so a missing or misshapen one is reported.
    static func inspectControlNet(_ path: String, hints: [String: JSONValue]) throws {
        Terminal.out(path)
        var isFolder: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: path, isDirectory: &isFolder)
        Terminal.out("  layout:            ControlNet (\(isFolder.boolValue ? "diffusers ControlNetModel folder" : "single file"))")
        try reportingProblems {
            let source = try ControlNetSource(path: path, hints: hints)
            let facts = ControlNetFacts(config: source.config)
            let unet = source.config.unet
            Terminal.out("  family:            \(facts.familyName)")
            Terminal.out("  blocks:            \(unet.blockOutChannels), \(unet.layersPerBlock) per level, text context \(unet.crossAttentionDim)")
            Terminal.out("  control image:     \(source.config.conditioningChannels) channels (\(source.config.bgr ? "BGR" : "RGB")), "
                         + "\(source.config.downscale)× the latent's size\(source.config.globalPool ? ", pooled (guess mode)" : "")")
            if !source.assumed.isEmpty {
                Terminal.out("  assumed:           \(source.assumed.joined(separator: ", ")) (a single file cannot tell; --hint KEY=VALUE)")
            }
            _ = try source.load()
        }
    }

    /// A T2I-Adapter folder (what `--adapter` takes): kind, family, control image, features.
    static func inspectAdapter(_ path: String) throws {
        Terminal.out(path)
        Terminal.out("  layout:            T2I-Adapter (diffusers T2IAdapter folder)")
        try reportingProblems {
            let source = try T2IAdapterSource(path: path)
            let config = source.config
            Terminal.out("  family:            \(T2IAdapterFacts(config: config).familyName) (\(config.kind.rawValue))")
            Terminal.out("  control image:     \(config.inChannels) channel\(config.inChannels == 1 ? " (grey)" : "s (RGB)")")
            Terminal.out("  features:          " + config.features.map { "\($0.channels) at 1/\($0.downscale)" }.joined(separator: ", "))
            _ = try source.load()
        }
    }

    /// Runs `body` (which describes a model and builds it), then says "problems: none", or
    /// "problems: 1" with its error and a failing exit.
    static func reportingProblems(_ body: () throws -> Void) throws {
        do {
            try body()
            Terminal.out("  problems: none")
        } catch {
            Terminal.out("  problems: 1")
            Terminal.err("error: \(error)")
            throw ExitCode.failure
        }
    }

    /// A VAE folder or TAESD pair (what `--vae` takes), built from its tensors.
    static func inspectVAE(_ path: String) throws {
        Terminal.out(path)
        do {
            let vae = try VAESource.load(path: path, precision: .f32)
            Terminal.out("  layout:            VAE (\(vae.className))")
            Terminal.out("  latent channels:   \(vae.latentChannels), \(vae.downscale)× downscale, scaling factor \(vae.scalingFactor)")
            Terminal.out("  problems: none")
        } catch {
            Terminal.out("  layout:            VAE")
            Terminal.out("  problems: 1")
            Terminal.err("error: \(error)")
            throw ExitCode.failure
        }
    }

    /// A LoRA file: format, the model it is for, ranks and alphas, layers per network.
    static func inspectLoRA(_ path: String) throws {
        Terminal.out(path)
        let lora: LoRAFile
        do {
            lora = try LoRAFile(path: path)
        } catch {
            Terminal.out("  layout:            LoRA")
            Terminal.out("  problems: 1")
            Terminal.err("error: \(error)")
            throw ExitCode.failure
        }
        Terminal.out("  layout:            LoRA (\(lora.format.rawValue))")
        Terminal.out("  target:            \(lora.targetDescription)")
        let alphas = Array(Set(lora.layers.map(\.alpha))).sorted().map { String(format: "%g", $0) }
        Terminal.out("  rank:              \(lora.ranks.map(String.init).joined(separator: ", ")) (alpha \(alphas.joined(separator: ", ")))")
        for component in LoRAFile.Component.allCases {
            let layers = lora.layers(of: component)
            guard !layers.isEmpty else { continue }
            let convolutions = layers.filter(\.isConvolution).count
            Terminal.out("  \(component.rawValue): \(layers.count) layers" + (convolutions > 0 ? " (\(convolutions) convolution layers, LoCon)" : ""))
            for layer in layers.prefix(3) { Terminal.out("    \(layer.module): rank \(layer.rank), down \(layer.downShape), up \(layer.upShape)") }
            if layers.count > 3 { Terminal.out("    … and \(layers.count - 3) more") }
        }
        Terminal.out("  problems: none")
    }

    /// An aMUSEd folder: every component built from its tensors, or the first problem.
    static func inspectAmused(_ path: String) throws {
        Terminal.out(path)
        Terminal.out("  layout:            aMUSEd diffusers folder")
        let model: AmusedModel
        do {
            model = try AmusedModel.load(path: path)
        } catch {
            Terminal.out("  problems: 1")
            Terminal.err("error: \(error)")
            throw ExitCode.failure
        }
        let vq = model.vq, transformer = model.transformer.config, text = model.textEncoder.config
        Terminal.out("  model:             \(model.summary)")
        Terminal.out("  vqvae:             \(vq.codebookSize) codes, \(vq.scaleFactor)× downscale")
        Terminal.out("  text_encoder:      CLIP with projection: \(text.layers) layers, width \(text.hiddenSize), "
                     + "projection \(text.projectionDim)")
        Terminal.out("  transformer:       U-ViT: \(transformer.layers) layers, width \(transformer.hiddenSize), "
                     + "\(transformer.sampleSize)×\(transformer.sampleSize) tokens\(transformer.downsample ? ", halved inside" : "")")
        Terminal.out("  scheduler:         mask token \(model.maskTokenID), \(model.schedule.rawValue) schedule")
        Terminal.out("  problems: none")
    }

    static func grouped(_ n: Int) -> String {
        let digits = Array(String(n))
        var out = ""
        for (i, d) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(d)
        }
        return out
    }
}
