import Foundation
import Testing
@testable import ChiselDiffusion

/// `TorchGenerator` against torch 2.15.0's CPU generator, bit for bit (fixtures from
/// `tools/diffusion/make_rng_fixtures.py`).
@Suite struct TorchGeneratorTests {
    static let avx2 = RNGFixtureFile.load("torch_cpu_avx2")
    static let scalar = RNGFixtureFile.load("torch_cpu_default")

    /// Replays a case's draws on one generator and compares every step.
    static func replay(_ fixture: RNGFixtureCase, kernel: TorchGenerator.NormalKernel) {
        var generator = TorchGenerator(seed: fixture.seedValue, normalKernel: kernel)
        for (index, step) in fixture.steps.enumerated() {
            let values: [Float]
            switch step.op {
            case "rand": values = generator.uniform(count: step.count)
            case "randn": values = generator.normal(count: step.count)
            case "exponential": values = generator.exponential(count: step.count)
            default:
                Issue.record("unknown op \(step.op)")
                continue
            }
            expectBitIdentical(values, to: step, context: "\(fixture.name) step \(index) \(step.op)(\(step.count))")
        }
    }

    @Test func fixturesArePresent() {
        #expect(Self.avx2.cases.count >= 390)
        #expect(Self.scalar.cases.count >= 80)
    }

    /// torch's AVX2 kernel, which this and every AVX2/AVX-512 x86-64 CPU runs.
    @Test(arguments: avx2.cases)
    func matchesTorchAVX2Kernel(_ fixture: RNGFixtureCase) {
        Self.replay(fixture, kernel: .avx2)
    }

    /// torch's DEFAULT kernel (`ATEN_CPU_CAPABILITY=default`), libm float math.
    @Test(arguments: scalar.cases)
    func matchesTorchDefaultKernel(_ fixture: RNGFixtureCase) {
        Self.replay(fixture, kernel: .scalar)
    }

    /// The two kernels really differ, so the choice is not a no-op.
    @Test func kernelsDiffer() {
        var a = TorchGenerator(seed: 0, normalKernel: .avx2)
        var b = TorchGenerator(seed: 0, normalKernel: .scalar)
        let x = a.normal(count: 4096)
        let y = b.normal(count: 4096)
        let differing = zip(x, y).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(differing > 100)
        #expect(zip(x, y).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    /// Fewer than 16 values take the scalar double path, whatever the kernel.
    @Test(arguments: [1, 2, 3, 7, 15])
    func scalarPathIgnoresKernel(count: Int) {
        var a = TorchGenerator(seed: 1234, normalKernel: .avx2)
        var b = TorchGenerator(seed: 1234, normalKernel: .scalar)
        #expect(a.normal(count: count).map(\.bitPattern) == b.normal(count: count).map(\.bitPattern))
    }

    /// torch's seeding keeps the low 32 bits only.
    @Test(arguments: [UInt64(0), 1, 42, 0xCAFE_BABE])
    func seedKeepsLow32Bits(seed: UInt64) {
        var low = TorchGenerator(seed: seed)
        var high = TorchGenerator(seed: seed | 0xDEAD_BEEF_0000_0000)
        #expect(low.normal(count: 40).map(\.bitPattern) == high.normal(count: 40).map(\.bitPattern))
        #expect(high.seed == seed | 0xDEAD_BEEF_0000_0000)
    }

    @Test func signedSeedWrapsLikeTorch() {
        var a = TorchGenerator(signedSeed: -1)
        var b = TorchGenerator(seed: UInt64.max)
        #expect(a.uniform(count: 8).map(\.bitPattern) == b.uniform(count: 8).map(\.bitPattern))
    }

    @Test func emptyAndNegativeCountsDrawNothing() {
        var a = TorchGenerator(seed: 7)
        var b = TorchGenerator(seed: 7)
        #expect(a.normal(count: 0).isEmpty)
        #expect(a.uniform(count: -3).isEmpty)
        #expect(a.exponential(count: 0).isEmpty)
        #expect(a.uniform(count: 5).map(\.bitPattern) == b.uniform(count: 5).map(\.bitPattern))
    }

    @Test func exponentialRateScales() {
        var a = TorchGenerator(seed: 3)
        var b = TorchGenerator(seed: 3)
        let one = a.exponential(count: 50)
        let two = b.exponential(count: 50, rate: 2)
        #expect(zip(one, two).allSatisfy { abs($0 / 2 - $1) <= 1e-6 * max(1, $0) })
        #expect(one.allSatisfy { $0 > 0 })
    }

    /// std::mt19937's required 10000th output for the default seed 5489 ([rand.predef]).
    @Test func mersenneTwisterMatchesStandard() {
        var engine = MersenneTwister(seed: 5489)
        var value: UInt32 = 0
        for _ in 0..<10_000 { value = engine.nextUInt32() }
        #expect(value == 4_123_659_995)
    }

    @Test func mersenneTwisterFillEqualsSingleDraws() {
        var a = MersenneTwister(seed: 99)
        var b = MersenneTwister(seed: 99)
        let filled = [UInt32](unsafeUninitializedCapacity: 2000) { buffer, count in
            a.fill(buffer)
            count = 2000
        }
        let single = (0..<2000).map { _ in b.nextUInt32() }
        #expect(filled == single)
        #expect(a.nextUInt64() == b.nextUInt64())
    }

    /// The bounded multinomial sampler against the first argmax of p / q over every
    /// exponential draw, with the generator left where those draws leave it.
    /// (columns, rows): 300 rows of 8192 span two of the sampler's blocks of drawn words.
    @Test(arguments: [(3, 12), (1000, 12), (8192, 12), (8192, 300)])
    func multinomialIsTheArgmaxOverExponentials(columns: Int, rows: Int) {
        var probabilities: [Float] = []
        var noise = TorchGenerator(seed: 99)
        for row in 0..<rows {
            let logits = noise.normal(count: max(columns, 16)).prefix(columns).map { $0 * Float(row % 4) * 3 }
            let peak = logits.max() ?? 0
            var p = logits.map { exp($0 - peak) }
            // Some rows with impossible entries.
            if row % 3 == 2 { for j in stride(from: 0, to: columns, by: 2) { p[j] = 0 } }
            let total = p.reduce(0, +)
            probabilities += p.map { $0 / total }
        }
        let sampled = (0..<rows).filter { $0 % 5 != 1 }
        var fast = TorchGenerator(seed: 2024)
        var full = TorchGenerator(seed: 2024)
        let compact = sampled.flatMap { probabilities[($0 * columns)..<(($0 + 1) * columns)] }
        let chosen = fast.multinomial(probabilities: compact, of: sampled, rows: rows, columns: columns)
        #expect(chosen.count == sampled.count)
        let q = full.exponential(count: rows * columns)
        for (k, row) in sampled.enumerated() {
            var best = 0
            var bestValue = -Float.infinity
            for j in 0..<columns where probabilities[row * columns + j] / q[row * columns + j] > bestValue {
                best = j
                bestValue = probabilities[row * columns + j] / q[row * columns + j]
            }
            #expect(chosen[k] == best, "row \(row)")
        }
        #expect(fast.uniform(count: 4).map(\.bitPattern) == full.uniform(count: 4).map(\.bitPattern))
    }
}
