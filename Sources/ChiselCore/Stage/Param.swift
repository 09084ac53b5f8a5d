/// A stage parameter declared once, as a typed key: the schema lists it and `run` reads it
/// with `call[Self.width]`, so a misspelled name does not compile.
///
/// ```swift
/// static let width = Param<Int>("width", default: 0, range: 0...65536, "Target width.")
/// static let scale = Param<Double?>("scale", range: 0.001...64, "Scale factor, when set.")
/// static let mode = Param<Mode>("mode", default: .fit, "How to fit.")
/// ```
public struct Param<Value: ParamRepresentable>: ParamKey {
    public let spec: ParamSpec

    public init(spec: ParamSpec) { self.spec = spec }

    public var name: String { spec.name }
}

/// Any parameter key, for schemas and messages.
public protocol ParamKey: Sendable {
    var spec: ParamSpec { get }
}

extension Param where Value == Int {
    public init(_ name: String, default value: Int, range: ClosedRange<Int>? = nil, _ doc: String) {
        self.init(spec: .int(name, default: value, range: range, doc))
    }
}

extension Param where Value == Int? {
    /// An int parameter that may be left unset.
    public init(_ name: String, range: ClosedRange<Int>? = nil, _ doc: String) {
        self.init(spec: .int(name, range: range, doc))
    }
}

extension Param where Value == Double {
    public init(_ name: String, default value: Double, range: ClosedRange<Double>? = nil, _ doc: String) {
        self.init(spec: .float(name, default: value, range: range, doc))
    }
}

extension Param where Value == Double? {
    /// A number parameter that may be left unset.
    public init(_ name: String, range: ClosedRange<Double>? = nil, _ doc: String) {
        self.init(spec: .float(name, range: range, doc))
    }
}

extension Param where Value == Bool {
    public init(_ name: String, default value: Bool, _ doc: String) {
        self.init(spec: .bool(name, default: value, doc))
    }
}

extension Param where Value == String {
    public init(_ name: String, default value: String, _ doc: String) {
        self.init(spec: .string(name, default: value, doc))
    }

    /// A string the graph must give.
    public static func required(_ name: String, _ doc: String) -> Param<String> {
        Param(spec: .string(name, required: true, doc))
    }

    /// A file path: relative paths resolve as `role` says. With no default it is required.
    public static func path(_ name: String, role: PathRole, default value: String? = nil, _ doc: String) -> Param<String> {
        Param(spec: .path(name, role: role, default: value, doc))
    }
}

extension Param where Value == String? {
    /// A string parameter that may be left unset.
    public init(_ name: String, _ doc: String) {
        self.init(spec: .string(name, doc))
    }
}

extension Param where Value: ParamChoice {
    /// A choice among the enum's cases.
    public init(_ name: String, default value: Value, _ doc: String) {
        self.init(spec: .choice(name, Value.choices, default: value.rawValue, doc))
    }
}
