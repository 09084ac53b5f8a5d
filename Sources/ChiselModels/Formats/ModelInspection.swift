import ChiselCore
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
    public var components: [Component] = []
    public var problems: [ChiselError] = []

    /// Opens every component of the checkpoint at `path` (a diffusers folder or a single
    /// .safetensors file), building each network to check its tensors against its config.
    public static func inspect(path: String, hints: [String: JSONValue] = [:]) -> ModelInspection {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            var report = ModelInspection(path: path, layout: "missing")
            report.problems.append(ChiselError(.io, "no such file or folder", file: path))
            return report
        }
        return isFolder.boolValue ? inspectFolder(path) : inspectFile(path, hints: hints)
    }

    /// Networks are built in BF16 where the CPU supports it, to halve the memory a check takes.
    static var checkPrecision: Precision { Precision.bf16 }

    static func component(_ name: String, files: [String], weights: SafeTensorsWeights, details: [String],
                          build: (any WeightStore) throws -> Void, problems: inout [ChiselError],
                          ignoring extras: (String) -> Bool = { _ in false }) -> Component {
        let (dtypes, parameters) = weights.summary()
        let tracking = TrackingWeights(weights)
        var unused: [String] = []
        do {
            try build(tracking)
            unused = weights.names.filter { !tracking.readNames.contains($0) && !extras($0) }.sorted()
        } catch {
            problems.append(ChiselError.wrapping(error, code: .model))
        }
        return Component(name: name, files: files, tensors: weights.names.count, parameters: parameters,
                         dtypes: Dictionary(uniqueKeysWithValues: dtypes.map { ($0.key.rawValue, $0.value) }),
                         details: details, unused: unused)
    }

    static func inspectFolder(_ folder: String) -> ModelInspection {
        var report = ModelInspection(path: folder, layout: "diffusers folder")
        do {
            let index = try ConfigReader(file: folder + "/model_index.json")
            report.layout += " (\(try index.string("_class_name", default: "unknown pipeline")))"
        } catch {
            report.problems.append(ChiselError.wrapping(error, code: .model))
        }
        let scheduler = folder + "/scheduler/scheduler_config.json"
        if let reader = try? ConfigReader(file: scheduler) {
            report.predictionType = (try? reader.string("prediction_type", default: "epsilon")) ?? nil
        } else {
            report.problems.append(ChiselError(.model, "no scheduler/scheduler_config.json: prediction type unknown "
                                               + "(epsilon assumed)", file: folder))
        }
        do {
            let text = try DiffusersComponent(folder: folder + "/text_encoder", base: "model",
                                              rename: { $0.hasPrefix("text_model.") ? $0 : "text_model." + $0 })
            let config = try CLIPTextConfig(reader: text.config)
            report.family = config.activation == "gelu" ? StableDiffusionModel.Family.sd2.rawValue
                                                        : StableDiffusionModel.Family.sd1.rawValue
            report.components.append(component(
                "text_encoder", files: text.files, weights: text.weights,
                details: ["CLIP text model: \(config.layers) layers, width \(config.hiddenSize), \(config.heads) heads, \(config.activation)"],
                build: { _ = try CLIPTextModel(config: config, weights: $0, precision: checkPrecision) },
                problems: &report.problems, ignoring: { $0.hasSuffix("position_ids") }))
        } catch {
            report.problems.append(ChiselError.wrapping(error, code: .model))
        }
        do {
            let vae = try DiffusersComponent(folder: folder + "/vae", base: "diffusion_pytorch_model")
            let config = try VAEConfig(reader: vae.config)
            report.latentChannels = config.latentChannels
            report.components.append(component(
                "vae", files: vae.files, weights: vae.weights,
                details: ["AutoencoderKL: channels \(config.blockOutChannels), latent \(config.latentChannels), "
                          + "scaling factor \(config.scalingFactor), downscale ×\(config.downscale)"],
                build: { _ = try AutoencoderKL(config: config, weights: $0, precision: checkPrecision) },
                problems: &report.problems))
        } catch {
            report.problems.append(ChiselError.wrapping(error, code: .model))
        }
        do {
            let unet = try DiffusersComponent(folder: folder + "/unet", base: "diffusion_pytorch_model")
            let config = try UNetConfig(reader: unet.config)
            report.inpainting = config.isInpainting
            report.contextDimension = config.crossAttentionDim
            report.components.append(component(
                "unet", files: unet.files, weights: unet.weights,
                details: ["UNet2DConditionModel: channels \(config.blockOutChannels), in \(config.inChannels), "
                          + "context \(config.crossAttentionDim), heads \(config.heads), linear projection \(config.useLinearProjection)"],
                build: { _ = try UNet2DConditionModel(config: config, weights: $0, precision: checkPrecision) },
                problems: &report.problems))
        } catch {
            report.problems.append(ChiselError.wrapping(error, code: .model))
        }
        return report
    }

    static func inspectFile(_ path: String, hints: [String: JSONValue]) -> ModelInspection {
        var report = ModelInspection(path: path, layout: "single-file checkpoint")
        let checkpoint: SingleFileCheckpoint
        do {
            checkpoint = try SingleFileCheckpoint(path: path, hints: hints)
        } catch {
            report.problems.append(ChiselError.wrapping(error, code: .model))
            return report
        }
        report.predictionType = hints["prediction_type"]?.stringValue ?? "epsilon (not stored in single files; assumed)"
        let extras: Set<String> = ["betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                                   "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod",
                                   "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
                                   "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
                                   "model_ema.decay", "model_ema.num_updates", "logvar"]
        do {
            let layout = try checkpoint.textLayout()
            let config = try checkpoint.textConfig()
            report.family = layout == .openCLIP ? StableDiffusionModel.Family.sd2.rawValue : StableDiffusionModel.Family.sd1.rawValue
            let weights = try checkpoint.textWeights(config: config)
            let tracking = TrackingWeights(weights)
            do {
                _ = try CLIPTextModel(config: config, weights: tracking, precision: checkPrecision)
            } catch {
                report.problems.append(ChiselError.wrapping(error, code: .model))
            }
            let count = checkpoint.file.names.filter { $0.hasPrefix("cond_stage_model.") }.count
            report.components.append(Component(
                name: "text_encoder", files: [path], tensors: count,
                parameters: checkpoint.file.names.filter { $0.hasPrefix("cond_stage_model.") }
                    .compactMap { checkpoint.file.tensors[$0]?.elementCount }.reduce(0, +),
                dtypes: dtypeCounts(checkpoint.file, prefix: "cond_stage_model."),
                details: ["\(layout == .openCLIP ? "OpenCLIP" : "CLIP") text model: \(config.layers) layers used, "
                          + "width \(config.hiddenSize), \(config.heads) heads, \(config.activation)"],
                unused: []))
        } catch {
            report.problems.append(ChiselError.wrapping(error, code: .model))
        }
        do {
            let config = try checkpoint.vaeConfig()
            report.latentChannels = config.latentChannels
            let levels = config.blockOutChannels.count
            let weights = try SafeTensorsWeights(files: [checkpoint.file], source: path) {
                SingleFileCheckpoint.vaeName($0, levels: levels)
            }
            report.components.append(component(
                "vae", files: [path], weights: weights,
                details: ["AutoencoderKL: channels \(config.blockOutChannels), latent \(config.latentChannels)"],
                build: { _ = try AutoencoderKL(config: config, weights: $0, precision: checkPrecision) },
                problems: &report.problems))
        } catch {
            report.problems.append(ChiselError.wrapping(error, code: .model))
        }
        do {
            let config = try checkpoint.unetConfig()
            report.inpainting = config.isInpainting
            report.contextDimension = config.crossAttentionDim
            let layout = try checkpoint.unetLayout()
            let weights = try SafeTensorsWeights(files: [checkpoint.file], source: path) {
                SingleFileCheckpoint.unetName($0, layout: layout)
            }
            report.components.append(component(
                "unet", files: [path], weights: weights,
                details: ["UNet2DConditionModel: channels \(config.blockOutChannels), in \(config.inChannels), "
                          + "context \(config.crossAttentionDim), heads \(config.heads)"],
                build: { _ = try UNet2DConditionModel(config: config, weights: $0, precision: checkPrecision) },
                problems: &report.problems))
        } catch {
            report.problems.append(ChiselError.wrapping(error, code: .model))
        }
        let known = checkpoint.file.names.filter {
            $0.hasPrefix(SingleFileCheckpoint.unetPrefix) || $0.hasPrefix(SingleFileCheckpoint.vaePrefix)
                || $0.hasPrefix("cond_stage_model.") || extras.contains($0)
        }
        let foreign = Set(checkpoint.file.names).subtracting(known).sorted()
        if !foreign.isEmpty {
            report.problems.append(ChiselError(.model, "\(foreign.count) tensors belong to no known component "
                                               + "(first: \(foreign.prefix(3).joined(separator: ", ")))", file: path))
        }
        return report
    }

    static func dtypeCounts(_ file: SafeTensorsFile, prefix: String) -> [String: Int] {
        var counts: [String: Int] = [:]
        for name in file.names where name.hasPrefix(prefix) {
            if let info = file.tensors[name] { counts[info.dtype.rawValue, default: 0] += 1 }
        }
        return counts
    }
}
