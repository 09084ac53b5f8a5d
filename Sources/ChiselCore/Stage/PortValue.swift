/// A value type that travels on a wire between stages: `Image`, `Mask`, `Latent`, `Tokens`,
/// `Conditioning`, `Control`. (Models travel as `any LoadedModel` through `ModelInput`.)
public protocol PortValue: Sendable {
    static var valueType: ValueType { get }
    init?(wire: Value)
    var wire: Value { get }
}

extension Image: PortValue {
    public static var valueType: ValueType { .image }
    public init?(wire: Value) {
        guard case .image(let image) = wire else { return nil }
        self = image
    }
    public var wire: Value { .image(self) }
}

extension Mask: PortValue {
    public static var valueType: ValueType { .mask }
    public init?(wire: Value) {
        guard case .mask(let mask) = wire else { return nil }
        self = mask
    }
    public var wire: Value { .mask(self) }
}

extension Latent: PortValue {
    public static var valueType: ValueType { .latent }
    public init?(wire: Value) {
        guard case .latent(let latent) = wire else { return nil }
        self = latent
    }
    public var wire: Value { .latent(self) }
}

extension Tokens: PortValue {
    public static var valueType: ValueType { .tokens }
    public init?(wire: Value) {
        guard case .tokens(let tokens) = wire else { return nil }
        self = tokens
    }
    public var wire: Value { .tokens(self) }
}

extension Conditioning: PortValue {
    public static var valueType: ValueType { .conditioning }
    public init?(wire: Value) {
        guard case .conditioning(let conditioning) = wire else { return nil }
        self = conditioning
    }
    public var wire: Value { .conditioning(self) }
}

extension Control: PortValue {
    public static var valueType: ValueType { .control }
    public init?(wire: Value) {
        guard case .control(let control) = wire else { return nil }
        self = control
    }
    public var wire: Value { .control(self) }
}
