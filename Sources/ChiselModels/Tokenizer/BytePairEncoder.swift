import ChiselBase

/// Byte-level BPE with an end-of-word suffix, as `CLIPTokenizer.bpe` in transformers'
/// tokenization_clip.py (itself CLIP's `SimpleTokenizer.bpe`): a piece's UTF-8 bytes start as
/// one symbol each, the last one carrying `</w>`; then, while some adjacent pair is a merge,
/// every occurrence of the lowest-ranked pair is merged, left to right.
///
/// Works on vocabulary ids rather than strings: the loaders check that both sides of every merge
/// and their concatenation are in the vocabulary, so the two are equivalent. Results are cached
/// per piece, as the reference does.
final class BytePairEncoder: Sendable {
    /// The rank and the merged symbol of each mergeable pair, keyed by `pairKey`.
    private let merges: [UInt64: (rank: Int, merged: Int)]
    /// The symbol of each byte inside a word and at its end (with `</w>`); -1 when the
    /// vocabulary lacks it.
    private let byteSymbols: [Int]
    private let finalByteSymbols: [Int]
    private let unknownID: Int
    private let cache = Locked<[[UInt8]: [Int]]>([:])
    /// Entries kept before the cache starts over, so that a long batch cannot grow it forever.
    static let cacheLimit = 10_000

    /// `merges` lists the merged pairs by rank, as vocabulary ids; a pair listed twice keeps its
    /// later rank, as the reference's `dict(zip(merges, range(len(merges))))` does.
    init(vocabulary: [String: Int], merges: [(left: Int, right: Int, merged: Int)], unknownID: Int) {
        var table: [UInt64: (rank: Int, merged: Int)] = [:]
        table.reserveCapacity(merges.count)
        for (rank, merge) in merges.enumerated() {
            table[Self.pairKey(merge.left, merge.right)] = (rank, merge.merged)
        }
        self.merges = table
        byteSymbols = ByteLevelAlphabet.scalars.map { vocabulary[String($0)] ?? -1 }
        finalByteSymbols = ByteLevelAlphabet.scalars.map { vocabulary[String($0) + "</w>"] ?? -1 }
        self.unknownID = unknownID
    }

    private static func pairKey(_ left: Int, _ right: Int) -> UInt64 {
        UInt64(truncatingIfNeeded: left) << 32 | UInt64(truncatingIfNeeded: UInt32(truncatingIfNeeded: right))
    }

    /// The ids of one pre-tokenized piece, given as its UTF-8 bytes.
    func encode(_ piece: [UInt8]) -> [Int] {
        if piece.isEmpty { return [] }
        if let cached = cache.withLock({ $0[piece] }) { return cached }
        var symbols = piece.map { byteSymbols[Int($0)] }
        symbols[symbols.count - 1] = finalByteSymbols[Int(piece[piece.count - 1])]
        while symbols.count > 1, let best = lowestRankedMerge(in: symbols) {
            var merged: [Int] = []
            merged.reserveCapacity(symbols.count)
            var i = 0
            while i < symbols.count {
                if i + 1 < symbols.count, symbols[i] == best.left, symbols[i + 1] == best.right {
                    merged.append(best.merged)
                    i += 2
                } else {
                    merged.append(symbols[i])
                    i += 1
                }
            }
            symbols = merged
        }
        let ids = symbols.map { $0 < 0 ? unknownID : $0 }
        cache.withLock { cache in
            if cache.count >= Self.cacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[piece] = ids
        }
        return ids
    }

    private func lowestRankedMerge(in symbols: [Int]) -> (left: Int, right: Int, merged: Int)? {
        var best: (left: Int, right: Int, merged: Int)? = nil
        var bestRank = Int.max
        for i in 0..<(symbols.count - 1) {
            let left = symbols[i]
            let right = symbols[i + 1]
            guard left >= 0, right >= 0, let merge = merges[Self.pairKey(left, right)], merge.rank < bestRank else {
                continue
            }
            bestRank = merge.rank
            best = (left, right, merge.merged)
        }
        return best
    }
}
