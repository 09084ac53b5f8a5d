import Testing
@testable import ChiselDiffusion

/// `PhiloxGenerator` against the NumPy port of AUTOMATIC1111's `modules/rng_philox.py`
/// (fixtures from `tools/diffusion/make_rng_fixtures.py`) and Random123's known answers.
@Suite struct PhiloxGeneratorTests {
    static let nv = RNGFixtureFile.load("philox_nv")

    @Test func fixturesArePresent() {
        #expect(Self.nv.cases.count >= 100)
    }

    @Test(arguments: nv.cases)
    func matchesA1111Generator(_ fixture: RNGFixtureCase) {
        var generator = PhiloxGenerator(seed: fixture.seedValue)
        for (index, step) in fixture.steps.enumerated() {
            #expect(step.op == "randn")
            let values = generator.normal(count: step.count)
            expectBitIdentical(values, to: step, context: "\(fixture.name) step \(index)")
        }
        #expect(generator.offset == UInt32(fixture.steps.count))
    }

    struct KnownAnswer: Sendable, CustomTestStringConvertible {
        var counter: (UInt32, UInt32, UInt32, UInt32)
        var key: (UInt32, UInt32)
        var expected: [UInt32]
        var testDescription: String { "counter \(String(counter.0, radix: 16))" }
    }

    /// Random123's `kat_vectors` for philox4x32-10.
    static let knownAnswers: [KnownAnswer] = [
        KnownAnswer(counter: (0, 0, 0, 0), key: (0, 0),
                    expected: [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]),
        KnownAnswer(counter: (.max, .max, .max, .max), key: (.max, .max),
                    expected: [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]),
        KnownAnswer(counter: (0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344), key: (0xa409_3822, 0x299f_31d0),
                    expected: [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]),
    ]

    @Test(arguments: knownAnswers)
    func philoxKnownAnswers(_ answer: KnownAnswer) {
        let out = PhiloxGenerator.philox4x32(counter: answer.counter, key: answer.key)
        #expect([out.0, out.1, out.2, out.3] == answer.expected)
    }

    /// The offset counts calls, not values; an empty call still advances it.
    @Test func offsetCountsCalls() {
        var a = PhiloxGenerator(seed: 42)
        _ = a.normal(count: 0)
        let second = a.normal(count: 8)
        var b = PhiloxGenerator(seed: 42)
        _ = b.normal(count: 1000)
        #expect(b.normal(count: 8).map(\.bitPattern) == second.map(\.bitPattern))
        #expect(a.offset == 2)
    }

    /// A prefix of a longer call equals the shorter call at the same offset.
    @Test(arguments: [1, 5, 17, 100])
    func callsArePrefixStable(count: Int) {
        var short = PhiloxGenerator(seed: 7)
        var long = PhiloxGenerator(seed: 7)
        #expect(short.normal(count: count).map(\.bitPattern) == Array(long.normal(count: 300).prefix(count)).map(\.bitPattern))
    }

    @Test func uniformIsInOpenUnitInterval() {
        var generator = PhiloxGenerator(seed: 5)
        let values = generator.uniform(count: 10_000)
        #expect(values.allSatisfy { $0 > 0 && $0 <= 1 })
        #expect(generator.offset == 1)
    }
}
