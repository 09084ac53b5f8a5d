/// A graph written in code from the stages' typed keys, as the one-line commands and the edit
/// benchmarks build theirs: stage names, parameter names and port names come from each stage's
/// schema, so a renamed key does not compile and the JSON is what a user could have written.
///
/// ```swift
/// var graph = GraphBuilder()
/// let sd = graph.model("sd", path: "models/sd15", options: [("dtype", "bf16")])
/// let input = graph.node("input", LoadImageStage.self, params: [LoadImageStage.path("photo.png")])
/// graph.node("sized", ResizeStage.self, params: [ResizeStage.multipleOf(8)],
///            inputs: [ResizeStage.image(input[LoadImageStage.image])])
/// ```
public struct GraphBuilder: Sendable {
    private var nodes: [JSONMember] = []
    private var models: [JSONMember] = []

    public init() {}

    /// A model entry of the `models` section; its options (dtype, hints, loras, …) as the
    /// model's loader reads them.
    @discardableResult
    public mutating func model(_ name: String, path: String, options: [(String, JSONValue)] = []) -> ModelRef {
        let entry = [JSONMember(key: "path", value: .string(path))] + options.map { JSONMember(key: $0.0, value: $0.1) }
        models.append(JSONMember(key: name, value: .object(entry)))
        return ModelRef(name: name)
    }

    /// A node running `stage` with `params` (in the order given; the rest keep their defaults)
    /// and `inputs` wired to models and earlier nodes' outputs.
    @discardableResult
    public mutating func node(_ id: String, _ stage: any Stage.Type, params: [ParamSetting] = [],
                              inputs: [GraphConnection] = []) -> NodeRef {
        var members = [JSONMember(key: "stage", value: .string(stage.schema.name))]
        if !inputs.isEmpty {
            members.append(JSONMember(key: "inputs", value: .object(inputs.map { JSONMember(key: $0.port, value: .string($0.source)) })))
        }
        let given = params.compactMap { setting in setting.value.map { JSONMember(key: setting.name, value: $0.json) } }
        if !given.isEmpty { members.append(JSONMember(key: "params", value: .object(given))) }
        nodes.append(JSONMember(key: id, value: .object(members)))
        return NodeRef(id: id)
    }

    /// The graph document, in the current format version.
    public func graph(description: String) -> JSONValue {
        .object([
            JSONMember(key: "chisel", value: .int(GraphCompiler.formatVersion)),
            JSONMember(key: "description", value: .string(description)),
            JSONMember(key: "models", value: .object(models)),
            JSONMember(key: "nodes", value: .object(nodes)),
        ])
    }
}

/// A model of a graph under construction, for model inputs: `DenoiseStage.model(sd)`.
public struct ModelRef: Sendable {
    public let name: String
}

/// A node of a graph under construction; `node[ResizeStage.resized]` is one of its outputs.
public struct NodeRef: Sendable {
    public let id: String

    public subscript<V>(_ output: Output<V>) -> Wire<V> { Wire(node: id, port: output.name) }
}

/// An output of a node under construction, typed as its port: it connects only to inputs of its type.
public struct Wire<Value: PortValue>: Sendable {
    public let node: String
    public let port: String

    /// `node.port`, as a graph's inputs name it.
    public var reference: String { "\(node).\(port)" }
}

/// An input of a node under construction and what it reads: a model or another node's output.
public struct GraphConnection: Sendable {
    public let port: String
    public let source: String
}

extension Input {
    public func callAsFunction(_ wire: Wire<Value>) -> GraphConnection { GraphConnection(port: name, source: wire.reference) }
}

extension OptionalInput {
    public func callAsFunction(_ wire: Wire<Value>) -> GraphConnection { GraphConnection(port: name, source: wire.reference) }
}

extension ModelInput {
    public func callAsFunction(_ model: ModelRef) -> GraphConnection { GraphConnection(port: name, source: model.name) }
}

extension Param {
    /// The value a graph that leaves this parameter out gets (nil for a required one).
    public var defaultValue: Value? { Value.read(spec.defaultValue) }

    /// `given`, or the default when nil: for a command that needs the value the stage will use.
    public func value(or given: Value?) throws -> Value {
        if let given { return given }
        guard let value = defaultValue else {
            throw ChiselError(.internal, "parameter '\(name)' has no default to fall back on")
        }
        return value
    }

    /// The parameter's description, with its default and range, for a command's help.
    public var help: String {
        var text = spec.doc
        var facts: [String] = []
        if let value = spec.defaultValue { facts.append("default \(value.helpText)") }
        if let range = spec.range, range != Seed.range {
            facts.append("\(ParamSpec.format(bound: range.lowerBound))…\(ParamSpec.format(bound: range.upperBound))")
        }
        if !facts.isEmpty { text += " (" + facts.joined(separator: "; ") + ")" }
        return text
    }
}

extension ParamValue {
    /// The value as a help text shows it: strings unquoted.
    var helpText: String {
        if case .string(let s) = self { return s }
        return description
    }
}
