/// Loads each model of a graph once and shares it: across the nodes of a run and across the
/// items of a batch.
public actor ModelStore {
    private let specs: [String: ModelSpec]
    private let loaders: [any ModelLoader]
    private var loading: [String: Task<any LoadedModel, any Error>] = [:]

    public init(specs: [ModelSpec], registry: StageRegistry) {
        self.specs = Dictionary(specs.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.loaders = registry.modelLoaders
    }

    /// A store whose models are already built (benchmarks on random weights, programs that
    /// build their own): the graph's model names map to them, and nothing is loaded.
    public init(loaded models: [String: any LoadedModel]) {
        self.specs = [:]
        self.loaders = []
        for (name, model) in models { loading[name] = Task { model } }
    }

    /// The model named `name`, loading it on first use.
    public func model(named name: String) async throws -> any LoadedModel {
        if let task = loading[name] { return try await task.value }
        guard let spec = specs[name] else {
            throw ChiselError(.model, "no model named '\(name)' in the graph's models section")
        }
        let loader: (any ModelLoader)?
        if let kind = spec.kind {
            loader = loaders.first { $0.kind == kind }
        } else {
            loader = loaders.first { $0.recognizes(path: spec.path) }
        }
        guard let loader else {
            throw ChiselError(.model, "no model loader recognises this checkpoint", file: spec.path)
        }
        let task = Task { try await loader.load(spec) }
        loading[name] = task
        return try await task.value
    }
}
