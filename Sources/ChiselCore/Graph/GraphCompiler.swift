import Foundation

/// Turns a graph document into a `Plan`, finding every problem before anything runs.
///
/// Each problem is reported with the graph file, the node id and the JSON path it concerns;
/// all of them are thrown together as `ChiselErrors`.
public struct GraphCompiler {
    public static let formatVersion = 1
    static let topLevelKeys = ["chisel", "description", "variables", "models", "batch", "nodes"]
    static let nodeKeys = ["stage", "params", "inputs", "comment"]

    let registry: StageRegistry
    let options: GraphOptions
    let file: String?
    let directory: String
    var errors: [ChiselError] = []
    var notes: [String] = []
    var warnings: [String] = []

    /// Reads and compiles a graph file. Relative paths inside it resolve against its folder.
    public static func compile(file path: String, registry: StageRegistry, options: GraphOptions) throws -> Plan {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw ChiselErrors([ChiselError(.io, "no such graph file", file: path)])
        }
        guard !isFolder.boolValue else {
            throw ChiselErrors([ChiselError(.io, "is a folder, not a graph file: give the graph's .json file", file: path)])
        }
        let bytes: [UInt8]
        do {
            bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            let reason = access(path, R_OK) != 0 ? String(cString: strerror(errno)) : "it could not be read"
            throw ChiselErrors([ChiselError(.io, "cannot read graph file: \(reason)", file: path)])
        }
        let json: JSONValue
        do {
            json = try JSONParser.parse(bytes, file: path)
        } catch let error as ChiselError {
            throw ChiselErrors([error])
        }
        let folder = URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: options.workingDirectory))
            .standardizedFileURL.deletingLastPathComponent().path
        return try compile(json, file: path, directory: folder, registry: registry, options: options)
    }

    /// Compiles a parsed graph; `directory` is where its relative paths resolve.
    public static func compile(_ json: JSONValue, file: String?, directory: String, registry: StageRegistry,
                               options: GraphOptions) throws -> Plan {
        var compiler = GraphCompiler(registry: registry, options: options, file: file, directory: directory)
        let plan = compiler.compile(json)
        if !compiler.errors.isEmpty { throw ChiselErrors(compiler.errors) }
        guard let plan else { throw ChiselErrors([ChiselError(.internal, "graph compiled to nothing", file: file)]) }
        return plan
    }

    private init(registry: StageRegistry, options: GraphOptions, file: String?, directory: String) {
        self.registry = registry
        self.options = options
        self.file = file
        self.directory = directory
    }

    mutating func report(_ message: String, node: String? = nil, at path: String,
                                 code: ChiselError.Code = .invalidGraph) {
        errors.append(ChiselError(code, message, file: file, node: node, jsonPath: path))
    }

    // MARK: Top level

    struct NodeDraft {
        var id: String
        var stage: (any Stage.Type)?
        var params: [String: ParamValue] = [:]
        var inputs: [String: (source: String, path: String)] = [:]
        var path: String
        /// Where each parameter given in the graph or by `--set` was written, for messages.
        var paramPaths: [String: String] = [:]
        /// Whether every parameter has a valid value, so the stage's own rules can be checked.
        var paramsValid = false

        init(id: String, path: String) {
            self.id = id
            self.path = path
        }

        /// The JSON path of a parameter: where it was written, or where it would go.
        func paramPath(_ name: String) -> String { paramPaths[name] ?? "\(path).params.\(name)" }
    }

    private mutating func compile(_ json: JSONValue) -> Plan? {
        guard let top = json.members else {
            report("a graph is a JSON object with \"chisel\" and \"nodes\", got \(json.kindDescription)", at: "$")
            return nil
        }
        for member in top where !GraphCompiler.topLevelKeys.contains(member.key) {
            report("unknown top-level key \"\(member.key)\"\(Suggestions.hint(member.key, GraphCompiler.topLevelKeys)); "
                   + "expected \(GraphCompiler.topLevelKeys.joined(separator: ", "))", at: member.key)
        }
        checkDuplicateKeys(json, at: "")
        checkVersion(json["chisel"])
        var description: String?
        if let value = json["description"] {
            if let text = value.stringValue { description = text } else { report("must be a string", at: "description") }
        }
        let variables = compileVariables(json["variables"], document: json)
        let models = compileModels(json["models"], variables: variables)
        let batchField = compileBatchField(json["batch"])

        guard let nodesJSON = json["nodes"] else {
            report("missing \"nodes\": a graph needs at least one node", at: "nodes")
            return nil
        }
        guard let nodeMembers = nodesJSON.members else {
            report("\"nodes\" must be an object of node id → node, got \(nodesJSON.kindDescription)", at: "nodes")
            return nil
        }
        if nodeMembers.isEmpty { report("\"nodes\" is empty: a graph needs at least one node", at: "nodes") }

        var drafts: [NodeDraft] = []
        var firstLine: [String: Int] = [:]
        for member in nodeMembers {
            let path = "nodes.\(member.key)"
            if let line = firstLine[member.key] {
                report("duplicate node id '\(member.key)' (line \(member.line); first defined on line \(line))",
                       node: member.key, at: path)
                continue
            }
            firstLine[member.key] = member.line
            if !GraphCompiler.isValidID(member.key) {
                report("node id '\(member.key)' must be letters, digits, '_' or '-' (no dots or spaces)",
                       node: member.key, at: path)
            }
            drafts.append(compileNode(id: member.key, json: member.value, path: path, variables: variables))
        }
        checkOverrides(drafts)

        let modelNames = Set(models.map(\.name))
        let loaders = chooseLoaders(drafts, batchField: batchField)
        checkInputFiles(drafts, loaders: loaders)
        checkTemplates(drafts)
        let wired = wire(drafts, modelNames: modelNames)
        checkStageRules(drafts, wired: wired, models: models)
        guard let order = topologicalOrder(drafts, wired: wired) else { return nil }
        if !errors.isEmpty { return nil }

        let position = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        var consumers: [[String: Int]] = Array(repeating: [:], count: drafts.count)
        var dependents: [Set<Int>] = Array(repeating: [], count: drafts.count)
        for (reader, sources) in wired.enumerated() {
            for source in sources.values {
                if case .output(let node, let port) = source {
                    consumers[node][port, default: 0] += 1
                    if let mapped = position[reader] { dependents[node].insert(mapped) }
                }
            }
        }
        var nodes: [PlannedNode] = []
        for original in order {
            let draft = drafts[original]
            guard let stage = draft.stage else { continue }
            let inputs = wired[original].mapValues { source -> PlannedSource in
                if case .output(let node, let port) = source, let mapped = position[node] {
                    return .output(node: mapped, port: port)
                }
                return source
            }
            nodes.append(PlannedNode(id: draft.id, stage: stage, params: draft.params, inputs: inputs,
                                     consumers: consumers[original], dependents: dependents[original].sorted()))
        }
        var plan = Plan(file: file, description: description, nodes: nodes, models: models,
                        imageLoader: loaders.image, maskLoader: loaders.mask)
        plan.outputPolicy = options.outputPolicy
        plan.notes = notes
        plan.warnings = warnings
        plan.textExporters = registry.textExporters
        // A batch's paths depend on each item; its sample item finds clashes between nodes, and
        // the batch checks every item's own paths before it runs.
        let sample = options.batch == nil ? plan.runInfo() : plan.runInfo(isBatch: true)
        errors += plan.outputProblems(run: sample, existing: options.batch == nil)
        if options.batch != nil, (try? plan.plannedOutputs(run: sample).isEmpty) == true {
            report("the graph writes no file, so a batch could not tell which items are done: add a save_image node",
                   at: "nodes")
        }
        return errors.isEmpty ? plan : nil
    }

    mutating func checkVersion(_ value: JSONValue?) {
        switch value {
        case nil:
            report("missing format version: add \"chisel\": \(GraphCompiler.formatVersion)", at: "chisel")
        case .int(let version)?:
            if version != GraphCompiler.formatVersion {
                report("unsupported format version \(version); this Chisel reads version \(GraphCompiler.formatVersion)",
                       at: "chisel")
            }
        case let other?:
            report("format version must be an integer, got \(other.kindDescription)", at: "chisel")
        }
    }

    /// A key written twice in one object would silently keep the last value: each is reported
    /// (node ids, reported with their nodes, excepted).
    mutating func checkDuplicateKeys(_ json: JSONValue, at path: String) {
        switch json {
        case .object(let members):
            var firstLine: [String: Int] = [:]
            for member in members {
                let memberPath = path.isEmpty ? member.key : "\(path).\(member.key)"
                if let line = firstLine[member.key], path != "nodes" {
                    report("duplicate key \"\(member.key)\" (line \(member.line); first on line \(line)): only one may be given",
                           at: memberPath)
                } else {
                    firstLine[member.key] = member.line
                }
                checkDuplicateKeys(member.value, at: memberPath)
            }
        case .array(let items):
            for (i, item) in items.enumerated() { checkDuplicateKeys(item, at: "\(path)[\(i)]") }
        default:
            break
        }
    }

    static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.unicodeScalars.allSatisfy {
            ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "_" || $0 == "-"
        }
    }
}
