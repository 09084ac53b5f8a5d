/// The declaration of one input or output port of a stage.
public struct PortSpec: Sendable, Equatable {
    public var name: String
    public var type: ValueType
    public var doc: String
    /// For inputs: the stage runs without it.
    public var optional: Bool
    /// For outputs: produced only when this input is connected (e.g. a crop's mask output).
    public var requiresInput: String?

    public init(name: String, type: ValueType, doc: String, optional: Bool = false, requiresInput: String? = nil) {
        self.name = name
        self.type = type
        self.doc = doc
        self.optional = optional
        self.requiresInput = requiresInput
    }

    public static func image(_ name: String, optional: Bool = false, requires: String? = nil, _ doc: String) -> PortSpec {
        PortSpec(name: name, type: .image, doc: doc, optional: optional, requiresInput: requires)
    }

    public static func mask(_ name: String, optional: Bool = false, requires: String? = nil, _ doc: String) -> PortSpec {
        PortSpec(name: name, type: .mask, doc: doc, optional: optional, requiresInput: requires)
    }

    public static func latent(_ name: String, optional: Bool = false, requires: String? = nil, _ doc: String) -> PortSpec {
        PortSpec(name: name, type: .latent, doc: doc, optional: optional, requiresInput: requires)
    }

    public static func tokens(_ name: String, optional: Bool = false, requires: String? = nil, _ doc: String) -> PortSpec {
        PortSpec(name: name, type: .tokens, doc: doc, optional: optional, requiresInput: requires)
    }

    public static func conditioning(_ name: String, optional: Bool = false, _ doc: String) -> PortSpec {
        PortSpec(name: name, type: .conditioning, doc: doc, optional: optional)
    }

    public static func model(_ name: String, optional: Bool = false, _ doc: String) -> PortSpec {
        PortSpec(name: name, type: .model, doc: doc, optional: optional)
    }
}
