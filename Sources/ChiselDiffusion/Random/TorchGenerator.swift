#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CChiselKernels
import ChiselTensor

/// PyTorch's CPU generator, `torch.Generator().manual_seed(seed)`, bit for bit in float32.
///
/// Consecutive calls draw from one stream exactly as consecutive torch calls on one generator
/// do, including the cached second Box–Muller value of the scalar normal path.
///
/// What each call follows (torch 2.15.0, `aten/src/ATen/native/cpu/DistributionTemplates.h`,
/// `aten/src/ATen/core/DistributionsHelper.h`, `TransformationHelper.h`):
/// - `uniform(count:)` is `torch.rand(count, generator: g)`: `uniform_kernel`, one 32-bit draw
///   per value, `(x & 0xFFFFFF) * 2^-24`.
/// - `normal(count:)` is `torch.randn(count, generator: g)`. With 16 or more values torch takes
///   the contiguous float fill: all `count` uniforms first, Box–Muller over each 16-value block
///   (values j and j+8 of a block from one pair), and when `count % 16 != 0` 16 fresh uniforms
///   for the last 16 positions, recomputed over what was there. Which kernel does that math
///   depends on the CPU: see `NormalKernel`. With fewer than 16 values it is the scalar
///   `normal_distribution<double>`: two 53-bit uniforms per pair, `r = sqrt(-2 log1p(-u2))`,
///   `theta = 2π u1`, returning `r cos theta` and caching `r sin theta` for the next scalar draw.
///   The block fill neither reads nor clears that cache, just as in torch.
/// - `exponential(count:rate:)` is `torch.empty(count).exponential_(rate, generator: g)`: the
///   default `exponential_kernel` (this build has no MKL path for it), one 53-bit uniform per
///   value, `Float(-1/rate * log1p(-u))`.
///
/// Checked against torch 2.15.0+cu132 on an AMD Zen 5 (AVX-512, torch reports capability
/// AVX512): see `tools/diffusion/README.md` and the fixtures under `Tests/.../Fixtures/rng`.
/// The scalar-normal and exponential paths, and `NormalKernel.scalar`, call the platform libm
/// (`log1p`, `sin`, `cos`, `logf`, `sinf`, `cosf`) as torch does, so they match torch on the same
/// libm (glibc here); the default AVX2 block path uses no libm and is exact on any platform.
public struct TorchGenerator: NoiseSource, Sendable {
    /// Which of torch's two float normal fills to reproduce for 16 or more values.
    public enum NormalKernel: Sendable, Equatable {
        /// `normal_fill_AVX2`: float32 Cephes `log`/`sincos` from `avx_mathfun.h` with GCC's
        /// fused multiply-adds. torch uses it on every x86-64 CPU with AVX2, AVX-512 ones
        /// included (the AVX-512 slot of `normal_stub` is left empty, so dispatch falls back to
        /// AVX2). The default.
        case avx2
        /// `normal_fill` / `normal_fill_16`: libm `logf`, `cosf`, `sinf` per value, with `theta`
        /// computed in double then rounded. torch's DEFAULT capability: CPUs without AVX2, arm64
        /// builds, or `ATEN_CPU_CAPABILITY=default`.
        case scalar
    }

    /// The seed as given; only its low 32 bits reach mt19937, as in torch.
    public var seed: UInt64 { engine.seed }
    /// The kernel `normal(count:)` reproduces for 16 or more values.
    public let normalKernel: NormalKernel
    private var engine: MersenneTwister
    /// torch's `next_double_normal_sample_`: the cached `r sin theta` of the scalar path.
    private var cachedNormal: Double?

    /// The generator state right after `torch.Generator().manual_seed(seed)`.
    public init(seed: UInt64, normalKernel: NormalKernel = .avx2) {
        engine = MersenneTwister(seed: seed)
        self.normalKernel = normalKernel
        cachedNormal = nil
    }

    /// The generator state after `manual_seed(seed)` with a signed seed, which torch takes
    /// modulo 2^64 (so -1 is 0xFFFF_FFFF_FFFF_FFFF).
    public init(signedSeed: Int64, normalKernel: NormalKernel = .avx2) {
        self.init(seed: UInt64(bitPattern: signedSeed), normalKernel: normalKernel)
    }

    /// `torch.rand(count, generator: g)` in float32; no values for `count <= 0`.
    public mutating func uniform(count: Int) -> [Float] {
        guard count > 0 else { return [] }
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            for i in 0..<count { buffer[i] = nextFloatUniform() }
            initialized = count
        }
    }

    /// `torch.randn(count, generator: g)` in float32; no values for `count <= 0`.
    public mutating func normal(count: Int) -> [Float] {
        guard count > 0 else { return [] }
        if count < 16 {
            return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                // `normal * std + mean` with std 1, mean 0: adding 0 turns -0 into +0 as torch does.
                for i in 0..<count { buffer[i] = Float(nextDoubleNormal() + 0) }
                initialized = count
            }
        }
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            for i in 0..<count { buffer[i] = nextFloatUniform() }
            var start = 0
            while start + 16 <= count {
                transformBlock(buffer, at: start)
                start += 16
            }
            if count % 16 != 0 {
                // torch redraws the last 16 positions and transforms them as one block.
                let tailStart = count - 16
                for i in tailStart..<count { buffer[i] = nextFloatUniform() }
                transformBlock(buffer, at: tailStart)
            }
            initialized = count
        }
    }

    /// `torch.empty(count).exponential_(rate, generator: g)` in float32; no values for
    /// `count <= 0`. aMUSEd's `torch.multinomial` on the CPU samples through these draws.
    public mutating func exponential(count: Int, rate: Double = 1) -> [Float] {
        guard count > 0 else { return [] }
        // `static_cast<T>(-1.0) / lambda`, computed once as torch's expression does.
        let scale = -1.0 / rate
        // The 32-bit draws are sequential; the logarithms of their 53-bit uniforms are not, so
        // they run on every core (the same values in the same order).
        var words = [UInt32](repeating: 0, count: 2 * count)
        words.withUnsafeMutableBufferPointer { engine.fill($0) }
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            words.withUnsafeBufferPointer { draws in
                Parallel.forEachChunk(count, minimumChunk: 65536) { range in
                    for i in range {
                        let bits = (UInt64(draws[2 * i]) << 32) | UInt64(draws[2 * i + 1])
                        let uniform = Double(bits & 0x001f_ffff_ffff_ffff) * 0x1p-53
                        buffer[i] = Float(scale * log1p(-uniform))
                    }
                }
            }
            initialized = count
        }
    }

    /// `torch.multinomial(p, 1, generator: g)` on the CPU over a rows × columns probability
    /// matrix of which only the rows `sampledRows` (ascending) matter: `probabilities` holds those
    /// rows, in that order (sampledRows.count × columns), and the result is each one's sampled
    /// column.
    ///
    /// torch samples one category without replacement as the first argmax of `p / q` over the
    /// row, with `q` one `exponential(count: rows × columns)` draw per entry, and this consumes
    /// exactly those draws for every row, sampled or not. The winner is found without most of
    /// the logarithms: `q = −log1p(−u) ≥ u`, so `p / u` bounds `p / q` from above, and an entry
    /// whose bound, widened by 1e-5 for the roundings (each about 6e-8), is below the best exact
    /// value so far cannot win; only the others get their exact `Float(−log1p(−u))` and
    /// `p / q`. The result is the index the full computation gives, ties to the first.
    public mutating func multinomial(probabilities: [Float], of sampledRows: [Int], rows: Int, columns: Int) -> [Int] {
        guard rows > 0, columns > 0 else { return [] }
        let count = min(sampledRows.count, probabilities.count / columns)
        var chosen = [Int](repeating: 0, count: count)
        // The words are drawn a block of rows at a time into one reused buffer (a whole grid's
        // would be 64 MiB at 1024 × 8192, costlier to fault in than to draw), and each block's
        // sampled rows are resolved on every core before the next block is drawn.
        let blockRows = max(1, min(rows, (4 << 20) / (2 * columns)))
        var words = [UInt32](repeating: 0, count: 2 * blockRows * columns)
        var next = 0
        for first in stride(from: 0, to: rows, by: blockRows) {
            let last = min(rows, first + blockRows)
            words.withUnsafeMutableBufferPointer { buffer in
                engine.fill(UnsafeMutableBufferPointer(rebasing: buffer[0..<(2 * (last - first) * columns)]))
            }
            let begin = next
            while next < count, sampledRows[next] < last { next += 1 }
            guard next > begin else { continue }
            chosen.withUnsafeMutableBufferPointer { out in
                probabilities.withUnsafeBufferPointer { p in
                    words.withUnsafeBufferPointer { draws in
                        guard let pBase = p.baseAddress, let drawBase = draws.baseAddress else { return }
                        Parallel.forEachChunk(next - begin, minimumChunk: 4) { range in
                            var bounds = [Float](repeating: 0, count: columns)
                            bounds.withUnsafeMutableBufferPointer { scratch in
                                for k in (begin + range.lowerBound)..<(begin + range.upperBound) where sampledRows[k] >= first {
                                    out[k] = Int(chisel_multinomial_row(pBase + k * columns,
                                                                        drawBase + 2 * (sampledRows[k] - first) * columns,
                                                                        Int64(columns), scratch.baseAddress))
                                }
                            }
                        }
                    }
                }
            }
        }
        return chosen
    }

    /// `uniform_real_distribution<float>(0, 1)`: 24 bits of one 32-bit draw.
    @inline(__always)
    private mutating func nextFloatUniform() -> Float {
        Float(engine.nextUInt32() & 0x00ff_ffff) * 0x1p-24
    }

    /// `uniform_real_distribution<double>(0, 1)`: 53 bits of one 64-bit draw.
    @inline(__always)
    private mutating func nextDoubleUniform() -> Double {
        Double(engine.nextUInt64() & 0x001f_ffff_ffff_ffff) * 0x1p-53
    }

    /// `normal_distribution<double>(0, 1)` with torch's one-value cache.
    private mutating func nextDoubleNormal() -> Double {
        if let cached = cachedNormal {
            cachedNormal = nil
            return cached
        }
        let u1 = nextDoubleUniform()
        let u2 = nextDoubleUniform()
        let radius = (-2.0 * log1p(-u2)).squareRoot()
        let theta = 2.0 * Double.pi * u1
        cachedNormal = radius * sin(theta)
        return radius * cos(theta)
    }

    /// Box–Muller over the 16 uniforms at `start`, in place, with the chosen kernel.
    ///
    /// Both kernels end with `value * std + mean`; with std 1 and mean 0 that is `value + 0`,
    /// which matters only in turning a -0 (from `u1 == 1`) into +0.
    @inline(__always)
    private func transformBlock(_ data: UnsafeMutableBufferPointer<Float>, at start: Int) {
        switch normalKernel {
        case .avx2:
            for j in start..<(start + 8) {
                let u1 = 1 - data[j]
                let u2 = data[j + 8]
                let radius = (TorchAVX2Math.log(u1) * -2).squareRoot()
                let (sine, cosine) = TorchAVX2Math.sincos(u2 * TorchAVX2Math.twoPi)
                data[j] = radius * cosine + 0
                data[j + 8] = radius * sine + 0
            }
        case .scalar:
            for j in start..<(start + 8) {
                let u1 = 1 - data[j]
                let u2 = data[j + 8]
                let radius = (-2 * logf(u1)).squareRoot()
                let theta = Float(2.0 * Double.pi * Double(u2))
                data[j] = radius * cosf(theta) + 0
                data[j + 8] = radius * sinf(theta) + 0
            }
        }
    }
}
