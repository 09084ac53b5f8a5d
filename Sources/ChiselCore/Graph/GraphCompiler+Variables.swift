/// `${name}` references to graph variables and `--var` values.
extension GraphCompiler {
    /// Replaces `${name}` with variables: a whole-string reference keeps the variable's type.
    mutating func substitute(_ value: JSONValue, variables: [String: JSONValue], node: String?,
                                     at path: String) -> JSONValue? {
        guard case .string(let text) = value, text.contains("${") else { return value }
        if text.hasPrefix("${"), text.hasSuffix("}"), !text.dropFirst(2).dropLast().contains("}") {
            let name = String(text.dropFirst(2).dropLast())
            guard let variable = variables[name] else {
                report("unknown variable '\(name)'\(Suggestions.hint(name, Array(variables.keys)))", node: node, at: path)
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
                report("unknown variable '\(name)'\(Suggestions.hint(name, Array(variables.keys)))", node: node, at: path)
                return nil
            }
            switch variable {
            case .string(let s): out += s
            case .int(let i): out += String(i)
            case .uint(let u): out += String(u)
            case .double(let d): out += "\(d)"
            case .bool(let b): out += b ? "true" : "false"
            default: break
            }
            rest = rest[rest.index(after: end)...]
        }
        out += rest
        return .string(out)
    }
}
