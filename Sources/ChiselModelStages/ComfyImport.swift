import ChiselCore
import ChiselDiffusion
import ChiselStages
import Foundation

/// A ComfyUI API-format workflow (the `prompt` a ComfyUI PNG carries, or "Save (API Format)"'s
/// JSON) as a Chisel graph, node for node where Chisel has the equivalent:
///
/// | ComfyUI | Chisel |
/// |---|---|
/// | CheckpointLoaderSimple | a model entry (`--model NAME=PATH` names its file) |
/// | LoraLoader | the model entry's `loras` |
/// | CLIPSetLastLayer | `clip_skip` (−2 is 1) |
/// | CLIPTextEncode (positive and negative of a sampler) | `encode_prompt`, chunk mode, ComfyUI's weighting |
/// | LoadImage | `load_image` |
/// | ImageScale | `resize` |
/// | LoadImage's MASK, LoadImageMask | `load_mask` (alpha: 1 − alpha; red, green, blue) |
/// | VAEEncode | `resize` to multiples of 8, `vae_encode` (sampling mean, as ComfyUI's encoder) |
/// | VAEEncodeForInpaint | `vae_encode_for_inpaint` (its latent and grown mask to `ksampler`) |
/// | SetLatentNoiseMask | `ksampler`'s mask input |
/// | EmptyLatentImage | `empty_latent` |
/// | KSampler, KSamplerAdvanced | `ksampler` (ComfyUI's noise, schedulers, samplers) |
/// | VAEDecode | `vae_decode` |
/// | SaveImage | `save_image` (`PREFIX_00001_.png`) |
/// | PreviewImage | nothing (it saves no file) |
///
/// Any other node a SaveImage depends on is reported by id and class, with why.
public enum ComfyImport {
    /// A node that could not be translated.
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        public let id: String
        public let classType: String
        public let reason: String
        public var description: String { "node \(id) (\(classType)): \(reason)" }
    }

    public struct Result: Sendable {
        /// The graph, or nil when no SaveImage could be translated whole.
        public let graph: JSONValue?
        public let problems: [Problem]
        /// The checkpoint file names the workflow loads, with the graph's model names for them.
        public let checkpoints: [(model: String, file: String)]
    }

    /// Whether `json` is an API-format workflow: an object of nodes that each have a class_type.
    public static func isAPIWorkflow(_ json: JSONValue) -> Bool {
        guard let members = json.members, !members.isEmpty else { return false }
        return members.allSatisfy { $0.value["class_type"]?.stringValue != nil }
    }

    /// Whether `json` is the frontend's workflow format (nodes and links), which carries no
    /// ComfyUI semantics without its node definitions.
    public static func isUIWorkflow(_ json: JSONValue) -> Bool {
        if case .array? = json["nodes"], json["links"] != nil { return true }
        return false
    }

    /// Translates `workflow`. `checkpoints` maps a ckpt_name to the path to load (a name not in
    /// it stays as written; `--model` replaces it by the graph's model name); `folder` is where
    /// LoadImage's names and LoraLoader's files are looked for.
    /// `image`, when given, is loaded in place of the one LoadImage node's file.
    /// `batch` names saved files `PREFIX_{stem}.png` (each input's stem) instead of ComfyUI's first
    /// `PREFIX_00001_.png`, for `chisel batch`.
    public static func translate(_ workflow: JSONValue, checkpoints: [String: String] = [:], folder: String? = nil,
                                 image: String? = nil, batch: Bool = false) -> Result {
        var translator = Translator(workflow: workflow, checkpointPath: checkpoints, folder: folder)
        translator.image = image
        translator.batch = batch
        let loaders = (workflow.members ?? []).filter { $0.value["class_type"]?.stringValue == "LoadImage" }
        if image != nil, loaders.count > 1 {
            return Result(graph: nil, problems: loaders.map {
                Problem(id: $0.key, classType: "LoadImage", reason: "the workflow loads \(loaders.count) images; --image replaces one only")
            }, checkpoints: [])
        }
        translator.run()
        // (A ternary with nil would make JSON null here: JSONValue takes nil literals.)
        var graph: JSONValue?
        if translator.saved > 0 { graph = translator.builder.graph(description: translator.description) }
        return Result(graph: graph,
                      problems: translator.problems, checkpoints: translator.checkpointNames)
    }

    enum Value {
        case model(Checkpoint)
        case clip(Checkpoint, skip: Int)
        case vae(Checkpoint)
        case conditioning(text: String, clip: Checkpoint, skip: Int)
        case image(Wire<Image>)
        case mask(Wire<Mask>)
        case latent(Wire<Latent>)
        /// A latent with a noise mask (SetLatentNoiseMask, VAEEncodeForInpaint).
        case masked(Wire<Latent>, Wire<Mask>)
        /// An EmptyLatentImage: made for the model of the sampler that takes it.
        case empty(id: String, width: Int, height: Int)
    }

    /// A checkpoint with the LoRAs applied to it: one model entry of the graph.
    struct Checkpoint: Hashable {
        var node: String
        var loras: [Lora] = []
    }

    struct Lora: Hashable {
        var file: String
        var strength: Double
    }

    struct Failure: Error {
        let problem: Problem
    }

    struct Translator {
        let workflow: JSONValue
        let checkpointPath: [String: String]
        let folder: String?
        var builder = GraphBuilder()
        var values: [String: Value] = [:]      // "id:slot" → translated output
        var models: [Checkpoint: ModelRef] = [:]
        var checkpointNames: [(model: String, file: String)] = []
        var problems: [Problem] = []
        var reported: Set<String> = []
        var saved = 0
        var description = "from a ComfyUI workflow"
        var image: String?
        var batch = false

        init(workflow: JSONValue, checkpointPath: [String: String], folder: String?) {
            self.workflow = workflow
            self.checkpointPath = checkpointPath
            self.folder = folder
        }

        /// Node ids in numeric order where they are numbers, as ComfyUI orders its outputs.
        var ids: [String] {
            (workflow.members ?? []).map(\.key).sorted { a, b in
                switch (Int(a), Int(b)) {
                case let (x?, y?): x < y
                case (_?, nil): true
                case (nil, _?): false
                default: a < b
                }
            }
        }

        /// For each checkpoint loader, the one LoRA variant its samplers use: its VAE is that
        /// model entry's, so that one entry loads (a LoRA leaves the VAE as it is).
        var variants: [String: Checkpoint] = [:]

        mutating func run() {
            var seen: [String: Set<Checkpoint>] = [:]
            for id in ids where ["KSampler", "KSamplerAdvanced"].contains(workflow[id]?["class_type"]?.stringValue ?? "") {
                if let inputs = workflow[id]?["inputs"], case .model(let checkpoint)? = try? input(id, "KSampler", inputs, "model") {
                    seen[checkpoint.node, default: []].insert(checkpoint)
                }
            }
            for (node, used) in seen where used.count == 1 { variants[node] = used.first }
            for id in ids {
                let type = workflow[id]?["class_type"]?.stringValue ?? "?"
                guard type == "SaveImage" else { continue }
                do {
                    try save(id)
                    saved += 1
                } catch let failure as Failure {
                    report(failure.problem)
                } catch {
                    report(Problem(id: id, classType: type, reason: "\(error)"))
                }
            }
            if saved == 0, problems.isEmpty {
                problems.append(Problem(id: "-", classType: "SaveImage", reason: "the workflow saves no image: it has no SaveImage node"))
            }
        }

        mutating func report(_ problem: Problem) {
            if reported.insert(problem.id).inserted { problems.append(problem) }
        }

        func node(_ id: String) throws -> (type: String, inputs: JSONValue) {
            guard let entry = workflow[id], let type = entry["class_type"]?.stringValue else {
                throw Failure(problem: Problem(id: id, classType: "?", reason: "no such node in the workflow"))
            }
            return (type, entry["inputs"] ?? .object([]))
        }

        func fail(_ id: String, _ type: String, _ reason: String) -> Failure {
            Failure(problem: Problem(id: id, classType: type, reason: reason))
        }

        func literal(_ id: String, _ type: String, _ inputs: JSONValue, _ key: String) throws -> JSONValue {
            guard let value = inputs[key] else { throw fail(id, type, "input '\(key)' is missing") }
            if case .array(let link) = value, link.count == 2, link[0].stringValue != nil {
                throw fail(id, type, "input '\(key)' comes from another node; Chisel takes it as a value only")
            }
            return value
        }

        func string(_ id: String, _ type: String, _ inputs: JSONValue, _ key: String) throws -> String {
            guard let text = try literal(id, type, inputs, key).stringValue else { throw fail(id, type, "input '\(key)' is not a string") }
            return text
        }

        func number(_ id: String, _ type: String, _ inputs: JSONValue, _ key: String) throws -> Double {
            guard let value = try literal(id, type, inputs, key).doubleValue else { throw fail(id, type, "input '\(key)' is not a number") }
            return value
        }

        func integer(_ id: String, _ type: String, _ inputs: JSONValue, _ key: String) throws -> Int {
            let value = try number(id, type, inputs, key)
            guard value == value.rounded(), abs(value) < 1e18 else { throw fail(id, type, "input '\(key)' is not an integer") }
            return Int(value)
        }

        /// The value of input `key` of node `id`: a link `[source, slot]`, translated.
        mutating func input(_ id: String, _ type: String, _ inputs: JSONValue, _ key: String) throws -> Value {
            guard case .array(let link)? = inputs[key], link.count == 2, let source = link[0].stringValue ?? link[0].intValue.map(String.init),
                  let slot = link[1].intValue else {
                throw fail(id, type, "input '\(key)' must be a link to another node's output")
            }
            return try output(source, slot: slot)
        }

        mutating func output(_ id: String, slot: Int) throws -> Value {
            if let value = values["\(id):\(slot)"] { return value }
            let value = try translate(id, slot: slot)
            values["\(id):\(slot)"] = value
            return value
        }

        func path(_ name: String) -> String {
            guard let folder, !name.hasPrefix("/") else { return name }
            return (folder as NSString).appendingPathComponent(name)
        }

        mutating func model(_ checkpoint: Checkpoint) throws -> ModelRef {
            if let ref = models[checkpoint] { return ref }
            let (type, inputs) = try node(checkpoint.node)
            let file = try string(checkpoint.node, type, inputs, "ckpt_name")
            let name = models.isEmpty ? "sd" : "sd_\(checkpoint.node)\(checkpoint.loras.isEmpty ? "" : "_\(models.count)")"
            var options: [(String, JSONValue)] = []
            if !checkpoint.loras.isEmpty {
                options.append(("loras", .array(checkpoint.loras.map { lora in
                    .object([JSONMember(key: "path", value: .string(path(lora.file))),
                             JSONMember(key: "scale", value: .double(lora.strength))])
                })))
            }
            let ref = builder.model(name, path: checkpointPath[file] ?? file, options: options)
            checkpointNames.append((name, file))
            models[checkpoint] = ref
            return ref
        }

        mutating func translate(_ id: String, slot: Int) throws -> Value {
            let (type, inputs) = try node(id)
            switch (type, slot) {
            case ("CheckpointLoaderSimple", 0): return .model(Checkpoint(node: id))
            case ("CheckpointLoaderSimple", 1): return .clip(Checkpoint(node: id), skip: 0)
            case ("CheckpointLoaderSimple", 2): return .vae(variants[id] ?? Checkpoint(node: id))
            case ("LoraLoader", 0), ("LoraLoader", 1):
                guard case .model(var checkpoint) = try input(id, type, inputs, "model"),
                      case .clip(let clipCheckpoint, let skip) = try input(id, type, inputs, "clip") else {
                    throw fail(id, type, "its model and clip must come from a checkpoint loader")
                }
                let strength = try number(id, type, inputs, "strength_model")
                let clipStrength = try number(id, type, inputs, "strength_clip")
                guard strength == clipStrength else {
                    throw fail(id, type, "strength_model \(strength) and strength_clip \(clipStrength) differ; Chisel applies a LoRA "
                               + "to the UNet and the text encoder at one scale")
                }
                guard clipCheckpoint == checkpoint, skip == 0 else {
                    throw fail(id, type, "its clip must be the same checkpoint's, before CLIPSetLastLayer")
                }
                checkpoint.loras.append(Lora(file: try string(id, type, inputs, "lora_name"), strength: strength))
                return slot == 0 ? .model(checkpoint) : .clip(checkpoint, skip: 0)
            case ("CLIPSetLastLayer", 0):
                guard case .clip(let checkpoint, _) = try input(id, type, inputs, "clip") else {
                    throw fail(id, type, "its clip must come from a checkpoint loader")
                }
                let layer = try integer(id, type, inputs, "stop_at_clip_layer")
                guard (-12 ... -1).contains(layer) else { throw fail(id, type, "stop_at_clip_layer \(layer) is outside -12…-1") }
                return .clip(checkpoint, skip: -layer - 1)
            case ("CLIPTextEncode", 0):
                guard case .clip(let checkpoint, let skip) = try input(id, type, inputs, "clip") else {
                    throw fail(id, type, "its clip must come from a checkpoint loader")
                }
                return .conditioning(text: try string(id, type, inputs, "text"), clip: checkpoint, skip: skip)
            case ("LoadImage", 0):
                let name = try string(id, type, inputs, "image")
                let node = builder.node("load_\(id)", LoadImageStage.self, params: [LoadImageStage.path(image ?? path(name))])
                return .image(node[LoadImageStage.image])
            case ("LoadImage", 1):
                // ComfyUI's mask of a loaded image: 1 − alpha.
                let name = try string(id, type, inputs, "image")
                let node = builder.node("alpha_\(id)", LoadMaskStage.self,
                                        params: [LoadMaskStage.path(image ?? path(name)), MaskSource.source(.alpha)])
                return .mask(node[LoadMaskStage.mask])
            case ("LoadImageMask", 0):
                let name = try string(id, type, inputs, "image")
                let channels: [String: MaskSource] = ["red": .red, "green": .green, "blue": .blue, "alpha": .alpha]
                let channel = try string(id, type, inputs, "channel")
                guard let source = channels[channel] else { throw fail(id, type, "channel '\(channel)' is not red, green, blue or alpha") }
                let node = builder.node("mask_\(id)", LoadMaskStage.self, params: [LoadMaskStage.path(path(name)), MaskSource.source(source)])
                return .mask(node[LoadMaskStage.mask])
            case ("SetLatentNoiseMask", 0):
                guard case .mask(let mask) = try input(id, type, inputs, "mask") else { throw fail(id, type, "its mask is not a mask") }
                switch try input(id, type, inputs, "samples") {
                case .latent(let latent), .masked(let latent, _): return .masked(latent, mask)
                default: throw fail(id, type, "its samples must be an encoded image's latent")
                }
            case ("VAEEncodeForInpaint", 0):
                guard case .image(let image) = try input(id, type, inputs, "pixels"),
                      case .vae(let checkpoint) = try input(id, type, inputs, "vae"),
                      case .mask(let mask) = try input(id, type, inputs, "mask") else {
                    throw fail(id, type, "its pixels must be an image, its vae a checkpoint's and its mask a mask")
                }
                let sd = try model(checkpoint)
                let node = builder.node("encode_\(id)", VAEEncodeForInpaintStage.self,
                                        params: [VAEEncodeForInpaintStage.growMaskBy(try integer(id, type, inputs, "grow_mask_by"))],
                                        inputs: [VAEEncodeForInpaintStage.model(sd), VAEEncodeForInpaintStage.image(image),
                                                 VAEEncodeForInpaintStage.mask(mask)])
                return .masked(node[VAEEncodeForInpaintStage.latent], node[VAEEncodeForInpaintStage.grownMask])
            case ("ImageScale", 0):
                guard case .image(let image) = try input(id, type, inputs, "image") else { throw fail(id, type, "its image is not an image") }
                let method = try string(id, type, inputs, "upscale_method")
                let filters: [String: ResampleFilter] = ["nearest-exact": .nearest, "bilinear": .bilinear, "bicubic": .bicubic,
                                                         "lanczos": .lanczos]
                guard let filter = filters[method] else {
                    throw fail(id, type, "upscale_method '\(method)' has no Chisel filter (it has nearest-exact, bilinear, bicubic, lanczos)")
                }
                let crop = try string(id, type, inputs, "crop")
                let (width, height) = (try integer(id, type, inputs, "width"), try integer(id, type, inputs, "height"))
                guard width > 0, height > 0 else { throw fail(id, type, "width and height 0 (keep the aspect) are not translated") }
                let node = builder.node("scale_\(id)", ResizeStage.self, params: [
                    ResizeStage.width(width), ResizeStage.height(height), ResizeStage.mode(crop == "center" ? .fill : .stretch),
                    ResizeStage.filter(filter),
                ], inputs: [ResizeStage.image(image)])
                return .image(node[ResizeStage.resized])
            case ("VAEEncode", 0):
                guard case .image(let image) = try input(id, type, inputs, "pixels"),
                      case .vae(let checkpoint) = try input(id, type, inputs, "vae") else {
                    throw fail(id, type, "its pixels must be an image and its vae a checkpoint's")
                }
                let sd = try model(checkpoint)
                let sized = builder.node("sized_\(id)", ResizeStage.self, params: [ResizeStage.scale(1), ResizeStage.multipleOf(8)],
                                         inputs: [ResizeStage.image(image)])
                let node = builder.node("encode_\(id)", VAEEncodeStage.self, params: [VAEEncodeStage.sampling(.mean)],
                                        inputs: [VAEEncodeStage.model(sd), VAEEncodeStage.image(sized[ResizeStage.resized])])
                return .latent(node[VAEEncodeStage.latent])
            case ("EmptyLatentImage", 0):
                guard try integer(id, type, inputs, "batch_size") == 1 else { throw fail(id, type, "batch_size other than 1") }
                // The model the latent is for is not known here; the sampler that takes it connects it.
                let width = try integer(id, type, inputs, "width"), height = try integer(id, type, inputs, "height")
                return .empty(id: id, width: width, height: height)
            case ("KSampler", 0), ("KSamplerAdvanced", 0):
                return .latent(try sampler(id, type, inputs))
            case ("VAEDecode", 0):
                let latent = try input(id, type, inputs, "samples")
                guard case .vae(let checkpoint) = try input(id, type, inputs, "vae") else {
                    throw fail(id, type, "its vae must be a checkpoint's")
                }
                let sd = try model(checkpoint)
                let node = builder.node("decode_\(id)", VAEDecodeStage.self,
                                        inputs: [VAEDecodeStage.model(sd), VAEDecodeStage.latent(try realized(latent, model: sd, id, type))])
                return .image(node[VAEDecodeStage.image])
            default:
                throw fail(id, type, slot == 0 ? "no Chisel equivalent is implemented for this node"
                           : "output \(slot) of this node has no Chisel equivalent")
            }
        }

        /// A latent input's wire; an EmptyLatentImage's latent is made for the model that takes it.
        mutating func realized(_ value: Value, model sd: ModelRef, _ id: String, _ type: String) throws -> Wire<Latent> {
            switch value {
            case .latent(let wire), .masked(let wire, _): return wire
            case .empty(let source, let width, let height):
                let key = "empty:\(source):\(sd.name)"
                if case .latent(let made)? = values[key] { return made }
                let node = builder.node("empty_\(source)\(values.keys.contains { $0.hasPrefix("empty:\(source):") } ? "_\(sd.name)" : "")",
                                        EmptyLatentStage.self, params: [EmptyLatentStage.width(width), EmptyLatentStage.height(height)],
                                        inputs: [EmptyLatentStage.model(sd)])
                values[key] = .latent(node[EmptyLatentStage.latent])
                return node[EmptyLatentStage.latent]
            default:
                throw fail(id, type, "its latent input is not a latent")
            }
        }

        mutating func sampler(_ id: String, _ type: String, _ inputs: JSONValue) throws -> Wire<Latent> {
            guard case .model(let checkpoint) = try input(id, type, inputs, "model") else {
                throw fail(id, type, "its model must come from a checkpoint loader")
            }
            guard case .conditioning(let positive, let clip, let skip) = try input(id, type, inputs, "positive"),
                  case .conditioning(let negative, let negativeClip, let negativeSkip) = try input(id, type, inputs, "negative") else {
                throw fail(id, type, "its positive and negative must come from CLIPTextEncode nodes")
            }
            guard clip == checkpoint, negativeClip == checkpoint, skip == negativeSkip else {
                throw fail(id, type, "its prompts must be encoded by its own checkpoint's CLIP, both with the same clip layer")
            }
            let latent = try input(id, type, inputs, "latent_image")
            let advanced = type == "KSamplerAdvanced"
            let samplerName = try string(id, type, inputs, "sampler_name")
            guard let kind = KSamplerKind(rawValue: samplerName) else {
                let known = KSamplerKind.unimplemented.contains(samplerName) ? "ComfyUI's sampler '\(samplerName)' is not implemented"
                    : "unknown sampler '\(samplerName)'"
                throw fail(id, type, "\(known); Chisel has \(KSamplerKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let scheduleName = try string(id, type, inputs, "scheduler")
            guard let schedule = KSchedule(rawValue: scheduleName) else {
                let known = KSchedule.unimplemented.contains(scheduleName) ? "ComfyUI's scheduler '\(scheduleName)' is not implemented"
                    : "unknown scheduler '\(scheduleName)'"
                throw fail(id, type, "\(known); Chisel has \(KSchedule.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let seedValue = try number(id, type, inputs, advanced ? "noise_seed" : "seed")
            guard seedValue >= 0, seedValue == seedValue.rounded(), seedValue <= Double(UInt64.max) else {
                throw fail(id, type, "the seed \(seedValue) is not in 0…2⁶⁴−1")
            }
            // Seeds above 2⁵³ lose digits in a double; read the literal again as an integer.
            let seed: UInt64 = inputs[advanced ? "noise_seed" : "seed"].flatMap { $0.intValue.map { UInt64(bitPattern: Int64($0)) } }
                ?? UInt64(seedValue)
            let sd = try model(checkpoint)
            let text = builder.node("text_\(id)", EncodePromptStage.self, params: [
                EncodePromptStage.prompt(positive), EncodePromptStage.negativePrompt(negative), EncodePromptStage.clipSkip(skip),
                EncodePromptStage.mode(.chunk), EncodePromptStage.weighting(.comfy),
            ], inputs: [EncodePromptStage.model(sd)])
            var params: [ParamSetting] = [
                KSamplerStage.seed(.fixed(seed)), KSamplerStage.steps(try integer(id, type, inputs, "steps")),
                KSamplerStage.cfg(try number(id, type, inputs, "cfg")), KSamplerStage.sampler(kind), KSamplerStage.scheduler(schedule),
            ]
            if advanced {
                params += [
                    KSamplerStage.addNoise(try string(id, type, inputs, "add_noise") == "enable"),
                    KSamplerStage.startAtStep(try integer(id, type, inputs, "start_at_step")),
                    KSamplerStage.endAtStep(min(try integer(id, type, inputs, "end_at_step"), 10000)),
                    KSamplerStage.leftoverNoise(try string(id, type, inputs, "return_with_leftover_noise") == "enable"),
                ]
            } else {
                params.append(KSamplerStage.denoise(try number(id, type, inputs, "denoise")))
            }
            var connections = [
                KSamplerStage.model(sd), KSamplerStage.latent(try realized(latent, model: sd, id, type)),
                KSamplerStage.conditioning(text[EncodePromptStage.conditioning]),
            ]
            if case .masked(_, let mask) = latent { connections.append(KSamplerStage.mask(mask)) }
            let node = builder.node("sample_\(id)", KSamplerStage.self, params: params, inputs: connections)
            if description == "from a ComfyUI workflow" { description = "from a ComfyUI workflow: \(positive)" }
            return node[KSamplerStage.denoised]
        }

        mutating func save(_ id: String) throws {
            let (type, inputs) = try node(id)
            guard case .image(let image) = try input(id, type, inputs, "images") else { throw fail(id, type, "its images are not images") }
            let prefix = (inputs["filename_prefix"]?.stringValue ?? "ComfyUI")
            // ComfyUI's first file name for the prefix; a folder in the prefix is not kept.
            let stem = (prefix as NSString).lastPathComponent
            let name = stem.isEmpty ? "ComfyUI" : stem
            builder.node("save_\(id)", SaveImageStage.self, params: [SaveImageStage.path(batch ? "\(name)_{stem}.png" : "\(name)_00001_.png")],
                         inputs: [SaveImageStage.image(image)])
        }
    }
}
