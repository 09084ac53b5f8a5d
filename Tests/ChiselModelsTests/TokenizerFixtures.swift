import ChiselCore
import Foundation
import Testing

@testable import ChiselModels

/// The CLIP tokenizer fixtures written by tools/tokenizer/generate.py.
enum TokenizerFixtures {
    /// One prompt of corpus.json with the ids transformers 4.57 gave for it.
    struct Prompt: Sendable {
        var text: String
        /// Slow CLIPTokenizer without ftfy, SD1 configuration, `encode(add_special_tokens=False)`.
        var encode: [Int]
        /// The slow tokenizer's `decode(encode, clean_up_tokenization_spaces=False)`.
        var decoded: String
        /// Slow tokenizer, padded to 77 with truncation, SD1 and SD2 configurations.
        var sd1: [Int]
        var sd2: [Int]
        /// CLIPTokenizerFast: SD1 `encode`, SD2 padded.
        var fast: [Int]
        var fastSD2: [Int]
        /// small.json (tokenizers), `encode` and padded.
        var small: [Int]
        var smallPadded: [Int]

        /// The text with invisible and non-ASCII characters escaped, for failure messages.
        var label: String {
            text.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : "\\u{\(String($0.value, radix: 16))}" }
                .joined()
        }
    }

    static func folder() throws -> String {
        let url = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        return url.appendingPathComponent("tokenizer").path
    }

    static func path(_ name: String) throws -> String { try TokenizerFile.path(folder(), name) }

    /// vocab.json or merges.txt of the CLIP vocabulary, which ships with ChiselModels as a resource.
    static func vocabulary(_ name: String) throws -> String { try TokenizerFile.path(CLIPTokenizer.bundledFolder(), name) }

    /// The real vocabulary with the configuration files of the fixture folder `configuration`
    /// ("clip", "sd2", "sd2-added-tokens").
    static func tokenizer(configuration: String, behavior: CLIPTokenizer.Behavior) throws -> CLIPTokenizer {
        try CLIPTokenizer(
            vocabularyPath: vocabulary("vocab.json"), mergesPath: vocabulary("merges.txt"),
            configPath: path("\(configuration)/tokenizer_config.json"),
            specialTokensMapPath: path("\(configuration)/special_tokens_map.json"), behavior: behavior)
    }

    /// The SD1 fixture tokenizer, slow and fast, loaded once for all tests (loading takes a
    /// fraction of a second in debug builds).
    static let sd1Slow = load { try tokenizer(configuration: "clip", behavior: .slow) }
    static let sd1Fast = load { try tokenizer(configuration: "clip", behavior: .fast) }

    private static func load(_ body: () throws -> CLIPTokenizer) -> Result<CLIPTokenizer, ChiselError> {
        do {
            return .success(try body())
        } catch {
            return .failure(ChiselError.wrapping(error, code: .internal))
        }
    }

    static func corpus() throws -> [Prompt] {
        let file = try path("corpus.json")
        let root = try JSONParser.parse([UInt8](try Data(contentsOf: URL(fileURLWithPath: file))), file: file)
        guard case .array(let items) = root["prompts"] else { throw ChiselError(.internal, "no prompts", file: file) }
        return try items.map { item in
            func ids(_ key: String) throws -> [Int] {
                guard case .array(let values) = item[key] else { throw ChiselError(.internal, "no \(key)", file: file) }
                return try values.map {
                    guard case .int(let id) = $0 else { throw ChiselError(.internal, "\(key) holds a non-integer", file: file) }
                    return id
                }
            }
            guard let text = item["text"]?.stringValue, let decoded = item["decoded"]?.stringValue else {
                throw ChiselError(.internal, "a prompt lacks text", file: file)
            }
            return Prompt(
                text: text, encode: try ids("encode"), decoded: decoded, sd1: try ids("sd1"), sd2: try ids("sd2"),
                fast: try ids("fast"), fastSD2: try ids("fast_sd2"), small: try ids("small"),
                smallPadded: try ids("small_padded"))
        }
    }

    /// A fresh temporary folder, removed by the caller with `removeFolder`.
    static func temporaryFolder() throws -> String {
        let path = NSTemporaryDirectory() + "chisel-tokenizer-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func removeFolder(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// A temporary tokenizer folder: the bundled vocab.json and merges.txt with the configuration files
    /// of the fixture folder `configuration` ("clip", "sd2", "sd2-added-tokens").
    static func folder(configuration: String) throws -> String {
        let folder = try temporaryFolder()
        for name in ["vocab.json", "merges.txt"] {
            try FileManager.default.copyItem(atPath: vocabulary(name), toPath: folder + "/" + name)
        }
        for name in ["tokenizer_config.json", "special_tokens_map.json"] {
            try FileManager.default.copyItem(atPath: path("\(configuration)/\(name)"), toPath: folder + "/" + name)
        }
        return folder
    }

    static func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }
}
