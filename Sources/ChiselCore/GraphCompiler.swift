import Foundation

/// Turns a graph document into a `Plan`, finding every problem before anything runs.
///
/// Each problem is reported with the graph file, the node id and the JSON path it concerns;
/// all of them are thrown together as `ChiselErrors`.
public struct GraphCompiler {
    public static let formatVersion = 1
    static let topLevelKeys = ["chisel", "description", "variables", "models", "batch", "nodes"]
    static let nodeKeys = ["stage", "params", "inputs", "comment"]

    private let registry: StageRegistry
    private let options: GraphOptions
    private let file: String?
    private let directory: String
    private var errors: [ChiselError] = []

    /// Reads and compiles a graph file. Relative paths inside it resolve against its folder.
    public static func compile(file path: String, registry: StageRegistry, options: GraphOptions) throws -> Plan {
        let bytes: [UInt8]
        do {
            bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw ChiselErrors([ChiselError(.io, "cannot read graph file", file: path,
                                            cause: (error as NSError).localizedDescription)])
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

    private mutating func report(_ message: String, node: String? = nil, at path: String,
                                 code: ChiselError.Code = .invalidGraph) {
        errors.append(ChiselError(code, message, file: file, node: node, jsonPath: path))
    }

    // MARK: Top level

    private struct NodeDraft {
        var id: String
        var stage: (any Stage.Type)?
        var params: [String: ParamValue] = [:]
        var inputs: [String: (source: String, path: String)] = [:]
        var path: String
    }

    private mutating func compile(_ json: JSONValue) -> Plan? {
        guard let top = json.members else {
            report("a graph is a JSON object with \"chisel\" and \"nodes\", got \(json.kindDescription)", at: "$")
            return nil
        }
        for member in top where !GraphCompiler.topLevelKeys.contains(member.key) {
            report("unknown top-level key \"\(member.key)\"\(suggestion(member.key, GraphCompiler.topLevelKeys)); "
                   + "expected \(GraphCompiler.topLevelKeys.joined(separator: ", "))", at: member.key)
        }
        checkVersion(json["chisel"])
        var description: String?
        if let value = json["description"] {
            if let text = value.stringValue { description = text } else { report("must be a string", at: "description") }
        }
        let variables = compileVariables(json["variables"])
        let models = compileModels(json["models"])
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
        guard let order = topologicalOrder(drafts, wired: wired) else { return nil }
        if !errors.isEmpty { return nil }

        var nodes: [PlannedNode] = []
        let position = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        var consumers: [[String: Int]] = Array(repeating: [:], count: drafts.count)
        for sources in wired {
            for source in sources.values {
                if case .output(let node, let port) = source { consumers[node][port, default: 0] += 1 }
            }
        }
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
                                     consumers: consumers[original]))
        }
        return Plan(file: file, description: description, nodes: nodes, models: models,
                    imageLoader: loaders.image, maskLoader: loaders.mask)
    }

    private mutating func checkVersion(_ value: JSONValue?) {
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

    static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.unicodeScalars.allSatisfy {
            ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "_" || $0 == "-"
        }
    }

    // MARK: Sections

    private mutating func compileVariables(_ json: JSONValue?) -> [String: JSONValue] {
        var variables: [String: JSONValue] = [:]
        if let json {
            if let members = json.members {
                for member in members {
                    switch member.value {
                    case .string, .int, .double, .bool: variables[member.key] = member.value
                    default:
                        report("a variable must be a string, number or boolean, got \(member.value.kindDescription)",
                               at: "variables.\(member.key)")
                    }
                }
            } else {
                report("\"variables\" must be an object of name → value", at: "variables")
            }
        }
        for (name, value) in options.variables { variables[name] = value }
        return variables
    }

    private mutating func compileModels(_ json: JSONValue?) -> [ModelSpec] {
        guard let json else { return [] }
        guard let members = json.members else {
            report("\"models\" must be an object of name → {\"path\": ...}", at: "models")
            return []
        }
        var specs: [ModelSpec] = []
        for member in members {
            let path = "models.\(member.key)"
            guard GraphCompiler.isValidID(member.key) else {
                report("model name '\(member.key)' must be letters, digits, '_' or '-'", at: path)
                continue
            }
            guard let entry = member.value.members else {
                report("a model is an object with a \"path\", got \(member.value.kindDescription)", at: path)
                continue
            }
            guard let location = member.value["path"]?.stringValue, !location.isEmpty else {
                report("a model needs a \"path\" string", at: path + ".path")
                continue
            }
            var kind: String?
            if let value = member.value["kind"] {
                if let text = value.stringValue { kind = text } else { report("must be a string", at: path + ".kind") }
            }
            var optionsByKey: [String: JSONValue] = [:]
            for option in entry where option.key != "path" && option.key != "kind" { optionsByKey[option.key] = option.value }
            let resolved = GraphCompiler.resolve(location, against: directory)
            if options.checkInputFiles, !FileManager.default.fileExists(atPath: resolved) {
                report("model not found at \(resolved)", at: path + ".path", code: .model)
            }
            let spec = ModelSpec(name: member.key, path: resolved, kind: kind, options: optionsByKey)
            if let kind {
                if registry.modelLoader(kind: kind) == nil {
                    let known = registry.modelLoaders.map(\.kind)
                    report("no model loader for kind '\(kind)'"
                           + (known.isEmpty ? "; this build has no model loaders" : "; known kinds: \(known.joined(separator: ", "))"),
                           at: path + ".kind", code: .model)
                }
            } else if registry.modelLoaders.isEmpty {
                report("this build has no model loaders to open \(resolved)", at: path, code: .model)
            }
            specs.append(spec)
        }
        return specs
    }

    private mutating func compileBatchField(_ json: JSONValue?) -> (image: String?, mask: String?) {
        guard let json else { return (nil, nil) }
        guard let members = json.members else {
            report("\"batch\" must be an object such as {\"image\": \"input\", \"mask\": \"mask\"}", at: "batch")
            return (nil, nil)
        }
        var result: (image: String?, mask: String?) = (nil, nil)
        for member in members {
            guard let id = member.value.stringValue else {
                report("must be a node id string", at: "batch.\(member.key)")
                continue
            }
            switch member.key {
            case "image": result.image = id
            case "mask": result.mask = id
            default: report("unknown key \"\(member.key)\"; expected \"image\" or \"mask\"", at: "batch.\(member.key)")
            }
        }
        return result
    }

    // MARK: Nodes

    private mutating func compileNode(id: String, json: JSONValue, path: String,
                                      variables: [String: JSONValue]) -> NodeDraft {
        var draft = NodeDraft(id: id, path: path)
        guard let members = json.members else {
            report("a node is an object with a \"stage\", got \(json.kindDescription)", node: id, at: path)
            return draft
        }
        for member in members where !GraphCompiler.nodeKeys.contains(member.key) {
            report("unknown key \"\(member.key)\"\(suggestion(member.key, GraphCompiler.nodeKeys)); "
                   + "a node has \(GraphCompiler.nodeKeys.joined(separator: ", "))", node: id, at: "\(path).\(member.key)")
        }
        guard let stageJSON = json["stage"] else {
            report("missing \"stage\"", node: id, at: "\(path).stage")
            return draft
        }
        guard let stageName = stageJSON.stringValue else {
            report("\"stage\" must be a string, got \(stageJSON.kindDescription)", node: id, at: "\(path).stage")
            return draft
        }
        guard let stage = registry.stage(named: stageName) else {
            let names = registry.schemas.map(\.name)
            report("unknown stage '\(stageName)'\(suggestion(stageName, names)); `chisel stages` lists them",
                   node: id, at: "\(path).stage")
            return draft
        }
        draft.stage = stage
        let schema = stage.schema

        var given: [String: (JSONValue, String, base: String)] = [:]
        if let paramsJSON = json["params"] {
            if let params = paramsJSON.members {
                for member in params {
                    let paramPath = "\(path).params.\(member.key)"
                    guard schema.param(member.key) != nil else {
                        report("unknown parameter '\(member.key)' for stage '\(schema.name)'"
                               + suggestion(member.key, schema.params.map(\.name))
                               + "; it takes \(schema.params.map(\.name).joined(separator: ", "))",
                               node: id, at: paramPath, code: .invalidParameter)
                        continue
                    }
                    if let value = substitute(member.value, variables: variables, node: id, at: paramPath) {
                        given[member.key] = (value, paramPath, directory)
                    }
                }
            } else {
                report("\"params\" must be an object, got \(paramsJSON.kindDescription)", node: id, at: "\(path).params")
            }
        }
        for override in options.overrides where override.node == id {
            if schema.param(override.param) != nil {
                given[override.param] = (override.value, "--set \(override.argument)", options.workingDirectory)
            }
        }
        for spec in schema.params {
            if let (value, where_, base) = given[spec.name], value != .null {
                switch ParamChecker.typed(value, for: spec) {
                case .success(let typed):
                    draft.params[spec.name] = resolvePath(typed, spec: spec, base: base)
                case .failure(let problem):
                    report("parameter '\(spec.name)' \(problem)", node: id, at: where_, code: .invalidParameter)
                }
            } else if let value = spec.defaultValue {
                draft.params[spec.name] = resolvePath(value, spec: spec, base: directory)
            } else if spec.required && !isBatchSupplied(node: id, schema: schema, param: spec.name) {
                report("missing required parameter '\(spec.name)' (\(spec.doc))", node: id,
                       at: "\(path).params.\(spec.name)", code: .invalidParameter)
            }
        }

        if let inputsJSON = json["inputs"] {
            if let inputs = inputsJSON.members {
                for member in inputs {
                    let inputPath = "\(path).inputs.\(member.key)"
                    guard schema.input(member.key) != nil else {
                        let names = schema.inputs.map(\.name)
                        report("unknown input '\(member.key)' for stage '\(schema.name)'" + suggestion(member.key, names)
                               + (names.isEmpty ? "; it takes no inputs" : "; it takes \(names.joined(separator: ", "))"),
                               node: id, at: inputPath)
                        continue
                    }
                    guard let source = member.value.stringValue else {
                        report("an input is wired as \"node.port\", got \(member.value.kindDescription)", node: id, at: inputPath)
                        continue
                    }
                    draft.inputs[member.key] = (source, inputPath)
                }
            } else {
                report("\"inputs\" must be an object of port → \"node.port\", got \(inputsJSON.kindDescription)",
                       node: id, at: "\(path).inputs")
            }
        }
        return draft
    }

    /// Replaces `${name}` with variables: a whole-string reference keeps the variable's type.
    private mutating func substitute(_ value: JSONValue, variables: [String: JSONValue], node: String,
                                     at path: String) -> JSONValue? {
        guard case .string(let text) = value, text.contains("${") else { return value }
        if text.hasPrefix("${"), text.hasSuffix("}"), !text.dropFirst(2).dropLast().contains("}") {
            let name = String(text.dropFirst(2).dropLast())
            guard let variable = variables[name] else {
                report("unknown variable '\(name)'\(suggestion(name, Array(variables.keys)))", node: node, at: path)
                return nil
            }
            return variable
        }
        var out = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            out += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                report("unclosed '${' in \"\(text)\"", node: node, at: path)
                return nil
            }
            let name = String(rest[start.upperBound..<end])
            guard let variable = variables[name] else {
                report("unknown variable '\(name)'\(suggestion(name, Array(variables.keys)))", node: node, at: path)
                return nil
            }
            switch variable {
            case .string(let s): out += s
            case .int(let i): out += String(i)
            case .double(let d): out += "\(d)"
            case .bool(let b): out += b ? "true" : "false"
            default: break
            }
            rest = rest[rest.index(after: end)...]
        }
        out += rest
        return .string(out)
    }

    private func resolvePath(_ value: ParamValue, spec: ParamSpec, base: String) -> ParamValue {
        guard case .path(let role) = spec.type, case .string(let text) = value else { return value }
        if role == .output, let batch = options.batch {
            return .string(GraphCompiler.resolve(text, against: batch.outputRoot))
        }
        return .string(GraphCompiler.resolve(text, against: base))
    }

    /// An absolute, normalised path: `~/` expands to the home folder, relative paths join `base`.
    public static func resolve(_ path: String, against base: String) -> String {
        var expanded = path
        if path == "~" || path.hasPrefix("~/") {
            expanded = FileManager.default.homeDirectoryForCurrentUser.path + path.dropFirst()
        }
        let url = expanded.hasPrefix("/")
            ? URL(fileURLWithPath: expanded)
            : URL(fileURLWithPath: base, isDirectory: true).appendingPathComponent(expanded)
        return url.standardizedFileURL.path
    }

    private mutating func checkOverrides(_ drafts: [NodeDraft]) {
        for override in options.overrides {
            guard let draft = drafts.first(where: { $0.id == override.node }) else {
                errors.append(ChiselError(.invalidArgument,
                    "--set \(override.argument): no node '\(override.node)'\(suggestion(override.node, drafts.map(\.id)))",
                    file: file))
                continue
            }
            if let schema = draft.stage?.schema, schema.param(override.param) == nil {
                errors.append(ChiselError(.invalidArgument,
                    "--set \(override.argument): stage '\(schema.name)' has no parameter '\(override.param)'"
                    + suggestion(override.param, schema.params.map(\.name)), file: file, node: override.node))
            }
        }
    }

    // MARK: Loaders and files

    private func isBatchSupplied(node: String, schema: StageSchema, param: String) -> Bool {
        guard let batch = options.batch, let files = schema.receivesFiles, files.param == param else { return false }
        return files.role == .image || batch.withMasks
    }

    private mutating func chooseLoaders(_ drafts: [NodeDraft], batchField: (image: String?, mask: String?))
        -> (image: String?, mask: String?)
    {
        func candidates(_ role: FileRole) -> [String] {
            drafts.filter { $0.stage?.schema.receivesFiles?.role == role }.map(\.id)
        }
        func pick(_ role: FileRole, flag: String?, field: String?, required: Bool) -> String? {
            let all = candidates(role)
            if let named = flag ?? field {
                let origin = flag != nil ? "--\(role.rawValue)-node \(named)" : "batch.\(role.rawValue)"
                guard all.contains(named) else {
                    let message = drafts.contains(where: { $0.id == named })
                        ? "node '\(named)' is not a \(role.rawValue) loader"
                        : "no node '\(named)'"
                    if flag != nil {
                        errors.append(ChiselError(.invalidArgument, "\(origin): \(message)", file: file))
                    } else {
                        report(message, at: origin)
                    }
                    return nil
                }
                return named
            }
            if all.count == 1 { return all[0] }
            if required {
                if all.isEmpty {
                    report("a batch needs a \(role.rawValue) loader node, and this graph has none", at: "nodes")
                } else {
                    report("several \(role.rawValue) loaders (\(all.joined(separator: ", "))); name the one that receives "
                           + "the files with \"batch\": {\"\(role.rawValue)\": ...} or --\(role.rawValue)-node", at: "batch")
                }
            }
            return nil
        }
        let batch = options.batch
        let image = pick(.image, flag: batch?.imageNode, field: batchField.image, required: batch != nil)
        let mask = pick(.mask, flag: batch?.maskNode, field: batchField.mask, required: batch?.withMasks == true)
        return (image, mask)
    }

    private mutating func checkInputFiles(_ drafts: [NodeDraft], loaders: (image: String?, mask: String?)) {
        guard options.checkInputFiles else { return }
        for draft in drafts {
            guard let schema = draft.stage?.schema else { continue }
            for spec in schema.params {
                guard case .path(.input) = spec.type, case .string(let path)? = draft.params[spec.name] else { continue }
                if options.batch != nil, let files = schema.receivesFiles, files.param == spec.name,
                    draft.id == loaders.image || draft.id == loaders.mask
                {
                    continue
                }
                var isFolder: ObjCBool = false
                if !FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
                    report("file not found: \(path)", node: draft.id, at: "\(draft.path).params.\(spec.name)", code: .io)
                } else if isFolder.boolValue {
                    report("\(path) is a folder, not a file", node: draft.id, at: "\(draft.path).params.\(spec.name)", code: .io)
                }
            }
        }
    }

    private mutating func checkTemplates(_ drafts: [NodeDraft]) {
        let loaderIDs = Set(drafts.filter { $0.stage?.schema.receivesFiles != nil }.map(\.id))
        for draft in drafts {
            guard let schema = draft.stage?.schema else { continue }
            for spec in schema.params {
                guard case .path(.output) = spec.type, case .string(let text)? = draft.params[spec.name] else { continue }
                let at = "\(draft.path).params.\(spec.name)"
                do {
                    let template = try PathTemplate(text)
                    for node in template.referencedNodes where !loaderIDs.contains(node) {
                        report("{\(node).stem} names no loader node", node: draft.id, at: at, code: .invalidParameter)
                    }
                } catch let error as ChiselError {
                    report(error.message, node: draft.id, at: at, code: .invalidParameter)
                } catch {
                    report("\(error)", node: draft.id, at: at, code: .invalidParameter)
                }
            }
        }
    }

    // MARK: Wires and order

    private mutating func wire(_ drafts: [NodeDraft], modelNames: Set<String>) -> [[String: PlannedSource]] {
        let indexByID = Dictionary(drafts.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
        var wired: [[String: PlannedSource]] = Array(repeating: [:], count: drafts.count)
        for (i, draft) in drafts.enumerated() {
            guard let schema = draft.stage?.schema else { continue }
            for port in schema.inputs {
                guard let (source, at) = draft.inputs[port.name] else {
                    if !port.optional {
                        report("required input '\(port.name)' (\(port.type.rawValue)) is not connected",
                               node: draft.id, at: "\(draft.path).inputs.\(port.name)")
                    }
                    continue
                }
                if port.type == .model, !source.contains(".") {
                    if modelNames.contains(source) {
                        wired[i][port.name] = .model(source)
                    } else {
                        report("unknown model '\(source)'\(suggestion(source, Array(modelNames))); declare it under \"models\"",
                               node: draft.id, at: at)
                    }
                    continue
                }
                let nodeID: String, portName: String?
                if let dot = source.firstIndex(of: ".") {
                    nodeID = String(source[..<dot])
                    portName = String(source[source.index(after: dot)...])
                } else {
                    nodeID = source
                    portName = nil
                }
                guard let j = indexByID[nodeID] else {
                    report("input '\(port.name)' names unknown node '\(nodeID)'\(suggestion(nodeID, drafts.map(\.id)))",
                           node: draft.id, at: at)
                    continue
                }
                guard let sourceSchema = drafts[j].stage?.schema else { continue }  // already reported
                let outputNames = sourceSchema.outputs.map(\.name)
                let chosen: PortSpec
                if let portName {
                    guard let output = sourceSchema.output(portName) else {
                        report("node '\(nodeID)' (stage '\(sourceSchema.name)') has no output '\(portName)'"
                               + suggestion(portName, outputNames)
                               + (outputNames.isEmpty ? "; it has no outputs" : "; its outputs: \(outputNames.joined(separator: ", "))"),
                               node: draft.id, at: at)
                        continue
                    }
                    chosen = output
                } else {
                    guard sourceSchema.outputs.count == 1, let only = sourceSchema.outputs.first else {
                        report("write \"\(nodeID).PORT\": node '\(nodeID)' has "
                               + (outputNames.isEmpty ? "no outputs" : "outputs \(outputNames.joined(separator: ", "))"),
                               node: draft.id, at: at)
                        continue
                    }
                    chosen = only
                }
                guard chosen.type == port.type else {
                    report("type mismatch: input '\(port.name)' takes \(port.type.rawValue), "
                           + "but '\(nodeID).\(chosen.name)' is \(chosen.type.rawValue)", node: draft.id, at: at)
                    continue
                }
                if let required = chosen.requiresInput, drafts[j].inputs[required] == nil {
                    report("'\(nodeID).\(chosen.name)' is produced only when input '\(required)' of '\(nodeID)' is connected",
                           node: draft.id, at: at)
                    continue
                }
                wired[i][port.name] = .output(node: j, port: chosen.name)
            }
        }
        return wired
    }

    /// Kahn's algorithm in file order; reports each cycle with the nodes on it.
    private mutating func topologicalOrder(_ drafts: [NodeDraft], wired: [[String: PlannedSource]]) -> [Int]? {
        let n = drafts.count
        var dependents: [[Int]] = Array(repeating: [], count: n)
        var pending = Array(repeating: 0, count: n)
        for i in 0..<n {
            let sources = Set(wired[i].values.compactMap { source -> Int? in
                if case .output(let node, _) = source { return node }
                return nil
            })
            pending[i] = sources.count
            for s in sources { dependents[s].append(i) }
        }
        var order: [Int] = []
        var ready = (0..<n).filter { pending[$0] == 0 }
        var cursor = 0
        while cursor < ready.count {
            let i = ready[cursor]
            cursor += 1
            order.append(i)
            for d in dependents[i] {
                pending[d] -= 1
                if pending[d] == 0 { ready.append(d) }
            }
        }
        if order.count == n { return order }
        // Walk back along inputs from each node left over to find and report distinct cycles.
        var reported = Set<Int>()
        for start in 0..<n where pending[start] > 0 && !reported.contains(start) {
            var path: [Int] = []
            var seenAt: [Int: Int] = [:]
            var current = start
            while seenAt[current] == nil {
                seenAt[current] = path.count
                path.append(current)
                guard let next = wired[current].values.compactMap({ source -> Int? in
                    if case .output(let node, _) = source, pending[node] > 0 { return node }
                    return nil
                }).min() else { break }
                current = next
            }
            guard let loopStart = seenAt[current] else { continue }
            // Data flows against the walk; start the report at the loop's first node in file order.
            var loop = Array(path[loopStart...].reversed())
            if let first = loop.indices.min(by: { loop[$0] < loop[$1] }) {
                loop = Array(loop[first...] + loop[..<first])
            }
            if loop.contains(where: { reported.contains($0) }) { continue }
            loop.forEach { reported.insert($0) }
            let names = (loop + [loop[0]]).map { drafts[$0].id }
            report("cycle: \(names.joined(separator: " → ")); a node cannot depend on its own output",
                   node: drafts[loop[0]].id, at: "\(drafts[loop[0]].path).inputs")
        }
        return nil
    }

    // MARK: Suggestions

    /// ` (did you mean 'x'?)` when a close name exists.
    private func suggestion(_ name: String, _ candidates: [String]) -> String {
        let best = candidates.map { ($0, GraphCompiler.editDistance(name, $0)) }
            .filter { $0.1 <= min(2, max(1, name.count / 3)) }
            .min { $0.1 < $1.1 }
        return best.map { " (did you mean '\($0.0)'?)" } ?? ""
    }

    /// Edit distance counting a swap of neighbours as one edit (optimal string alignment).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }
}
