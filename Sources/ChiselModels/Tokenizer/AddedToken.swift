/// A token matched in the raw text before any BPE: the special tokens and the entries of
/// `added_tokens_decoder` (tokenizer_config.json) or `added_tokens` (tokenizer.json).
///
/// `lstrip`, `rstrip` and `single_word` are not kept: the first two only eat whitespace, which
/// CLIP's clean-up drops anyway, and no CLIP tokenizer sets the third.
public struct AddedToken: Sendable, Equatable {
    public var content: String
    public var id: Int
    /// Whether the fast tokenizer looks for the token in the normalized text (lowercased,
    /// whitespace collapsed) rather than in the raw text. The slow tokenizer ignores it.
    public var normalized: Bool
    /// Whether it is one of the special tokens, which decoding can skip.
    public var special: Bool

    public init(content: String, id: Int, normalized: Bool, special: Bool) {
        self.content = content
        self.id = id
        self.normalized = normalized
        self.special = special
    }
}
