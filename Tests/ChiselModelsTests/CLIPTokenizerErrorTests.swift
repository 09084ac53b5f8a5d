import ChiselCore
import Foundation
import Testing

@testable import ChiselModels

/// Damaged tokenizer files: each is a `ChiselError` that names the file at fault.
@Suite("CLIP tokenizer errors")
struct CLIPTokenizerErrorTests {
    /// A small valid vocabulary: the 512 byte symbols, "ab" and the two special tokens.
    static let vocabulary: String = {
        var members: [JSONMember] = []
        for scalar in ByteLevelAlphabet.scalars { members.append(JSONMember(key: String(scalar), value: .int(members.count))) }
        for scalar in ByteLevelAlphabet.scalars { members.append(JSONMember(key: String(scalar) + "</w>", value: .int(members.count))) }
        for token in ["ab</w>", "<|startoftext|>", "<|endoftext|>"] {
            members.append(JSONMember(key: token, value: .int(members.count)))
        }
        return JSONValue.object(members).serialized()
    }()

    /// Writes a folder from `files` (name → contents), loads it and returns the error.
    func loadingError(_ files: [String: String]) throws -> (error: ChiselError, folder: String) {
        let folder = try TokenizerFixtures.temporaryFolder()
        for (name, contents) in files { try TokenizerFixtures.write(contents, to: folder + "/" + name) }
        do {
            _ = try CLIPTokenizer(folder: folder)
        } catch let error as ChiselError {
            return (error, folder)
        }
        TokenizerFixtures.removeFolder(folder)
        throw ChiselError(.internal, "loading did not fail")
    }

    func expectError(
        _ files: [String: String], code: ChiselError.Code, file: String, message: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let (error, folder) = try loadingError(files)
        defer { TokenizerFixtures.removeFolder(folder) }
        #expect(error.code == code, sourceLocation: sourceLocation)
        #expect(error.file == folder + "/" + file, sourceLocation: sourceLocation)
        #expect(error.message.contains(message), "\(error)", sourceLocation: sourceLocation)
    }

    @Test("the small vocabulary of these tests loads, so the errors below are the damage's")
    func baselineLoads() throws {
        let folder = try TokenizerFixtures.temporaryFolder()
        defer { TokenizerFixtures.removeFolder(folder) }
        try TokenizerFixtures.write(Self.vocabulary, to: folder + "/vocab.json")
        try TokenizerFixtures.write("#version: 0.2\na b</w>\n", to: folder + "/merges.txt")
        let tokenizer = try CLIPTokenizer(folder: folder)
        #expect(tokenizer.encode("ab AB") == [512, 512])
        #expect(tokenizer("ab", maxLength: 4) == [513, 512, 514, 514])
    }

    @Test("truncated vocab.json")
    func truncatedVocabulary() throws {
        let real = try String(contentsOfFile: TokenizerFixtures.vocabulary("vocab.json"), encoding: .utf8)
        try expectError(
            ["vocab.json": String(real.prefix(5000)), "merges.txt": "#version: 0.2\n"], code: .model, file: "vocab.json",
            message: "invalid JSON")
    }

    @Test("vocab.json that is not an object of ids")
    func vocabularyShape() throws {
        try expectError(["vocab.json": "[1, 2]", "merges.txt": ""], code: .model, file: "vocab.json", message: "JSON object")
        try expectError(["vocab.json": #"{"a": "1"}"#, "merges.txt": ""], code: .model, file: "vocab.json", message: "'a'")
        try expectError(["vocab.json": #"{"a": 1, "b": 1}"#, "merges.txt": ""], code: .model, file: "vocab.json", message: "id 1")
        try expectError(["vocab.json": #"{"a": -1}"#, "merges.txt": ""], code: .model, file: "vocab.json", message: "'a'")
    }

    @Test("missing merges.txt or vocab.json")
    func missingFiles() throws {
        try expectError(["vocab.json": Self.vocabulary], code: .io, file: "merges.txt", message: "no such file")
        try expectError(["merges.txt": "#version: 0.2\n"], code: .io, file: "vocab.json", message: "no such file")
        let (error, folder) = try loadingError([:])
        defer { TokenizerFixtures.removeFolder(folder) }
        #expect(error.code == .io && error.file == folder)
    }

    @Test("merge lines that are not two symbols", arguments: ["a", "a b c", "a b</w> x"])
    func badMergeLine(line: String) throws {
        try expectError(
            ["vocab.json": Self.vocabulary, "merges.txt": "#version: 0.2\na b</w>\n\(line)\n"], code: .model,
            file: "merges.txt", message: "line 3")
    }

    @Test("a blank line inside merges.txt")
    func blankMergeLine() throws {
        try expectError(
            ["vocab.json": Self.vocabulary, "merges.txt": "#version: 0.2\n\na b</w>\n"], code: .model, file: "merges.txt",
            message: "line 2")
    }

    @Test("merges whose sides or result are not in the vocabulary", arguments: ["a q", "zz b", "b c"])
    func unknownMergeTokens(line: String) throws {
        try expectError(
            ["vocab.json": Self.vocabulary, "merges.txt": "#version: 0.2\n\(line)\n"], code: .model, file: "merges.txt",
            message: "line 2: the merge '\(line)' needs")
    }

    @Test("merges.txt that is not UTF-8")
    func mergesNotUTF8() throws {
        let folder = try TokenizerFixtures.temporaryFolder()
        defer { TokenizerFixtures.removeFolder(folder) }
        try TokenizerFixtures.write(Self.vocabulary, to: folder + "/vocab.json")
        try Data([0x23, 0xFF, 0xFE, 0x0A]).write(to: URL(fileURLWithPath: folder + "/merges.txt"))
        #expect {
            try CLIPTokenizer(folder: folder)
        } throws: { error in
            (error as? ChiselError)?.file == folder + "/merges.txt" && (error as? ChiselError)?.code == .model
        }
    }

    @Test("malformed tokenizer_config.json and special_tokens_map.json")
    func malformedConfiguration() throws {
        let valid = ["vocab.json": Self.vocabulary, "merges.txt": "#version: 0.2\n"]
        try expectError(
            valid.merging(["tokenizer_config.json": #"{"pad_token": "#], uniquingKeysWith: { $1 }), code: .model,
            file: "tokenizer_config.json", message: "invalid JSON")
        try expectError(
            valid.merging(["tokenizer_config.json": "[]"], uniquingKeysWith: { $1 }), code: .model,
            file: "tokenizer_config.json", message: "JSON object")
        try expectError(
            valid.merging(["tokenizer_config.json": #"{"pad_token": 7}"#], uniquingKeysWith: { $1 }), code: .model,
            file: "tokenizer_config.json", message: "pad_token")
        try expectError(
            valid.merging(["tokenizer_config.json": #"{"pad_token": null}"#], uniquingKeysWith: { $1 }), code: .model,
            file: "tokenizer_config.json", message: "cannot pad")
        try expectError(
            valid.merging(["tokenizer_config.json": #"{"added_tokens_decoder": {"x": {"content": "!"}}}"#], uniquingKeysWith: { $1 }),
            code: .model, file: "tokenizer_config.json", message: "'x'")
        try expectError(
            valid.merging(["special_tokens_map.json": #"{"pad_token": {"contents": "!"}}"#], uniquingKeysWith: { $1 }),
            code: .model, file: "special_tokens_map.json", message: "pad_token")
    }

    /// small.json with `edit` applied to its text.
    func smallJSON(_ edit: (String) -> String) throws -> String {
        edit(try String(contentsOfFile: TokenizerFixtures.path("small.json"), encoding: .utf8))
    }

    @Test("truncated tokenizer.json")
    func truncatedTokenizerJSON() throws {
        try expectError(["tokenizer.json": try smallJSON { String($0.prefix(20000)) }], code: .model, file: "tokenizer.json", message: "invalid JSON")
    }

    @Test("tokenizer.json without merges, vocabulary or model")
    func tokenizerJSONMissingParts() throws {
        let noMerges = try smallJSON { $0.replacingOccurrences(of: #""merges":"#, with: #""merges_":"#) }
        try expectError(["tokenizer.json": noMerges], code: .model, file: "tokenizer.json", message: "model.merges")
        let noVocabulary = try smallJSON { $0.replacingOccurrences(of: #""vocab":"#, with: #""vocab_":"#) }
        try expectError(["tokenizer.json": noVocabulary], code: .model, file: "tokenizer.json", message: "model.vocab")
        try expectError(["tokenizer.json": #"{"version": "1.0"}"#], code: .model, file: "tokenizer.json", message: "'model'")
    }

    @Test("tokenizer.json merges that are not pairs of known symbols")
    func tokenizerJSONBadMerges() throws {
        let triple = try smallJSON { $0.replacingOccurrences(of: #"["i","n"]"#, with: #"["i","n","x"]"#) }
        try expectError(["tokenizer.json": triple], code: .model, file: "tokenizer.json", message: "model.merges[0]")
        let number = try smallJSON { $0.replacingOccurrences(of: #"["i","n"]"#, with: "7") }
        try expectError(["tokenizer.json": number], code: .model, file: "tokenizer.json", message: "model.merges[0]")
        let unknown = try smallJSON { $0.replacingOccurrences(of: #"["i","n"]"#, with: #"["i","ŋ"]"#) }
        try expectError(["tokenizer.json": unknown], code: .model, file: "tokenizer.json", message: "needs 'ŋ'")
        let strings = try smallJSON { $0.replacingOccurrences(of: #"["i","n"]"#, with: #""i  n""#) }
        try expectError(["tokenizer.json": strings], code: .model, file: "tokenizer.json", message: "model.merges[0]")
    }

    @Test("tokenizer.json of another model family")
    func notCLIP() throws {
        let lowercaseMissing = try smallJSON { $0.replacingOccurrences(of: #",{"type":"Lowercase"}"#, with: "") }
        try expectError(["tokenizer.json": lowercaseMissing], code: .unsupportedFormat, file: "tokenizer.json", message: "normalizer")
        let otherSplit = try smallJSON { $0.replacingOccurrences(of: #"[\\p{N}]|"#, with: #"[\\p{N}]+|"#) }
        try expectError(["tokenizer.json": otherSplit], code: .unsupportedFormat, file: "tokenizer.json", message: "pre-tokenizer")
        let noSuffix = try smallJSON { $0.replacingOccurrences(of: #""end_of_word_suffix":"</w>""#, with: #""end_of_word_suffix":null"#) }
        try expectError(["tokenizer.json": noSuffix], code: .unsupportedFormat, file: "tokenizer.json", message: "</w>")
        let wordPiece = try smallJSON { $0.replacingOccurrences(of: #""type":"BPE""#, with: #""type":"WordPiece""#) }
        try expectError(["tokenizer.json": wordPiece], code: .unsupportedFormat, file: "tokenizer.json", message: "BPE")
    }
}
