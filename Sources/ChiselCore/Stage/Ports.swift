/// Any input port key, for schemas and `StageCheck`.
public protocol InputKey: Sendable {
    var spec: PortSpec { get }
}

/// Any output port key, for schemas.
public protocol OutputKey: Sendable {
    var spec: PortSpec { get }
}

/// A required input port, declared once: the schema lists it and `run` reads it with
/// `call[Self.image]`.
public struct Input<Value: PortValue>: InputKey {
    public let spec: PortSpec

    public init(_ name: String, _ doc: String) {
        spec = PortSpec(name: name, type: Value.valueType, doc: doc)
    }

    public var name: String { spec.name }
}

/// An input port the stage runs without; `call[Self.mask]` is nil when it is not connected.
public struct OptionalInput<Value: PortValue>: InputKey {
    public let spec: PortSpec

    public init(_ name: String, _ doc: String) {
        spec = PortSpec(name: name, type: Value.valueType, doc: doc, optional: true)
    }

    public var name: String { spec.name }
}

/// A model input port; `call.model(Self.model, as: SomeModel.self)` reads it as the type the stage needs.
public struct ModelInput: InputKey {
    public let spec: PortSpec

    public init(_ name: String, optional: Bool = false, _ doc: String) {
        spec = PortSpec(name: name, type: .model, doc: doc, optional: optional)
    }

    public var name: String { spec.name }
}

/// An output port, declared once: the schema lists it and `run` returns `[Self.resized(image)]`.
public struct Output<Value: PortValue>: OutputKey {
    public let spec: PortSpec

    public init(_ name: String, _ doc: String) {
        spec = PortSpec(name: name, type: Value.valueType, doc: doc)
    }

    /// An output produced only when `input` is connected (e.g. a crop's mask).
    public init(_ name: String, requires input: some InputKey, _ doc: String) {
        spec = PortSpec(name: name, type: Value.valueType, doc: doc, requiresInput: input.spec.name)
    }

    public var name: String { spec.name }

    /// This output with a value, for building a stage's `StageOutputs`.
    public func callAsFunction(_ value: Value) -> StageOutputs.Entry {
        StageOutputs.Entry(name: spec.name, value: value.wire)
    }

    /// This output with a value that may be absent (an output that requires an input).
    public func callAsFunction(_ value: Value?) -> StageOutputs.Entry {
        StageOutputs.Entry(name: spec.name, value: value?.wire)
    }
}

/// What a stage returns: a value for output keys, built as `[Self.image(result), Self.mask(mask)]`.
public struct StageOutputs: Sendable, ExpressibleByArrayLiteral {
    public struct Entry: Sendable {
        let name: String
        let value: Value?
    }

    /// The values by port name, as the runner passes them on.
    public private(set) var values: [String: Value] = [:]

    public init() {}

    public init(arrayLiteral entries: Entry...) {
        for entry in entries { values[entry.name] = entry.value }
    }

    public subscript<V>(_ output: Output<V>) -> V? {
        get { values[output.name].flatMap(V.init(wire:)) }
        set { values[output.name] = newValue?.wire }
    }
}
