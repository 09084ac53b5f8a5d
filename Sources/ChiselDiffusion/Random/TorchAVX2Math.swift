/// Float32 `log` and `sincos` exactly as PyTorch's AVX2 normal kernel computes them.
///
/// torch's `normal_fill_16_AVX2` (`aten/src/ATen/native/cpu/DistributionTemplates.h`) calls
/// `log256_ps` and `sincos256_ps` from `aten/src/ATen/native/cpu/avx_mathfun.h` (Cephes
/// polynomials by way of Julien Pommier's sse_mathfun), not Sleef and not libm. The released
/// wheels compile that file with GCC and `-mfma`, and GCC contracts many of its `mul`/`add`
/// pairs into fused multiply-adds. Which pairs were fused was read from the disassembly of
/// `normal_kernel` in the AVX2 build of `libtorch_cpu.so` (torch 2.15.0+cu132) and is written
/// out below step by step; every lane is independent, so one float at a time gives the same bits.
enum TorchAVX2Math {
    // The constants of avx_mathfun.h as the C compiler rounds its double literals to float,
    // given by bit pattern so no literal conversion of Swift's can round them differently.

    /// `2.0f * c10::pi<double>` rounded to float, the kernel's `two_pi` vector (6.2831855).
    static let twoPi = Float(bitPattern: 0x40c9_0fdb)
    /// `cephes_SQRTHF`, 0.707106781186547524.
    static let sqrtHalf = Float(bitPattern: 0x3f35_04f3)
    /// `cephes_log_p0` ... `cephes_log_p8`: 7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1,
    /// -1.2420140846E-1, 1.4249322787E-1, -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1,
    /// 3.3333331174E-1.
    static let logP0 = Float(bitPattern: 0x3d90_21bb)
    static let logP1 = Float(bitPattern: 0xbdeb_d1b8)
    static let logP2 = Float(bitPattern: 0x3def_251a)
    static let logP3 = Float(bitPattern: 0xbdfe_5d4f)
    static let logP4 = Float(bitPattern: 0x3e11_e9bf)
    static let logP5 = Float(bitPattern: 0xbe2a_ae50)
    static let logP6 = Float(bitPattern: 0x3e4c_ceac)
    static let logP7 = Float(bitPattern: 0xbe7f_fffc)
    static let logP8 = Float(bitPattern: 0x3eaa_aaaa)
    /// `cephes_log_q1`, -2.12194440e-4.
    static let logQ1 = Float(bitPattern: 0xb95e_8083)
    /// `cephes_log_q2`, 0.693359375.
    static let logQ2 = Float(bitPattern: 0x3f31_8000)
    /// `cephes_FOPI`, 4/π as 1.27323954473516.
    static let fourOverPi = Float(bitPattern: 0x3fa2_f983)
    /// `minus_cephes_DP1..3`: -0.78515625, -2.4187564849853515625e-4, -3.77489497744594108e-8.
    static let minusDP1 = Float(bitPattern: 0xbf49_0000)
    static let minusDP2 = Float(bitPattern: 0xb97d_a000)
    static let minusDP3 = Float(bitPattern: 0xb322_2169)
    /// `sincof_p0..2`: -1.9515295891E-4, 8.3321608736E-3, -1.6666654611E-1.
    static let sinP0 = Float(bitPattern: 0xb94c_a1f9)
    static let sinP1 = Float(bitPattern: 0x3c08_839e)
    static let sinP2 = Float(bitPattern: 0xbe2a_aaa3)
    /// `coscof_p0..2`: 2.443315711809948E-005, -1.388731625493765E-003, 4.166664568298827E-002.
    static let cosP0 = Float(bitPattern: 0x37cc_f5ce)
    static let cosP1 = Float(bitPattern: 0xbab6_061a)
    static let cosP2 = Float(bitPattern: 0x3d2a_aaa5)

    /// `log256_ps` for one lane, with GCC's contractions.
    @inline(__always)
    static func log(_ input: Float) -> Float {
        // Denormals are cut off to the smallest normal, as the kernel does.
        let minNormal = Float(bitPattern: 0x0080_0000)
        let x0 = Swift.max(input, minNormal)
        let bits = x0.bitPattern
        let exponentField = Int32(bitPattern: bits >> 23) - 0x7f
        // Mantissa scaled into [0.5, 1).
        var x = Float(bitPattern: (bits & ~UInt32(0x7f80_0000)) | Float(0.5).bitPattern)
        var e = Float(exponentField) + 1
        let belowSqrtHalf = x < sqrtHalf
        let tmp: Float = belowSqrtHalf ? x : 0
        x = x + (-1)
        e = e - (belowSqrtHalf ? 1 : 0)
        x = tmp + x
        let z = x * x
        // Horner's scheme, every step fused.
        var y = fma(logP0, x, logP1)
        y = fma(y, x, logP2)
        y = fma(y, x, logP3)
        y = fma(y, x, logP4)
        y = fma(y, x, logP5)
        y = fma(y, x, logP6)
        y = fma(y, x, logP7)
        y = fma(y, x, logP8)
        y = x * y
        y = fma(y, z, e * logQ1)
        y = fma(-z, 0.5, y)
        x = x + y
        x = fma(e, logQ2, x)
        // Non-positive input gives NaN (all bits set), as the kernel's `or` with its mask does.
        return input <= 0 ? Float(bitPattern: 0xffff_ffff) : x
    }

    /// `sincos256_ps` for one lane, with GCC's contractions; returns (sin, cos).
    @inline(__always)
    static func sincos(_ input: Float) -> (sin: Float, cos: Float) {
        var signSin = input.bitPattern & 0x8000_0000
        var x = Float(bitPattern: input.bitPattern & 0x7fff_ffff)
        let scaled = x * fourOverPi
        // cvttps2dq truncates; the kernel's arguments are in [0, 2π), far inside Int32.
        var octant = convertTruncating(scaled)
        octant = (octant &+ 1) & ~1
        let y = Float(octant)
        let swapSin = UInt32(bitPattern: octant & 4) << 29
        let useSinPolynomial = (octant & 2) == 0
        // Extended-precision reduction by π/4, each step fused.
        x = fma(y, minusDP1, x)
        x = fma(y, minusDP2, x)
        x = fma(y, minusDP3, x)
        let signCos = UInt32(bitPattern: ~(octant &- 2) & 4) << 29
        signSin ^= swapSin
        let z = x * x
        let halfZ = z * 0.5
        var cosPoly = fma(cosP0, z, cosP1)
        cosPoly = fma(cosPoly, z, cosP2)
        cosPoly = z * cosPoly
        cosPoly = fma(cosPoly, z, -halfZ)
        cosPoly = cosPoly + 1
        var sinPoly = fma(sinP0, z, sinP1)
        sinPoly = fma(sinPoly, z, sinP2)
        sinPoly = z * sinPoly
        sinPoly = fma(sinPoly, x, x)
        // The kernel selects by masking and subtracting; kept literally so -0/+0 match.
        let sinFromSin: Float = useSinPolynomial ? sinPoly : 0
        let sinFromCos: Float = useSinPolynomial ? 0 : cosPoly
        let cosFromSin = sinPoly - sinFromSin
        let cosFromCos = cosPoly - sinFromCos
        let sinValue = sinFromCos + sinFromSin
        let cosValue = cosFromCos + cosFromSin
        return (
            Float(bitPattern: sinValue.bitPattern ^ signSin),
            Float(bitPattern: cosValue.bitPattern ^ signCos)
        )
    }

    /// A correctly rounded float fused multiply-add, `a * b + c`.
    ///
    /// Computed in double: the product of two floats is exact there and the sum is rounded
    /// once; rounding that double to float can only differ from the true fused result when it
    /// lands exactly on a float midpoint, and then the slow exact path settles it. This is both
    /// exact and far quicker than `Float.addingProduct` on x86-64 builds without FMA, where it
    /// becomes a libm call.
    @inline(__always)
    static func fma(_ a: Float, _ b: Float, _ c: Float) -> Float {
        let sum = Double(a) * Double(b) + Double(c)
        // A float midpoint has exactly bit 28 set in the 29 mantissa bits a float drops;
        // below the normal range that test does not hold, so those go the exact way too.
        if sum.bitPattern & 0x1fff_ffff == 0x1000_0000 || Swift.abs(sum) < Double(Float.leastNormalMagnitude) {
            return c.addingProduct(a, b)
        }
        return Float(sum)
    }

    /// `cvttps2dq`: truncation toward zero, with the instruction's 0x8000_0000 for NaN or
    /// out-of-range input instead of a trap.
    @inline(__always)
    static func convertTruncating(_ value: Float) -> Int32 {
        guard value > -2_147_483_904, value < 2_147_483_648 else { return Int32.min }
        return Int32(value.rounded(.towardZero))
    }
}
