import ArgumentParser
import ChiselCore
import Foundation

/// `NAME=VALUE` on the command line (`--var`, `--hint`): VALUE as JSON when it parses as a JSON
/// scalar or list (`unet.attention_head_dim=[5,10,20,20]`), a plain string otherwise. A malformed
/// one is a command-line error (exit 64).
struct KeyValueArgument: ExpressibleByArgument, Sendable {
    var key: String
    var value: JSONValue

    init?(argument: String) {
        guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex else { return nil }
        key = String(argument[..<equals])
        let text = String(argument[argument.index(after: equals)...])
        if case .array(let items)? = try? JSONParser.parse(text) {
            value = .array(items)
        } else {
            value = parseLooseJSON(text)
        }
    }

    /// The arguments as a dictionary; a key given twice keeps its last value.
    static func dictionary(_ arguments: [KeyValueArgument]) -> [String: JSONValue] {
        Dictionary(arguments.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }
}

/// `--set NODE.PARAM=VALUE`; a malformed one is a command-line error (exit 64).
extension ParamOverride: ExpressibleByArgument {
    public init?(argument: String) {
        guard let parsed = try? ParamOverride.parse(argument) else { return nil }
        self = parsed
    }
}

/// `--lora PATH[:SCALE]`: a LoRA file and its strength (default 1). The text after the last `:`
/// is the scale when it is a number; a path that itself holds a `:` works when the file exists.
/// A file with a weight, `PATH` or `PATH:SCALE` (`--lora`, `--controlnet`).
struct LoRAArgument: Sendable, Equatable {
    var path: String
    var scale: Double

    static func parse(_ text: String) throws -> LoRAArgument { try parse(text, flag: "--lora", example: "style.safetensors:0.8") }

    static func parse(_ text: String, flag: String, example: String) throws -> LoRAArgument {
        guard let colon = text.lastIndex(of: ":"), colon != text.startIndex else { return LoRAArgument(path: text, scale: 1) }
        let suffix = String(text[text.index(after: colon)...])
        if let scale = Double(suffix) {
            guard scale.isFinite else { throw ValidationError("\(flag) \(text): the scale must be a finite number") }
            return LoRAArgument(path: String(text[..<colon]), scale: scale)
        }
        if FileManager.default.fileExists(atPath: PathResolver.workingDirectory.resolve(text)) {
            return LoRAArgument(path: text, scale: 1)
        }
        throw ValidationError("\(flag) \(text): the scale '\(suffix)' is not a number (use PATH or PATH:SCALE, e.g. \(example))")
    }

    /// The graph's `loras` entry for these arguments, paths resolved against `cwd`.
    static func graphValue(_ loras: [LoRAArgument], cwd: PathResolver) -> JSONValue {
        .array(loras.map { lora in
            .object([JSONMember(key: "path", value: .string(cwd.resolve(lora.path))),
                     JSONMember(key: "scale", value: .double(lora.scale))])
        })
    }
}
