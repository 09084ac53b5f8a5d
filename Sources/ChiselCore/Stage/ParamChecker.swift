/// Checks a JSON value against a parameter declaration and types it.
public enum ParamChecker {
    /// Why a value does not fit its declaration, in words: "expects an int, got a string".
    public struct Problem: Error, Sendable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// The typed value, or a one-line problem such as "expects an int, got a string".
    public static func typed(_ json: JSONValue, for spec: ParamSpec) -> Result<ParamValue, Problem> {
        let value: ParamValue
        switch (spec.type, json) {
        case (.int, .int(let i)):
            value = .int(i)
        case (.int, .uint(let u)):
            value = .uint(u)
        case (.int, .double(let d)) where d == d.rounded() && abs(d) < 9e15:
            value = .int(Int(d))
        case (.float, .int(let i)):
            value = .float(Double(i))
        case (.float, .uint(let u)):
            value = .float(Double(u))
        case (.float, .double(let d)):
            value = .float(d)
        case (.bool, .bool(let b)):
            value = .bool(b)
        case (.string, .string(let s)), (.path, .string(let s)):
            value = .string(s)
        case (.choice(let choices), .string(let s)):
            guard choices.contains(s) else {
                return Result.failure(Problem("\"\(s)\" is not one of \(choices.map { "\"\($0)\"" }.joined(separator: ", "))"))
            }
            value = .string(s)
        default:
            let expected: String
            switch spec.type {
            case .int: expected = "an int"
            case .float: expected = "a number"
            case .bool: expected = "true or false"
            case .string: expected = "a string"
            case .choice(let choices): expected = "one of \(choices.map { "\"\($0)\"" }.joined(separator: ", "))"
            case .path: expected = "a path string"
            }
            return Result.failure(Problem("expects \(expected), got \(json.kindDescription)"))
        }
        if case .float(let d) = value, !d.isFinite {
            return Result.failure(Problem("must be a finite number, got \(d)"))
        }
        if let range = spec.range {
            let number: Double? = switch value {
            case .int(let i): Double(i)
            case .uint(let u): Double(u)
            case .float(let d): d
            default: nil
            }
            if let number, !range.contains(number) {
                return Result.failure(Problem("\(value) is out of range "
                                              + "\(ParamSpec.format(bound: range.lowerBound))...\(ParamSpec.format(bound: range.upperBound))"))
            }
        }
        if case .path = spec.type, case .string(let s) = value, s.isEmpty {
            return Result.failure(Problem("path is empty"))
        }
        return .success(value)
    }

    /// The problem with `json` for `spec`, or nil when it is valid.
    public static func problem(with json: JSONValue, for spec: ParamSpec) -> String? {
        if case .failure(let problem) = typed(json, for: spec) { return problem.description }
        return nil
    }
}
