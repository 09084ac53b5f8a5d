/// The stages and model loaders a program knows, by name.
///
/// Swift has no static initialisers, so registration is explicit: each stage target exposes one
/// entry point that registers its stages, and the executable calls the entry points of the
/// targets it links.
public struct StageRegistry: Sendable {
    private var stagesByName: [String: any Stage.Type] = [:]
    public private(set) var modelLoaders: [any ModelLoader] = []
    /// The models that ship with the program, in registration order.
    public private(set) var builtinModels: [any BuiltinModel] = []
    /// What writes a run's graph in other tools' languages into the images it saves.
    public private(set) var textExporters: [any GraphTextExporter] = []

    public mutating func register(textExporter: any GraphTextExporter) {
        textExporters.append(textExporter)
    }

    public init() {}

    /// Adds a stage; two stages may not share a name.
    public mutating func register(_ stage: any Stage.Type) throws {
        let schema = stage.schema
        guard !schema.name.isEmpty, schema.name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw ChiselError(.internal, "stage name '\(schema.name)' must be letters, digits and '_'")
        }
        guard stagesByName[schema.name] == nil else {
            throw ChiselError(.internal, "two stages are registered as '\(schema.name)'")
        }
        try StageRegistry.check(schema)
        stagesByName[schema.name] = stage
    }

    public mutating func register(_ stages: [any Stage.Type]) throws {
        for stage in stages { try register(stage) }
    }

    public mutating func register(modelLoader: any ModelLoader) throws {
        guard !modelLoaders.contains(where: { $0.kind == modelLoader.kind }) else {
            throw ChiselError(.internal, "two model loaders are registered for kind '\(modelLoader.kind)'")
        }
        modelLoaders.append(modelLoader)
    }

    public mutating func register(builtinModel: any BuiltinModel) throws {
        guard !builtinModels.contains(where: { $0.name == builtinModel.name }) else {
            throw ChiselError(.internal, "two built-in models are registered as '\(builtinModel.name)'")
        }
        builtinModels.append(builtinModel)
    }

    /// The folder a `builtin:NAME` location stands for; nil for any other location. Throws for
    /// a name no built-in model has, or one this build does not carry.
    public func builtinModelFolder(for location: String) throws -> String? {
        guard let name = BuiltinModelLocation.name(in: location) else { return nil }
        guard let model = builtinModels.first(where: { $0.name == name }) else {
            let known = builtinModels.map { BuiltinModelLocation.scheme + $0.name }
            throw ChiselError(.model, "no built-in model '\(name)'"
                              + (known.isEmpty ? "; this build has none" : "; this build has \(known.joined(separator: ", "))"))
        }
        return try model.folder()
    }

    public func stage(named name: String) -> (any Stage.Type)? { stagesByName[name] }

    /// Every stage's schema, sorted by name.
    public var schemas: [StageSchema] { stagesByName.values.map { $0.schema }.sorted { $0.name < $1.name } }

    public func modelLoader(kind: String) -> (any ModelLoader)? { modelLoaders.first { $0.kind == kind } }

    /// A schema must be self-consistent: unique names, defaults of the declared type and range.
    static func check(_ schema: StageSchema) throws {
        func fail(_ message: String) -> ChiselError {
            ChiselError(.internal, "stage '\(schema.name)': \(message)")
        }
        for ports in [schema.inputs, schema.outputs] {
            var seen = Set<String>()
            for port in ports where !seen.insert(port.name).inserted { throw fail("port '\(port.name)' declared twice") }
        }
        for output in schema.outputs {
            if let required = output.requiresInput, schema.input(required) == nil {
                throw fail("output '\(output.name)' requires unknown input '\(required)'")
            }
        }
        var seen = Set<String>()
        for param in schema.params {
            guard seen.insert(param.name).inserted else { throw fail("parameter '\(param.name)' declared twice") }
            if let value = param.defaultValue {
                if let problem = ParamChecker.problem(with: value.json, for: param) {
                    throw fail("default of '\(param.name)': \(problem)")
                }
            }
        }
        if let files = schema.receivesFiles {
            guard let param = schema.param(files.param), case .path(.input) = param.type else {
                throw fail("receivesFiles names '\(files.param)', which is not an input path parameter")
            }
        }
    }
}
