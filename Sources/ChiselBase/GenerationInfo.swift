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

    static func quote(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == ":" || $0 == "\n" }) else { return value }
        return JSONValue.string(value).serialized()
    }
}
