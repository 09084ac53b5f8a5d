/// A parameter key with a value, for running a stage outside a graph (tests, tools, other
/// programs): `ResizeStage.width(512)`.
public struct ParamSetting: Sendable {
    public let name: String
    public let value: ParamValue?
}

/// An input key with a value, for running a stage outside a graph: `ResizeStage.image(photo)`.
public struct InputSetting: Sendable {
    public let name: String
    public let value: Value
}

extension Param {
    public func callAsFunction(_ value: Value) -> ParamSetting { ParamSetting(name: name, value: value.paramValue) }
}

extension Input {
    public func callAsFunction(_ value: Value) -> InputSetting { InputSetting(name: name, value: value.wire) }
}

extension OptionalInput {
    public func callAsFunction(_ value: Value) -> InputSetting { InputSetting(name: name, value: value.wire) }
}

extension ModelInput {
    public func callAsFunction(_ model: any LoadedModel) -> InputSetting { InputSetting(name: name, value: .model(model)) }
}

extension StageCall {
    /// A call of `stage` outside a graph: the schema's defaults with `params` applied and
    /// `inputs` connected. Values are typed by their keys; ranges are not checked.
    public init(_ stage: any Stage.Type, node: String? = nil, params: [ParamSetting] = [], inputs: [InputSetting] = [],
                context: StageContext) {
        let schema = stage.schema
        var values: [String: ParamValue] = [:]
        for spec in schema.params {
            if let value = spec.defaultValue { values[spec.name] = value }
        }
        for setting in params { values[setting.name] = setting.value }
        self.init(node: node ?? context.node, params: values,
                  inputs: Dictionary(inputs.map { ($0.name, $0.value) }, uniquingKeysWith: { _, last in last }),
                  context: context)
    }
}
