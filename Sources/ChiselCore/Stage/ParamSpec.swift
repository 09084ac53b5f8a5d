/// What a path parameter points at, which decides how a relative path resolves.
public enum PathRole: String, Sendable, Equatable {
    /// A file the stage reads: relative to the graph's folder, or to the working directory
    /// when given on the command line.
    case input
    /// A file the stage writes, possibly a template such as `out/{stem}.png`: like `input`,
    /// except that in a batch it resolves under the batch's output folder.
    case output
}

/// The type of a stage parameter.
public enum ParamType: Sendable, Equatable {
    case int
    case float
    case bool
    case string
    /// A string from a fixed list.
    case choice([String])
    case path(PathRole)

    public var name: String {
        switch self {
        case .int: "int"
        case .float: "float"
        case .bool: "bool"
        case .string: "string"
        case .choice: "choice"
        case .path(let role): role == .input ? "path" : "output path"
        }
    }
}

/// The declaration of one stage parameter: everything validation, `chisel stages` and the
/// docs say about it comes from here.
public struct ParamSpec: Sendable, Equatable {
    public var name: String
    public var type: ParamType
    /// The value used when the graph gives none; nil with `required` false means "unset".
    public var defaultValue: ParamValue?
    public var required: Bool
    /// Inclusive bounds for int and float parameters.
    public var range: ClosedRange<Double>?
    public var doc: String

    public init(name: String, type: ParamType, defaultValue: ParamValue?, required: Bool,
                range: ClosedRange<Double>?, doc: String) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.required = required
        self.range = range
        self.doc = doc
    }

    public static func int(_ name: String, default value: Int? = nil, range: ClosedRange<Int>? = nil,
                           required: Bool = false, _ doc: String) -> ParamSpec {
        ParamSpec(name: name, type: .int, defaultValue: value.map(ParamValue.int), required: required,
                  range: range.map { Double($0.lowerBound)...Double($0.upperBound) }, doc: doc)
    }

    public static func float(_ name: String, default value: Double? = nil, range: ClosedRange<Double>? = nil,
                             required: Bool = false, _ doc: String) -> ParamSpec {
        ParamSpec(name: name, type: .float, defaultValue: value.map(ParamValue.float), required: required,
                  range: range, doc: doc)
    }

    public static func bool(_ name: String, default value: Bool, _ doc: String) -> ParamSpec {
        ParamSpec(name: name, type: .bool, defaultValue: .bool(value), required: false, range: nil, doc: doc)
    }

    public static func string(_ name: String, default value: String? = nil, required: Bool = false,
                              _ doc: String) -> ParamSpec {
        ParamSpec(name: name, type: .string, defaultValue: value.map(ParamValue.string), required: required,
                  range: nil, doc: doc)
    }

    public static func choice(_ name: String, _ choices: [String], default value: String, _ doc: String) -> ParamSpec {
        ParamSpec(name: name, type: .choice(choices), defaultValue: .string(value), required: false,
                  range: nil, doc: doc)
    }

    public static func path(_ name: String, role: PathRole, default value: String? = nil, _ doc: String) -> ParamSpec {
        ParamSpec(name: name, type: .path(role), defaultValue: value.map(ParamValue.string),
                  required: value == nil, range: nil, doc: doc)
    }

    /// A range bound as people write it: `0`, `0.5`, `18446744073709551615` (a seed's top).
    public static func format(bound: Double) -> String {
        if bound >= 18_446_744_073_709_551_615.0 { return String(UInt64.max) }
        if bound == bound.rounded(), abs(bound) < 1e15 { return String(Int(bound)) }
        return "\(bound)"
    }
}
