import ChiselBase

/// Where a network's weights come from, by their diffusers/transformers names.
public protocol WeightStore: Sendable {
    /// A description for errors: the file or folder.
    var source: String { get }
    func contains(_ name: String) -> Bool
    func shape(_ name: String) throws -> [Int]
    /// The values as Float, whatever the stored dtype.
    func floats(_ name: String) throws -> [Float]
    /// The values, after checking that the stored shape is `shape`.
    func floats(_ name: String, shape: [Int]) throws -> [Float]
}

extension WeightStore {
    /// The values, checking the shape first: a wrong shape names the tensor and both shapes.
    public func floats(_ name: String, shape expected: [Int]) throws -> [Float] {
        let actual = try shape(name)
        guard actual == expected else {
            throw ChiselError(.model, "shape \(actual) does not match the configuration's \(expected)", file: source,
                              tensor: name)
        }
        return try floats(name)
    }

    /// A view whose names are relative to `prefix` (e.g. `down_blocks.0.`).
    public func scoped(_ prefix: String) -> ScopedWeights { ScopedWeights(base: self, prefix: prefix) }
}

/// A `WeightStore` seen under a name prefix.
public struct ScopedWeights: WeightStore {
    let base: any WeightStore
    let prefix: String

    public var source: String { base.source }
    public func contains(_ name: String) -> Bool { base.contains(prefix + name) }
    public func shape(_ name: String) throws -> [Int] { try base.shape(prefix + name) }
    public func floats(_ name: String) throws -> [Float] { try base.floats(prefix + name) }
    public func floats(_ name: String, shape: [Int]) throws -> [Float] { try base.floats(prefix + name, shape: shape) }
    public func scoped(_ more: String) -> ScopedWeights { ScopedWeights(base: base, prefix: prefix + more) }
}

/// Weights held in memory, by name (tests and converted checkpoints).
public struct MemoryWeights: WeightStore {
    public var source: String
    public var tensors: [String: (shape: [Int], values: [Float])]

    public init(source: String, tensors: [String: (shape: [Int], values: [Float])]) {
        self.source = source
        self.tensors = tensors
    }

    public func contains(_ name: String) -> Bool { tensors[name] != nil }

    public func shape(_ name: String) throws -> [Int] {
        guard let tensor = tensors[name] else { throw missing(name) }
        return tensor.shape
    }

    public func floats(_ name: String) throws -> [Float] {
        guard let tensor = tensors[name] else { throw missing(name) }
        return tensor.values
    }

    func missing(_ name: String) -> ChiselError {
        ChiselError(.model, "missing tensor", file: source, tensor: name)
    }
}
