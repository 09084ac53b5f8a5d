import ChiselCore
import Testing

@testable import ChiselModels

@Suite("Prompt chunks (A1111 tokenize_line, diffusers truncation)") struct PromptChunkerTests {
    static let sd1 = Result { try CLIPTokenizer.bundled(family: .sd1) }
    static let sd2 = Result { try CLIPTokenizer.bundled(family: .sd2) }

    static func tokenizer(_ family: StableDiffusionModel.Family) throws -> CLIPTokenizer {
        try (family == .sd1 ? sd1 : sd2).get()
    }

    @Test("the fixtures load, with long prompts, BREAK and both paddings")
    func fixturesLoad() throws {
        let cases = try PromptFixtures.chunkCases()
        #expect(cases.count >= 20)
        #expect(PromptFixtures.chunks.count == cases.count)
        #expect(cases.contains { $0.tokens.count >= 3 })
        #expect(cases.contains { $0.family == .sd2 && $0.tokens.count >= 2 })
    }

    @Test("tokens and weights equal the port of tokenize_line on the real vocabulary", arguments: PromptFixtures.chunks)
    func matchesReference(_ item: PromptFixtures.ChunkCase) throws {
        let chunker = try PromptChunker(tokenizer: Self.tokenizer(item.family), mode: .chunk(commaBacktrack: item.commaBacktrack))
        let chunks = try chunker.chunks(item.prompt)
        #expect(chunks.map(\.tokens) == item.tokens)
        #expect(chunks.map(\.weights) == item.weights)
    }

    @Test("the bundled tokenizers are configured as SD 1.x's and SD 2.x's")
    func bundled() throws {
        let sd1 = try Self.tokenizer(.sd1), sd2 = try Self.tokenizer(.sd2)
        #expect(sd1.bosTokenID == 49406 && sd1.eosTokenID == 49407 && sd1.padTokenID == 49407)
        #expect(sd2.bosTokenID == 49406 && sd2.eosTokenID == 49407 && sd2.padTokenID == 0)
        #expect(sd1.behavior == .fast && sd1.modelMaxLength == 77)
        // The ids transformers gave for the corpus, with the real SD1 and SD2 configuration files.
        let corpus = try TokenizerFixtures.corpus().prefix(60)
        #expect(corpus.count == 60)
        for prompt in corpus {
            #expect(sd1.encode(prompt.text) == prompt.fast, "\(prompt.label)")
            #expect(sd2(prompt.text) == prompt.fastSD2, "\(prompt.label)")
        }
        let slow = try CLIPTokenizer.bundled(family: .sd2, behavior: .slow)
        for prompt in corpus { #expect(slow(prompt.text) == prompt.sd2, "\(prompt.label)") }
    }

    @Test("truncate mode: BOS, the first 75 tokens, EOS, padding; brackets are text", arguments: [StableDiffusionModel.Family.sd1, .sd2])
    func truncation(_ family: StableDiffusionModel.Family) throws {
        let tokenizer = try Self.tokenizer(family)
        let chunker = try PromptChunker(tokenizer: tokenizer, mode: .truncate)
        let long = String(repeating: "(red:1.5) cat, ", count: 30)
        let ids = tokenizer.encode(long)
        #expect(ids.count > 75)
        let chunks = try chunker.chunks(long)
        #expect(chunks.count == 1)
        #expect(chunks[0].tokens == [49406] + ids.prefix(75) + [49407])
        #expect(chunks[0].isUnweighted)
        #expect(chunks[0].tokens.contains(try #require(tokenizer.encode("(").first)))

        let short = try chunker.chunks("a (cat)")
        let pad = family == .sd1 ? 49407 : 0
        #expect(short[0].tokens == [49406] + tokenizer.encode("a (cat)") + [49407] + Array(repeating: pad, count: 77 - 2 - 4))
        // chunk mode parses the same text instead, and keeps what follows the 75th token.
        let parsed = try PromptChunker(tokenizer: tokenizer).chunks(long)
        #expect(parsed.count == 2)
        #expect(!parsed[0].tokens.contains(try #require(tokenizer.encode("(").first)))
        #expect(parsed[0].weights.contains(1.5))
    }

    @Test("the empty prompt is one chunk of BOS, EOS and padding", arguments: [StableDiffusionModel.Family.sd1, .sd2])
    func emptyPrompt(_ family: StableDiffusionModel.Family) throws {
        let tokenizer = try Self.tokenizer(family)
        let pad = family == .sd1 ? 49407 : 0
        let expected = [49406, 49407] + Array(repeating: pad, count: 75)
        for mode in [PromptMode.truncate, .a1111, .chunk(commaBacktrack: 0)] {
            let chunker = try PromptChunker(tokenizer: tokenizer, mode: mode)
            let chunks = try chunker.chunks("")
            #expect(chunks.map(\.tokens) == [expected])
            #expect(chunks[0].weights == Array(repeating: 1, count: 77))
            #expect(try chunker.emptyChunk == chunks[0])
        }
    }

    @Test("a comma within 20 tokens of a full chunk moves what follows it to the next chunk")
    func commaBacktrack() throws {
        let tokenizer = try Self.tokenizer(.sd1)
        let x = try #require(tokenizer.encode("x").first), y = try #require(tokenizer.encode("y").first)
        let prompt = String(repeating: "x ", count: 60) + ", " + String(repeating: "y ", count: 30)
        let moved = try PromptChunker(tokenizer: tokenizer).chunks(prompt)
        #expect(moved.count == 2)
        #expect(Array(moved[0].tokens[1...61]) == Array(repeating: x, count: 60) + [267])
        #expect(moved[0].tokens[62] == 49407)
        #expect(Array(moved[1].tokens[1...30]) == Array(repeating: y, count: 30))
        let kept = try PromptChunker(tokenizer: tokenizer, mode: .chunk(commaBacktrack: 0)).chunks(prompt)
        #expect(kept.count == 2)
        #expect(Array(kept[0].tokens[62...75]) == Array(repeating: y, count: 14))
    }

    @Test("bad chunk shapes and comma backtracks are refused")
    func errors() throws {
        let tokenizer = try Self.tokenizer(.sd1)
        for backtrack in [-1, 76] {
            let error = #expect(throws: ChiselError.self) {
                try PromptChunker(tokenizer: tokenizer, mode: .chunk(commaBacktrack: backtrack))
            }
            #expect(error?.code == .invalidParameter && error?.message.contains("comma backtrack") == true)
        }
        let error = #expect(throws: ChiselError.self) {
            try PromptChunk(tokens: Array(repeating: 0, count: 76), weights: Array(repeating: 1, count: 77))
        }
        #expect(error?.message.contains("76") == true)
        #expect(throws: ChiselError.self) { try PromptChunker(tokenizer: tokenizer).chunks("(a:1.2.3)") }
    }
}
