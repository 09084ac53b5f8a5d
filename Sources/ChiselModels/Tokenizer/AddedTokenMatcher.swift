/// Splits text on added tokens, leftmost first and longest first at one position, as
/// transformers' `Trie.split` (slow tokenizers) and tokenizers' `AddedVocabulary` (an
/// Aho-Corasick automaton with `LeftmostLongest`) do. Compares Unicode scalars, not Swift
/// characters, so a token never matches a canonically equivalent spelling.
struct AddedTokenMatcher: Sendable {
    private let tokens: [(scalars: [Unicode.Scalar], id: Int)]

    /// `patterns` pairs each token's spelling with its id; empty spellings are ignored.
    init(_ patterns: [(scalars: [Unicode.Scalar], id: Int)]) {
        tokens = patterns.filter { !$0.scalars.isEmpty }.sorted { $0.scalars.count > $1.scalars.count }
    }

    var isEmpty: Bool { tokens.isEmpty }

    /// Calls `text` for each stretch between tokens (never empty) and `token` for each token
    /// found, in order.
    func split(
        _ scalars: [Unicode.Scalar], text: (ArraySlice<Unicode.Scalar>) -> Void, token: (Int) -> Void
    ) {
        if tokens.isEmpty {
            if !scalars.isEmpty { text(scalars[...]) }
            return
        }
        var start = 0
        var i = 0
        while i < scalars.count {
            // Longest first, so the first hit is the longest at this position.
            guard let hit = tokens.first(where: { matches($0.scalars, in: scalars, at: i) }) else {
                i += 1
                continue
            }
            if start < i { text(scalars[start..<i]) }
            token(hit.id)
            i += hit.scalars.count
            start = i
        }
        if start < scalars.count { text(scalars[start...]) }
    }

    private func matches(_ pattern: [Unicode.Scalar], in scalars: [Unicode.Scalar], at index: Int) -> Bool {
        guard index + pattern.count <= scalars.count else { return false }
        for (offset, scalar) in pattern.enumerated() where scalars[index + offset] != scalar { return false }
        return true
    }
}
