/// The graph a run executes, as a document, and what its stages resolved while running (a seed
/// drawn at random), so a saved image can carry a graph that reproduces it exactly.
public final class Provenance: Sendable {
    private let graph: JSONValue
    private let resolved = Locked<[String: [String: ParamValue]]>([:])
    private let exporters: [any GraphTextExporter]

    public init(graph: JSONValue, exporters: [any GraphTextExporter] = []) {
        self.graph = graph
        self.exporters = exporters
    }

    /// The resolved graph in other tools' languages (ComfyUI's `prompt`), as text entries for
    /// the images the run saves; empty where no exporter can say it.
    public var exportedText: [(key: String, value: String)] {
        guard !exporters.isEmpty else { return [] }
        let document = resolvedGraph
        return exporters.flatMap { $0.text(for: document) }
    }

    /// Notes that `node` ran with `param` = `value` where the graph left it to be chosen.
    public func record(node: String, param: String, value: ParamValue) {
        resolved.withLock { $0[node, default: [:]][param] = value }
    }

    /// The graph with every recorded value in place: running it again gives the same result.
    public var resolvedGraph: JSONValue {
        let values = resolved.value
        guard case .object(var top) = graph, let n = top.firstIndex(where: { $0.key == "nodes" }),
            case .object(var nodes) = top[n].value
        else { return graph }
        for i in nodes.indices {
            guard let changes = values[nodes[i].key], case .object(var node) = nodes[i].value else { continue }
            var params = node.first { $0.key == "params" }?.value.members ?? []
            for (param, value) in changes.sorted(by: { $0.key < $1.key }) {
                if let j = params.firstIndex(where: { $0.key == param }) {
                    params[j].value = value.json
                } else {
                    params.append(JSONMember(key: param, value: value.json))
                }
            }
            node.removeAll { $0.key == "params" }
            node.append(JSONMember(key: "params", value: .object(params)))
            nodes[i].value = .object(node)
        }
        top[n].value = .object(nodes)
        return .object(top)
    }
}

extension Plan {
    /// The plan as a graph document: every parameter with its resolved value (defaults filled,
    /// paths absolute, `--set` and variables applied), wires by node and port, the models and
    /// the batch loaders.
    public var graphDocument: JSONValue {
        var top: [JSONMember] = [JSONMember(key: "chisel", value: .int(GraphCompiler.formatVersion))]
        if let description { top.append(JSONMember(key: "description", value: .string(description))) }
        if !models.isEmpty {
            top.append(JSONMember(key: "models", value: .object(models.map { spec in
                var entry = [JSONMember(key: "path", value: .string(spec.path))]
                if let kind = spec.kind { entry.append(JSONMember(key: "kind", value: .string(kind))) }
                entry += spec.options.sorted { $0.key < $1.key }.map { JSONMember(key: $0.key, value: $0.value) }
                return JSONMember(key: spec.name, value: .object(entry))
            })))
        }
        top.append(JSONMember(key: "nodes", value: .object(nodes.map { node in
            var entry = [JSONMember(key: "stage", value: .string(node.schema.name))]
            let inputs = node.schema.inputs.compactMap { port -> JSONMember? in
                switch node.inputs[port.name] {
                case .output(let source, let output)?:
                    return JSONMember(key: port.name, value: .string("\(nodes[source].id).\(output)"))
                case .model(let name)?:
                    return JSONMember(key: port.name, value: .string(name))
                case nil:
                    return nil
                }
            }
            if !inputs.isEmpty { entry.append(JSONMember(key: "inputs", value: .object(inputs))) }
            let params = node.schema.params.compactMap { spec in
                node.params[spec.name].map { JSONMember(key: spec.name, value: $0.json) }
            }
            if !params.isEmpty { entry.append(JSONMember(key: "params", value: .object(params))) }
            return JSONMember(key: node.id, value: .object(entry))
        })))
        var batch: [JSONMember] = []
        if let imageLoader { batch.append(JSONMember(key: "image", value: .string(imageLoader))) }
        if let maskLoader { batch.append(JSONMember(key: "mask", value: .string(maskLoader))) }
        if !batch.isEmpty { top.append(JSONMember(key: "batch", value: .object(batch))) }
        return .object(top)
    }
}
