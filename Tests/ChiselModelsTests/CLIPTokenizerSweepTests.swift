import ChiselCore
import Foundation
import Testing

@testable import ChiselModels

/// Every code point assigned in Unicode 14.0 through the SD1 tokenizer, one short text each,
/// compared block by block with the hashes tools/tokenizer/sweep.py took from transformers.
@Suite("CLIP tokenizer over all of Unicode 14.0")
struct CLIPTokenizerSweepTests {
    struct Block: Sendable {
        var index: Int
        var count: Int
        var hash: UInt64
    }

    static func sweep() throws -> (template: String, slow: [Block], fast: [Block]) {
        let file = try TokenizerFixtures.path("sweep.json")
        let root = try JSONParser.parse([UInt8](try Data(contentsOf: URL(fileURLWithPath: file))), file: file)
        func blocks(_ key: String) throws -> [Block] {
            guard case .array(let rows) = root[key] else { throw ChiselError(.internal, "no \(key)", file: file) }
            return try rows.map { row in
                guard case .array(let fields) = row, fields.count == 3, case .int(let index) = fields[0],
                    case .int(let count) = fields[1], let hex = fields[2].stringValue, let hash = UInt64(hex, radix: 16)
                else { throw ChiselError(.internal, "bad row in \(key)", file: file) }
                return Block(index: index, count: count, hash: hash)
            }
        }
        guard let template = root["template"]?.stringValue else { throw ChiselError(.internal, "no template", file: file) }
        return (template, try blocks("slow"), try blocks("fast"))
    }

    /// U+0295 is Ll in Python 3.11's Unicode 14.0 and Lo in Swift's, so Python's final sigma
    /// sees it as cased and Swift's does not (sweep.py's EXCLUDED).
    static let excluded: Set<UInt32> = [0x0295]

    /// The code points sweep.py includes: assigned in Unicode 14.0 or earlier, noncharacters aside.
    static func included(_ value: UInt32) -> Unicode.Scalar? {
        guard !excluded.contains(value), let scalar = Unicode.Scalar(value), let age = scalar.properties.age,
            age.major < 14 || (age.major == 14 && age.minor == 0),
            scalar.properties.generalCategory != .unassigned, !scalar.properties.isNoncharacterCodePoint
        else { return nil }
        return scalar
    }

    static func hash(block: Int, template: String, tokenizer: CLIPTokenizer) -> (count: Int, hash: UInt64) {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        func fold(_ word: UInt32) { hash = (hash ^ UInt64(word)) &* 0x100_0000_01B3 }
        var count = 0
        for value in UInt32(block * 256)..<UInt32(block * 256 + 256) {
            guard let scalar = included(value) else { continue }
            count += 1
            fold(value)
            let text = template.replacingOccurrences(of: "{c}", with: String(scalar))
            for id in tokenizer.encode(text) { fold(UInt32(id)) }
            fold(0xFFFF_FFFF)
        }
        return (count, hash)
    }

    @Test("slow and fast tokenizers, every block", arguments: [CLIPTokenizer.Behavior.slow, .fast])
    func sweep(behavior: CLIPTokenizer.Behavior) throws {
        let (template, slow, fast) = try Self.sweep()
        let tokenizer = try (behavior == .slow ? TokenizerFixtures.sd1Slow : TokenizerFixtures.sd1Fast).get()
        let blocks = behavior == .slow ? slow : fast
        #expect(blocks.count > 600)
        var mismatched: [String] = []
        for block in blocks {
            let (count, hash) = Self.hash(block: block.index, template: template, tokenizer: tokenizer)
            if count != block.count || hash != block.hash {
                mismatched.append("U+\(String(block.index * 256, radix: 16, uppercase: true)) (\(count)/\(block.count) code points)")
            }
        }
        #expect(mismatched.isEmpty, "blocks that differ: \(mismatched.joined(separator: ", "))")
    }
}
