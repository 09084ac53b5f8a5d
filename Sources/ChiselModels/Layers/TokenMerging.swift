import ChiselBase
import ChiselTensor
import Foundation

/// Token merging for Stable Diffusion (ToMe for SD, Bolya & Hoffman 2023), as AUTOMATIC1111
/// runs it: in each transformer block at the UNet's finest levels, the self-attention sees
/// the tokens with the `ratio` share of them merged into their most similar neighbours, and
/// its output is copied back to every merged token. Cross-attention and the feed-forward run
/// on all tokens.
///
/// The partition is deterministic: in every 2×2 cell of the token grid the top-left token is
/// a destination and the other three are sources (tomesd with `use_rand` off, as A1111 calls
/// it). Each source is matched to its most cosine-similar destination by the block's input,
/// and the `r = ⌊tokens × ratio⌋` best-matched sources (at most the number of sources) are
/// averaged into their destinations.
public struct TokenMerging: Sendable, Equatable {
    /// The share of the tokens merged away (0 is off; at most three quarters take effect).
    public var ratio: Double
    /// The coarsest level merged, as a downsampling factor of the latent: 1 merges only the
    /// full-resolution transformers (SD 1.x/2.x's first and last levels), 2 also the next.
    public var maxDownsample: Int

    public init(ratio: Double, maxDownsample: Int = 1) {
        self.ratio = ratio
        self.maxDownsample = maxDownsample
    }

    /// The cells' size (tomesd's `sx`, `sy`).
    static let stride = 2

    /// Whether a transformer over `tokens` tokens of a latent of `latentTokens` merges: its
    /// downsampling, ⌈√(latent tokens ÷ tokens)⌉ with the division in integers, is at most
    /// `maxDownsample`.
    func applies(tokens: Int, latentTokens: Int) -> Bool {
        guard ratio > 0, tokens > 0 else { return false }
        let downsample = Int(Double(latentTokens / tokens).squareRoot().rounded(.up))
        return downsample <= maxDownsample
    }

    /// The merge of one transformer block's tokens, `x` being its N×(h·w)×C input, or nil when
    /// nothing is merged (too few tokens for a cell, or a ratio that rounds to no token).
    func plan(_ x: Tensor, height: Int, width: Int) throws -> TokenMergePlan? {
        guard x.rank == 3, x.shape[1] == height * width else {
            throw ChiselError(.internal, "token merging expects N×\(height * width)×C tokens, got \(x.shape)")
        }
        let tokens = height * width
        let (cellRows, cellColumns) = (height / Self.stride, width / Self.stride)
        let destinationCount = cellRows * cellColumns
        let sourceCount = tokens - destinationCount
        let merged = min(sourceCount, Int(Double(tokens) * ratio))
        guard destinationCount > 0, merged > 0 else { return nil }
        // Destinations: each cell's top-left token; sources: all the others, both in token order.
        var destinations = [Int](), sources = [Int]()
        destinations.reserveCapacity(destinationCount)
        sources.reserveCapacity(sourceCount)
        for y in 0..<height {
            for x in 0..<width {
                let isDestination = y % Self.stride == 0 && x % Self.stride == 0 && y < cellRows * Self.stride
                    && x < cellColumns * Self.stride
                if isDestination { destinations.append(y * width + x) } else { sources.append(y * width + x) }
            }
        }
        let batch = x.shape[0], channels = x.shape[2]
        var order = [[Int]](repeating: [], count: batch), target = [[Int]](repeating: [], count: batch)
        try KernelProfile.measure("tome_match") {
            for b in 0..<batch {
                let unit = Self.unitRows(x.data, offset: b * tokens * channels, tokens: tokens, channels: channels)
                let a = Self.gather(unit, sources, channels: channels)
                let d = Self.gather(unit, destinations, channels: channels)
                var scores = [Float](repeating: 0, count: sourceCount * destinationCount)
                try a.withUnsafeBufferPointer { ap in
                    try d.withUnsafeBufferPointer { dp in
                        try scores.withUnsafeMutableBufferPointer { sp in
                            guard let aBase = ap.baseAddress, let dBase = dp.baseAddress, let sBase = sp.baseAddress else { return }
                            try GEMM.sgemm(.none, .transposed, m: sourceCount, n: destinationCount, k: channels, a: aBase,
                                           lda: channels, b: dBase, ldb: channels, c: sBase, ldc: destinationCount)
                        }
                    }
                }
                // Each source's best destination (the first of equal scores) and its score.
                var best = [Float](repeating: 0, count: sourceCount), bestIndex = [Int](repeating: 0, count: sourceCount)
                for s in 0..<sourceCount {
                    var m = -Float.infinity, k = 0
                    for j in 0..<destinationCount where scores[s * destinationCount + j] > m {
                        m = scores[s * destinationCount + j]
                        k = j
                    }
                    (best[s], bestIndex[s]) = (m, k)
                }
                // Sources by score, best first; equal scores keep token order.
                order[b] = (0..<sourceCount).sorted { best[$0] > best[$1] || (best[$0] == best[$1] && $0 < $1) }
                target[b] = bestIndex
            }
        }
        return TokenMergePlan(tokens: tokens, merged: merged, sources: sources, destinations: destinations, order: order,
                              target: target)
    }

    /// Each token's row divided by its length (a zero row stays zero).
    static func unitRows(_ data: [Float], offset: Int, tokens: Int, channels: Int) -> [Float] {
        var out = [Float](repeating: 0, count: tokens * channels)
        for t in 0..<tokens {
            let base = offset + t * channels
            var sum: Float = 0
            for c in 0..<channels { sum += data[base + c] * data[base + c] }
            let norm = sum.squareRoot()
            guard norm > 0 else { continue }
            for c in 0..<channels { out[t * channels + c] = data[base + c] / norm }
        }
        return out
    }

    static func gather(_ rows: [Float], _ indices: [Int], channels: Int) -> [Float] {
        var out = [Float]()
        out.reserveCapacity(indices.count * channels)
        for i in indices { out.append(contentsOf: rows[(i * channels)..<((i + 1) * channels)]) }
        return out
    }
}

/// One block's merge, per batch row: which sources merge into which destinations.
struct TokenMergePlan: Sendable {
    /// Tokens before merging, and how many merge away.
    let tokens: Int, merged: Int
    /// Token positions of the sources and of the destinations, in token order.
    let sources: [Int], destinations: [Int]
    /// Per batch row: the sources (as indices into `sources`) best-matched first, and each
    /// source's best destination (an index into `destinations`).
    let order: [[Int]], target: [[Int]]

    var kept: Int { tokens - merged }

    /// N×tokens×C to N×(tokens − merged)×C: the unmerged sources (best-matched first), then
    /// the destinations, each the mean of itself and the sources merged into it.
    func merge(_ x: Tensor) throws -> Tensor {
        let (batch, channels) = (x.shape[0], x.shape[2])
        guard x.rank == 3, x.shape[1] == tokens, batch == order.count else {
            throw ChiselError(.internal, "token merge planned for \(order.count)×\(tokens) tokens, got \(x.shape)")
        }
        let unmerged = sources.count - merged
        var out = Tensor(uninitialized: [batch, kept, channels])
        x.data.withUnsafeBufferPointer { src in
            out.data.withUnsafeMutableBufferPointer { dst in
                for b in 0..<batch {
                    let input = b * tokens * channels, output = b * kept * channels
                    let order = order[b], target = target[b]
                    for j in 0..<unmerged {
                        let from = input + sources[order[merged + j]] * channels, to = output + j * channels
                        for c in 0..<channels { dst[to + c] = src[from + c] }
                    }
                    var counts = [Float](repeating: 1, count: destinations.count)
                    for (k, position) in destinations.enumerated() {
                        let from = input + position * channels, to = output + (unmerged + k) * channels
                        for c in 0..<channels { dst[to + c] = src[from + c] }
                    }
                    for j in 0..<merged {
                        let s = order[j], k = target[s]
                        let from = input + sources[s] * channels, to = output + (unmerged + k) * channels
                        for c in 0..<channels { dst[to + c] += src[from + c] }
                        counts[k] += 1
                    }
                    for k in 0..<destinations.count where counts[k] > 1 {
                        let to = output + (unmerged + k) * channels
                        for c in 0..<channels { dst[to + c] /= counts[k] }
                    }
                }
            }
        }
        return out
    }

    /// N×(tokens − merged)×C back to N×tokens×C: every token gets its own row, a merged source
    /// its destination's.
    func unmerge(_ y: Tensor) throws -> Tensor {
        let (batch, channels) = (y.shape[0], y.shape[2])
        guard y.rank == 3, y.shape[1] == kept, batch == order.count else {
            throw ChiselError(.internal, "token unmerge planned for \(order.count)×\(kept) tokens, got \(y.shape)")
        }
        let unmerged = sources.count - merged
        var out = Tensor(uninitialized: [batch, tokens, channels])
        y.data.withUnsafeBufferPointer { src in
            out.data.withUnsafeMutableBufferPointer { dst in
                func copy(_ row: Int, to position: Int, batch b: Int) {
                    let from = (b * kept + row) * channels, to = (b * tokens + position) * channels
                    for c in 0..<channels { dst[to + c] = src[from + c] }
                }
                for b in 0..<batch {
                    let order = order[b], target = target[b]
                    for (k, position) in destinations.enumerated() { copy(unmerged + k, to: position, batch: b) }
                    for j in 0..<unmerged { copy(j, to: sources[order[merged + j]], batch: b) }
                    for j in 0..<merged {
                        let s = order[j]
                        copy(unmerged + target[s], to: sources[s], batch: b)
                    }
                }
            }
        }
        return out
    }
}

extension TokenMerging {
    /// The settings with the size of the latent a UNet call runs on (its tokens at full resolution).
    struct Scope: Sendable {
        let settings: TokenMerging
        let latentTokens: Int
    }

    /// The settings at one transformer's token grid.
    struct InNetwork: Sendable {
        let settings: TokenMerging
        let height: Int, width: Int
    }
}
