import ChiselBase

/// A `WeightStore` that remembers which tensors a network read, to find the ones it did not.
final class TrackingWeights: WeightStore, @unchecked Sendable {
    let base: any WeightStore
    private let read = Locked<Set<String>>([])

    init(_ base: any WeightStore) { self.base = base }

    var source: String { base.source }
    var readNames: Set<String> { read.value }
    func contains(_ name: String) -> Bool { base.contains(name) }
    func shape(_ name: String) throws -> [Int] { try base.shape(name) }

    func floats(_ name: String) throws -> [Float] {
        read.withLock { _ = $0.insert(name) }
        return try base.floats(name)
    }

    func floats(_ name: String, shape: [Int]) throws -> [Float] {
        read.withLock { _ = $0.insert(name) }
        return try base.floats(name, shape: shape)
    }
}
