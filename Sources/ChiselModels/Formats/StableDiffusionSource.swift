import ChiselBase
import ChiselDiffusion
import Foundation

/// One component of a checkpoint as its network needs it: the config and the weights by the
/// network's names, with the files they came from.
public struct ComponentSource<Config: Sendable>: Sendable {
    public let name: String
    public let config: Config
    public let weights: SafeTensorsWeights
    public let files: [String]
}

/// Where a Stable Diffusion checkpoint's components come from — a diffusers folder or a
/// single file in the original layout. The one place that knows the family's layout: the
/// loader and `chisel model inspect` both read components through it.
public struct StableDiffusionSource: Sendable {
    public enum Layout: String, Sendable {
        case folder = "diffusers folder"
        case singleFile = "single-file checkpoint"
    }

    public let path: String
    public let layout: Layout
    private let checkpoint: SingleFileCheckpoint?
    private let variant: String?

    /// `hints` (single files) give config values the tensors cannot tell; `variant` (folders)
    /// picks weight files such as `.fp16`.
    public init(path: String, hints: [String: JSONValue] = [:], variant: String? = nil) throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw ChiselError(.io, "no such file or folder", file: path)
        }
        self.path = path
        self.variant = variant
        if isFolder.boolValue {
            layout = .folder
            checkpoint = nil
        } else {
            layout = .singleFile
            checkpoint = try SingleFileCheckpoint(path: path, hints: hints)
        }
    }

    /// For a single file, the config values its tensors cannot tell and no hint gave: what
    /// Chisel assumed (`unet.attention_head_dim`, the norms' groups, the text encoder's heads),
    /// as `key=value` for `--hint`. Empty for folders, whose config.json files say everything.
    public func guessedConfig() -> [String] {
        guard let checkpoint else { return [] }
        var guessed: [String] = []
        func note(_ key: String, _ value: @autoclosure () throws -> String) {
            guard checkpoint.hints[key] == nil, let text = try? value() else { return }
            guessed.append("\(key)=\(text)")
        }
        let unet = try? checkpoint.unetConfig()
        note("unet.attention_head_dim", unet.map { Set($0.heads).count == 1 ? String($0.heads[0]) : "\($0.heads)" } ?? "?")
        note("unet.norm_num_groups", String(unet?.normGroups ?? 32))
        note("vae.norm_num_groups", String((try? checkpoint.vaeConfig())?.normGroups ?? 32))
        note("text_encoder.num_attention_heads", String((try? checkpoint.textConfig())?.heads ?? 0))
        return guessed
    }

    /// For folders: the pipeline class `model_index.json` names, after checking it lists the
    /// components; nil for single files.
    public func pipelineClass() throws -> String? {
        guard layout == .folder else { return nil }
        let index = try ConfigReader(file: path + "/model_index.json")
        for component in ["unet", "vae"] where !index.has(component) {
            throw index.failure(component, "is missing: not a Stable Diffusion pipeline folder")
        }
        guard index.has("text_encoder") || index.has("text_encoder_2") else {
            throw index.failure("text_encoder", "is missing: not a Stable Diffusion pipeline folder")
        }
        return try index.string("_class_name", default: "unknown pipeline")
    }

    /// Whether a component is present: a folder's `model_index.json` lists it with a class (SDXL
    /// refiners list `text_encoder` as [null, null]), a single file holds its tensors.
    func has(_ component: String) -> Bool {
        if let checkpoint {
            guard checkpoint.isXL else { return component != "text_encoder_2" && component != "tokenizer_2" }
            let prefixes = checkpoint.xlTextPrefixes()
            switch component {
            case "text_encoder": return prefixes.clip != nil
            case "text_encoder_2": return prefixes.clip != nil && prefixes.openCLIP != nil
            case "tokenizer", "tokenizer_2": return false
            default: return true
            }
        }
        guard let index = try? ConfigReader(file: path + "/model_index.json"), case .array(let entry)? = index.json[component],
              entry.count == 2, case .string = entry[1] else { return false }
        return true
    }

    /// The family: SDXL when the UNet takes the added text-and-size embedding (the refiner when
    /// that embedding holds 5 values, an aesthetic score in place of the target size), else SD 1.x
    /// or 2.x by the text encoder.
    public func family() throws -> StableDiffusionModel.Family {
        let unet = try self.unet().config
        if let textTime = unet.textTime {
            let pooled = try textEncoder2()?.config.projectionDim ?? textEncoder().config.projectionDim
            return (textTime.inputDim - pooled) == 5 * textTime.timeDim ? .sdxlRefiner : .sdxl
        }
        return StableDiffusionModel.Family(textEncoder: try textEncoder().config)
    }

    /// SDXL pipeline settings of `model_index.json`: `force_zeros_for_empty_prompt` (an empty
    /// negative prompt is zeros, not the encoding of "") and `requires_aesthetics_score`; single
    /// files take the public base's and refiner's.
    public func xlSettings(family: StableDiffusionModel.Family) -> (forceZerosForEmptyPrompt: Bool, requiresAestheticsScore: Bool) {
        let refiner = family == .sdxlRefiner
        guard layout == .folder, let index = try? ConfigReader(file: path + "/model_index.json") else { return (!refiner, refiner) }
        return ((try? index.bool("force_zeros_for_empty_prompt", default: !refiner)) ?? !refiner,
                (try? index.bool("requires_aesthetics_score", default: refiner)) ?? refiner)
    }

    /// The classes Chisel reads for each component a Stable Diffusion folder's `model_index.json`
    /// lists; components not here (safety checker, feature extractor) are not read.
    static let componentClasses: [String: [String]] = [
        "unet": ["UNet2DConditionModel"],
        "vae": ["AutoencoderKL"],
        "text_encoder": ["CLIPTextModel", "CLIPTextModelWithProjection"],
        "text_encoder_2": ["CLIPTextModelWithProjection"],
        "tokenizer": ["CLIPTokenizer", "CLIPTokenizerFast"],
        "tokenizer_2": ["CLIPTokenizer", "CLIPTokenizerFast"],
    ]

    /// For folders: what `model_index.json` says that loading would trip on — a component Chisel
    /// reads whose class it does not know, or whose folder is missing. Loading and `chisel model
    /// inspect` both ask this.
    public func indexProblems() throws -> [ChiselError] {
        guard layout == .folder else { return [] }
        let file = path + "/model_index.json"
        let index = try ConfigReader(file: file)
        var problems: [ChiselError] = []
        for member in index.json.members ?? [] where !member.key.hasPrefix("_") {
            // Components are [library, class] pairs; other keys are pipeline settings (requires_safety_checker).
            guard case .array(let entry) = member.value else { continue }
            guard entry.count == 2 else {
                problems.append(ChiselError(.model, "component '\(member.key)' must be [library, class]", file: file,
                                            jsonPath: member.key))
                continue
            }
            guard case .string(let className) = entry[1] else { continue }  // [null, null]: not present
            var isFolder: ObjCBool = false
            if !FileManager.default.fileExists(atPath: path + "/" + member.key, isDirectory: &isFolder) || !isFolder.boolValue {
                problems.append(ChiselError(.model, "component '\(member.key)' (\(className)) has no folder \(member.key)/",
                                            file: file, jsonPath: member.key))
            }
            if let known = Self.componentClasses[member.key], !known.contains(className) {
                problems.append(ChiselError(.unsupportedFormat, "component '\(member.key)' is a \(className), which Chisel "
                                            + "does not read; it reads \(known.joined(separator: " or "))", file: file,
                                            jsonPath: member.key))
            }
        }
        return problems
    }

    /// The (first) text encoder: SD's, SDXL's CLIP ViT-L, or a refiner's only one (OpenCLIP
    /// ViT-bigG with projection, in `text_encoder_2/`).
    public func textEncoder() throws -> ComponentSource<CLIPTextConfig> {
        if layout == .folder, !has("text_encoder"), has("text_encoder_2") { return try folderTextEncoder("text_encoder_2") }
        if let checkpoint, checkpoint.isXL {
            let prefixes = checkpoint.xlTextPrefixes()
            if let clip = prefixes.clip {
                return try checkpoint.component("text_encoder", config: try checkpoint.xlTextConfig(clip: true),
                                                rules: SingleFileCheckpoint.clipRules(prefix: clip))
            }
            guard let openCLIP = prefixes.openCLIP else { throw ChiselError(.model, "no text encoder", file: path) }
            return try checkpoint.component("text_encoder", config: try checkpoint.xlTextConfig(clip: false),
                                            rules: SingleFileCheckpoint.xlOpenCLIPRules(prefix: openCLIP))
        }
        if let checkpoint {
            let config = try checkpoint.textConfig()
            let rules = try checkpoint.textLayout() == .openCLIP
                ? SingleFileCheckpoint.openCLIPRules(layers: config.layers) : SingleFileCheckpoint.clipRules
            return try checkpoint.component("text_encoder", config: config, rules: rules)
        }
        return try folderTextEncoder("text_encoder")
    }

    /// SDXL base's second text encoder (OpenCLIP ViT-bigG with projection); nil for SD 1.x/2.x
    /// and for refiners, whose only encoder `textEncoder()` returns.
    public func textEncoder2() throws -> ComponentSource<CLIPTextConfig>? {
        guard has("text_encoder"), has("text_encoder_2") else { return nil }
        if let checkpoint, let openCLIP = checkpoint.xlTextPrefixes().openCLIP {
            return try checkpoint.component("text_encoder_2", config: try checkpoint.xlTextConfig(clip: false),
                                            rules: SingleFileCheckpoint.xlOpenCLIPRules(prefix: openCLIP))
        }
        return try folderTextEncoder("text_encoder_2")
    }

    func folderTextEncoder(_ name: String) throws -> ComponentSource<CLIPTextConfig> {
        // transformers' names, `text_projection.weight` kept at the top level as the network reads it.
        let folder = try DiffusersComponent(folder: path + "/" + name, base: "model", variant: variant,
                                            rename: { name in
                                                if name.hasSuffix("position_ids") { return nil }
                                                return name.hasPrefix("text_model.") || name.hasPrefix("text_projection.")
                                                    ? name : "text_model." + name
                                            })
        return ComponentSource(name: name, config: try CLIPTextConfig(reader: folder.config), weights: folder.weights,
                               files: folder.files)
    }

    /// SDXL base's `tokenizer_2/` (its own padding token, `!`); nil when there is none.
    public func tokenizer2() throws -> CLIPTokenizer? {
        guard layout == .folder, has("tokenizer_2"), FileManager.default.fileExists(atPath: path + "/tokenizer_2") else { return nil }
        return try CLIPTokenizer(folder: path + "/tokenizer_2")
    }

    public func vae() throws -> ComponentSource<VAEConfig> {
        if let checkpoint {
            let config = try checkpoint.vaeConfig()
            return try checkpoint.component("vae", config: config,
                                            rules: SingleFileCheckpoint.vaeRules(levels: config.blockOutChannels.count))
        }
        let folder = try DiffusersComponent(folder: path + "/vae", base: "diffusion_pytorch_model", variant: variant)
        return ComponentSource(name: "vae", config: try VAEConfig(reader: folder.config), weights: folder.weights,
                               files: folder.files)
    }

    public func unet() throws -> ComponentSource<UNetConfig> {
        if let checkpoint {
            let layout = try checkpoint.unetLayout()
            return try checkpoint.component("unet", config: try checkpoint.unetConfig(),
                                            rules: SingleFileCheckpoint.unetRules(layers: layout.layers))
        }
        let folder = try DiffusersComponent(folder: path + "/unet", base: "diffusion_pytorch_model", variant: variant)
        return ComponentSource(name: "unet", config: try UNetConfig(reader: folder.config), weights: folder.weights,
                               files: folder.files)
    }

    /// The prediction type the checkpoint declares (a folder's scheduler config, a single
    /// file's `prediction_type` hint), or nil when it declares none.
    public func predictionType() throws -> PredictionType? {
        let reader: ConfigReader
        if let checkpoint {
            guard let hint = checkpoint.hints["prediction_type"] else { return nil }
            reader = try ConfigReader(json: .object([JSONMember(key: "prediction_type", value: hint)]),
                                      file: "\(path) (hints)")
        } else {
            let file = path + "/scheduler/scheduler_config.json"
            guard FileManager.default.fileExists(atPath: file) else { return nil }
            reader = try ConfigReader(file: file)
        }
        let name = try reader.string("prediction_type", default: "epsilon")
        guard let type = PredictionType(rawValue: name), PredictionType.stableDiffusion.contains(type) else {
            throw reader.failure("prediction_type", "'\(name)' is not "
                                 + PredictionType.stableDiffusion.map(\.rawValue).joined(separator: ", "))
        }
        return type
    }

    /// The checkpoint's scheduler config: a folder's `scheduler/scheduler_config.json`; for a
    /// single file (which stores none) the config of the reference pipeline of its family —
    /// SD 1.5's PNDM, SD 2.1's DDIM or SDXL's Euler (leading spacing), all scaled-linear
    /// 0.00085…0.012 over 1000 steps — with the `prediction_type` hint applied.
    public func schedulerConfig(family: StableDiffusionModel.Family) throws -> SchedulerConfig {
        var config: SchedulerConfig
        let file = path + "/scheduler/scheduler_config.json"
        if layout == .folder, FileManager.default.fileExists(atPath: file) {
            do {
                config = try SchedulerConfig(file: file)
            } catch let error as ChiselError {
                throw error.located(file: file)
            }
        } else {
            config = SchedulerConfig()
            // SDXL's pipelines ship Euler with leading spacing.
            config.className = family == .sd1 ? SchedulerClass.pndm.rawValue
                : family.isXL ? SchedulerClass.euler.rawValue : SchedulerClass.ddim.rawValue
            if family.isXL { config.timestepSpacing = .leading }
            config.numTrainTimesteps = 1000
            config.betaStart = 0.00085
            config.betaEnd = 0.012
            config.betaSchedule = .scaledLinear
            config.stepsOffset = 1
            config.setAlphaToOne = false
            config.clipSample = false
            config.skipPrkSteps = true
        }
        if let prediction = try predictionType() { config.predictionType = prediction }
        return config
    }

    /// A single file's tensors that belong to no component (nil for folders). LDM's diffusion
    /// buffers and EMA counters are known extras.
    public func foreignTensors() -> [String]? {
        guard let checkpoint else { return nil }
        let prefixes = [SingleFileCheckpoint.unetPrefix, SingleFileCheckpoint.vaePrefix, "cond_stage_model.", SingleFileCheckpoint.xlPrefix]
        return checkpoint.file.names.filter { name in
            !prefixes.contains { name.hasPrefix($0) } && !SingleFileCheckpoint.knownExtras.contains(name)
        }.sorted()
    }

    /// A folder's `tokenizer/`; single files carry none.
    public func tokenizer() throws -> CLIPTokenizer? {
        guard layout == .folder else { return nil }
        // A refiner's only tokenizer is tokenizer_2/.
        let name = !has("text_encoder") && has("text_encoder_2") ? "tokenizer_2" : "tokenizer"
        guard FileManager.default.fileExists(atPath: path + "/" + name) else { return nil }
        return try CLIPTokenizer(folder: path + "/" + name)
    }
}

extension SingleFileCheckpoint {
    func component<Config>(_ name: String, config: Config, rules: NameRules) throws -> ComponentSource<Config> {
        ComponentSource(name: name, config: config,
                        weights: try SafeTensorsWeights(files: [file], source: path, names: rules.rename),
                        files: [path])
    }
}
