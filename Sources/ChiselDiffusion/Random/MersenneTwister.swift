/// The 32-bit Mersenne Twister (mt19937) as PyTorch's CPU generator runs it.
///
/// Follows `at::mt19937_engine` in `aten/src/ATen/core/MT19937RNGEngine.h` and
/// `CPUGeneratorImpl::random()` / `random64()` in `aten/src/ATen/CPUGeneratorImpl.cpp`:
/// - seeding (`init_with_uint32`) keeps only the low 32 bits of the 64-bit seed, so
///   `manual_seed(2**32)` and `manual_seed(0)` give the same stream; the full seed is still
///   reported by `seed`, as `Generator.initial_seed()` does;
/// - the state is regenerated lazily on the first draw (`left_ = 1` after seeding);
/// - a 64-bit draw is two 32-bit draws, the first one in the high half.
public struct MersenneTwister: Sendable {
    static let stateCount = 624
    static let shift = 397
    static let matrixA: UInt32 = 0x9908_b0df
    static let upperMask: UInt32 = 0x8000_0000
    static let lowerMask: UInt32 = 0x7fff_ffff

    /// The seed as given, all 64 bits (only the low 32 reach the state).
    public let seed: UInt64
    private var state: [UInt32]
    /// Draws left before the state must be regenerated, plus one (torch's `left_`).
    private var left: Int
    /// Index of the next state word to temper (torch's `next_`).
    private var nextIndex: Int

    /// Seeds the state the way `torch.Generator().manual_seed(seed)` does.
    public init(seed: UInt64) {
        self.seed = seed
        var words = [UInt32](repeating: 0, count: Self.stateCount)
        words[0] = UInt32(truncatingIfNeeded: seed)
        for j in 1..<Self.stateCount {
            let previous = words[j - 1]
            words[j] = 1_812_433_253 &* (previous ^ (previous >> 30)) &+ UInt32(j)
        }
        state = words
        left = 1
        nextIndex = 0
    }

    /// One tempered 32-bit output (`mt19937_engine::operator()`).
    @inline(__always)
    public mutating func nextUInt32() -> UInt32 {
        left -= 1
        if left == 0 { regenerate() }
        var y = state[nextIndex]
        nextIndex += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9d2c_5680
        y ^= (y << 15) & 0xefc6_0000
        y ^= y >> 18
        return y
    }

    /// Two draws joined high-then-low, as `CPUGeneratorImpl::random64()` does.
    @inline(__always)
    public mutating func nextUInt64() -> UInt64 {
        let high = UInt64(nextUInt32())
        let low = UInt64(nextUInt32())
        return (high << 32) | low
    }

    /// Fills `buffer` with consecutive 32-bit draws; same stream as repeated `nextUInt32()`.
    public mutating func fill(_ buffer: UnsafeMutableBufferPointer<UInt32>) {
        guard let out = buffer.baseAddress else { return }
        var filled = 0
        while filled < buffer.count {
            // As nextUInt32 would: regenerate when the last word was drawn; `left` is one more than
            // the words still available.
            if left == 1 {
                regenerate()
                left = Self.stateCount + 1
            }
            let take = min(left - 1, buffer.count - filled)
            let start = nextIndex
            state.withUnsafeBufferPointer { words in
                for k in 0..<take {
                    var y = words[start + k]
                    y ^= y >> 11
                    y ^= (y << 7) & 0x9d2c_5680
                    y ^= (y << 15) & 0xefc6_0000
                    y ^= y >> 18
                    out[filled + k] = y
                }
            }
            nextIndex += take
            left -= take
            filled += take
        }
    }

    /// The twist of all 624 words at once (`mt19937_engine::next_state`).
    private mutating func regenerate() {
        let n = Self.stateCount
        let m = Self.shift
        state.withUnsafeMutableBufferPointer { words in
            @inline(__always) func twist(_ u: UInt32, _ v: UInt32) -> UInt32 {
                let mixed = (u & Self.upperMask) | (v & Self.lowerMask)
                return (mixed >> 1) ^ ((v & 1) != 0 ? Self.matrixA : 0)
            }
            for k in 0..<(n - m) {
                words[k] = words[k + m] ^ twist(words[k], words[k + 1])
            }
            for k in (n - m)..<(n - 1) {
                words[k] = words[k + m - n] ^ twist(words[k], words[k + 1])
            }
            words[n - 1] = words[m - 1] ^ twist(words[n - 1], words[0])
        }
        left = n
        nextIndex = 0
    }
}
