import ChiselCore
import ChiselDiffusion
import ChiselModels
import ChiselTensor
import Foundation

extension StableDiffusionModel: LoadedModel {
    /// The checkpoint's name as AUTOMATIC1111's infotext `Model` writes it: the file or folder name
    /// without extension.
    public var name: String {
        let last = path.split(separator: "/").last.map(String.init) ?? path
        return last.hasSuffix(".safetensors") ? String(last.dropLast(".safetensors".count)) : last
    }
}

/// Opens Stable Diffusion 1.x/2.x checkpoints named in a graph's `models` section: diffusers
/// folders and single `.safetensors` files.
///
/// Options: `"dtype": "fp32" | "bf16"` (default fp32); for folders `"variant": "fp16"` to read
/// the `.fp16` weight files; for single files `"hints"`, the config values their tensors cannot
/// tell, as `chisel model inspect --hint` takes them (`{"prediction_type": "v_prediction",
/// "unet.attention_head_dim": 8}`); `"tokenizer"`, a tokenizer folder (vocab.json + merges.txt)
/// to use instead of the checkpoint's or the bundled one (`"tokenizer_2"`, SDXL's second);
/// `"scheduler_config"`, scheduler config keys that replace the
/// checkpoint's (`{"clip_sample": false, "timestep_spacing": "trailing"}`), as diffusers'
/// `X.from_config(config, **overrides)`; `"loras"`, LoRA files merged into the UNet and the text
/// encoder as they load, each a path or `{"path": …, "scale": 0.8}` (scale default 1), as
/// diffusers' `load_lora_weights` then `fuse_lora(lora_scale=…)`; `"vae"`, a VAE to encode and
/// decode with instead of the checkpoint's (a diffusers AutoencoderKL or AutoencoderTiny folder,
/// or TAESD's taesd_encoder/taesd_decoder files), as a pipeline built with `vae=…`;
/// `"embeddings"`, textual-inversion files whose tokens prompts can use, each a path or
/// `{"path": …, "token": "<name>"}`, as diffusers' `load_textual_inversion`.
public struct StableDiffusionLoader: ModelLoader {
    public let kind = "stable_diffusion"

    public init() {}

    static let dtypes: [String: Precision] = ["fp32": .f32, "f32": .f32, "float32": .f32, "bf16": .bf16, "bfloat16": .bf16]

    public func recognizes(path: String) -> Bool {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { return false }
        if isFolder.boolValue {
            return FileManager.default.fileExists(atPath: path + "/model_index.json") && !AmusedModel.isFolder(path)
        }
        return path.hasSuffix(".safetensors")
    }

    /// A single file's assumed config values, said once when the graph is validated.
    public func warnings(with spec: ModelSpec) -> [String] {
        let hints = Dictionary((spec.options["hints"]?.members ?? []).map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        guard let source = try? StableDiffusionSource(path: spec.path, hints: hints) else { return [] }
        let guessed = source.guessedConfig()
        guard !guessed.isEmpty else { return [] }
        return ["a single file cannot tell \(guessed.count) config value\(guessed.count == 1 ? "" : "s"); assumed "
                + guessed.joined(separator: ", ") + " (give --hint KEY=VALUE, or the graph's hints, where the checkpoint differs)"]
    }

    public func problems(with spec: ModelSpec) -> [ModelOptionProblem] {
        var problems: [ModelOptionProblem] = []
        for (key, value) in spec.options.sorted(by: { $0.key < $1.key }) {
            switch key {
            case "dtype":
                if value.stringValue.flatMap({ Self.dtypes[$0] }) == nil {
                    problems.append(ModelOptionProblem(key: key, message: "dtype must be one of \(Self.dtypes.keys.sorted().joined(separator: ", "))"))
                }
            case "variant":
                if value.stringValue?.isEmpty ?? true {
                    problems.append(ModelOptionProblem(key: key, message: "variant must be a file-name suffix such as \"fp16\""))
                } else if isSingleFile(spec.path) {
                    problems.append(ModelOptionProblem(key: key, message: "variant applies to diffusers folders, not single files"))
                }
            case "scheduler_config":
                if let problem = Self.problem(key, { _ = try Self.schedulerOverrides(value) }) { problems.append(problem) }
            case "embeddings":
                if let problem = Self.problem(key, { _ = try Self.embeddings(value) }) { problems.append(problem) }
            case "vae":
                if let path = value.stringValue, !path.isEmpty {
                    if !FileManager.default.fileExists(atPath: path) {
                        problems.append(ModelOptionProblem(key: key, message: "no such VAE file or folder: \(path)"))
                    }
                } else {
                    problems.append(ModelOptionProblem(key: key, message: "vae must be the path of a VAE folder or TAESD file"))
                }
            case "tokenizer", "tokenizer_2":
                if value.stringValue?.isEmpty ?? true {
                    problems.append(ModelOptionProblem(key: key, message: "\(key) must be the path of a tokenizer folder"))
                }
            case "loras":
                if let problem = Self.problem(key, { _ = try Self.loras(value) }) { problems.append(problem) }
            case "hints":
                if value.members == nil {
                    problems.append(ModelOptionProblem(key: key, message: "hints must be an object of config key → value"))
                } else if !isSingleFile(spec.path) {
                    problems.append(ModelOptionProblem(key: key, message: "hints apply to single-file checkpoints; a folder's configs say it all"))
                }
            default:
                problems.append(ModelOptionProblem(key: key, message: "unknown option '\(key)' for a Stable Diffusion model; it takes dtype, variant, hints, tokenizer, tokenizer_2, scheduler_config, loras, vae, embeddings"))
            }
        }
        return problems
    }

    public func load(_ spec: ModelSpec) async throws -> any LoadedModel {
        if let problem = problems(with: spec).first {
            throw ChiselError(.model, problem.message, file: spec.path)
        }
        let precision = spec.options["dtype"]?.stringValue.flatMap { Self.dtypes[$0] } ?? .f32
        let hints = Dictionary((spec.options["hints"]?.members ?? []).map { ($0.key, $0.value) },
                               uniquingKeysWith: { _, last in last })
        let model = try StableDiffusionModel.load(path: spec.path, precision: precision,
                                                  variant: spec.options["variant"]?.stringValue, hints: hints,
                                                  tokenizer: spec.options["tokenizer"]?.stringValue,
                                                  tokenizer2: spec.options["tokenizer_2"]?.stringValue,
                                                  loras: try spec.options["loras"].map { try Self.loras($0) } ?? [],
                                                  vae: spec.options["vae"]?.stringValue,
                                                  embeddings: try spec.options["embeddings"].map { try Self.embeddings($0) } ?? [])
        guard let overrides = spec.options["scheduler_config"] else { return model }
        return model.overridingScheduler(try Self.schedulerOverrides(overrides))
    }

    /// What `check` throws, as the problem of option `key` (naming the file at fault, if any).
    static func problem(_ key: String, _ check: () throws -> Void) -> ModelOptionProblem? {
        do {
            try check()
            return nil
        } catch let error as ChiselError {
            return ModelOptionProblem(key: key, message: error.message + (error.file.map { " (\($0))" } ?? ""))
        } catch {
            return ModelOptionProblem(key: key, message: "\(error)")
        }
    }

    /// The `loras` option: each entry a path or `{"path", "scale"}`; each file's header is read
    /// and its layers checked.
    static func loras(_ json: JSONValue) throws -> [LoRAApplication] {
        guard case .array(let items) = json else {
            throw ChiselError(.invalidParameter, "loras must be an array of paths or {\"path\": …, \"scale\": …} objects")
        }
        return try items.enumerated().map { index, item in
            let path: String
            var scale: Float = 1
            switch item {
            case .string(let text):
                path = text
            case .object:
                guard let text = item["path"]?.stringValue, !text.isEmpty else {
                    throw ChiselError(.invalidParameter, "loras[\(index)] needs a \"path\" string")
                }
                path = text
                for member in item.members ?? [] where member.key != "path" {
                    guard member.key == "scale" else {
                        throw ChiselError(.invalidParameter, "loras[\(index)] has an unknown key '\(member.key)'; it takes path and scale")
                    }
                    switch member.value {
                    case .int(let n): scale = Float(n)
                    case .double(let x) where x.isFinite: scale = Float(x)
                    default:
                        throw ChiselError(.invalidParameter, "loras[\(index)].scale must be a number, got \(member.value.kindDescription)")
                    }
                }
            default:
                throw ChiselError(.invalidParameter, "loras[\(index)] must be a path or an object, got \(item.kindDescription)")
            }
            guard FileManager.default.fileExists(atPath: path) else {
                throw ChiselError(.io, "loras[\(index)]: no such LoRA file", file: path)
            }
            return LoRAApplication(file: try LoRAFile(path: path), scale: scale)
        }
    }

    /// The `embeddings` option: each entry a path or `{"path", "token"}`; each file is read.
    static func embeddings(_ json: JSONValue) throws -> [TextualInversion] {
        guard case .array(let items) = json else {
            throw ChiselError(.invalidParameter, "embeddings must be an array of paths or {\"path\": …, \"token\": …} objects")
        }
        return try items.enumerated().map { index, item in
            switch item {
            case .string(let path):
                return try TextualInversion(path: path)
            case .object(let members):
                guard let path = item["path"]?.stringValue, !path.isEmpty else {
                    throw ChiselError(.invalidParameter, "embeddings[\(index)] needs a \"path\" string")
                }
                for member in members where member.key != "path" && member.key != "token" {
                    throw ChiselError(.invalidParameter, "embeddings[\(index)] has an unknown key '\(member.key)'; it takes path and token")
                }
                if let token = item["token"], token.stringValue == nil {
                    throw ChiselError(.invalidParameter, "embeddings[\(index)].token must be a string, got \(token.kindDescription)")
                }
                return try TextualInversion(path: path, token: item["token"]?.stringValue)
            default:
                throw ChiselError(.invalidParameter, "embeddings[\(index)] must be a path or an object, got \(item.kindDescription)")
            }
        }
    }

    /// Scheduler config keys from a graph, decoded as `scheduler_config.json` is.
    static func schedulerOverrides(_ json: JSONValue) throws -> SchedulerConfig {
        guard json.members != nil else {
            throw ChiselError(.invalidParameter, "scheduler_config must be an object of scheduler config keys")
        }
        return try SchedulerConfig(reader: ConfigReader(json: json, file: "scheduler_config"))
    }

    private func isSingleFile(_ path: String) -> Bool {
        var isFolder: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && !isFolder.boolValue
    }
}
