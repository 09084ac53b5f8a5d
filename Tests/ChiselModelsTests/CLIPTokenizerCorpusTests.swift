import ChiselCore
import Foundation
import Testing

@testable import ChiselModels

/// Every prompt of corpus.json against the ids transformers 4.57 gave (tools/tokenizer).
@Suite("CLIP tokenizer against transformers on the corpus")
struct CLIPTokenizerCorpusTests {
    @Test("the corpus is big and varied enough to mean something")
    func corpusSize() throws {
        let corpus = try TokenizerFixtures.corpus()
        #expect(corpus.count >= 200)
        #expect(corpus.contains { $0.text.isEmpty })
        #expect(corpus.contains { $0.encode.count > 75 })
        // Slow and fast disagree on some prompts, so both behaviours are really exercised.
        #expect(corpus.contains { $0.encode != $0.fast })
    }

    @Test("SD1 folder, slow: encode, padded to 77, unpadded, decode")
    func slowSD1() throws {
        let tokenizer = try TokenizerFixtures.sd1Slow.get()
        #expect(tokenizer.behavior == .slow)
        #expect(tokenizer.padTokenID == 49407 && tokenizer.modelMaxLength == 77)
        for prompt in try TokenizerFixtures.corpus() {
            #expect(tokenizer.encode(prompt.text) == prompt.encode, "\(prompt.label)")
            #expect(tokenizer(prompt.text, maxLength: 77, padding: .maxLength) == prompt.sd1, "\(prompt.label)")
            // Without padding the sequence stops after the end token, before the pad tokens.
            let unpadded = Array(prompt.sd1.prefix(prompt.encode.count + 2))
            #expect(tokenizer(prompt.text, padding: .doNotPad) == unpadded, "\(prompt.label)")
            #expect(tokenizer.decode(prompt.encode) == prompt.decoded, "\(prompt.label)")
        }
    }

    @Test("SD2 folders, slow: the pad token '!' from special_tokens_map.json or added_tokens_decoder", arguments: ["sd2", "sd2-added-tokens"])
    func slowSD2(configuration: String) throws {
        let folder = try TokenizerFixtures.folder(configuration: configuration)
        defer { TokenizerFixtures.removeFolder(folder) }
        let tokenizer = try CLIPTokenizer(folder: folder, behavior: .slow)
        #expect(tokenizer.padTokenID == 0)
        for prompt in try TokenizerFixtures.corpus() {
            #expect(tokenizer(prompt.text) == prompt.sd2, "\(prompt.label)")
        }
    }

    @Test("SD1 and SD2 folders, fast: CLIPTokenizerFast's ids")
    func fast() throws {
        let sd1 = try TokenizerFixtures.sd1Fast.get()
        let folder = try TokenizerFixtures.folder(configuration: "sd2")
        defer { TokenizerFixtures.removeFolder(folder) }
        let sd2 = try CLIPTokenizer(folder: folder, behavior: .fast)
        for prompt in try TokenizerFixtures.corpus() {
            #expect(sd1.encode(prompt.text) == prompt.fast, "\(prompt.label)")
            #expect(sd2(prompt.text) == prompt.fastSD2, "\(prompt.label)")
        }
    }

    @Test("small tokenizer.json: merges as pairs (as written) and as strings, either split pattern", arguments: 0..<3)
    func tokenizerJSON(variant: Int) throws {
        let folder = try TokenizerFixtures.temporaryFolder()
        defer { TokenizerFixtures.removeFolder(folder) }
        var json = try String(contentsOfFile: TokenizerFixtures.path("small.json"), encoding: .utf8)
        if variant == 1 {
            // Older files write each merge as "a b".
            json = try Self.withStringMerges(json)
        } else if variant == 2 {
            // transformers 5 puts the special tokens in front of the split pattern.
            let old = #""Regex":"'s|'t"#
            #expect(json.contains(old))
            json = json.replacingOccurrences(of: old, with: #""Regex":"<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t"#)
        }
        try TokenizerFixtures.write(json, to: folder + "/tokenizer.json")
        let tokenizer = try CLIPTokenizer(folder: folder)
        #expect(tokenizer.behavior == .fast)
        #expect(tokenizer.bosTokenID == 2512 && tokenizer.eosTokenID == 2513 && tokenizer.padTokenID == 2513)
        for prompt in try TokenizerFixtures.corpus() {
            #expect(tokenizer.encode(prompt.text) == prompt.small, "\(prompt.label)")
            #expect(tokenizer(prompt.text) == prompt.smallPadded, "\(prompt.label)")
        }
    }

    /// small.json with `model.merges` rewritten from `[["a","b"], ...]` to `["a b", ...]`.
    static func withStringMerges(_ json: String) throws -> String {
        let root = try JSONParser.parse(json)
        guard case .object(var members) = root, let modelIndex = members.firstIndex(where: { $0.key == "model" }),
            case .object(var model) = members[modelIndex].value,
            let mergesIndex = model.firstIndex(where: { $0.key == "merges" }),
            case .array(let merges) = model[mergesIndex].value
        else { throw ChiselError(.internal, "small.json has no model.merges") }
        model[mergesIndex].value = .array(
            merges.map { pair in
                guard case .array(let parts) = pair else { return pair }
                return .string(parts.compactMap(\.stringValue).joined(separator: " "))
            })
        members[modelIndex].value = .object(model)
        return JSONValue.object(members).serialized()
    }

    @Test("tokenizing from many tasks at once gives the same ids (shared BPE cache)")
    func concurrentEncoding() async throws {
        let tokenizer = try TokenizerFixtures.sd1Slow.get()
        let corpus = try TokenizerFixtures.corpus()
        let mismatches = await withTaskGroup(of: Int.self) { group in
            for round in 0..<4 {
                for (index, prompt) in corpus.enumerated() where index % 4 == round {
                    group.addTask { tokenizer.encode(prompt.text) == prompt.encode ? 0 : 1 }
                }
            }
            return await group.reduce(0, +)
        }
        #expect(mismatches == 0)
    }

    @Test("ids stay right after the BPE cache fills up and starts over")
    func cacheOverflow() throws {
        let tokenizer = try TokenizerFixtures.tokenizer(configuration: "clip", behavior: .slow)
        let letters: [Character] = Array("abcdefghijklmnopqrstuvwxyz")
        let words: [String] = (0..<(BytePairEncoder.cacheLimit + 500)).map { (n: Int) -> String in
            let characters: [Character] = [letters[n % 26], letters[(n / 26) % 26], letters[(n / 676) % 26], "q"]
            return String(characters)
        }
        let first = words.prefix(300).map { tokenizer.encode($0) }
        for word in words { _ = tokenizer.encode(word) }
        #expect(words.prefix(300).map { tokenizer.encode($0) } == first)
        let fresh = try TokenizerFixtures.tokenizer(configuration: "clip", behavior: .slow)
        #expect(words.prefix(300).map { fresh.encode($0) } == first)
    }
}
