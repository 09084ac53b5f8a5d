import ChiselBase
/// Random weights of whatever shape a network asks for: full-size networks for benchmarks,
/// where speed does not depend on the values. Values are uniform in ±1/√fan-in (norm scales 1,
/// biases small), so activations stay in a normal range and no denormals slow the kernels.
public struct RandomWeights: WeightStore {
    public let source = "random weights"
    private let seed: UInt64

    public init(seed: UInt64 = 1) { self.seed = seed }

    public func contains(_ name: String) -> Bool { true }

    public func shape(_ name: String) throws -> [Int] {
        throw ChiselErrorFactory.model("random weights have no stored shape", source, tensor: name)
    }

    public func floats(_ name: String) throws -> [Float] {
        throw ChiselErrorFactory.model("random weights need the expected shape", source, tensor: name)
    }

    public func floats(_ name: String, shape: [Int]) throws -> [Float] {
        let count = shape.reduce(1, *)
        if shape.count == 1 && name.hasSuffix(".weight") { return [Float](repeating: 1, count: count) }
        let fanIn = shape.count > 1 ? shape.dropFirst().reduce(1, *) : 64
        let bound = 1 / Float(fanIn).squareRoot()
        // FNV-1a of the name: the same values in every run.
        var state = name.utf8.reduce(seed ^ 0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 } | 1
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (Float(state >> 40) / Float(1 << 23) - 1) * bound
        }
    }
}
