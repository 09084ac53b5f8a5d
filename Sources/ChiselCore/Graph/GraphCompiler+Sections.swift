import Foundation

/// The `variables`, `models` and `batch` sections of a graph.
extension GraphCompiler {
    mutating func compileVariables(_ json: JSONValue?, document: JSONValue? = nil) -> [String: JSONValue] {
        var variables: [String: JSONValue] = [:]
        if let json {
            if let members = json.members {
                for member in members {
                    switch member.value {
                    case .string, .int, .uint, .double, .bool: variables[member.key] = member.value
                    default:
                        report("a variable must be a string, number or boolean, got \(member.value.kindDescription)",
                               at: "variables.\(member.key)")
                    }
                }
            } else {
                report("\"variables\" must be an object of name → value", at: "variables")
            }
        }
        let declared = Array(variables.keys)
        var referenced: Set<String> = []
        if let graph = document { GraphCompiler.collectReferences(in: graph, into: &referenced) }
        for (name, value) in options.variables.sorted(by: { $0.key < $1.key }) {
            if variables[name] == nil, !referenced.contains(name) {
                let known = Set(declared).union(referenced).sorted()
                errors.append(ChiselError(.invalidArgument, "--var \(name)=…: the graph has no variable '\(name)'"
                                          + Suggestions.hint(name, known)
                                          + (known.isEmpty ? "; it declares none" : "; its variables: \(known.joined(separator: ", "))"),
                                          file: file))
                continue
            }
            variables[name] = value
        }
        return variables
    }

    /// The names of every `${name}` reference in the document's strings.
    static func collectReferences(in json: JSONValue, into names: inout Set<String>) {
        switch json {
        case .string(var text):
            while let start = text.range(of: "${"), let end = text[start.upperBound...].firstIndex(of: "}") {
                names.insert(String(text[start.upperBound..<end]))
                text = String(text[text.index(after: end)...])
            }
        case .array(let items):
            for item in items { collectReferences(in: item, into: &names) }
        case .object(let members):
            for member in members { collectReferences(in: member.value, into: &names) }
        default:
            break
        }
    }

    /// Model paths may use `${name}` variables, so a graph can take its checkpoint from `--var`.
    mutating func compileModels(_ json: JSONValue?, variables: [String: JSONValue]) -> [ModelSpec] {
        let members = json?.members ?? []
        let names = members.map(\.key)
        for name in options.modelPaths.keys.sorted() where !names.contains(name) {
            errors.append(ChiselError(.invalidArgument, "--model \(name)=…: the graph has no model '\(name)'"
                                      + Suggestions.hint(name, names)
                                      + (names.isEmpty ? "" : "; its models: \(names.joined(separator: ", "))"), file: file))
        }
        guard let json else { return [] }
        guard json.members != nil else {
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
            let location: String
            if let given = options.modelPaths[member.key] {
                location = given
            } else if let written = member.value["path"], case .string(let text)? = substitute(
                written, variables: variables, node: nil, at: path + ".path"), !text.isEmpty {
                location = text
            } else {
                report("a model needs a \"path\" string", at: path + ".path")
                continue
            }
            var kind: String?
            if let value = member.value["kind"] {
                if let text = value.stringValue { kind = text } else { report("must be a string", at: path + ".kind") }
            }
            var optionsByKey: [String: JSONValue] = [:]
            for option in entry where option.key != "path" && option.key != "kind" {
                optionsByKey[option.key] = Self.resolvingPaths(inOption: option.key, option.value, base: directory)
            }
            let resolved: String
            if BuiltinModelLocation.name(in: location) != nil {
                do {
                    resolved = try registry.builtinModelFolder(for: location) ?? location
                } catch {
                    report((error as? ChiselError)?.message ?? "\(error)", at: path + ".path", code: .model)
                    continue
                }
            } else {
                resolved = PathResolver(base: directory).resolve(location)
            }
            if options.checkInputFiles, !FileManager.default.fileExists(atPath: resolved) {
                report("model '\(member.key)' not found at \(resolved)"
                       + (options.modelPaths[member.key] == nil ? "; give --model \(member.key)=PATH for the one you have" : ""),
                       at: path + ".path", code: .model)
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
            let loader = kind.map { registry.modelLoader(kind: $0) } ?? registry.modelLoaders.first { $0.recognizes(path: resolved) }
            for problem in loader?.problems(with: spec) ?? [] {
                report(problem.message, at: "\(path).\(problem.key)", code: .model)
            }
            for warning in loader?.warnings(with: spec) ?? [] { warnings.append("model '\(member.key)': \(warning)") }
            specs.append(spec)
        }
        return specs
    }

    /// A model option with the file paths it holds resolved against the graph's folder, as the
    /// model's own path is: `tokenizer` (a folder), `vae`, and each entry's `path` in `loras` and `embeddings` (arrays of
    /// paths or of `{"path", "scale"}` objects).
    static func resolvingPaths(inOption key: String, _ value: JSONValue, base: String) -> JSONValue {
        let resolver = PathResolver(base: base)
        switch (key, value) {
        case ("tokenizer", .string(let path)), ("vae", .string(let path)):
            return .string(resolver.resolve(path))
        case ("loras", .array(let items)), ("embeddings", .array(let items)):
            return .array(items.map { item in
                switch item {
                case .string(let path):
                    return .string(resolver.resolve(path))
                case .object(let members):
                    return .object(members.map { member in
                        guard member.key == "path", case .string(let path) = member.value else { return member }
                        return JSONMember(key: member.key, value: .string(resolver.resolve(path)), line: member.line)
                    })
                default:
                    return item
                }
            })
        default:
            return value
        }
    }

    mutating func compileBatchField(_ json: JSONValue?) -> (image: String?, mask: String?) {
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
}
