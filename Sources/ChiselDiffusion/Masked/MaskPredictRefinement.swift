import ChiselBase
import ChiselTensor
import Foundation

/// Mask-Predict refinement of a complete token grid: Ghazvininejad et al., "Mask-Predict:
/// Parallel Decoding of Conditional Masked Language Models" (EMNLP 2019), §3, applied to the
/// tokens of an image.
///
/// Every token is scored by the model's probability of it given the others (its
/// pseudo-likelihood); then, over `iterations` rounds with a linearly decreasing fraction
/// (`initialFraction × (K − k) / K` at round k), the least confident tokens are masked and
/// predicted again from the rest, each re-predicted token taking the probability the model gave
/// it as its new confidence. Tokens whose confidence is at or above `threshold` are never
/// candidates, so they never change. The grid is scored once more at the end, so the returned
/// confidence is the final grid's pseudo-likelihood, the map that tells a later stage which
/// regions the model finds implausible.
///
/// Scoring masks the grid in `scoringStride`² interleaved groups (positions whose row and
/// column agree modulo the stride), one model pass per group, so each token is judged from
/// neighbours that are visible; a stride of 1 scores every token in one pass with nothing masked,
/// which is cheaper but lets the model see the token it scores.
public struct MaskPredictRefinement: Sendable {
    public var iterations: Int
    public var initialFraction: Double
    public var threshold: Float
    public var scoringStride: Int
    /// 0 predicts the most probable token; above 0 samples from softmax(logits / temperature).
    public var temperature: Float
    /// Candidates are judged by `neighbourhoodConfidence` with this radius (0: each token alone).
    public var neighbourhood: Int
    /// How much a re-prediction keeps to the input's own token (needs the codebook in `run`): each
    /// id's logit is lowered by `evidence` × the squared distance of its codebook vector to the
    /// input token's, in units of the codebook's mean squared distance between entries. The model
    /// proposes, the input's token is evidence: a damaged token moves to a plausible code near it
    /// rather than to whatever the context favours. 0 is plain Mask-Predict.
    public var evidence: Float

    public init(iterations: Int = 4, initialFraction: Double = 0.3, threshold: Float = 0.5, scoringStride: Int = 2,
                temperature: Float = 0, neighbourhood: Int = 0, evidence: Float = 0) throws {
        guard iterations >= 1 else {
            throw ChiselError(.invalidParameter, "refinement needs at least one iteration, got \(iterations)")
        }
        guard initialFraction > 0, initialFraction <= 1 else {
            throw ChiselError(.invalidParameter, "the re-masked fraction must lie in (0, 1], got \(initialFraction)")
        }
        guard threshold >= 0, threshold <= 1 else {
            throw ChiselError(.invalidParameter, "the confidence threshold must lie in [0, 1], got \(threshold)")
        }
        guard scoringStride >= 1 else {
            throw ChiselError(.invalidParameter, "the scoring stride must be at least 1, got \(scoringStride)")
        }
        guard temperature >= 0, temperature.isFinite else {
            throw ChiselError(.invalidParameter, "the temperature must be finite and at least 0, got \(temperature)")
        }
        guard neighbourhood >= 0 else {
            throw ChiselError(.invalidParameter, "the neighbourhood radius must be at least 0, got \(neighbourhood)")
        }
        guard evidence >= 0, evidence.isFinite else {
            throw ChiselError(.invalidParameter, "the evidence weight must be finite and at least 0, got \(evidence)")
        }
        self.iterations = iterations
        self.initialFraction = initialFraction
        self.threshold = threshold
        self.scoringStride = scoringStride
        self.temperature = temperature
        self.neighbourhood = neighbourhood
        self.evidence = evidence
    }

    /// The grid the model is asked about and what it answers, for one round.
    public struct Round: Sendable, Equatable {
        public var masked: [Int]
        public var changed: Int
    }

    public struct Result: Sendable, Equatable {
        public var tokens: [Int]
        /// The final grid's pseudo-likelihood per token.
        public var confidence: [Float]
        /// The input grid's pseudo-likelihood per token.
        public var initialConfidence: [Float]
        public var rounds: [Round]

        /// Mean log-probability of the tokens under the model, before and after.
        public var initialLogLikelihood: Double { Self.meanLog(initialConfidence) }
        public var logLikelihood: Double { Self.meanLog(confidence) }
        public var changedCount: Int { rounds.reduce(0) { $0 + $1.changed } }

        static func meanLog(_ values: [Float]) -> Double {
            values.isEmpty ? 0 : values.reduce(0) { $0 + log(Double(max($1, 1e-20))) } / Double(values.count)
        }
    }

    /// The number of model passes a run on a `width`×`height` grid makes: two scorings and one
    /// pass per round.
    public func passes(width: Int, height: Int) -> Int {
        let groups = scoringStride == 1 ? 1 : min(scoringStride, width) * min(scoringStride, height)
        return 2 * groups + iterations
    }

    /// Refines `tokens` (one `width`×`height` grid of ids below `codebookSize`). `logits` answers a
    /// grid (with `maskTokenID` where masked) with tokens × `codebookSize` logits, row-major;
    /// `region`, when given, holds one flag per token and only flagged tokens may change (the
    /// others are context); `codebook` (the VQ model's, `codebookSize` entries) is read when
    /// `evidence` > 0; `generator` is drawn from only when `temperature` > 0; `progress` hears
    /// each pass.
    public func run(tokens: [Int], width: Int, height: Int, codebookSize: Int, maskTokenID: Int,
                    region: [Bool]? = nil, codebook: Codebook? = nil, generator: inout TorchGenerator,
                    logits: ([Int]) throws -> [Float],
                    progress: (Int, Int) -> Void = { _, _ in }) throws -> Result {
        let count = width * height
        guard width > 0, height > 0, tokens.count == count else {
            throw ChiselError(.invalidParameter, "\(tokens.count) tokens do not make a \(width)×\(height) grid")
        }
        guard tokens.allSatisfy({ (0..<codebookSize).contains($0) }) else {
            throw ChiselError(.invalidParameter, "refinement needs a complete grid of ids below \(codebookSize); "
                              + "predict masked tokens first")
        }
        if let region, region.count != count {
            throw ChiselError(.invalidParameter, "the region has \(region.count) flags for \(count) tokens")
        }
        var distances: EvidenceDistances?
        if evidence > 0 {
            guard let codebook, codebook.count == codebookSize else {
                throw ChiselError(.invalidParameter, "an evidence weight needs the VQ codebook of \(codebookSize) entries"
                                  + (codebook.map { ", got \($0.count)" } ?? "") + "; set evidence to 0")
            }
            distances = EvidenceDistances(codebook)
        } else {
            distances = nil
        }
        var passes = 0
        let total = self.passes(width: width, height: height)
        func ask(_ grid: [Int]) throws -> [Float] {
            let answer = try logits(grid)
            guard answer.count == count * codebookSize else {
                throw ChiselError(.internal, "the model gave \(answer.count) logits for \(count) tokens × \(codebookSize)")
            }
            passes += 1
            progress(passes, total)
            return answer
        }

        let initial = try score(tokens, width: width, height: height, codebookSize: codebookSize,
                                maskTokenID: maskTokenID, ask: ask)
        var grid = tokens
        var confidence = initial
        var rounds: [Round] = []
        for round in 0..<iterations {
            let fraction = initialFraction * Double(iterations - round) / Double(iterations)
            let wanted = max(1, Int((Double(count) * fraction).rounded(.down)))
            // The least confident tokens (inside the region) whose neighbourhood is below the
            // threshold, ties to the earlier position.
            let judged = Self.neighbourhoodConfidence(confidence, width: width, height: height, radius: neighbourhood)
            let candidates = (0..<count).filter { judged[$0] < threshold && region?[$0] ?? true }
                .sorted { (confidence[$0], $0) < (confidence[$1], $1) }
            let chosen = Array(candidates.prefix(wanted)).sorted()
            if chosen.isEmpty {
                // Nothing is below the threshold: the remaining rounds would change nothing.
                for _ in round..<iterations {
                    passes += 1
                    progress(passes, total)
                }
                break
            }
            var input = grid
            for i in chosen { input[i] = maskTokenID }
            var values = try ask(input)
            var changed = 0
            let draws = temperature > 0 ? generator.exponential(count: chosen.count * codebookSize) : []
            values.withUnsafeMutableBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return }
                for (n, i) in chosen.enumerated() {
                    let row = base + i * codebookSize
                    var probabilities = [Float](UnsafeBufferPointer(start: row, count: codebookSize))
                    probabilities.withUnsafeMutableBufferPointer { p in
                        if let b = p.baseAddress { Attention.softmaxRows(b, rows: 1, columns: codebookSize) }
                    }
                    // The choice weighs the input's token in; the confidence stays the model's.
                    if let away = distances?.row(tokens[i]) {
                        for j in away.indices { row[j] -= evidence * away[j] }
                    }
                    var best = 0
                    if temperature > 0 {
                        // torch.multinomial(softmax(logits / T)): the first argmax of p / Exp(1).
                        var tempered = (0..<codebookSize).map { row[$0] / temperature }
                        tempered.withUnsafeMutableBufferPointer { p in
                            if let b = p.baseAddress { Attention.softmaxRows(b, rows: 1, columns: codebookSize) }
                        }
                        var bestValue = -Float.infinity
                        for j in 0..<codebookSize {
                            let value = tempered[j] / draws[n * codebookSize + j]
                            if value > bestValue { best = j; bestValue = value }
                        }
                    } else {
                        // The most probable id: the largest (evidence-weighed) logit.
                        for j in 1..<codebookSize where row[j] > row[best] { best = j }
                    }
                    if grid[i] != best { changed += 1 }
                    grid[i] = best
                    confidence[i] = probabilities[best]
                }
            }
            rounds.append(Round(masked: chosen, changed: changed))
        }
        let final = try score(grid, width: width, height: height, codebookSize: codebookSize,
                              maskTokenID: maskTokenID, ask: ask)
        return Result(tokens: grid, confidence: final, initialConfidence: initial, rounds: rounds)
    }

    /// Squared distances between codebook entries over their mean across all pairs, each row
    /// computed once per run.
    struct EvidenceDistances {
        let codebook: Codebook
        let scale: Float
        var rows: [Int: [Float]] = [:]

        init(_ codebook: Codebook) {
            // Mean over pairs of ‖a − b‖² = 2 (mean ‖e‖² − ‖mean e‖²).
            let n = codebook.count, w = codebook.width
            var mean = [Double](repeating: 0, count: w)
            var squares = 0.0
            for i in 0..<n {
                for k in 0..<w {
                    let v = Double(codebook.entries[i * w + k])
                    mean[k] += v / Double(n)
                    squares += v * v / Double(n)
                }
            }
            let spread = 2 * (squares - mean.reduce(0) { $0 + $1 * $1 })
            self.codebook = codebook
            self.scale = Float(spread > 0 ? spread : 1)
        }

        mutating func row(_ id: Int) -> [Float] {
            if let known = rows[id] { return known }
            let (n, w, scale) = (codebook.count, codebook.width, scale)
            let row = codebook.entries.withUnsafeBufferPointer { e in
                (0..<n).map { j in
                    var sum: Float = 0
                    for k in 0..<w {
                        let d = e[j * w + k] - e[id * w + k]
                        sum += d * d
                    }
                    return sum / scale
                }
            }
            rows[id] = row
            return row
        }
    }

    /// The confidence of each token's neighbourhood: the geometric mean of the confidences within
    /// `radius` tokens of it (a (2·radius + 1)² window, cut at the grid's edges). Damage covers
    /// regions, while a model's doubt about single tokens (at edges, among near-identical codes)
    /// is scattered: judged by neighbourhood, a region is implausible when its tokens are jointly
    /// improbable. Radius 0 gives the confidences back.
    public static func neighbourhoodConfidence(_ confidence: [Float], width: Int, height: Int, radius: Int) -> [Float] {
        guard radius > 0, confidence.count == width * height else { return confidence }
        let logs = confidence.map { log(Double(max($0, 1e-20))) }
        var out = [Float](repeating: 0, count: confidence.count)
        for y in 0..<height {
            for x in 0..<width {
                var sum = 0.0, count = 0
                for yy in max(0, y - radius)...min(height - 1, y + radius) {
                    for xx in max(0, x - radius)...min(width - 1, x + radius) {
                        sum += logs[yy * width + xx]
                        count += 1
                    }
                }
                out[y * width + x] = Float(exp(sum / Double(count)))
            }
        }
        return out
    }

    /// Each token's probability under the model with its interleaved group masked.
    public func score(_ tokens: [Int], width: Int, height: Int, codebookSize: Int, maskTokenID: Int,
                      ask: ([Int]) throws -> [Float]) throws -> [Float] {
        var confidence = [Float](repeating: 0, count: tokens.count)
        let stride = scoringStride
        for phaseY in 0..<stride {
            for phaseX in 0..<stride {
                let group = (0..<tokens.count).filter {
                    stride == 1 || ($0 / width % stride == phaseY && $0 % width % stride == phaseX)
                }
                guard !group.isEmpty else { continue }
                var input = tokens
                if stride > 1 { for i in group { input[i] = maskTokenID } }
                var values = try ask(input)
                values.withUnsafeMutableBufferPointer { buffer in
                    guard let base = buffer.baseAddress else { return }
                    for i in group {
                        let row = base + i * codebookSize
                        Attention.softmaxRows(row, rows: 1, columns: codebookSize)
                        confidence[i] = row[tokens[i]]
                    }
                }
            }
        }
        return confidence
    }
}
