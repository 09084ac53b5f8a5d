/// Nodes: their stage, parameters (typed, defaulted, overridden by `--set`) and input wires as written.
extension GraphCompiler {
    mutating func compileNode(id: String, json: JSONValue, path: String, variables: [String: JSONValue]) -> NodeDraft {
        var draft = NodeDraft(id: id, path: path)
        guard let members = json.members else {
            report("a node is an object with a \"stage\", got \(json.kindDescription)", node: id, at: path)
            return draft
        }
        for member in members where !GraphCompiler.nodeKeys.contains(member.key) {
            report("unknown key \"\(member.key)\"\(Suggestions.hint(member.key, GraphCompiler.nodeKeys)); "
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
            report("unknown stage '\(stageName)'\(Suggestions.hint(stageName, names)); `chisel stages` lists them",
                   node: id, at: "\(path).stage")
            return draft
        }
        draft.stage = stage
        let schema = stage.schema

        let errorsBefore = errors.count
        var given: [String: (JSONValue, String, base: String, fromCommandLine: Bool)] = [:]
        if let paramsJSON = json["params"] {
            if let params = paramsJSON.members {
                for member in params {
                    let paramPath = "\(path).params.\(member.key)"
                    guard schema.param(member.key) != nil else {
                        report("unknown parameter '\(member.key)' for stage '\(schema.name)'"
                               + Suggestions.hint(member.key, schema.params.map(\.name))
                               + (schema.params.isEmpty ? "; it takes no parameters"
                                   : "; it takes \(schema.params.map(\.name).joined(separator: ", "))"),
                               node: id, at: paramPath, code: .invalidParameter)
                        continue
                    }
                    if let value = substitute(member.value, variables: variables, node: id, at: paramPath) {
                        given[member.key] = (value, paramPath, directory, false)
                    }
                }
            } else {
                report("\"params\" must be an object, got \(paramsJSON.kindDescription)", node: id, at: "\(path).params")
            }
        }
        for override in options.overrides where override.node == id {
            if schema.param(override.param) != nil {
                given[override.param] = (override.value, "--set \(override.argument)", options.workingDirectory, true)
            }
        }
        for spec in schema.params {
            if let (value, where_, base, fromCommandLine) = given[spec.name], value != .null {
                draft.paramPaths[spec.name] = where_
                switch ParamChecker.typed(value, for: spec) {
                case .success(let typed):
                    draft.params[spec.name] = resolvePath(typed, spec: spec, base: base, node: id, at: where_,
                                                          fromCommandLine: fromCommandLine)
                case .failure(let problem):
                    report("parameter '\(spec.name)' \(problem)", node: id, at: where_, code: .invalidParameter)
                }
            } else if let value = spec.defaultValue {
                draft.params[spec.name] = resolvePath(value, spec: spec, base: directory, node: id,
                                                      at: draft.paramPath(spec.name), fromCommandLine: false)
            } else if spec.required && !isBatchSupplied(node: id, schema: schema, param: spec.name) {
                report("missing required parameter '\(spec.name)' (\(spec.doc))", node: id,
                       at: "\(path).params.\(spec.name)", code: .invalidParameter)
            }
        }
        draft.paramsValid = errors.count == errorsBefore

        if let inputsJSON = json["inputs"] {
            if let inputs = inputsJSON.members {
                for member in inputs {
                    let inputPath = "\(path).inputs.\(member.key)"
                    guard schema.input(member.key) != nil else {
                        let names = schema.inputs.map(\.name)
                        report("unknown input '\(member.key)' for stage '\(schema.name)'" + Suggestions.hint(member.key, names)
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

    /// A path parameter made absolute. Output paths follow the output policy: under a batch's
    /// folder, or, for a graph from an image, by file name under the folder the user chose;
    /// a path that would leave the folder is reported (nil).
    mutating func resolvePath(_ value: ParamValue, spec: ParamSpec, base: String, node: String, at path: String,
                              fromCommandLine: Bool) -> ParamValue? {
        guard case .path(let role) = spec.type, case .string(let text) = value else { return value }
        guard role == .output, let policy = options.outputPolicy else { return .string(PathResolver(base: base).resolve(text)) }
        if policy.fileNameOnly {
            // The user's own --set is theirs to aim; what the image says keeps only its file name.
            if fromCommandLine { return .string(PathResolver(base: base).resolve(text)) }
            let name = text.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? ""
            guard !name.isEmpty, name != ".", name != ".." else {
                report("output path \"\(text)\" names no file; \(policy.origin) writes by file name under \(policy.root)",
                       node: node, at: path, code: .invalidParameter)
                return nil
            }
            let resolved = OutputPolicy.join(policy.root, name)
            if name != text {
                notes.append("node '\(node)': the graph says \"\(text)\"; \(policy.origin) writes by file name only, "
                             + "under \(policy.root): \(resolved)")
            }
            return .string(resolved)
        }
        if policy.confined, let problem = OutputPolicy.escape(text) {
            report("output path \"\(text)\" \(problem), outside \(policy.root); in \(policy.origin) outputs go under "
                   + "the output folder: write a relative path without '..', or give --allow-outside-output",
                   node: node, at: path, code: .invalidParameter)
            return nil
        }
        return .string(PathResolver(base: policy.root).resolve(text))
    }

    mutating func checkOverrides(_ drafts: [NodeDraft]) {
        for override in options.overrides {
            guard let draft = drafts.first(where: { $0.id == override.node }) else {
                errors.append(ChiselError(.invalidArgument,
                    "--set \(override.argument): no node '\(override.node)'\(Suggestions.hint(override.node, drafts.map(\.id)))",
                    file: file))
                continue
            }
            if let schema = draft.stage?.schema, schema.param(override.param) == nil {
                errors.append(ChiselError(.invalidArgument,
                    "--set \(override.argument): stage '\(schema.name)' has no parameter '\(override.param)'"
                    + Suggestions.hint(override.param, schema.params.map(\.name)), file: file, node: override.node))
            }
        }
    }
}
