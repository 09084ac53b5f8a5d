import ChiselBase

/// CLIP's byte-level BPE tokenizer, giving exactly the ids transformers' `CLIPTokenizer` gives.
///
/// Encoding follows transformers 4.57's models/clip/tokenization_clip.py (or, with
/// `Behavior.fast`, the tokenizer.json pipeline of `CLIPTokenizerFast`):
/// 1. the text is split on added tokens (`<|startoftext|>`, `<|endoftext|>`, the pad token...),
///    which map straight to their ids;
/// 2. the rest is cleaned up and lowercased (`BasicTokenizerCleanup`, or
///    `TokenizersNormalizer` for the fast tokenizer);
/// 3. `CLIPPreTokenizer` cuts it into words, digits and punctuation runs;
/// 4. each piece's UTF-8 bytes go through `BytePairEncoder`, the last byte carrying `</w>`.
///
/// Calling the tokenizer adds `<|startoftext|>` and `<|endoftext|>`, truncates and pads, as
/// `tokenizer(text, padding="max_length", max_length=77, truncation=True)` does in diffusers.
///
/// Load one with `init(folder:behavior:)` and the initializers in `CLIPTokenizer+Loading.swift`.
public final class CLIPTokenizer: Sendable {
    public let behavior: Behavior
    public let bosTokenID: Int
    public let eosTokenID: Int
    public let padTokenID: Int
    public let unknownTokenID: Int
    /// `model_max_length` of tokenizer_config.json, 77 when it does not say.
    public let modelMaxLength: Int
    /// The tokens matched before BPE, by id.
    public let addedTokens: [AddedToken]

    private let tokensByID: [Int: String]
    private let encoder: BytePairEncoder
    private let preTokenizer: CLIPPreTokenizer
    /// The added tokens looked for in the raw text: all of them for the slow tokenizer, the
    /// non-normalized ones for the fast one.
    private let rawTokens: AddedTokenMatcher
    /// The added tokens the fast tokenizer looks for in the normalized text.
    private let normalizedTokens: AddedTokenMatcher
    /// The ids of the pieces `<|startoftext|>` and `<|endoftext|>` when the slow tokenizer's
    /// clean-up produces them (from `<|ENDOFTEXT|>`, say): its BPE cache is seeded with them.
    private let slowCacheSeeds: [[Unicode.Scalar]: Int]

    /// The tokenizer of a vocabulary whose merges are already checked: both sides of each merge
    /// and their concatenation are vocabulary entries.
    convenience init(
        vocabulary: [String: Int], merges: [(left: Int, right: Int, merged: Int)], addedTokens: [AddedToken],
        bosTokenID: Int, eosTokenID: Int, padTokenID: Int, unknownTokenID: Int, modelMaxLength: Int,
        behavior: Behavior, preTokenizer: CLIPPreTokenizer
    ) {
        var tokensByID: [Int: String] = [:]
        for (token, id) in vocabulary { tokensByID[id] = token }
        self.init(encoder: BytePairEncoder(vocabulary: vocabulary, merges: merges, unknownID: unknownTokenID),
                  vocabularyTokens: tokensByID, vocabulary: vocabulary, addedTokens: addedTokens, bosTokenID: bosTokenID,
                  eosTokenID: eosTokenID, padTokenID: padTokenID, unknownTokenID: unknownTokenID,
                  modelMaxLength: modelMaxLength, behavior: behavior, preTokenizer: preTokenizer)
    }

    /// How many ids the tokenizer gives out: its vocabulary and the added tokens beyond it
    /// (transformers' `len(tokenizer)`); a token added next gets this id.
    public let count: Int
    private let vocabularyTokens: [Int: String]
    private let specialVocabulary: [String: Int]

    private init(
        encoder: BytePairEncoder, vocabularyTokens: [Int: String], vocabulary: [String: Int], addedTokens: [AddedToken],
        bosTokenID: Int, eosTokenID: Int, padTokenID: Int, unknownTokenID: Int, modelMaxLength: Int,
        behavior: Behavior, preTokenizer: CLIPPreTokenizer
    ) {
        self.addedTokens = addedTokens
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        self.padTokenID = padTokenID
        self.unknownTokenID = unknownTokenID
        self.modelMaxLength = modelMaxLength
        self.behavior = behavior
        self.preTokenizer = preTokenizer
        self.encoder = encoder
        self.vocabularyTokens = vocabularyTokens
        var special: [String: Int] = [:]
        for name in ["<|startoftext|>", "<|endoftext|>"] { special[name] = vocabulary[name] }
        specialVocabulary = special
        count = max((vocabularyTokens.keys.max() ?? -1) + 1, (addedTokens.map(\.id).max() ?? -1) + 1)

        var tokensByID = vocabularyTokens
        for token in addedTokens { tokensByID[token.id] = token.content }
        self.tokensByID = tokensByID

        switch behavior {
        case .slow:
            rawTokens = AddedTokenMatcher(addedTokens.map { (Array($0.content.unicodeScalars), $0.id) })
            normalizedTokens = AddedTokenMatcher([])
            var seeds: [[Unicode.Scalar]: Int] = [:]
            for special in ["<|startoftext|>", "<|endoftext|>"] {
                // The reference looks the cached string up in vocab.json, not among added tokens.
                seeds[Array(special.unicodeScalars)] = vocabulary[special] ?? unknownTokenID
            }
            slowCacheSeeds = seeds
        case .fast:
            rawTokens = AddedTokenMatcher(addedTokens.filter { !$0.normalized }.map { (Array($0.content.unicodeScalars), $0.id) })
            normalizedTokens = AddedTokenMatcher(
                addedTokens.filter(\.normalized).map { (TokenizersNormalizer.normalize($0.content), $0.id) })
            slowCacheSeeds = [:]
        }
    }

    /// This tokenizer with `tokens` added after its ids (transformers' `tokenizer.add_tokens`, as
    /// diffusers' `load_textual_inversion` calls it): matched whole before BPE, in the normalized
    /// text for the fast tokenizer. A token it already has is an error.
    public func adding(tokens: [String]) throws -> CLIPTokenizer {
        var added = addedTokens
        for (offset, token) in tokens.enumerated() {
            guard !token.isEmpty else { throw ChiselError(.invalidParameter, "an added token cannot be empty") }
            guard !added.contains(where: { $0.content == token }), !vocabularyTokens.values.contains(token) else {
                throw ChiselError(.invalidParameter, "the tokenizer already has a token '\(token)'")
            }
            added.append(AddedToken(content: token, id: count + offset, normalized: true, special: false))
        }
        return CLIPTokenizer(encoder: encoder, vocabularyTokens: vocabularyTokens, vocabulary: specialVocabulary,
                             addedTokens: added, bosTokenID: bosTokenID, eosTokenID: eosTokenID, padTokenID: padTokenID,
                             unknownTokenID: unknownTokenID, modelMaxLength: modelMaxLength, behavior: behavior,
                             preTokenizer: preTokenizer)
    }

    /// The ids of `text` without `<|startoftext|>` and `<|endoftext|>` around them:
    /// `tokenizer.encode(text, add_special_tokens=False)`.
    public func encode(_ text: String) -> [Int] {
        var ids: [Int] = []
        rawTokens.split(
            Array(text.unicodeScalars),
            text: { segment in
                switch behavior {
                case .slow:
                    encodeWords(BasicTokenizerCleanup.clean(String(String.UnicodeScalarView(segment))), into: &ids)
                case .fast:
                    normalizedTokens.split(
                        TokenizersNormalizer.normalize(String(String.UnicodeScalarView(segment))),
                        text: { encodeWords(Array($0), into: &ids) },
                        token: { ids.append($0) })
                }
            },
            token: { ids.append($0) })
        return ids
    }

    /// `<|startoftext|>`, the ids of `text` and `<|endoftext|>`, cut to `maxLength` by dropping
    /// ids before the final `<|endoftext|>`, then padded with the pad token when `padding` asks:
    /// `tokenizer(text, max_length=maxLength, padding="max_length", truncation=True).input_ids`.
    /// A `maxLength` below 2 counts as 2.
    public func callAsFunction(_ text: String, maxLength: Int = 77, padding: Padding = .maxLength) -> [Int] {
        let length = max(maxLength, 2)
        var ids = [bosTokenID]
        ids += encode(text).prefix(length - 2)
        ids.append(eosTokenID)
        if padding == .maxLength, ids.count < length {
            ids += repeatElement(padTokenID, count: length - ids.count)
        }
        return ids
    }

    /// The text of some ids, as the slow tokenizer's `decode(ids, clean_up_tokenization_spaces=False)`:
    /// tokens concatenated, mapped back to bytes, decoded as UTF-8 (invalid bytes become U+FFFD),
    /// `</w>` turned into a space, outer whitespace stripped. Unknown ids are skipped, special
    /// tokens kept unless `skipSpecialTokens`.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        let special = Set(addedTokens.filter(\.special).map(\.id) + [bosTokenID, eosTokenID, padTokenID, unknownTokenID])
        var bytes: [UInt8] = []
        for id in ids {
            guard let token = tokensByID[id], !(skipSpecialTokens && special.contains(id)) else { continue }
            for scalar in token.unicodeScalars {
                if let byte = ByteLevelAlphabet.bytes[scalar] {
                    bytes.append(byte)
                } else {
                    // Only added tokens can hold characters outside the byte alphabet.
                    bytes.append(contentsOf: scalar.utf8)
                }
            }
        }
        let text = String(decoding: Self.replacingEndOfWordMarkers(bytes), as: UTF8.self)
        return String(String.UnicodeScalarView(PythonText.stripped(Array(text.unicodeScalars))))
    }

    /// Pre-tokenizes cleaned-up text and appends the BPE ids of each piece.
    private func encodeWords(_ text: [Unicode.Scalar], into ids: inout [Int]) {
        for range in preTokenizer.pieces(text) {
            let piece = text[range]
            if piece.first == "<", let id = slowCacheSeeds[Array(piece)] {
                ids.append(id)
                continue
            }
            var utf8: [UInt8] = []
            utf8.reserveCapacity(piece.count)
            for scalar in piece { utf8.append(contentsOf: scalar.utf8) }
            ids += encoder.encode(utf8)
        }
    }

    /// `</w>` replaced by a space, as `convert_tokens_to_string` does after decoding; the same
    /// on bytes, since ASCII bytes are never part of a multi-byte or invalid UTF-8 sequence.
    private static func replacingEndOfWordMarkers(_ bytes: [UInt8]) -> [UInt8] {
        let marker = Array("</w>".utf8)
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == marker[0], bytes[i...].starts(with: marker) {
                result.append(0x20)
                i += marker.count
            } else {
                result.append(bytes[i])
                i += 1
            }
        }
        return result
    }
}
