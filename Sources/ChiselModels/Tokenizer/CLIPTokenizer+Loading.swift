import ChiselBase

extension CLIPTokenizer {
    /// The most merges transformers' slow tokenizer reads from merges.txt:
    /// `split("\n")[1 : 49152 - 256 - 2 + 1]`, CLIP's vocabulary size less the byte symbols
    /// and the two special tokens. CLIPTokenizerFast, converted from it, has the same.
    static let maxMerges = 49152 - 256 - 2

    /// Loads a tokenizer folder: diffusers' `tokenizer/` with vocab.json and merges.txt, or a
    /// folder with tokenizer.json; tokenizer_config.json and special_tokens_map.json are read
    /// when present. vocab.json and merges.txt win when both kinds are there, as in
    /// transformers' slow `CLIPTokenizer`.
    ///
    /// `behavior` defaults to `.fast`: what diffusers 0.42 with transformers 5 (the versions
    /// Chisel's references pin) loads from either kind of folder. `.slow` gives transformers
    /// 4.x's Python tokenizer without ftfy.
    public convenience init(folder: String, behavior: Behavior? = nil) throws {
        let vocabulary = TokenizerFile.path(folder, "vocab.json")
        let merges = TokenizerFile.path(folder, "merges.txt")
        let tokenizerJSON = TokenizerFile.path(folder, "tokenizer.json")
        let config = TokenizerFile.path(folder, "tokenizer_config.json")
        let specialTokensMap = TokenizerFile.path(folder, "special_tokens_map.json")
        let configPath = TokenizerFile.exists(config) ? config : nil
        let specialTokensMapPath = TokenizerFile.exists(specialTokensMap) ? specialTokensMap : nil
        if TokenizerFile.exists(vocabulary) || TokenizerFile.exists(merges) {
            try self.init(
                vocabularyPath: vocabulary, mergesPath: merges, configPath: configPath,
                specialTokensMapPath: specialTokensMapPath, behavior: behavior ?? .fast)
        } else if TokenizerFile.exists(tokenizerJSON) {
            try self.init(
                tokenizerJSONPath: tokenizerJSON, configPath: configPath, specialTokensMapPath: specialTokensMapPath,
                behavior: behavior ?? .fast)
        } else {
            throw ChiselError(.io, "no tokenizer here: expected vocab.json and merges.txt, or tokenizer.json", file: folder)
        }
    }

    /// Loads vocab.json and merges.txt, with the special tokens of the optional
    /// tokenizer_config.json and special_tokens_map.json.
    ///
    /// merges.txt is read as the slow tokenizer reads it: the text is stripped, its first line
    /// (`#version: 0.2`) skipped, at most `maxMerges` lines used, each split on whitespace.
    /// Unlike the reference, a line that is not two symbols, or a merge whose sides or result are
    /// not in vocab.json, is an error rather than a merge that can never apply.
    public convenience init(
        vocabularyPath: String, mergesPath: String, configPath: String? = nil, specialTokensMapPath: String? = nil,
        behavior: Behavior = .slow
    ) throws {
        let vocabulary = try Self.vocabulary(try TokenizerFile.json(vocabularyPath), key: "vocab.json", file: vocabularyPath)
        let lines = PythonText.stripped(Array(try TokenizerFile.text(mergesPath).unicodeScalars))
            .split(separator: "\n", omittingEmptySubsequences: false)
        var merges: [(left: Int, right: Int, merged: Int)] = []
        for (index, line) in lines.enumerated().dropFirst().prefix(Self.maxMerges) {
            let symbols = PythonText.words(Array(line)).map { String(String.UnicodeScalarView($0)) }
            guard symbols.count == 2 else {
                throw ChiselError(
                    .model, "line \(index + 1) is not two symbols separated by a space: '\(String(String.UnicodeScalarView(line)))'",
                    file: mergesPath)
            }
            merges.append(try Self.merge(symbols[0], symbols[1], vocabulary: vocabulary, location: "line \(index + 1)", file: mergesPath))
        }
        let configuration = try CLIPTokenizerConfiguration(configPath: configPath, specialTokensMapPath: specialTokensMapPath)
        let preTokenizer = CLIPPreTokenizer(matchesSpecialTokens: behavior == .slow, matchesLikePythonIgnoreCase: behavior == .slow)
        try self.init(
            vocabulary: vocabulary, merges: merges, fileAddedTokens: [], bpeUnknownToken: configuration.unknownToken,
            configuration: configuration, behavior: behavior, preTokenizer: preTokenizer,
            file: configPath ?? vocabularyPath)
    }

    /// Loads a tokenizer.json (the tokenizers library's format), with the special tokens of the
    /// optional tokenizer_config.json and special_tokens_map.json.
    ///
    /// Reads `model.vocab`, `model.merges` (strings `"a b"` or, in newer files, pairs
    /// `["a", "b"]`) and `added_tokens`, and checks that the model, normalizer and pre-tokenizer
    /// are CLIP's: a BPE with `</w>`, NFC + whitespace + lowercase, the CLIP split. With
    /// `Behavior.slow` the text goes through the slow tokenizer's clean-up instead.
    public convenience init(
        tokenizerJSONPath path: String, configPath: String? = nil, specialTokensMapPath: String? = nil,
        behavior: Behavior = .fast
    ) throws {
        let root = try TokenizerFile.json(path)
        guard root.members != nil, let model = root["model"], model.members != nil else {
            throw ChiselError(.model, "tokenizer.json has no 'model' object", file: path)
        }
        if let type = model["type"], type != "BPE" {
            throw ChiselError(.unsupportedFormat, "model.type is \(type.serialized()), not \"BPE\"", file: path)
        }
        guard model["end_of_word_suffix"] == "</w>" else {
            throw ChiselError(.unsupportedFormat, "model.end_of_word_suffix is not \"</w>\": not a CLIP tokenizer", file: path)
        }
        guard let vocabularyJSON = model["vocab"] else {
            throw ChiselError(.model, "model.vocab is missing", file: path)
        }
        let vocabulary = try Self.vocabulary(vocabularyJSON, key: "model.vocab", file: path)
        guard case .array(let mergeItems) = model["merges"] else {
            throw ChiselError(.model, "model.merges is missing or not a list", file: path)
        }
        var merges: [(left: Int, right: Int, merged: Int)] = []
        for (index, item) in mergeItems.enumerated() {
            let location = "model.merges[\(index)]"
            let symbols: [String]
            switch item {
            case .string(let text): symbols = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            case .array(let parts): symbols = parts.compactMap(\.stringValue).count == parts.count ? parts.compactMap(\.stringValue) : []
            default: symbols = []
            }
            guard symbols.count == 2, !symbols[0].isEmpty, !symbols[1].isEmpty else {
                throw ChiselError(.model, "\(location) is not a pair of symbols: \(item.serialized())", file: path)
            }
            merges.append(try Self.merge(symbols[0], symbols[1], vocabulary: vocabulary, location: location, file: path))
        }
        var fileAddedTokens: [AddedToken] = []
        if let added = root["added_tokens"], added != .null {
            guard case .array(let items) = added else {
                throw ChiselError(.model, "added_tokens is not a list", file: path)
            }
            for (index, item) in items.enumerated() {
                guard case .int(let id) = item["id"], id >= 0, let content = item["content"]?.stringValue else {
                    throw ChiselError(.model, "added_tokens[\(index)] needs an integer 'id' and a string 'content'", file: path)
                }
                let special = item["special"] == .bool(true)
                var normalized = !special
                if case .bool(let flag) = item["normalized"] { normalized = flag }
                fileAddedTokens.append(AddedToken(content: content, id: id, normalized: normalized, special: special))
            }
        }
        try Self.checkNormalizer(root["normalizer"], file: path)
        let splitsSpecialTokens = try Self.checkPreTokenizer(root["pre_tokenizer"], file: path)
        let configuration = try CLIPTokenizerConfiguration(configPath: configPath, specialTokensMapPath: specialTokensMapPath)
        let preTokenizer = CLIPPreTokenizer(
            matchesSpecialTokens: behavior == .slow || splitsSpecialTokens, matchesLikePythonIgnoreCase: behavior == .slow)
        try self.init(
            vocabulary: vocabulary, merges: merges, fileAddedTokens: fileAddedTokens,
            bpeUnknownToken: model["unk_token"]?.stringValue ?? configuration.unknownToken,
            configuration: configuration, behavior: behavior, preTokenizer: preTokenizer, file: configPath ?? path)
    }

    /// Registers the added tokens (tokenizer.json's first, then the configuration's, the first of
    /// a content winning) and finds the ids of the special tokens.
    private convenience init(
        vocabulary: [String: Int], merges: [(left: Int, right: Int, merged: Int)], fileAddedTokens: [AddedToken],
        bpeUnknownToken: String, configuration: CLIPTokenizerConfiguration, behavior: Behavior,
        preTokenizer: CLIPPreTokenizer, file: String
    ) throws {
        var addedTokens = fileAddedTokens
        var idsByContent: [String: Int] = [:]
        for token in addedTokens where idsByContent[token.content] == nil { idsByContent[token.content] = token.id }
        // transformers gives a token that is in neither the vocabulary nor the added tokens
        // the id len(get_vocab()).
        var nextID = vocabulary.count + Set(addedTokens.map(\.content).filter { vocabulary[$0] == nil }).count
        for token in configuration.addedTokens where idsByContent[token.content] == nil {
            let id: Int
            if let given = token.id {
                id = given
            } else if let known = vocabulary[token.content] {
                id = known
            } else {
                id = nextID
                nextID += 1
            }
            idsByContent[token.content] = id
            addedTokens.append(AddedToken(content: token.content, id: id, normalized: token.normalized, special: token.special))
        }
        func id(of content: String, role: String) throws -> Int {
            guard let id = idsByContent[content] ?? vocabulary[content] else {
                throw ChiselError(.model, "the \(role) token '\(content)' is not in the vocabulary", file: file)
            }
            return id
        }
        let unknownID = try id(of: configuration.unknownToken, role: "unknown")
        self.init(
            vocabulary: vocabulary, merges: merges, addedTokens: addedTokens,
            bosTokenID: try id(of: configuration.bosToken, role: "start"),
            eosTokenID: try id(of: configuration.eosToken, role: "end"),
            padTokenID: try id(of: configuration.padToken, role: "pad"),
            unknownTokenID: vocabulary[bpeUnknownToken] ?? unknownID,
            modelMaxLength: configuration.modelMaxLength ?? 77, behavior: behavior, preTokenizer: preTokenizer)
    }

    /// A JSON object of token → id, with ids unique and in 0..<2³¹.
    private static func vocabulary(_ value: JSONValue, key: String, file: String) throws -> [String: Int] {
        guard let members = value.members else {
            throw ChiselError(.model, "\(key) must be a JSON object of tokens to ids, not \(value.kindDescription)", file: file)
        }
        var vocabulary: [String: Int] = [:]
        vocabulary.reserveCapacity(members.count)
        var seen = Set<Int>()
        for member in members {
            guard case .int(let id) = member.value, id >= 0, id < 1 << 31 else {
                throw ChiselError(.model, "\(key): the id of '\(member.key)' is not a non-negative integer", file: file)
            }
            guard seen.insert(id).inserted else {
                throw ChiselError(.model, "\(key): id \(id) is given to more than one token", file: file)
            }
            guard vocabulary.updateValue(id, forKey: member.key) == nil else {
                throw ChiselError(.model, "\(key): the token '\(member.key)' appears twice", file: file)
            }
        }
        return vocabulary
    }

    /// The ids of a merge's two sides and of their concatenation, all of which must be tokens.
    private static func merge(
        _ left: String, _ right: String, vocabulary: [String: Int], location: String, file: String
    ) throws -> (left: Int, right: Int, merged: Int) {
        for symbol in [left, right, left + right] where vocabulary[symbol] == nil {
            throw ChiselError(.model, "\(location): the merge '\(left) \(right)' needs '\(symbol)', which is not in the vocabulary", file: file)
        }
        return (vocabulary[left] ?? 0, vocabulary[right] ?? 0, vocabulary[left + right] ?? 0)
    }

    /// The pattern of CLIP's Split pre-tokenizer as transformers 4.x writes it, and as 5.x
    /// writes it with the two special tokens in front.
    private static let splitPattern = #"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"#
    private static let specialTokensAlternatives = #"<\|startoftext\|>|<\|endoftext\|>|"#

    /// Checks the normalizer is CLIP's: `Sequence([NFC, Replace(\s+, " "), Lowercase])`.
    private static func checkNormalizer(_ normalizer: JSONValue?, file: String) throws {
        let expected: JSONValue = .object([
            JSONMember(key: "type", value: "Sequence"),
            JSONMember(key: "normalizers", value: .array([
                .object([JSONMember(key: "type", value: "NFC")]),
                .object([
                    JSONMember(key: "type", value: "Replace"),
                    JSONMember(key: "pattern", value: .object([JSONMember(key: "Regex", value: #"\s+"#)])),
                    JSONMember(key: "content", value: " "),
                ]),
                .object([JSONMember(key: "type", value: "Lowercase")]),
            ])),
        ])
        guard let normalizer, sameIgnoringOrder(normalizer, expected) else {
            throw ChiselError(
                .unsupportedFormat, "the normalizer is not CLIP's (NFC, whitespace runs to one space, lowercase)", file: file)
        }
    }

    /// Checks the pre-tokenizer is CLIP's Split followed by ByteLevel; returns whether its
    /// pattern starts with the special-token alternatives.
    private static func checkPreTokenizer(_ preTokenizer: JSONValue?, file: String) throws -> Bool {
        let failure = ChiselError(
            .unsupportedFormat, "the pre-tokenizer is not CLIP's (the CLIP regular expression split, then ByteLevel)",
            file: file)
        guard let preTokenizer, preTokenizer["type"] == "Sequence", case .array(let steps) = preTokenizer["pretokenizers"],
            steps.count == 2, steps[0]["type"] == "Split", steps[0]["behavior"] == "Removed",
            steps[0]["invert"] == .bool(true), let pattern = steps[0]["pattern"]?["Regex"]?.stringValue,
            steps[1]["type"] == "ByteLevel", steps[1]["add_prefix_space"] == .bool(false)
        else { throw failure }
        switch pattern {
        case splitPattern: return false
        case specialTokensAlternatives + splitPattern: return true
        default: throw failure
        }
    }

    /// JSON equality where object members may come in any order.
    private static func sameIgnoringOrder(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.object(let x), .object(let y)):
            guard x.count == y.count else { return false }
            return x.allSatisfy { member in y.contains { $0.key == member.key && sameIgnoringOrder($0.value, member.value) } }
        case (.array(let x), .array(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { sameIgnoringOrder($0, $1) }
        default:
            return a == b
        }
    }
}
