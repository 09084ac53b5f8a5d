import ChiselBase
import ChiselDiffusion
import ChiselTensor
import Foundation

/// What `chisel model inspect` reports about a checkpoint: what it is, its components, and
/// every problem found while opening each component.
public struct ModelInspection: Sendable {
    public struct Component: Sendable {
        public var name: String
        public var files: [String]
        public var tensors: Int
        public var parameters: Int
        /// Tensor count per stored dtype.
        public var dtypes: [String: Int]
        public var details: [String]
        /// Stored tensors the network does not use (besides known extras).
        public var unused: [String]
    }

    public var path: String
    public var layout: String
    public var family: String?
    public var inpainting: Bool?
    public var predictionType: String?
    public var latentChannels: Int?
    public var contextDimension: Int?
    /// For a single file, the config values its tensors cannot tell that were assumed (`key=value`).
    public var guessed: [String] = []
    public var components: [Component] = []
    public var problems: [ChiselError] = []

    /// Opens every component of the checkpoint at `path` (a diffusers folder or a single
    /// .safetensors file), building each network to check its tensors against its config.
    ///
    /// `deep` also reads every weight for NaN and infinity (every byte of the checkpoint: about
    /// as long as loading it, seconds for SD 1.5 in FP16 from a warm disk).
    public static func inspect(path: String, hints: [String: JSONValue] = [:], deep: Bool = false) -> ModelInspection {
        guard FileManager.default.fileExists(atPath: path) else {
            var report = ModelInspection(path: path, layout: "missing")
            report.problems.append(ChiselError(.io, "no such file or folder", file: path))
            return report
        }
        let source: StableDiffusionSource
        do {
            source = try StableDiffusionSource(path: path, hints: hints)
        } catch {
            var report = ModelInspection(path: path, layout: StableDiffusionSource.Layout.singleFile.rawValue)
            report.problems.append(ChiselError.wrapping(error, code: .model))
            return report
        }
        return inspect(source, deep: deep)
    }

    /// Networks are built in BF16 where the CPU supports it, to halve the memory a check takes.
    static var checkPrecision: Precision { Precision.bf16 }

    static func inspect(_ source: StableDiffusionSource, deep: Bool = false) -> ModelInspection {
        var report = ModelInspection(path: source.path, layout: source.layout.rawValue)
        func attempt(_ body: (inout ModelInspection) throws -> Void) {
            do { try body(&report) } catch { report.problems.append(ChiselError.wrapping(error, code: .model)) }
        }
        attempt { report in
            if let pipeline = try source.pipelineClass() { report.layout += " (\(pipeline))" }
        }
        attempt { report in report.problems += try source.indexProblems() }
        report.guessed = source.guessedConfig()
        attempt { report in
            if let prediction = try source.predictionType() {
                report.predictionType = prediction.rawValue
            } else if source.layout == .folder {
                report.problems.append(ChiselError(.model, "no scheduler/scheduler_config.json: prediction type unknown "
                                                   + "(epsilon assumed)", file: source.path))
            } else {
                report.predictionType = "epsilon (not stored in single files; assumed)"
            }
        }
        attempt { report in
            let text = try source.textEncoder()
            let config = text.config
            report.family = ((try? source.family()) ?? StableDiffusionModel.Family(textEncoder: config)).rawValue
            let name = source.layout == .folder ? "CLIP" : config.activation == .gelu ? "OpenCLIP" : "CLIP"
            report.components.append(component(
                text, details: ["\(name) text model: \(config.layers) layers\(source.layout == .singleFile ? " used" : ""), "
                                + "width \(config.hiddenSize), \(config.heads) heads, \(config.activation.rawValue)"
                                + (config.projectionDim > 0 && text.weights.names.contains("text_projection.weight")
                                   ? ", projection \(config.projectionDim)" : "")],
                build: { _ = try CLIPTextModel(config: config, weights: $0, precision: checkPrecision) },
                problems: &report.problems))
        }
        attempt { report in
            guard let text = try source.textEncoder2() else { return }
            let config = text.config
            report.components.append(component(
                text, details: ["CLIP text model with projection: \(config.layers) layers, width \(config.hiddenSize), "
                                + "\(config.heads) heads, \(config.activation.rawValue), projection \(config.projectionDim)"],
                build: { _ = try CLIPTextModel(config: config, weights: $0, precision: checkPrecision) },
                problems: &report.problems))
        }
        attempt { report in
            let vae = try source.vae()
            let config = vae.config
            report.latentChannels = config.latentChannels
            report.components.append(component(
                vae, details: ["AutoencoderKL: channels \(config.blockOutChannels), latent \(config.latentChannels), "
                               + "scaling factor \(config.scalingFactor), downscale ×\(config.downscale)"],
                build: { _ = try AutoencoderKL(config: config, weights: $0, precision: checkPrecision) },
                problems: &report.problems))
        }
        attempt { report in
            let unet = try source.unet()
            let config = unet.config
            report.inpainting = config.isInpainting
            report.contextDimension = config.crossAttentionDim
            report.components.append(component(
                unet, details: ["UNet2DConditionModel: channels \(config.blockOutChannels), in \(config.inChannels), "
                                + "context \(config.crossAttentionDim), heads \(config.heads), linear projection \(config.useLinearProjection)"
                                + (config.textTime.map { ", transformer layers \(config.transformerLayers), added text/time embedding "
                                    + "(\($0.inputDim) features)" } ?? "")],
                build: { _ = try UNet2DConditionModel(config: config, weights: $0, precision: checkPrecision) },
                problems: &report.problems))
        }
        // The scheduler and tokenizer as loading reads them; a scheduler class Chisel cannot run
        // is a problem for `--scheduler auto`, the default.
        attempt { report in
            let family = report.family.flatMap(StableDiffusionModel.Family.init(rawValue:)) ?? .sd1
            let config = try source.schedulerConfig(family: family)
            do {
                _ = try SchedulerKind.declared(by: config)
            } catch let error as ChiselError {
                let file = source.layout == .folder ? source.path + "/scheduler/scheduler_config.json" : source.path
                report.problems.append(error.located(file: file))
            }
        }
        attempt { _ in _ = try source.tokenizer() }
        if deep {
            for component in report.components {
                attempt { report in report.problems += try nonFiniteProblems(source, component: component.name) }
            }
        }
        if let foreign = source.foreignTensors(), !foreign.isEmpty {
            report.problems.append(ChiselError(.model, "\(foreign.count) tensors belong to no known component "
                                               + "(first: \(foreign.prefix(3).joined(separator: ", ")))", file: source.path))
        }
        return report
    }

    static func component<Config>(_ source: ComponentSource<Config>, details: [String], build: (any WeightStore) throws -> Void,
                                  problems: inout [ChiselError]) -> Component {
        let (dtypes, parameters) = source.weights.summary()
        let tracking = TrackingWeights(source.weights)
        var unused: [String] = []
        do {
            try build(tracking)
            unused = source.weights.names.filter { !tracking.readNames.contains($0) }.sorted()
        } catch {
            problems.append(ChiselError.wrapping(error, code: .model))
        }
        return Component(name: source.name, files: source.files, tensors: source.weights.storedCount, parameters: parameters,
                         dtypes: Dictionary(uniqueKeysWithValues: dtypes.map { ($0.key.rawValue, $0.value) }),
                         details: details, unused: unused)
    }

    /// Every tensor of a component holding NaN or infinity, one problem each (the first ten).
    static func nonFiniteProblems(_ source: StableDiffusionSource, component: String) throws -> [ChiselError] {
        let weights: SafeTensorsWeights
        switch component {
        case "text_encoder": weights = try source.textEncoder().weights
        case "vae": weights = try source.vae().weights
        case "unet": weights = try source.unet().weights
        default: return []
        }
        var problems: [ChiselError] = []
        var total = 0
        for name in weights.names.sorted() {
            let values = try weights.floats(name)
            let nan = values.lazy.filter(\.isNaN).count
            let infinite = values.lazy.filter(\.isInfinite).count
            guard nan + infinite > 0 else { continue }
            total += 1
            if problems.count < 10 {
                problems.append(ChiselError(.model, "\(component) tensor \(name) holds "
                                            + [nan > 0 ? "\(nan) NaN" : nil, infinite > 0 ? "\(infinite) infinite" : nil]
                                                .compactMap { $0 }.joined(separator: " and ")
                                            + " of \(values.count) values", file: weights.source))
            }
        }
        if total > problems.count {
            problems.append(ChiselError(.model, "\(component): \(total - problems.count) more tensors hold NaN or infinity",
                                        file: weights.source))
        }
        return problems
    }
}
