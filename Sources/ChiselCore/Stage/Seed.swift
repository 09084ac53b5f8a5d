/// A seed parameter's value: drawn at random (written -1) or fixed anywhere in the range
/// PyTorch's `manual_seed` takes, 0…2⁶⁴−1 (integers above `Int.max` travel as `.uint`).
public enum Seed: Sendable, Equatable, ParamRepresentable, CustomStringConvertible {
    case random
    case fixed(UInt64)

    /// A seed parameter's range: -1 (random) and every 64-bit seed.
    public static let range: ClosedRange<Double> = -1...18_446_744_073_709_551_615.0

    public static func read(_ value: ParamValue?) -> Seed? {
        switch value {
        case .int(-1)?: .random
        case .int(let i)? where i >= 0: .fixed(UInt64(i))
        case .uint(let u)?: .fixed(u)
        default: nil
        }
    }

    public var paramValue: ParamValue? {
        switch self {
        case .random: .int(-1)
        case .fixed(let seed): seed <= UInt64(Int.max) ? .int(Int(seed)) : .uint(seed)
        }
    }

    /// The seed as a graph writes it.
    public var json: JSONValue { paramValue?.json ?? .int(-1) }

    public var description: String {
        switch self {
        case .random: "-1"
        case .fixed(let seed): String(seed)
        }
    }

    /// The fixed seed, or nil for a random one.
    public var value: UInt64? {
        if case .fixed(let seed) = self { return seed }
        return nil
    }

    /// Seed `seed + offset`, wrapping past 2⁶⁴−1 as torch's seeds do; random stays random.
    public func advanced(by offset: Int) -> Seed {
        guard case .fixed(let seed) = self else { return self }
        return .fixed(seed &+ UInt64(truncatingIfNeeded: offset))
    }
}

extension Param where Value == Seed {
    /// A seed parameter: -1 (random, the default) or 0…2⁶⁴−1.
    public init(seed name: String, _ doc: String) {
        self.init(spec: ParamSpec(name: name, type: .int, defaultValue: .int(-1), required: false,
                                  range: Seed.range, doc: doc))
    }
}
