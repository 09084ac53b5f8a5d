import ChiselCore
import ChiselModels
import ChiselTensor
import Foundation

extension AmusedModel: LoadedModel {
    /// The folder name, as image metadata names a model.
    public var name: String { path.split(separator: "/").last.map(String.init) ?? path }
}

/// Opens aMUSEd diffusers folders (VQ model, text encoder with projection, U-ViT, scheduler)
/// named in a graph's `models` section. Options: `"dtype": "fp32" | "bf16"`, `"variant"`.
public struct AmusedLoader: ModelLoader {
    public let kind = "amused"

    public init() {}

    public func recognizes(path: String) -> Bool { AmusedModel.isFolder(path) }

    public func problems(with spec: ModelSpec) -> [ModelOptionProblem] {
        var problems: [ModelOptionProblem] = []
        for (key, value) in spec.options.sorted(by: { $0.key < $1.key }) {
            switch key {
            case "dtype":
                if value.stringValue.flatMap({ StableDiffusionLoader.dtypes[$0] }) == nil {
                    problems.append(ModelOptionProblem(
                        key: key, message: "dtype must be one of \(StableDiffusionLoader.dtypes.keys.sorted().joined(separator: ", "))"))
                }
            case "variant":
                if value.stringValue?.isEmpty ?? true {
                    problems.append(ModelOptionProblem(key: key, message: "variant must be a file-name suffix such as \"fp16\""))
                }
            default:
                problems.append(ModelOptionProblem(key: key, message: "unknown option '\(key)' for an aMUSEd model; it takes dtype, variant"))
            }
        }
        return problems
    }

    public func load(_ spec: ModelSpec) async throws -> any LoadedModel {
        if let problem = problems(with: spec).first { throw ChiselError(.model, problem.message, file: spec.path) }
        let precision = spec.options["dtype"]?.stringValue.flatMap { StableDiffusionLoader.dtypes[$0] } ?? .f32
        return try AmusedModel.load(path: spec.path, precision: precision, variant: spec.options["variant"]?.stringValue)
    }
}
