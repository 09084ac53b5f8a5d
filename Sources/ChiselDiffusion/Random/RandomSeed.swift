/// Seeds given by the user, or drawn when they gave none.
public enum RandomSeed {
    /// The seed to use for a request: a fresh one from the system's random source when
    /// `requested` is nil or -1 (the UIs' "random"), otherwise `requested` itself, with other
    /// negative values taken modulo 2^64 as `torch.Generator.manual_seed` takes them.
    ///
    /// The drawn seed is returned so it can be reported and the result reproduced. Drawn seeds
    /// stay below 2^32, as AUTOMATIC1111's are: torch's CPU generator uses only the low 32 bits
    /// anyway, and such seeds read the same in every UI.
    public static func resolve(_ requested: Int64?) -> UInt64 {
        var system = SystemRandomNumberGenerator()
        return resolve(requested, using: &system)
    }

    /// `resolve(_:)` drawing from `generator` instead of the system source, for tests.
    public static func resolve<G: RandomNumberGenerator>(_ requested: Int64?, using generator: inout G) -> UInt64 {
        if let requested, requested != -1 { return UInt64(bitPattern: requested) }
        return UInt64(UInt32.random(in: .min ... .max, using: &generator))
    }
}
