import ChiselCore
import ChiselDiffusion
import ChiselModels
import ChiselStages
import Foundation

/// A Stable Diffusion graph in ComfyUI's API format — the `prompt` text chunk ComfyUI writes and
/// reads — in its core nodes: CheckpointLoaderSimple, LoadImage, CLIPSetLastLayer,
/// CLIPTextEncode, VAEEncode or EmptyLatentImage, KSamplerAdvanced (Chisel's `cut` strength:
/// the last int(steps × strength) steps of a `steps`-step schedule) or KSampler (`exact`
/// strength is its `denoise`), VAEDecode, SaveImage. Dropped on ComfyUI, a Chisel output loads
/// as a workflow that does the same edit; its noise is ComfyUI's own (a CPU `torch.randn` of the
/// latent from the seed), so the pixels are ComfyUI's, not Chisel's.
///
/// Graphs with stages ComfyUI's core has no equivalent for (masks and paste-back, aMUSEd's
/// tokens) and schedulers it lacks (PLMS, DPM++ 3M) get no `prompt`, rather than a wrong one.
public struct ComfyExport: GraphTextExporter {
    public static let key = "prompt"
    /// The editor-format workflow ComfyUI's frontend loads (`ComfyWorkflow`).
    public static let workflowKey = "workflow"

    public init() {}

    public func text(for graph: JSONValue) -> [(key: String, value: String)] {
        guard let prompt = Self.prompt(for: graph) else { return [] }
        var texts = [(key: Self.key, value: prompt.serialized())]
        if let workflow = ComfyWorkflow.workflow(for: prompt) { texts.append((Self.workflowKey, workflow.serialized())) }
        return texts
    }

    /// A ComfyUI node input: a literal value, or output `slot` of node `id`.
    enum Input {
        case value(JSONValue)
        case link(Int, Int)
        var json: JSONValue {
            switch self {
            case .value(let v): v
            case .link(let id, let slot): .array([.string(String(id)), .int(slot)])
            }
        }
    }

    /// The translation, or nil when any node has no ComfyUI equivalent.
    static func prompt(for graph: JSONValue) -> JSONValue? {
        guard let nodes = graph["nodes"]?.members else { return nil }
        var out: [(Int, String, [(String, Input)])] = []
        var wires: [String: Input] = [:]           // "node.port" → ComfyUI output
        var conditioning: [String: (positive: Input, negative: Input)] = [:]
        var checkpoints: [String: Int] = [:]        // model name → CheckpointLoaderSimple id
        var pending: [String: [String: JSONValue]] = [:]  // add_noise node → its params and input
        func add(_ type: String, _ inputs: [(String, Input)]) -> Int {
            out.append((out.count + 1, type, inputs))
            return out.count
        }
        func checkpoint(_ name: String) -> Int? {
            if let id = checkpoints[name] { return id }
            guard let path = graph["models"]?[name]?["path"]?.stringValue else { return nil }
            let id = add("CheckpointLoaderSimple", [("ckpt_name", .value(.string((path as NSString).lastPathComponent)))])
            checkpoints[name] = id
            return id
        }
        for node in nodes {
            guard let stage = node.value["stage"]?.stringValue else { return nil }
            let params = Dictionary((node.value["params"]?.members ?? []).map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            let inputs = Dictionary((node.value["inputs"]?.members ?? []).compactMap { m in m.value.stringValue.map { (m.key, $0) } },
                                    uniquingKeysWith: { a, _ in a })
            func wire(_ port: String) -> Input? { inputs[port].flatMap { wires[$0] } }
            let id = node.key
            switch stage {
            case LoadImageStage.schema.name:
                guard let path = params[LoadImageStage.path.name]?.stringValue else { return nil }
                let n = add("LoadImage", [("image", .value(.string((path as NSString).lastPathComponent)))])
                wires["\(id).\(LoadImageStage.image.name)"] = .link(n, 0)
            case ResizeStage.schema.name:
                // Only the rounding to the VAE's multiple, which ComfyUI's VAEEncode does itself.
                guard inputs[ResizeStage.mask.name] == nil, params[ResizeStage.scale.name] == .double(1)
                    || params[ResizeStage.scale.name] == .int(1), let source = wire(ResizeStage.image.name) else { return nil }
                wires["\(id).\(ResizeStage.resized.name)"] = source
            case EncodePromptStage.schema.name:
                guard let model = inputs[EncodePromptStage.model.name], let ckpt = checkpoint(model) else { return nil }
                var clip = Input.link(ckpt, 1)
                if case .int(let skip)? = params[EncodePromptStage.clipSkip.name], skip > 0 {
                    clip = .link(add("CLIPSetLastLayer", [("clip", clip), ("stop_at_clip_layer", .value(.int(-(skip + 1))))]), 0)
                }
                let positive = add("CLIPTextEncode", [("text", .value(params[EncodePromptStage.prompt.name] ?? "")), ("clip", clip)])
                let negative = add("CLIPTextEncode", [("text", .value(params[EncodePromptStage.negativePrompt.name] ?? "")),
                                                      ("clip", clip)])
                conditioning["\(id).\(EncodePromptStage.conditioning.name)"] = (.link(positive, 0), .link(negative, 0))
            case VAEEncodeStage.schema.name:
                guard inputs[VAEEncodeStage.mask.name] == nil, let model = inputs[VAEEncodeStage.model.name],
                      let ckpt = checkpoint(model), let pixels = wire(VAEEncodeStage.image.name) else { return nil }
                wires["\(id).\(VAEEncodeStage.latent.name)"] = .link(add("VAEEncode", [("pixels", pixels), ("vae", .link(ckpt, 2))]), 0)
                if let seed = params[VAEEncodeStage.seed.name] { pending["seed:\(id)"] = ["seed": seed] }
            case EmptyLatentStage.schema.name:
                guard inputs[EmptyLatentStage.like.name] == nil else { return nil }
                wires["\(id).\(EmptyLatentStage.latent.name)"] = .link(add("EmptyLatentImage", [
                    ("width", .value(params[EmptyLatentStage.width.name] ?? 512)),
                    ("height", .value(params[EmptyLatentStage.height.name] ?? 512)), ("batch_size", .value(1)),
                ]), 0)
            case AddNoiseStage.schema.name:
                guard let latent = inputs[AddNoiseStage.latent.name] else { return nil }
                var entry = params
                entry["_latent"] = .string(latent)
                pending[id] = entry
            case DenoiseStage.schema.name:
                guard inputs[DenoiseStage.mask.name] == nil, inputs[DenoiseStage.stream.name] == nil,
                      let noisedWire = inputs[DenoiseStage.latent.name], let noisedNode = noisedWire.split(separator: ".").first,
                      let noise = pending[String(noisedNode)], let latentWire = noise["_latent"]?.stringValue,
                      let latent = wires[latentWire], let text = inputs[DenoiseStage.conditioning.name].flatMap({ conditioning[$0] }),
                      let model = inputs[DenoiseStage.model.name], let ckpt = checkpoint(model),
                      let sampler = sampler(noise[AddNoiseStage.scheduler.name]?.stringValue ?? "auto",
                                            checkpoint: graph["models"]?[model]?["path"]?.stringValue)
                else { return nil }
                // The seed of the noise: add_noise's own, else the stream the encoder started.
                let encoderNode = latentWire.split(separator: ".").first.map(String.init) ?? ""
                var seed = noise[AddNoiseStage.seed.name] ?? .int(-1)
                if seed == .int(-1) { seed = pending["seed:\(encoderNode)"]?["seed"] ?? .int(0) }
                let steps = noise[AddNoiseStage.steps.name]?.intValue ?? 20
                let strength = noise[AddNoiseStage.strength.name]?.doubleValue ?? 1
                let exact = noise[AddNoiseStage.strengthMode.name]?.stringValue == AddNoiseStage.StrengthMode.exact.rawValue
                let common: [(String, Input)] = [
                    ("model", .link(ckpt, 0)), ("cfg", .value(params[DenoiseStage.guidance.name] ?? 7.5)),
                    ("sampler_name", .value(.string(sampler.name))), ("scheduler", .value(.string(sampler.schedule))),
                    ("positive", text.positive), ("negative", text.negative), ("latent_image", latent),
                ]
                let n: Int
                if exact {
                    n = add("KSampler", [("seed", .value(seed)), ("steps", .value(.int(steps))), ("denoise", .value(.double(strength)))] + common)
                } else {
                    let run = min(steps, Int(Double(steps) * strength))
                    n = add("KSamplerAdvanced", [
                        ("add_noise", .value("enable")), ("noise_seed", .value(seed)), ("steps", .value(.int(steps))),
                        ("start_at_step", .value(.int(steps - run))), ("end_at_step", .value(.int(steps))),
                        ("return_with_leftover_noise", .value("disable")),
                    ] + common)
                }
                wires["\(id).\(DenoiseStage.denoised.name)"] = .link(n, 0)
            case KSamplerStage.schema.name:
                // Chisel's ksampler is ComfyUI's KSampler (KSamplerAdvanced when its step range or noise is set).
                guard inputs[KSamplerStage.mask.name] == nil, let latent = wire(KSamplerStage.latent.name),
                      let text = inputs[KSamplerStage.conditioning.name].flatMap({ conditioning[$0] }),
                      let model = inputs[KSamplerStage.model.name], let ckpt = checkpoint(model) else { return nil }
                func param(_ name: String, _ fallback: JSONValue) -> JSONValue { params[name] ?? fallback }
                let seed = param(KSamplerStage.seed.name, .int(0))
                let common: [(String, Input)] = [
                    ("steps", .value(param(KSamplerStage.steps.name, .int(20)))), ("cfg", .value(param(KSamplerStage.cfg.name, .double(8)))),
                    ("sampler_name", .value(param(KSamplerStage.sampler.name, "euler"))),
                    ("scheduler", .value(param(KSamplerStage.scheduler.name, "normal"))),
                    ("model", .link(ckpt, 0)), ("positive", text.positive), ("negative", text.negative), ("latent_image", latent),
                ]
                let advanced = [KSamplerStage.startAtStep, KSamplerStage.endAtStep].contains { params[$0.name] != nil && params[$0.name] != .null }
                    || params[KSamplerStage.addNoise.name] == .bool(false) || params[KSamplerStage.leftoverNoise.name] == .bool(true)
                let n: Int
                if advanced {
                    n = add("KSamplerAdvanced", [
                        ("add_noise", .value(params[KSamplerStage.addNoise.name] == .bool(false) ? "disable" : "enable")),
                        ("noise_seed", .value(seed)),
                    ] + common + [
                        ("start_at_step", .value(param(KSamplerStage.startAtStep.name, .int(0)))),
                        ("end_at_step", .value(param(KSamplerStage.endAtStep.name, .int(10000)))),
                        ("return_with_leftover_noise", .value(params[KSamplerStage.leftoverNoise.name] == .bool(true) ? "enable" : "disable")),
                    ])
                } else {
                    n = add("KSampler", [("seed", .value(seed))] + common + [("denoise", .value(param(KSamplerStage.denoise.name, .double(1))))])
                }
                wires["\(id).\(KSamplerStage.denoised.name)"] = .link(n, 0)
            case VAEDecodeStage.schema.name:
                guard let model = inputs[VAEDecodeStage.model.name], let ckpt = checkpoint(model),
                      let samples = wire(VAEDecodeStage.latent.name) else { return nil }
                wires["\(id).\(VAEDecodeStage.image.name)"] = .link(add("VAEDecode", [("samples", samples), ("vae", .link(ckpt, 2))]), 0)
            case SaveImageStage.schema.name:
                guard let images = wire(SaveImageStage.image.name) else { return nil }
                let path = params[SaveImageStage.path.name]?.stringValue ?? "chisel"
                _ = add("SaveImage", [("images", images),
                                      ("filename_prefix", .value(.string(ImageOrigin(path: path).stem)))])
            default:
                return nil
            }
        }
        guard out.contains(where: { $0.1 == "SaveImage" }) else { return nil }
        return .object(out.map { id, type, inputs in
            JSONMember(key: String(id), value: .object([
                JSONMember(key: "class_type", value: .string(type)),
                JSONMember(key: "inputs", value: .object(inputs.map { JSONMember(key: $0.0, value: $0.1.json) })),
            ]))
        })
    }

    /// ComfyUI's sampler and scheduler names for a Chisel scheduler; nil where ComfyUI has none.
    static func sampler(_ name: String, checkpoint: String?) -> (name: String, schedule: String)? {
        var kind = try? SchedulerKind(named: name)
        if name == "auto", let checkpoint, case .stableDiffusion(let facts)? = try? ModelFacts(path: checkpoint) {
            kind = try? SchedulerKind.declared(by: facts.scheduler)
        }
        guard let kind else { return nil }
        switch kind {
        case .euler: return ("euler", "normal")
        case .eulerKarras: return ("euler", "karras")
        case .eulerAncestral: return ("euler_ancestral", "normal")
        case .heun: return ("heun", "normal")
        case .heunKarras: return ("heun", "karras")
        case .lms: return ("lms", "normal")
        case .lmsKarras: return ("lms", "karras")
        case .dpmpp2M: return ("dpmpp_2m", "normal")
        case .dpmpp2MKarras: return ("dpmpp_2m", "karras")
        case .dpmpp2MSDE: return ("dpmpp_2m_sde", "normal")
        case .dpmpp2MSDEKarras: return ("dpmpp_2m_sde", "karras")
        case .ddim: return ("ddim", "ddim_uniform")
        case .ddpm: return ("ddpm", "normal")
        case .unipc: return ("uni_pc", "normal")
        case .lcm: return ("lcm", "normal")
        case .pndm, .dpmpp3M, .dpmpp3MKarras: return nil
        }
    }
}
