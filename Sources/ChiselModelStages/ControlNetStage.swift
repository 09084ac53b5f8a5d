import ChiselCore
import ChiselModels
import ChiselTensor
import Foundation

/// A loaded ControlNet, with what AUTOMATIC1111's infotext names it by.
public final class LoadedControlNet: LoadedModel {
    public let network: ControlNetModel
    public let path: String
    public let precision: Precision
    public var kind: String { "controlnet" }
    public var summary: String { "ControlNet for \(ControlNetFacts(config: network.config).familyName), \(precision.rawValue)" }

    init(network: ControlNetModel, path: String, precision: Precision) {
        self.network = network
        self.path = path
        self.precision = precision
    }

    /// The file or folder name without extension, as A1111 lists ControlNet models.
    public var name: String {
        let last = path.split(separator: "/").last.map(String.init) ?? path
        for suffix in [".safetensors", ".pth", ".ckpt"] where last.hasSuffix(suffix) { return String(last.dropLast(suffix.count)) }
        return last
    }
}

/// Opens ControlNets named in a graph's `models` section (`"kind": "controlnet"`, or recognised
/// by a folder's config.json naming ControlNetModel, or a single file's tensors). Options:
/// `"dtype": "fp32" | "bf16"`, `"variant"` as for checkpoints, and for single files `"hints"`,
/// config values the tensors cannot tell (`{"attention_head_dim": 8}`).
public struct ControlNetLoader: ModelLoader {
    public let kind = "controlnet"

    public init() {}

    public func recognizes(path: String) -> Bool { ControlNetSource.recognizes(path: path) }

    /// A single file's assumed config values, said once when the graph is validated.
    public func warnings(with spec: ModelSpec) -> [String] {
        let hints = Dictionary((spec.options["hints"]?.members ?? []).map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        guard let source = try? ControlNetSource(path: spec.path, hints: hints), !source.assumed.isEmpty else { return [] }
        return ["a single-file ControlNet cannot tell \(source.assumed.joined(separator: ", ")); assumed (give the entry's hints where it differs)"]
    }

    public func problems(with spec: ModelSpec) -> [ModelOptionProblem] {
        spec.options.sorted(by: { $0.key < $1.key }).compactMap { key, value in
            switch key {
            case "dtype":
                value.stringValue.flatMap({ StableDiffusionLoader.dtypes[$0] }) == nil
                    ? ModelOptionProblem(key: key, message: "dtype must be one of \(StableDiffusionLoader.dtypes.keys.sorted().joined(separator: ", "))")
                    : nil
            case "variant":
                value.stringValue?.isEmpty ?? true ? ModelOptionProblem(key: key, message: "variant must be a file-name suffix such as \"fp16\"") : nil
            case "hints":
                value.members == nil ? ModelOptionProblem(key: key, message: "hints must be an object of config key → value") : nil
            default:
                ModelOptionProblem(key: key, message: "unknown option '\(key)' for a ControlNet; it takes dtype, variant and hints")
            }
        }
    }

    public func load(_ spec: ModelSpec) async throws -> any LoadedModel {
        if let problem = problems(with: spec).first { throw ChiselError(.model, problem.message, file: spec.path) }
        let precision = spec.options["dtype"]?.stringValue.flatMap { StableDiffusionLoader.dtypes[$0] } ?? .f32
        let hints = Dictionary((spec.options["hints"]?.members ?? []).map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        let source = try ControlNetSource(path: spec.path, variant: spec.options["variant"]?.stringValue, hints: hints)
        return LoadedControlNet(network: try source.load(precision: precision), path: spec.path, precision: precision)
    }
}

/// Adds a ControlNet and its control image to a chain that `denoise` applies (diffusers'
/// ControlNet pipelines; several chained nodes are its MultiControlNet, their residuals summed).
public enum ControlNetStage: Stage {
    public static let model = ModelInput("model", "A ControlNet from the graph's models section (kind controlnet).")
    public static let image = Input<Image>(
        "image", "The control image (an edge, depth or pose map, a tile of the photo); resized to the edit's size when it differs.")
    public static let mask = OptionalInput<Mask>(
        "mask", "The inpaint ControlNet's condition: the image's pixels under the mask (over 0.5) become −1.")
    public static let previous = OptionalInput<Control>("control", "ControlNets already chained; this one is added after them.")
    public static let control = Output<Control>("control", "The chain with this ControlNet added, for denoise's control input.")
    public static let scale = Param<Double>("scale", default: 1, range: 0...10,
                                            "How strongly the ControlNet steers (controlnet_conditioning_scale; A1111's Weight).")
    public static let start = Param<Double>("start", default: 0, range: 0...1,
                                            "The share of the steps before the ControlNet starts (control_guidance_start).")
    public static let end = Param<Double>("end", default: 1, range: 0...1,
                                          "The share of the steps after which it stops (control_guidance_end).")
    public static let guessMode = Param<Bool>(
        "guess_mode", default: false,
        "Residuals for the prompt's half of a guided batch only, weighted 0.1 (first skip) to 1 (mid block), as diffusers' guess_mode.")
    public static let module = Param<String>(
        "module", default: "none",
        "The preprocessor that made the image, as the infotext's ControlNet entry names it (canny, tile_resample, inpaint_only, none).")

    public static let schema = StageSchema(
        "controlnet", "Add a ControlNet and its control image to the ControlNets a denoise applies.",
        inputs: [model, image, mask, previous], outputs: [control], params: [scale, start, end, guessMode, module])

    public static func validate(_ check: inout StageCheck) throws {
        if try check[start] >= check[end] {
            check.reject(end, "end (\(try check[end])) must be after start (\(try check[start]))")
        }
        switch ModelFacts(check.source(of: model)) {
        case .stableDiffusion?, .amused?:
            check.reject(input: model, "this stage takes a ControlNet (a ControlNetModel folder); the model is a checkpoint", code: .model)
        case .t2iAdapter?:
            check.reject(input: model, "this stage takes a ControlNet; the model is a T2I-Adapter (t2i_adapter takes it)", code: .model)
        case .controlNet?, nil:
            break
        }
    }

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let handle = try call.model(model, as: LoadedControlNet.self)
        let (from, to) = (try call[start], try call[end])
        guard from < to else { throw call.failure("end (\(to)) must be after start (\(from))", code: .invalidParameter) }
        let picture = try call[image]
        let cover = try call[mask]
        if let cover, cover.width != picture.width || cover.height != picture.height {
            throw call.failure("the mask is \(cover.width)×\(cover.height) but the control image is \(picture.width)×\(picture.height)",
                               code: .invalidParameter)
        }
        var chain = try call[previous] ?? Control(units: [])
        let named = try call[module]
        chain.units.append(Control.Unit(model: handle, image: picture, mask: cover, scale: try call[scale], start: from, end: to,
                                        guessMode: try call[guessMode], module: cover != nil && named == "none" ? "inpaint_only" : named))
        return [control(chain)]
    }
}

/// A loaded T2I-Adapter, with the name the infotext gives it.
public final class LoadedT2IAdapter: LoadedModel {
    public let network: T2IAdapter
    public let path: String
    public let precision: Precision
    public var kind: String { "t2i_adapter" }
    public var summary: String { "T2I-Adapter (\(network.config.kind.rawValue)), \(precision.rawValue)" }

    init(network: T2IAdapter, path: String, precision: Precision) {
        self.network = network
        self.path = path
        self.precision = precision
    }

    public var name: String { path.split(separator: "/").last.map(String.init) ?? path }
}

/// Opens T2I-Adapters named in a graph's `models` section (`"kind": "t2i_adapter"`, or a folder
/// whose config.json names T2IAdapter). Options: `dtype`, `variant`.
public struct T2IAdapterLoader: ModelLoader {
    public let kind = "t2i_adapter"

    public init() {}

    public func recognizes(path: String) -> Bool { T2IAdapterSource.recognizes(path: path) }

    public func problems(with spec: ModelSpec) -> [ModelOptionProblem] {
        spec.options.keys.sorted().flatMap { key -> [ModelOptionProblem] in
            guard key == "dtype" || key == "variant" else {
                return [ModelOptionProblem(key: key, message: "unknown option '\(key)' for a T2I-Adapter; it takes dtype and variant")]
            }
            var option = spec
            option.options = spec.options.filter { $0.key == key }
            return ControlNetLoader().problems(with: option)
        }
    }

    public func load(_ spec: ModelSpec) async throws -> any LoadedModel {
        if let problem = problems(with: spec).first { throw ChiselError(.model, problem.message, file: spec.path) }
        let precision = spec.options["dtype"]?.stringValue.flatMap { StableDiffusionLoader.dtypes[$0] } ?? .f32
        let source = try T2IAdapterSource(path: spec.path, variant: spec.options["variant"]?.stringValue)
        return LoadedT2IAdapter(network: try source.load(precision: precision), path: spec.path, precision: precision)
    }
}

/// Adds a T2I-Adapter and its control image to the chain `denoise` applies (diffusers'
/// StableDiffusionAdapterPipeline / StableDiffusionXLAdapterPipeline; several are summed, each
/// by its scale). Its features are computed once and added inside the UNet's down blocks while
/// it acts.
public enum T2IAdapterStage: Stage {
    public static let model = ModelInput("model", "A T2I-Adapter from the graph's models section (kind t2i_adapter).")
    public static let image = Input<Image>(
        "image", "The control image (sketch, depth, pose, edges); grey for a 1-channel adapter; resized to the edit's size when it differs.")
    public static let previous = OptionalInput<Control>("control", "ControlNets and adapters already chained; this one is added after them.")
    public static let control = Output<Control>("control", "The chain with this adapter added, for denoise's control input.")
    public static let scale = Param<Double>("scale", default: 1, range: 0...10,
                                            "The features' multiplier (adapter_conditioning_scale).")
    public static let start = Param<Double>("start", default: 0, range: 0...1, "The share of the steps before the adapter starts.")
    public static let end = Param<Double>(
        "end", default: 1, range: 0...1,
        "The share of the steps it acts for (adapter_conditioning_factor: the steps before int(steps × end)).")
    public static let module = Param<String>("module", default: "none", "The preprocessor that made the image, for the infotext.")

    public static let schema = StageSchema(
        "t2i_adapter", "Add a T2I-Adapter and its control image to the ControlNets and adapters a denoise applies.",
        inputs: [model, image, previous], outputs: [control], params: [scale, start, end, module])

    public static func validate(_ check: inout StageCheck) throws {
        if try check[start] >= check[end] {
            check.reject(end, "end (\(try check[end])) must be after start (\(try check[start]))")
        }
        switch ModelFacts(check.source(of: model)) {
        case .stableDiffusion?, .amused?, .controlNet?:
            check.reject(input: model, "this stage takes a T2I-Adapter (a T2IAdapter folder)", code: .model)
        case .t2iAdapter?, nil:
            break
        }
    }

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let handle = try call.model(model, as: LoadedT2IAdapter.self)
        let (from, to) = (try call[start], try call[end])
        guard from < to else { throw call.failure("end (\(to)) must be after start (\(from))", code: .invalidParameter) }
        var chain = try call[previous] ?? Control(units: [])
        chain.units.append(Control.Unit(model: handle, image: try call[image], scale: try call[scale], start: from, end: to,
                                        module: try call[module]))
        return [control(chain)]
    }
}
