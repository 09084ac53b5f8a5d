import Testing
@testable import ChiselDiffusion

@Suite struct RandomSeedTests {
    /// A fixed stream, so the drawn seed is known.
    struct CountingGenerator: RandomNumberGenerator {
        var state: UInt64 = 0x1234_5678_9abc_def0
        mutating func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state
        }
    }

    @Test(arguments: [Int64(0), 1, 42, 4_294_967_295, Int64.max])
    func givenSeedIsKept(seed: Int64) {
        #expect(RandomSeed.resolve(seed) == UInt64(seed))
    }

    @Test func otherNegativeSeedsWrapLikeTorch() {
        #expect(RandomSeed.resolve(-2) == UInt64.max - 1)
    }

    @Test(arguments: [nil, Int64(-1)])
    func missingSeedIsDrawn(seed: Int64?) {
        var a = CountingGenerator()
        var b = CountingGenerator()
        let first = RandomSeed.resolve(seed, using: &a)
        let again = RandomSeed.resolve(seed, using: &b)
        #expect(first == again)
        #expect(first <= UInt64(UInt32.max))
        let next = RandomSeed.resolve(seed, using: &a)
        #expect(next != first)
    }

    @Test func systemSeedsVary() {
        let seeds = Set((0..<8).map { _ in RandomSeed.resolve(nil) })
        #expect(seeds.count > 1)
        #expect(seeds.allSatisfy { $0 <= UInt64(UInt32.max) })
    }
}
