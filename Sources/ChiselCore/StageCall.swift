/// One invocation of a stage: its validated parameters, its connected inputs and the context.
///
/// Accessors throw rather than trap: validation guarantees types and presence, so an error here
/// means a stage asked for something its schema does not declare.
public struct StageCall: Sendable {
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

    // MARK: Parameters

    public func int(_ name: String) throws -> Int {
        guard case .int(let value)? = params[name] else { throw missing("int parameter '\(name)'") }
        return value
    }

    public func optionalInt(_ name: String) -> Int? {
        if case .int(let value)? = params[name] { return value }
        return nil
    }

    public func double(_ name: String) throws -> Double {
        switch params[name] {
        case .float(let value)?: return value
        case .int(let value)?: return Double(value)
        default: throw missing("float parameter '\(name)'")
        }
    }

    public func optionalDouble(_ name: String) -> Double? {
        switch params[name] {
        case .float(let value)?: value
        case .int(let value)?: Double(value)
        default: nil
        }
    }

    public func bool(_ name: String) throws -> Bool {
        guard case .bool(let value)? = params[name] else { throw missing("bool parameter '\(name)'") }
        return value
    }

    public func string(_ name: String) throws -> String {
        guard case .string(let value)? = params[name] else { throw missing("string parameter '\(name)'") }
        return value
    }

    public func optionalString(_ name: String) -> String? {
        if case .string(let value)? = params[name] { return value }
        return nil
    }

    /// A choice parameter read as a `RawRepresentable` enum.
    public func choice<T: RawRepresentable>(_ name: String, as type: T.Type = T.self) throws -> T
    where T.RawValue == String {
        let raw = try string(name)
        guard let value = T(rawValue: raw) else { throw missing("choice '\(raw)' for parameter '\(name)'") }
        return value
    }

    // MARK: Inputs

    public func isConnected(_ port: String) -> Bool { inputs[port] != nil }

    public func optionalImage(_ port: String) throws -> Image? {
        switch inputs[port] {
        case nil: return nil
        case .image(let image)?: return image
        case let other?: throw missing("image on input '\(port)' (got \(other.type.rawValue))")
        }
    }

    public func image(_ port: String) throws -> Image {
        guard let image = try optionalImage(port) else { throw missing("image input '\(port)'") }
        return image
    }

    public func optionalMask(_ port: String) throws -> Mask? {
        switch inputs[port] {
        case nil: return nil
        case .mask(let mask)?: return mask
        case let other?: throw missing("mask on input '\(port)' (got \(other.type.rawValue))")
        }
    }

    public func mask(_ port: String) throws -> Mask {
        guard let mask = try optionalMask(port) else { throw missing("mask input '\(port)'") }
        return mask
    }

    public func latent(_ port: String) throws -> Latent {
        guard case .latent(let latent)? = inputs[port] else { throw missing("latent input '\(port)'") }
        return latent
    }

    public func tokens(_ port: String) throws -> Tokens {
        guard case .tokens(let tokens)? = inputs[port] else { throw missing("tokens input '\(port)'") }
        return tokens
    }

    public func conditioning(_ port: String) throws -> Conditioning {
        guard case .conditioning(let conditioning)? = inputs[port] else { throw missing("conditioning input '\(port)'") }
        return conditioning
    }

    /// The model on `port`, cast to the type the stage needs.
    public func model<M: LoadedModel>(_ port: String, as type: M.Type) throws -> M {
        guard case .model(let handle)? = inputs[port] else { throw missing("model input '\(port)'") }
        guard let model = handle as? M else {
            throw failure("input '\(port)' is a \(handle.kind) model, which this stage cannot use", code: .model)
        }
        return model
    }
}
