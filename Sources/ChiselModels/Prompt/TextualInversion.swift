import ChiselBase
import Foundation

/// A textual-inversion embedding (Gal et al. 2022): one or more vectors for the text encoder's
/// input, used in prompts by a token of its own, as diffusers' `load_textual_inversion` adds it.
///
/// Files: diffusers' `learned_embeds.safetensors` or `.bin` (one tensor, named by its token)
/// and AUTOMATIC1111's `.pt` (`string_to_param`) or `.safetensors` (`emb_params`), whose token
/// is the file's name, as AUTOMATIC1111 names it. Pickled files are read by `TorchArchive`,
/// which runs nothing; SDXL's `.safetensors` with `clip_l` and `clip_g` (one set of vectors per
/// text encoder, the token the file's name). A vector of n rows adds the tokens `T`, `T_1`, …
/// `T_{n-1}`, and `T` in a prompt stands for all of them.
public struct TextualInversion: Sendable {
    public let path: String
    public let token: String
    /// n × width.
    public let vectors: [[Float]]
    /// An SDXL embedding's vectors for the second text encoder (`clip_g`; `vectors` is `clip_l`).
    public let vectors2: [[Float]]?

    /// The tokens the embedding adds: `token`, then `token_1` … for more vectors.
    public var tokens: [String] { [token] + (1..<max(1, vectors.count)).map { "\(token)_\($0)" } }

    /// `token` replaces the file's own.
    public init(path: String, token override: String? = nil) throws {
        func fail(_ message: String) -> ChiselError { ChiselError(.model, message, file: path) }
        guard FileManager.default.fileExists(atPath: path) else { throw ChiselError(.io, "no such embedding file", file: path) }
        let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        guard path.hasSuffix(".safetensors") else {
            // torch.save files (.pt, .bin), read without running them.
            let archive = try TorchArchive.load(path: path)
            let name: String, value: TorchArchive.Value
            if let parameters = archive["string_to_param"] {
                // AUTOMATIC1111: {"string_to_param": {"*": tensor}, "name": …}; its token is the file's name.
                guard let tensor = parameters["*"] else { throw fail("string_to_param has no '*' entry") }
                (name, value) = (stem, tensor)
            } else if case .dict(let pairs) = archive, pairs.count == 1, let key = pairs[0].0.string {
                (name, value) = (key, pairs[0].1)  // diffusers' learned_embeds.bin
            } else {
                throw fail("not a textual-inversion embedding: expected string_to_param (AUTOMATIC1111) or one tensor named by its token (diffusers)")
            }
            guard case .tensor(let shape, let values) = value else { throw fail("the embedding is not a tensor") }
            try self.init(path: path, token: override ?? name, shape: shape, values: values)
            return
        }
        let file = try SafeTensorsFile(path: path)
        let name: String, tensor: String
        if Set(file.names) == ["clip_l", "clip_g"] {
            // SDXL: a set of vectors per text encoder; the token is the file's name, as A1111 names it.
            let first = try TextualInversion(path: path, token: override ?? stem, shape: try file.info("clip_l").shape,
                                             values: try file.floats("clip_l"))
            let second = try TextualInversion(path: path, token: override ?? stem, shape: try file.info("clip_g").shape,
                                              values: try file.floats("clip_g"))
            guard first.vectors.count == second.vectors.count else {
                throw fail("clip_l has \(first.vectors.count) vectors and clip_g \(second.vectors.count): they must match")
            }
            self.init(path: path, token: first.token, vectors: first.vectors, vectors2: second.vectors)
            return
        }
        if file.names.contains("emb_params") {
            tensor = "emb_params"
            name = stem
        } else if file.names.count == 1, let only = file.names.first {
            (name, tensor) = (only, only)
        } else {
            throw fail("not a textual-inversion embedding: expected one tensor named by its token (diffusers) or "
                       + "emb_params (AUTOMATIC1111), found \(file.names.count) tensors")
        }
        try self.init(path: path, token: override ?? name, shape: try file.info(tensor).shape, values: try file.floats(tensor))
    }

    private init(path: String, token: String, shape: [Int], values: [Float]) throws {
        guard shape.count == 1 || shape.count == 2, let width = shape.last, width > 0, shape.first ?? 0 > 0,
              values.count == shape.reduce(1, *) else {
            throw ChiselError(.model, "an embedding is a vector or a matrix of vectors, not of shape \(shape)", file: path)
        }
        guard !token.isEmpty, !token.contains(where: \.isWhitespace) else {
            throw ChiselError(.model, "the token '\(token)' must be one word", file: path)
        }
        self.init(path: path, token: token, vectors: stride(from: 0, to: values.count, by: width).map { Array(values[$0..<($0 + width)]) },
                  vectors2: nil)
    }

    private init(path: String, token: String, vectors: [[Float]], vectors2: [[Float]]?) {
        self.path = path
        self.token = token
        self.vectors = vectors
        self.vectors2 = vectors2
    }

    /// `prompt` with each of `embeddings`' tokens that `tokenizer` finds in it followed by its
    /// other vectors' tokens (diffusers' `maybe_convert_prompt`: the tokens found in the tokenized
    /// prompt are replaced by `T T_1 …` wherever they occur in its text).
    public static func expanding(_ prompt: String, embeddings: [TextualInversion], tokenizer: CLIPTokenizer) -> String {
        let many = embeddings.filter { $0.vectors.count > 1 }
        guard !many.isEmpty else { return prompt }
        let ids = Set(tokenizer.encode(prompt))
        var text = prompt
        for embedding in many {
            guard let id = tokenizer.addedTokens.first(where: { $0.content == embedding.token })?.id, ids.contains(id) else { continue }
            text = text.replacingOccurrences(of: embedding.token, with: embedding.tokens.joined(separator: " "))
        }
        return text
    }
}
