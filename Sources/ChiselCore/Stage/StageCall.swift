/// One invocation of a stage: its validated parameters, its connected inputs and the context.
///
/// Parameters and inputs are read through the stage's typed keys (`call[Self.width]`,
/// `call[Self.image]`). Accessors throw rather than trap: validation guarantees types and
/// presence, so an error here means a stage asked for something its schema does not declare.
public struct StageCall: ParamReading, Sendable {
    public let node: String
    public let params: [String: ParamValue]
    public let inputs: [String: Value]
    public let context: StageContext

    public init(node: String, params: [String: ParamValue], inputs: [String: Value], context: StageContext) {
        self.node = node
        self.params = params
        self.inputs = inputs
        self.context = context
    }

    /// An error located at this node.
    public func failure(_ message: String, code: ChiselError.Code = .stageFailed, file: String? = nil) -> ChiselError {
        ChiselError(code, message, file: file, node: node)
    }

    private func missing(_ what: String) -> ChiselError {
        ChiselError(.internal, "stage asked for \(what), which its schema does not provide", node: node)
    }

    // MARK: Inputs

    public func isConnected(_ input: some InputKey) -> Bool { inputs[input.spec.name] != nil }

    public subscript<V>(_ input: Input<V>) -> V {
        get throws {
            guard let wire = inputs[input.name] else { throw missing("\(V.valueType.rawValue) input '\(input.name)'") }
            guard let value = V(wire: wire) else {
                throw missing("\(V.valueType.rawValue) on input '\(input.name)' (got \(wire.type.rawValue))")
            }
            return value
        }
    }

    public subscript<V>(_ input: OptionalInput<V>) -> V? {
        get throws {
            guard let wire = inputs[input.name] else { return nil }
            guard let value = V(wire: wire) else {
                throw missing("\(V.valueType.rawValue) on input '\(input.name)' (got \(wire.type.rawValue))")
            }
            return value
        }
    }

    /// The model on `input`, cast to the type the stage needs.
    public func model<M: LoadedModel>(_ input: ModelInput, as type: M.Type) throws -> M {
        guard case .model(let handle)? = inputs[input.name] else { throw missing("model input '\(input.name)'") }
        guard let model = handle as? M else {
            throw failure("input '\(input.name)' is a \(handle.kind) model, which this stage cannot use", code: .model)
        }
        return model
    }
}
