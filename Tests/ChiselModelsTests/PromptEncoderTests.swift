import ChiselCore
import ChiselTensor
import Testing

@testable import ChiselModels

@Suite("Prompt encoder against torch (tiny text encoders)") struct PromptEncoderTests {
    /// Weighted hidden states within 1e-5 of the reference's largest magnitude (FP32).
    static let bound = 1e-5

    static let models = Result {
        ["sd1-tiny": try PromptFixtures.tinyTextModel("sd1-tiny"), "sd2-tiny": try PromptFixtures.tinyTextModel("sd2-tiny")]
    }
    static let tokenizers = Result {
        ["sd1": try PromptFixtures.tinyTokenizer("sd1"), "sd2": try PromptFixtures.tinyTokenizer("sd2")]
    }

    static func encoder(
        _ family: String, clipSkip: Int = 0, mode: PromptMode = .a1111, weighting: PromptWeighting = .a1111
    ) throws -> PromptEncoder {
        let tokenizer = try #require(try tokenizers.get()[family == "sd1-tiny" ? "sd1" : "sd2"])
        let model = try #require(try models.get()[family])
        return try PromptEncoder(tokenizer: tokenizer, textModel: model, clipSkip: clipSkip, mode: mode, weighting: weighting)
    }

    @Test("the fixtures load, with every weighting, both clip skips and both families")
    func fixturesLoad() throws {
        let cases = try PromptFixtures.numericCases()
        #expect(cases.count == PromptFixtures.numeric.count)
        #expect(Set(cases.map(\.weighting)) == ["a1111", "a1111-no-norm", "comfy", "truncate"])
        #expect(Set(cases.map(\.clipSkip)) == [0, 1] && Set(cases.map(\.family)) == ["sd1-tiny", "sd2-tiny"])
        #expect(cases.contains { $0.tokens.count >= 3 })
    }

    @Test("tokens, weights and hidden states match torch", arguments: PromptFixtures.numeric)
    func matchesReference(_ item: PromptFixtures.NumericCase) throws {
        let weighting: PromptWeighting =
            switch item.weighting {
            case "a1111-no-norm": .a1111NoNorm
            case "comfy": .comfy
            default: .a1111
            }
        let encoder = try Self.encoder(
            item.family, clipSkip: item.clipSkip, mode: item.weighting == "truncate" ? .truncate : .a1111,
            weighting: weighting)
        let embedding = try encoder.encode(item.prompt)
        #expect(embedding.tokens == item.tokens)
        #expect(embedding.weights == item.weights)
        #expect(embedding.chunkCount == item.tokens.count)
        #expect(embedding.hiddenStates.shape == [1, 77 * item.tokens.count, encoder.textModel.config.hiddenSize])
        let expected = try PromptFixtures.expected(item.tensor)
        let error = relativeError(embedding.hiddenStates.data, expected)
        #expect(error <= Self.bound, "max error \(error) of max |reference|")
    }

    @Test("the weightings differ where weights are not 1 and agree where all are")
    func weightingsDiffer() throws {
        let prompt = "a (red:1.3) cat, [blurry] background"
        let states = try PromptWeighting.allCases.map { try Self.encoder("sd1-tiny", weighting: $0).encode(prompt).hiddenStates.data }
        for i in states.indices { for j in states.indices where i < j { #expect(states[i] != states[j]) } }
        let plain = try PromptWeighting.allCases.map { try Self.encoder("sd1-tiny", weighting: $0).encode("a cat").hiddenStates }
        #expect(Set(plain.map(\.data)).count == 1)
    }

    @Test("the shorter of positive and negative is padded with empty chunks", arguments: ["sd1-tiny", "sd2-tiny"])
    func chunkCountPadding(_ family: String) throws {
        let config = family == "sd1-tiny" ? "sd1" : "sd2"
        let long = try #require(PromptFixtures.numeric.first { $0.tensor == "\(config)/a1111/skip0/p1" })
        let empty = try #require(PromptFixtures.numeric.first { $0.tensor == "\(config)/a1111/skip0/p3" })
        let encoder = try Self.encoder(family)
        for swapped in [false, true] {
            let pair = try swapped
                ? encoder.encode(positive: empty.prompt, negative: long.prompt)
                : encoder.encode(positive: long.prompt, negative: empty.prompt)
            let (longSide, emptySide) = swapped ? (pair.negative, pair.positive) : (pair.positive, pair.negative)
            #expect(longSide.chunkCount == 3 && emptySide.chunkCount == 3)
            #expect(longSide.hiddenStates.shape == emptySide.hiddenStates.shape)
            #expect(longSide.tokens == long.tokens)
            #expect(emptySide.tokens == Array(repeating: empty.tokens[0], count: 3))
            #expect(relativeError(longSide.hiddenStates.data, try PromptFixtures.expected(long.tensor)) <= Self.bound)
            let reference = try PromptFixtures.expected(empty.tensor)
            #expect(relativeError(emptySide.hiddenStates.data, reference + reference + reference) <= Self.bound)
        }
        let truncated = try Self.encoder(family, mode: .truncate).encode(positive: long.prompt, negative: "")
        #expect(truncated.positive.chunkCount == 1 && truncated.negative.chunkCount == 1)
    }

    @Test("a clip skip the model lacks, or a tokenizer that does not fit the model, is refused")
    func errors() throws {
        let error = #expect(throws: ChiselError.self) { try Self.encoder("sd1-tiny", clipSkip: 3) }
        #expect(error?.code == .invalidParameter && error?.message.contains("clip skip 3") == true)
        #expect(throws: ChiselError.self) { try Self.encoder("sd1-tiny", clipSkip: -1) }
        let model = try #require(try Self.models.get()["sd1-tiny"])
        let mismatch = #expect(throws: ChiselError.self) {
            try PromptEncoder(tokenizer: CLIPTokenizer.bundled(family: .sd1), textModel: model)
        }
        #expect(mismatch?.code == .model && mismatch?.message.contains("49406") == true)
        let encoder = try Self.encoder("sd1-tiny")
        #expect(throws: ChiselError.self) { try encoder.encode(chunks: []) }
        #expect(throws: ChiselError.self) { try encoder.encode("(a:..5)") }
    }
}
