import ChiselCore
import Testing

@Suite struct JSONParserTests {
    @Test func parsesScalarsKeepingIntegersApart() throws {
        let value = try JSONParser.parse(#"{"a": 1, "b": 1.5, "c": -2e3, "d": true, "e": null, "f": "x"}"#)
        #expect(value["a"] == .int(1))
        #expect(value["b"] == .double(1.5))
        #expect(value["c"] == .double(-2000))
        #expect(value["d"] == .bool(true))
        #expect(value["e"] == .null)
        #expect(value["f"] == .string("x"))
    }

    @Test func keepsDuplicateKeysInOrderWithLines() throws {
        let value = try JSONParser.parse("{\n\"a\": 1,\n\"b\": 2,\n\"a\": 3\n}")
        let members = try #require(value.members)
        #expect(members.map(\.key) == ["a", "b", "a"])
        #expect(members.map(\.line) == [2, 3, 4])
        #expect(value["a"] == .int(3))
    }

    @Test func decodesEscapesAndUnicode() throws {
        let value = try JSONParser.parse(#"["a\"b\\c\/d\n", "\u00e9\ud83d\ude00", "héllo 😀"]"#)
        #expect(value == .array([.string("a\"b\\c/d\n"), .string("é😀"), .string("héllo 😀")]))
    }

    @Test(arguments: [
        ("", "unexpected end of input"),
        ("{", "expected a quoted key"),
        (#"{"a" 1}"#, "expected ':'"),
        (#"{"a": 1,}"#, "expected a quoted key"),
        ("[1 2]", "expected ',' or ']'"),
        (#""abc"#, "unterminated string"),
        ("01", "unexpected text after"),
        ("1.", "digits expected after '.'"),
        ("tru", "expected true"),
        (#""\x""#, "invalid escape"),
        (#""\ud800""#, "unpaired surrogate"),
        ("{} {}", "unexpected text after"),
        ("1e999", "out of range"),
    ])
    func rejectsMalformedJSONWithPosition(text: String, message: String) {
        do {
            _ = try JSONParser.parse(text, file: "g.json")
            Issue.record("parsed malformed JSON \(text)")
        } catch let error as ChiselError {
            #expect(error.code == .invalidGraph)
            #expect(error.file == "g.json")
            #expect(error.message.contains("line 1, column"))
            #expect(error.message.contains(message), "\(error.message)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func reportsTheLineOfAnErrorDeepInAFile() {
        let text = "{\n  \"a\": [1,\n  2,\n  }\n}"
        #expect(throws: ChiselError.self) { try JSONParser.parse(text) }
        do { _ = try JSONParser.parse(text) } catch let error as ChiselError {
            #expect(error.message.contains("line 4"))
        } catch {}
    }

    @Test func boundsNestingDepth() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: ChiselError.self) { try JSONParser.parse(deep) }
        let ok = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: Never.self) { try JSONParser.parse(ok) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: ChiselError.self) { try JSONParser.parse([0x22, 0xFF, 0xFE, 0x22]) }
    }

    @Test func serializesAndReparses() throws {
        let value: JSONValue = .object([
            JSONMember(key: "s", value: "tab\tquote\"nl\n\u{01}é"),
            JSONMember(key: "n", value: .array([1, 2.5, true, nil])),
        ])
        #expect(try JSONParser.parse(value.serialized()) == value)
    }
}
