import ChiselCore
import ChiselTensor
import Foundation
import Testing

@testable import ChiselModels

/// The fixtures of tools/prompt/make_prompt_fixtures.py (ports of AUTOMATIC1111's parser and
/// chunker, torch 2.15.0, transformers 5.23.0, diffusers 0.42.1).
enum PromptFixtures {
    struct ParseCase: Sendable, CustomTestStringConvertible {
        var prompt: String
        /// nil when A1111 raises.
        var segments: [PromptSegment]?
        var testDescription: String { "\(escaped(prompt))" }
    }

    struct ChunkCase: Sendable, CustomTestStringConvertible {
        var prompt: String
        var family: StableDiffusionModel.Family
        var commaBacktrack: Int
        var tokens: [[Int]]
        var weights: [[Float]]
        var testDescription: String { "\(family == .sd1 ? "SD1" : "SD2") backtrack \(commaBacktrack): \(escaped(prompt).prefix(50))" }
    }

    struct NumericCase: Sendable, CustomTestStringConvertible {
        var family: String
        var tokenizer: String
        var prompt: String
        var weighting: String
        var clipSkip: Int
        var tensor: String
        var tokens: [[Int]]
        var weights: [[Float]]
        var testDescription: String { tensor }
    }

    static var root: String {
        (Bundle.module.url(forResource: "Fixtures", withExtension: nil)?.path ?? "Fixtures") + "/prompt"
    }

    static func json(_ name: String) throws -> JSONValue {
        let file = "\(root)/\(name)"
        return try JSONParser.parse([UInt8](try Data(contentsOf: URL(fileURLWithPath: file))), file: file)
    }

    static func cases(_ name: String) throws -> [JSONValue] {
        guard case .array(let items) = try json(name)["cases"] else { throw ChiselError(.internal, "no cases", file: name) }
        return items
    }

    static func number(_ value: JSONValue?) throws -> Double {
        switch value {
        case .int(let n): return Double(n)
        case .double(let d): return d
        default: throw ChiselError(.internal, "not a number: \(String(describing: value))")
        }
    }

    static func integers(_ value: JSONValue?) throws -> [Int] {
        guard case .array(let items) = value else { throw ChiselError(.internal, "not a list") }
        return try items.map {
            guard case .int(let n) = $0 else { throw ChiselError(.internal, "not an integer") }
            return n
        }
    }

    static func rows<T>(_ value: JSONValue?, _ row: (JSONValue) throws -> T) throws -> [T] {
        guard case .array(let items) = value else { throw ChiselError(.internal, "not a list") }
        return try items.map(row)
    }

    static func floats(_ value: JSONValue) throws -> [Float] {
        try rows(value) { Float(try number($0)) }
    }

    static func parseCases() throws -> [ParseCase] {
        try cases("parse.json").map { item in
            let prompt = item["prompt"]?.stringValue ?? ""
            guard let runs = item["runs"] else { return ParseCase(prompt: prompt, segments: nil) }
            let segments: [PromptSegment] = try rows(runs) { run in
                guard case .array(let pair) = run, pair.count == 2, let text = pair[0].stringValue else {
                    throw ChiselError(.internal, "a run is not [text, weight]")
                }
                let weight = try number(pair[1])
                return text == "BREAK" && weight == -1 ? .chunkBreak : .text(text, weight: weight)
            }
            return ParseCase(prompt: prompt, segments: segments)
        }
    }

    static func chunkCases() throws -> [ChunkCase] {
        try cases("chunks.json").map { item in
            ChunkCase(
                prompt: item["prompt"]?.stringValue ?? "", family: item["tokenizer"] == "sd2" ? .sd2 : .sd1,
                commaBacktrack: Int(try number(item["comma_padding_backtrack"])),
                tokens: try rows(item["tokens"], integers), weights: try rows(item["weights"], floats))
        }
    }

    static func numericCases() throws -> [NumericCase] {
        try cases("numeric.json").map { item in
            NumericCase(
                family: item["family"]?.stringValue ?? "", tokenizer: item["tokenizer"]?.stringValue ?? "",
                prompt: item["prompt"]?.stringValue ?? "", weighting: item["weighting"]?.stringValue ?? "",
                clipSkip: Int(try number(item["clip_skip"])), tensor: item["tensor"]?.stringValue ?? "",
                tokens: try rows(item["tokens"], integers), weights: try rows(item["weights"], floats))
        }
    }

    /// Loaded once for the argument lists; a fixture that fails to load leaves the list empty,
    /// which the `fixturesLoad` test reports.
    static let parse = (try? parseCases()) ?? []
    static let chunks = (try? chunkCases()) ?? []
    static let numeric = (try? numericCases()) ?? []

    static func expected(_ tensor: String) throws -> [Float] {
        try SafeTensorsFile(path: "\(root)/numeric.safetensors").floats(tensor)
    }

    /// The tiny tokenizer (ids < 1000) of the fixtures, "sd1" or "sd2" configuration.
    static func tinyTokenizer(_ configuration: String) throws -> CLIPTokenizer {
        try CLIPTokenizer(folder: "\(root)/tiny-tokenizer/\(configuration)")
    }

    /// The tiny text encoder of Fixtures/reference ("sd1-tiny", "sd2-tiny").
    static func tinyTextModel(_ family: String) throws -> CLIPTextModel {
        let component = try DiffusersComponent(folder: "\(Reference.root)/\(family)/text_encoder", base: "model")
        return try CLIPTextModel(config: CLIPTextConfig(reader: component.config), weights: component.weights)
    }

    static func escaped(_ text: String) -> String {
        text.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : "\\u{\(String($0.value, radix: 16))}" }
            .joined()
    }
}
