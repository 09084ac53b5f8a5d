/// A parameter value after validation: typed as its `ParamSpec` says.
public enum ParamValue: Sendable, Equatable, CustomStringConvertible {
    case int(Int)
    /// An integer above `Int.max`, which only a parameter whose range reaches there takes (a seed).
    case uint(UInt64)
    case float(Double)
    case bool(Bool)
    case string(String)

    public var description: String {
        switch self {
        case .int(let i): String(i)
        case .uint(let u): String(u)
        case .float(let d): d == d.rounded() && abs(d) < 1e15 ? String(format1: d) : "\(d)"
        case .bool(let b): b ? "true" : "false"
        case .string(let s): "\"\(s)\""
        }
    }

    public var json: JSONValue {
        switch self {
        case .int(let i): .int(i)
        case .uint(let u): .uint(u)
        case .float(let d): .double(d)
        case .bool(let b): .bool(b)
        case .string(let s): .string(s)
        }
    }
}

extension String {
    /// `2.0` for 2, keeping a decimal point so floats read as floats.
    init(format1 value: Double) { self = String(Int(value)) + ".0" }
}
