import ChiselCore
import Foundation
import Testing

@testable import ChiselModels

/// The surprising parts of transformers' behaviour, spelled out; the corpus tests check the same
/// prompts wholesale. Ids are from the corpus (transformers 4.57).
@Suite("CLIP tokenizer behaviours")
struct CLIPTokenizerBehaviourTests {
    static func sd1(_ behavior: CLIPTokenizer.Behavior = .slow) throws -> CLIPTokenizer {
        try (behavior == .slow ? TokenizerFixtures.sd1Slow : TokenizerFixtures.sd1Fast).get()
    }

    @Test("an ordinary prompt, as every SD1 pipeline sees it")
    func ordinaryPrompt() throws {
        let tokenizer = try Self.sd1()
        #expect(tokenizer.encode("a photo of a cat") == [320, 1125, 539, 320, 2368])
        let ids = tokenizer("a photo of a cat")
        #expect(ids.count == 77)
        #expect(ids.prefix(7) == [49406, 320, 1125, 539, 320, 2368, 49407])
        #expect(ids.dropFirst(7).allSatisfy { $0 == 49407 })
    }

    @Test("SD2's pad token '!' is an added token, so every '!' in a prompt becomes id 0 on its own")
    func sd2ExclamationMarks() throws {
        let folder = try TokenizerFixtures.folder(configuration: "sd2")
        defer { TokenizerFixtures.removeFolder(folder) }
        let sd2 = try CLIPTokenizer(folder: folder, behavior: .slow)
        #expect(try Self.sd1().encode("hello!!!") == [3306, 995])
        #expect(sd2.encode("hello!!!") == [3306, 0, 0, 0])
        #expect(sd2("hello", maxLength: 5) == [49406, 3306, 49407, 0, 0])
    }

    @Test("slow and fast differ on format characters, CJK, final sigma and the case-insensitive regex")
    func slowAndFastDiffer() throws {
        let slow = try Self.sd1(.slow)
        let fast = try Self.sd1(.fast)
        // The slow clean-up deletes ZWJ (a format character) and joins the words around it.
        #expect(slow.encode("a\u{200D}b") == [3937])
        #expect(fast.encode("a\u{200D}b") == [320, 728, 491, 321])
        // Python's str.lower() knows final sigma; tokenizers lowercases one character at a time.
        #expect(slow.encode("ΟΔΟΣ").last == 480)  // ς</w>
        #expect(fast.encode("ΟΔΟΣ").last == 481)  // σ</w>
        // The slow tokenizer puts each CJK ideograph in a word of its own.
        #expect(slow.encode("猫の絵") == [163, 234, 360, 4813, 362, 37810, 369])
        #expect(fast.encode("猫の絵") == [163, 234, 104, 21575, 37810, 369])
        // re.IGNORECASE: the long s matches the s of 's.
        #expect(slow.encode("it'ſ") == [585, 6, 129, 379])
        #expect(fast.encode("it'ſ") == [585, 262, 129, 379])
    }

    @Test("special tokens in the text map to their ids, in any case for the slow tokenizer")
    func specialTokensInText() throws {
        let slow = try Self.sd1()
        #expect(slow.encode("<|startoftext|>a photo<|endoftext|>") == [49406, 320, 1125, 49407])
        #expect(slow.encode("!<|endoftext|>b") == [256, 49407, 321])
        // Not an added-token match: the clean-up lowercases it and the BPE cache knows it.
        #expect(slow.encode("<|ENDOFTEXT|>").first == 49407)
    }

    @Test("truncation keeps the end token; a maximum below 2 counts as 2")
    func truncation() throws {
        let tokenizer = try Self.sd1()
        let long = String(repeating: "a ", count: 100)
        let ids = tokenizer(long)
        #expect(ids.count == 77 && ids.first == 49406 && ids.last == 49407)
        #expect(ids.dropFirst().dropLast().allSatisfy { $0 == 320 })
        #expect(tokenizer(long, maxLength: 3) == [49406, 320, 49407])
        #expect(tokenizer(long, maxLength: 0) == [49406, 49407])
        #expect(tokenizer("", maxLength: 4, padding: .doNotPad) == [49406, 49407])
        #expect(tokenizer.encode(long).count == 100)
    }

    @Test("decoding reverses the byte-level encoding and can skip special tokens")
    func decoding() throws {
        let tokenizer = try Self.sd1()
        let ids = tokenizer("Café, 3.5 kg 🐱!", padding: .doNotPad)
        #expect(tokenizer.decode(ids) == "<|startoftext|>café , 3 . 5 kg 🐱! <|endoftext|>")
        #expect(tokenizer.decode(ids, skipSpecialTokens: true) == "café , 3 . 5 kg 🐱!")
        // A cut inside a multi-byte character decodes to U+FFFD, as Python's errors="replace".
        let clef = tokenizer.encode("𝄞")
        #expect(clef.count > 1)
        #expect(tokenizer.decode(Array(clef.prefix(1))) == "\u{FFFD}")
    }

    @Test("a folder with both vocab.json and tokenizer.json is read from vocab.json, with transformers 5's behaviour by default")
    func folderPreference() throws {
        let folder = try TokenizerFixtures.folder(configuration: "clip")
        defer { TokenizerFixtures.removeFolder(folder) }
        try FileManager.default.copyItem(atPath: TokenizerFixtures.path("small.json"), toPath: folder + "/tokenizer.json")
        let tokenizer = try CLIPTokenizer(folder: folder)
        #expect(tokenizer.behavior == .fast)
        #expect(tokenizer.eosTokenID == 49407)
        let fromJSON = try CLIPTokenizer(
            tokenizerJSONPath: folder + "/tokenizer.json", configPath: folder + "/tokenizer_config.json")
        #expect(fromJSON.behavior == .fast && fromJSON.eosTokenID == 2513 && fromJSON.modelMaxLength == 77)
    }

    @Test("special tokens missing from the configuration take CLIPTokenizer's defaults")
    func defaults() throws {
        let folder = try TokenizerFixtures.temporaryFolder()
        defer { TokenizerFixtures.removeFolder(folder) }
        for name in ["vocab.json", "merges.txt"] {
            try FileManager.default.copyItem(atPath: TokenizerFixtures.vocabulary(name), toPath: folder + "/" + name)
        }
        let bare = try CLIPTokenizer(folder: folder, behavior: .slow)
        #expect(bare.bosTokenID == 49406 && bare.eosTokenID == 49407 && bare.padTokenID == 49407)
        #expect(bare.unknownTokenID == 49407 && bare.modelMaxLength == 77)
        try TokenizerFixtures.write(#"{"pad_token": "a</w>", "model_max_length": 64}"#, to: folder + "/tokenizer_config.json")
        let custom = try CLIPTokenizer(folder: folder, behavior: .slow)
        #expect(custom.padTokenID == 320 && custom.modelMaxLength == 64)
        // "a</w>" is an added token now: only that exact text matches it.
        #expect(custom.encode("a a</w>") == [320, 320])
    }
}
