/// Typed access to a node's validated parameters, shared by `StageCall` (in `run`) and
/// `StageCheck` (in `validate`).
public protocol ParamReading {
    var node: String { get }
    var params: [String: ParamValue] { get }
}

extension ParamReading {
    /// The parameter's value. Validation guarantees type and presence for every parameter the
    /// schema declares, so this throws only for a key the stage's schema does not list.
    public subscript<V>(_ param: Param<V>) -> V {
        get throws {
            guard let value = V.read(params[param.name]) else {
                throw ChiselError(.internal, "stage read parameter '\(param.name)', which its schema does not declare "
                                  + "as \(param.spec.type.name)", node: node)
            }
            return value
        }
    }

    /// Whether the graph (or the default) gave the parameter a value.
    public func isSet(_ param: some ParamKey) -> Bool { params[param.spec.name] != nil }
}
