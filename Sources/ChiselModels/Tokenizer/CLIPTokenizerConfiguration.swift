import ChiselBase

/// The special tokens, added tokens and length limit of a CLIP tokenizer, read from
/// tokenizer_config.json and special_tokens_map.json the way transformers 4.57's
/// `PreTrainedTokenizerBase._from_pretrained` combines them:
///
/// - with `added_tokens_decoder` in tokenizer_config.json (files saved by transformers ≥ 4.34),
///   special_tokens_map.json is ignored;
/// - without it (SD 1.x and 2.x), each special token in special_tokens_map.json replaces the one
///   in tokenizer_config.json. SD2 relies on this: its tokenizer_config.json says the pad token is
///   `<|endoftext|>`, its special_tokens_map.json says `!`.
///
/// Missing roles take `CLIPTokenizer.__init__`'s defaults: `<|startoftext|>`, and
/// `<|endoftext|>` for end, unknown and pad.
struct CLIPTokenizerConfiguration: Sendable {
    var bosToken = "<|startoftext|>"
    var eosToken = "<|endoftext|>"
    var unknownToken = "<|endoftext|>"
    var padToken = "<|endoftext|>"
    var modelMaxLength: Int? = nil
    /// The added tokens in the order transformers registers them: `added_tokens_decoder` with
    /// its ids, then the special tokens (bos, eos, unk, sep, pad, cls, mask, additional), whose
    /// ids come from the vocabulary. When two share a content the first one counts.
    var addedTokens: [(content: String, id: Int?, normalized: Bool, special: Bool)] = [
        ("<|startoftext|>", nil, true, true), ("<|endoftext|>", nil, true, true),
    ]

    /// The attributes of special tokens, in transformers' `SPECIAL_TOKENS_ATTRIBUTES` order.
    private static let roles = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]
    private static let defaults = [
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
    ]

    init() {}

    /// Reads the files that exist; nil paths are skipped.
    init(configPath: String?, specialTokensMapPath: String?) throws {
        var members: [String: (value: JSONValue, file: String)] = [:]
        var decoder: (value: JSONValue, file: String)? = nil
        if let configPath {
            guard let object = try TokenizerFile.json(configPath).members else {
                throw ChiselError(.model, "tokenizer_config.json must hold a JSON object", file: configPath)
            }
            for member in object { members[member.key] = (member.value, configPath) }
            if let entry = members["added_tokens_decoder"] { decoder = entry }
        }
        if decoder == nil, let specialTokensMapPath {
            guard let object = try TokenizerFile.json(specialTokensMapPath).members else {
                throw ChiselError(.model, "special_tokens_map.json must hold a JSON object", file: specialTokensMapPath)
            }
            for member in object {
                if member.key == "additional_special_tokens", let existing = members[member.key],
                    case .array(let old) = existing.value, case .array(let new) = member.value
                {
                    members[member.key] = (.array(old + new.filter { !old.contains($0) }), specialTokensMapPath)
                } else {
                    members[member.key] = (member.value, specialTokensMapPath)
                }
            }
        }

        addedTokens = []
        if let decoder {
            guard let entries = decoder.value.members else {
                throw ChiselError(.model, "added_tokens_decoder must be an object of ids to tokens", file: decoder.file)
            }
            for entry in entries {
                guard let id = Int(entry.key), id >= 0 else {
                    throw ChiselError(.model, "added_tokens_decoder: '\(entry.key)' is not a token id", file: decoder.file)
                }
                let token = try Self.token(entry.value, key: "added_tokens_decoder.\(entry.key)", file: decoder.file)
                addedTokens.append((token.content, id, token.normalized, Self.bool(entry.value["special"]) ?? false))
            }
        }
        for role in Self.roles {
            let token: (content: String, normalized: Bool)
            if let entry = members[role] {
                if entry.value == .null {
                    guard role != "pad_token" else {
                        throw ChiselError(.model, "pad_token is null: this tokenizer cannot pad", file: entry.file)
                    }
                    continue
                }
                token = try Self.token(entry.value, key: role, file: entry.file)
            } else if let content = Self.defaults[role] {
                // CLIPTokenizer.__init__ wraps its default bos, eos and unk in normalized AddedTokens.
                token = (content, role != "pad_token")
            } else {
                continue
            }
            switch role {
            case "bos_token": bosToken = token.content
            case "eos_token": eosToken = token.content
            case "unk_token": unknownToken = token.content
            case "pad_token": padToken = token.content
            default: break
            }
            addedTokens.append((token.content, nil, token.normalized, true))
        }
        if let entry = members["additional_special_tokens"], entry.value != .null {
            guard case .array(let items) = entry.value else {
                throw ChiselError(.model, "additional_special_tokens must be a list", file: entry.file)
            }
            for item in items {
                let token = try Self.token(item, key: "additional_special_tokens", file: entry.file)
                addedTokens.append((token.content, nil, token.normalized, true))
            }
        }
        if let entry = members["model_max_length"], case .int(let length) = entry.value, length > 0 {
            modelMaxLength = length
        }
    }

    /// A token written as a string or as an AddedToken object (`{"content": ..., "normalized": ...}`).
    /// A string is not normalized, as transformers registers special tokens given as strings.
    private static func token(_ value: JSONValue, key: String, file: String) throws -> (content: String, normalized: Bool) {
        if let content = value.stringValue { return (content, false) }
        guard let content = value["content"]?.stringValue else {
            throw ChiselError(
                .model, "\(key) must be a string or an object with a string 'content', not \(value.kindDescription)",
                file: file)
        }
        return (content, bool(value["normalized"]) ?? false)
    }

    private static func bool(_ value: JSONValue?) -> Bool? {
        if case .bool(let flag) = value { return flag }
        return nil
    }
}
