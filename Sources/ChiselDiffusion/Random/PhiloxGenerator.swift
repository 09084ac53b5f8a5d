#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// AUTOMATIC1111's "NV" random number source, `modules/rng_philox.py` of stable-diffusion-webui,
/// which imitates `torch.randn(..., device="cuda")` on any device.
///
/// Each `normal(count:)` call is one `Generator.randn(shape)` of that file:
/// - value i is Philox4x32-10 of the counter `(offset, 0, i, 0)` under the key
///   `(seed & 0xFFFF_FFFF, seed >> 32)`; `offset` starts at 0 and grows by one per call,
///   whatever the call's size, so the stream position counts calls, not values;
/// - only the first two output words are used, through Box–Muller's sine branch:
///   `u = x * 2^-32 + 2^-33`, `v = y * (2π 2^-32) + (2π 2^-33)` with both constants rounded to
///   float32 first as that file does, then `sqrt(-2 log u) * sin v` in double, rounded to float.
///
/// NumPy promotes the file's `uint32 * float32` to double, so the math here is double too.
/// NumPy's own SIMD `log` may differ from libm's in the last double bit; after the rounding to
/// float32 that never showed in the checks (see `tools/diffusion/README.md`).
/// `uniform(count:)` is not part of that file; it is defined here from the same stream as
/// `u` above (one value per counter, offset advanced by one per call), kept for `NoiseSource`.
public struct PhiloxGenerator: NoiseSource, Sendable {
    static let multiplier0: UInt32 = 0xD251_1F53
    static let multiplier1: UInt32 = 0xCD9E_8D57
    static let weyl0: UInt32 = 0x9E37_79B9
    static let weyl1: UInt32 = 0xBB67_AE85
    /// `two_pow32_inv`: the float32 nearest `2.3283064e-10`, which is 2^-32 exactly, widened.
    static let twoPow32Inverse = Double(Float(bitPattern: 0x2f80_0000))
    /// `two_pow32_inv_2pi`: `2.3283064e-10 * 6.2831855` in double, rounded to float32
    /// (bit pattern 0x30c90fdb, float32 2π times 2^-32), widened.
    static let twoPow32Inverse2Pi = Double(Float(bitPattern: 0x30c9_0fdb))
    /// The file's `two_pow32_inv / 2` and `two_pow32_inv_2pi / 2`, halved in float32 (exact).
    static let halfTwoPow32Inverse = twoPow32Inverse / 2
    static let halfTwoPow32Inverse2Pi = twoPow32Inverse2Pi / 2

    /// The seed, the Philox key.
    public let seed: UInt64
    /// Calls made so far: the first counter word of the next call (uint32 there too).
    public private(set) var offset: UInt32

    /// A generator as `rng_philox.Generator(seed)` starts, offset 0.
    public init(seed: UInt64) {
        self.seed = seed
        offset = 0
    }

    /// `Generator.randn(shape)` for `count` values; advances the offset by one even for none.
    ///
    /// The file keeps element indices in uint32, so counts beyond 2^32 wrap as they would there.
    public mutating func normal(count: Int) -> [Float] {
        let callOffset = offset
        offset &+= 1
        guard count > 0 else { return [] }
        let key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            for i in 0..<count {
                let words = Self.philox4x32(
                    counter: (callOffset, 0, UInt32(truncatingIfNeeded: i), 0), key: key)
                buffer[i] = Self.boxMullerSine(words.0, words.1)
            }
            initialized = count
        }
    }

    /// Uniform values in (0, 1) from the same stream, `x * 2^-32 + 2^-33` rounded to float; one
    /// offset per call like `normal(count:)`. Not in A1111's file (it draws no uniforms).
    public mutating func uniform(count: Int) -> [Float] {
        let callOffset = offset
        offset &+= 1
        guard count > 0 else { return [] }
        let key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            for i in 0..<count {
                let words = Self.philox4x32(
                    counter: (callOffset, 0, UInt32(truncatingIfNeeded: i), 0), key: key)
                buffer[i] = Float(Double(words.0) * Self.twoPow32Inverse + Self.halfTwoPow32Inverse)
            }
            initialized = count
        }
    }

    /// Philox4x32 with 10 rounds (Salmon et al. 2011, Random123's `philox4x32_R`), the key
    /// bumped by the Weyl constants between rounds, as `philox4_32` in the file.
    @inline(__always)
    static func philox4x32(
        counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32), rounds: Int = 10
    ) -> (UInt32, UInt32, UInt32, UInt32) {
        var c = counter
        var k = key
        for round in 0..<rounds {
            if round > 0 {
                k.0 &+= weyl0
                k.1 &+= weyl1
            }
            let product0 = UInt64(c.0) &* UInt64(multiplier0)
            let product1 = UInt64(c.2) &* UInt64(multiplier1)
            c = (
                UInt32(truncatingIfNeeded: product1 >> 32) ^ c.1 ^ k.0,
                UInt32(truncatingIfNeeded: product1),
                UInt32(truncatingIfNeeded: product0 >> 32) ^ c.3 ^ k.1,
                UInt32(truncatingIfNeeded: product0)
            )
        }
        return c
    }

    /// The file's `box_muller(x, y)`: the sine branch only, in double, rounded to float.
    @inline(__always)
    static func boxMullerSine(_ x: UInt32, _ y: UInt32) -> Float {
        let u = Double(x) * twoPow32Inverse + halfTwoPow32Inverse
        let v = Double(y) * twoPow32Inverse2Pi + halfTwoPow32Inverse2Pi
        let radius = (-2.0 * log(u)).squareRoot()
        return Float(radius * sin(v))
    }
}
