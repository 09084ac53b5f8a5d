/// A Swift type a stage parameter reads as: `Int`, `Double`, `Bool`, `String`, an optional of
/// one of them (an unset parameter reads as nil), or a `ParamChoice` enum.
public protocol ParamRepresentable: Sendable {
    /// The value as this type; nil when the validated value is missing or of another type,
    /// which only a parameter the schema does not declare can cause.
    static func read(_ value: ParamValue?) -> Self?
    /// The value as the schema stores it.
    var paramValue: ParamValue? { get }
}

extension Int: ParamRepresentable {
    public static func read(_ value: ParamValue?) -> Int? {
        if case .int(let i)? = value { return i }
        return nil
    }
    public var paramValue: ParamValue? { .int(self) }
}

extension Double: ParamRepresentable {
    public static func read(_ value: ParamValue?) -> Double? {
        switch value {
        case .float(let d)?: d
        case .int(let i)?: Double(i)
        default: nil
        }
    }
    public var paramValue: ParamValue? { .float(self) }
}

extension Bool: ParamRepresentable {
    public static func read(_ value: ParamValue?) -> Bool? {
        if case .bool(let b)? = value { return b }
        return nil
    }
    public var paramValue: ParamValue? { .bool(self) }
}

extension String: ParamRepresentable {
    public static func read(_ value: ParamValue?) -> String? {
        if case .string(let s)? = value { return s }
        return nil
    }
    public var paramValue: ParamValue? { .string(self) }
}

extension Optional: ParamRepresentable where Wrapped: ParamRepresentable {
    /// A missing value is a valid `nil` (the parameter is unset); a present one must read as `Wrapped`.
    public static func read(_ value: ParamValue?) -> Wrapped?? {
        guard let value else { return .some(nil) }
        return Wrapped.read(value).map { .some($0) }
    }
    public var paramValue: ParamValue? { self?.paramValue ?? nil }
}

/// A choice parameter as an enum: its raw values are the choices, in declaration order.
public protocol ParamChoice: RawRepresentable, CaseIterable, ParamRepresentable where RawValue == String {}

extension ParamChoice {
    public static func read(_ value: ParamValue?) -> Self? {
        guard case .string(let raw)? = value else { return nil }
        return Self(rawValue: raw)
    }
    public var paramValue: ParamValue? { .string(rawValue) }
    static var choices: [String] { allCases.map(\.rawValue) }
}
