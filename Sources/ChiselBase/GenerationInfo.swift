/// How an image was generated, as AUTOMATIC1111 writes it into a PNG's `parameters` text chunk,
/// so its PNG-info tab and other readers show the prompt and settings.
public struct GenerationInfo: Sendable, Equatable {
    public struct Setting: Sendable, Equatable {
        public var key: String
        public var value: String

        public init(_ key: String, _ value: String) {
            self.key = key
            self.value = value
        }
    }

    public var prompt: String
    public var negativePrompt: String
    /// `Steps`, `Sampler`, `CFG scale`, `Seed`, `Size`, `Model`, `Denoising strength`, `RNG`, … in order.
    public var settings: [Setting]

    public init(prompt: String, negativePrompt: String, settings: [Setting]) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.settings = settings
    }

    /// The `parameters` text: the prompt, a `Negative prompt:` line when there is one, then
    /// `key: value` pairs joined by ", ", a value quoted as JSON when it holds ',', ':' or a
    /// newline (AUTOMATIC1111's `create_infotext` and `quote`).
    public var parametersText: String {
        var text = prompt
        if !negativePrompt.isEmpty { text += "\nNegative prompt: " + negativePrompt }
        let pairs = settings.map { $0.key == $0.value ? $0.key : "\($0.key): \(Self.quote($0.value))" }
        return text + "\n" + pairs.joined(separator: ", ")
    }

    /// Reads a `parameters` text as AUTOMATIC1111 writes it: the prompt's lines, then a
    /// `Negative prompt:` line and those after it, then a last line of `key: value` pairs (taken
    /// as settings when it holds at least three; values may be JSON-quoted). Nil for an empty text.
    public static func parse(_ text: String) -> GenerationInfo? {
        var lines = text.trimmingCharacters(in: .whitespacesAndNewlines).components(separatedBy: "\n")
        guard !lines.isEmpty, !(lines.count == 1 && lines[0].isEmpty) else { return nil }
        var settings: [Setting] = []
        if let last = lines.last {
            let pairs = Self.pairs(last)
            if pairs.count >= 3 {
                settings = pairs
                lines.removeLast()
            }
        }
        var prompt: [String] = [], negative: [String] = []
        var inNegative = false
        for raw in lines {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("Negative prompt:") {
                inNegative = true
                line = String(line.dropFirst("Negative prompt:".count)).trimmingCharacters(in: .whitespaces)
            }
            if inNegative { negative.append(line) } else { prompt.append(line) }
        }
        return GenerationInfo(prompt: prompt.joined(separator: "\n"), negativePrompt: negative.joined(separator: "\n"),
                              settings: settings)
    }

    /// `key: value, key: "quoted, value", …`: keys start with a word character; a value is a
    /// JSON string or runs to the next comma.
    static func pairs(_ line: String) -> [Setting] {
        var settings: [Setting] = []
        var rest = Substring(line)
        while !rest.isEmpty {
            rest = rest.drop { $0 == " " || $0 == "\t" }
            guard let colon = rest.firstIndex(of: ":") else { break }
            let key = rest[..<colon].trimmingCharacters(in: .whitespaces)
            guard let first = key.first, first.isLetter || first.isNumber || first == "_",
                  key.allSatisfy({ $0.isLetter || $0.isNumber || " _-/".contains($0) }) else { break }
            rest = rest[rest.index(after: colon)...].drop { $0 == " " }
            var value: String
            if rest.first == "\"" {
                // A JSON string: up to its closing quote, escapes included.
                var end = rest.index(after: rest.startIndex)
                var escaped = false
                while end < rest.endIndex, escaped || rest[end] != "\"" {
                    escaped = !escaped && rest[end] == "\\"
                    end = rest.index(after: end)
                }
                let quoted = end < rest.endIndex ? rest[...end] : rest[...]
                value = (try? JSONParser.parse(String(quoted)))?.stringValue ?? String(quoted)
                rest = end < rest.endIndex ? rest[rest.index(after: end)...] : ""
                if let comma = rest.firstIndex(of: ",") { rest = rest[rest.index(after: comma)...] } else { rest = "" }
            } else if let comma = rest.firstIndex(of: ",") {
                value = String(rest[..<comma])
                rest = rest[rest.index(after: comma)...]
            } else {
                value = String(rest)
                rest = ""
            }
            settings.append(Setting(key, value.trimmingCharacters(in: .whitespaces)))
        }
        return settings
    }

    /// Adds `key: value` settings written as A1111 writes them; an existing key takes the new value.
    public mutating func append(infotext: String) {
        for setting in Self.pairs(infotext) {
            if let i = settings.firstIndex(where: { $0.key == setting.key }) { settings[i] = setting } else { settings.append(setting) }
        }
    }

    /// The value of a setting, or nil.
    public func value(_ key: String) -> String? { settings.last { $0.key == key }?.value }

    static func quote(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == ":" || $0 == "\n" }) else { return value }
        return JSONValue.string(value).serialized()
    }
}
