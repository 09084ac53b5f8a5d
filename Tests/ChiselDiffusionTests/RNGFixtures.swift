import Foundation
import Testing

/// The fixtures written by `tools/diffusion/make_rng_fixtures.py` under `Fixtures/rng/`.
struct RNGFixtureFile: Decodable, Sendable {
    var cases: [RNGFixtureCase]

    /// Loads `Fixtures/rng/<name>.json`; an empty file if it cannot be read, which the
    /// fixture-count tests catch.
    static func load(_ name: String) -> RNGFixtureFile {
        guard
            let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures/rng"),
            let data = try? Data(contentsOf: url),
            let file = try? JSONDecoder().decode(RNGFixtureFile.self, from: data)
        else { return RNGFixtureFile(cases: []) }
        return file
    }
}

/// One generator, freshly seeded, and the draws made from it in order.
struct RNGFixtureCase: Decodable, Sendable, CustomTestStringConvertible {
    var name: String
    /// Decimal, as a string so no JSON reader rounds 64-bit seeds.
    var seed: String
    var steps: [RNGFixtureStep]

    var seedValue: UInt64 { UInt64(seed) ?? 0 }
    var testDescription: String { name }
}

/// One draw: `op` of `count` values, stored in full (`bits`) or as hash and samples.
struct RNGFixtureStep: Decodable, Sendable {
    var op: String
    var count: Int
    /// All bit patterns, 8 hex digits each, concatenated.
    var bits: String?
    var fnv1a64: String?
    var samples: [Sample]?

    struct Sample: Decodable, Sendable {
        var index: Int
        var bits: UInt32

        init(from decoder: any Decoder) throws {
            var container = try decoder.unkeyedContainer()
            index = try container.decode(Int.self)
            let hex = try container.decode(String.self)
            guard let value = UInt32(hex, radix: 16) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "bad hex \(hex)")
            }
            bits = value
        }
    }

    /// The full list of bit patterns, when stored.
    var allBits: [UInt32]? {
        guard let bits else { return nil }
        let characters = Array(bits.utf8)
        guard characters.count == count * 8 else { return nil }
        var result: [UInt32] = []
        result.reserveCapacity(count)
        for i in 0..<count {
            guard let value = UInt32(String(decoding: characters[(i * 8)..<(i * 8 + 8)], as: UTF8.self), radix: 16)
            else { return nil }
            result.append(value)
        }
        return result
    }
}

/// FNV-1a 64 over the little-endian bytes of the values' bit patterns, as the script hashes.
func fnv1a64(_ values: [Float]) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for value in values {
        var pattern = value.bitPattern
        for _ in 0..<4 {
            hash ^= UInt64(pattern & 0xff)
            hash = hash &* 0x0000_0100_0000_01b3
            pattern >>= 8
        }
    }
    let hex = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

/// Expects `values` to be bit for bit the step's fixture; returns how many values were compared.
@discardableResult
func expectBitIdentical(
    _ values: [Float], to step: RNGFixtureStep, context: String,
    sourceLocation: SourceLocation = #_sourceLocation
) -> Int {
    #expect(values.count == step.count, "\(context): count", sourceLocation: sourceLocation)
    guard values.count == step.count else { return 0 }
    if step.bits != nil {
        guard let expected = step.allBits else {
            Issue.record("\(context): unreadable bits in fixture", sourceLocation: sourceLocation)
            return 0
        }
        let mismatches = zip(values, expected).enumerated().filter { $0.element.0.bitPattern != $0.element.1 }
        if let first = mismatches.first {
            let got = String(first.element.0.bitPattern, radix: 16)
            let want = String(first.element.1, radix: 16)
            Issue.record(
                "\(context): \(mismatches.count) of \(values.count) differ; first at \(first.offset): got \(got) (\(first.element.0)), want \(want) (\(Float(bitPattern: first.element.1)))",
                sourceLocation: sourceLocation)
        }
        return values.count
    }
    guard let hash = step.fnv1a64, let samples = step.samples, !samples.isEmpty else {
        Issue.record("\(context): fixture step has neither bits nor hash and samples", sourceLocation: sourceLocation)
        return 0
    }
    for sample in samples {
        let got = values[sample.index].bitPattern
        #expect(
            got == sample.bits,
            "\(context): value \(sample.index) got \(String(got, radix: 16)), want \(String(sample.bits, radix: 16))",
            sourceLocation: sourceLocation)
    }
    #expect(fnv1a64(values) == hash, "\(context): hash of all \(values.count) values", sourceLocation: sourceLocation)
    return values.count
}
