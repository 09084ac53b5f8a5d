import ChiselCore
import Testing

@testable import ChiselModels

@Suite("A1111 emphasis parser") struct PromptParserTests {
    @Test("the fixtures load and hold the cases they should")
    func fixturesLoad() throws {
        #expect(try PromptFixtures.parseCases().count >= 40)
        #expect(PromptFixtures.parse.count >= 40)
        #expect(PromptFixtures.parse.filter { $0.segments == nil }.count >= 3)
    }

    @Test("segments equal those of the port of parse_prompt_attention", arguments: PromptFixtures.parse)
    func matchesReference(_ item: PromptFixtures.ParseCase) throws {
        if let expected = item.segments {
            #expect(try EmphasisParser.parse(item.prompt) == expected)
        } else {
            let error = #expect(throws: ChiselError.self) { try EmphasisParser.parse(item.prompt) }
            #expect(error?.code == .invalidParameter)
            #expect(error?.message.contains("is not a number") == true)
        }
    }

    @Test("A1111's docstring examples, spelled out")
    func docstring() throws {
        #expect(try EmphasisParser.parse("an (important) word") == [
            .text("an ", weight: 1), .text("important", weight: 1.1), .text(" word", weight: 1),
        ])
        #expect(try EmphasisParser.parse("(unbalanced") == [.text("unbalanced", weight: 1.1)])
        #expect(try EmphasisParser.parse(#"\(literal\]"#) == [.text("(literal]", weight: 1)])
        let house = try EmphasisParser.parse("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).")
        #expect(house.count == 9)
        #expect(house[1] == .text("house", weight: 1.5730000000000004))
        #expect(house[7] == .text("sky", weight: 1.4641000000000006))
    }

    @Test("BREAK splits only as a capitalised word outside brackets")
    func breaks() throws {
        #expect(try EmphasisParser.parse("a BREAK b") == [.text("a", weight: 1), .chunkBreak, .text("b", weight: 1)])
        #expect(try EmphasisParser.parse("a break b") == [.text("a break b", weight: 1)])
        #expect(try EmphasisParser.parse("BREAKfast") == [.text("BREAKfast", weight: 1)])
        #expect(try EmphasisParser.parse("(a BREAK b)") == [
            .text("a", weight: 1.1), .text("BREAK", weight: -1.1), .text("b", weight: 1.1),
        ])
    }

    @Test("an empty prompt is one empty segment")
    func empty() throws {
        #expect(try EmphasisParser.parse("") == [.text("", weight: 1)])
        #expect(try EmphasisParser.parse("(:1.5)") == [.text("", weight: 1)])
    }
}
