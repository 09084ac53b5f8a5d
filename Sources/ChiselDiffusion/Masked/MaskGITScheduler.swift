import ChiselBase
import ChiselTensor
import Foundation

/// MaskGIT decoding (Chang et al., "MaskGIT: Masked Generative Image Transformer", CVPR 2022)
/// as diffusers' `AmusedScheduler` runs it for aMUSEd: a grid of codebook tokens, some of them
/// the mask token, is filled in a few parallel steps. Each step samples a token for every
/// position from the model's softmax, keeps the known ones, and re-masks the least confident
/// of the new ones — confidence being log p plus temperature × Gumbel noise, with the
/// temperature annealed over the steps — so that the fraction still masked after step i of N
/// follows the masking schedule (cos(π/2 · (i+1)/N), or 1 − (i+1)/N).
///
/// Every random draw comes from `TorchGenerator` in the reference's order and arithmetic:
/// per step, one exponential per (token, codebook entry) for `torch.multinomial` (which on the
/// CPU takes the first argmax of p / q), then, except at the last step, one uniform per token
/// for the Gumbel noise. The float32 details are the reference's too (the schedule's cosine
/// and floor in float32, so 12 steps over 256 tokens re-mask 127 at step 7, not 128).
public struct MaskGITScheduler: Sendable {
    public enum Schedule: String, Sendable, CaseIterable {
        case cosine, linear
    }

    /// The temperature at each step: `torch.linspace(from, to, N)`, or, given one value,
    /// `linspace(value, 0.01, N)` as the reference does for a scalar.
    public enum Temperature: Sendable, Equatable {
        case range(Float, Float)
        case start(Float)
    }

    public let maskTokenID: Int
    public let schedule: Schedule
    /// `[N−1, …, 0]`: the reference's timesteps, one per step.
    public private(set) var timesteps: [Int] = []
    public private(set) var temperatures: [Float] = []

    public init(maskTokenID: Int, schedule: Schedule = .cosine) {
        self.maskTokenID = maskTokenID
        self.schedule = schedule
    }

    public var stepCount: Int { timesteps.count }

    public mutating func setTimesteps(_ count: Int, temperature: Temperature = .range(2, 0)) throws {
        guard count >= 1 else {
            throw ChiselError(.invalidParameter, "MaskGIT decoding needs at least one step, got \(count)")
        }
        timesteps = Array((0..<count).reversed())
        switch temperature {
        case .range(let from, let to): temperatures = Self.linspace(from, to, count)
        case .start(let from): temperatures = Self.linspace(from, 0.01, count)
        }
    }

    /// `torch.linspace(start, end, count)` in float32 on the CPU: the first half counted up from
    /// `start`, the second half down from `end`.
    static func linspace(_ start: Float, _ end: Float, _ count: Int) -> [Float] {
        guard count > 1 else { return count == 1 ? [start] : [] }
        let step = (end - start) / Float(count - 1)
        let half = count / 2
        return (0..<count).map { i in
            i < half ? start + step * Float(i) : end - step * Float(count - 1 - i)
        }
    }

    /// The fraction of tokens that stays masked after step `index` (0-based), in float32.
    public func maskRatio(stepIndex index: Int) -> Float {
        let ratio = Float(index + 1) / Float(timesteps.count)
        switch schedule {
        // Python's math.pi rounded to float32 (3.1415927); Swift's Float.pi rounds toward zero.
        case .cosine: return cos(ratio * Float(Double.pi) / 2)
        case .linear: return 1 - ratio
        }
    }

    /// What one step returns: the tokens for the next step (the least confident new ones masked
    /// again; at the last step, nothing masked) and every position's sampled (or kept) token.
    public struct StepOutput: Sendable, Equatable {
        public var tokens: [Int]
        public var predicted: [Int]
        /// The softmax probability of each sampled token; the float32 maximum for known ones.
        public var probabilities: [Float]
    }

    /// One decoding step. `logits` is batch × tokens × codebook, row-major (the model's logits
    /// for every position); `tokens` batch × tokens, the mask token where unknown.
    /// `startingMaskRatio` scales the schedule (the reference's img2img and inpainting pass
    /// their starting fraction).
    public func step(logits: [Float], codebookSize: Int, tokens: [Int], batch: Int, stepIndex: Int,
                     startingMaskRatio: Double = 1, generator: inout TorchGenerator) throws -> StepOutput {
        guard codebookSize > 0, logits.count == tokens.count * codebookSize else {
            throw ChiselError(.invalidParameter, "MaskGIT step: \(logits.count) logits do not cover \(tokens.count) "
                              + "tokens × \(codebookSize) codebook entries")
        }
        let masked = Self.maskedPositions(tokens, maskTokenID: maskTokenID)
        let rows = masked.flatMap { logits[($0 * codebookSize)..<(($0 + 1) * codebookSize)] }
        return try step(maskedLogits: rows, codebookSize: codebookSize, tokens: tokens, batch: batch,
                        stepIndex: stepIndex, startingMaskRatio: startingMaskRatio, generator: &generator)
    }

    /// The positions of `tokens` still to predict (the mask id), ascending.
    public static func maskedPositions(_ tokens: [Int], maskTokenID: Int) -> [Int] {
        tokens.indices.filter { tokens[$0] == maskTokenID }
    }

    /// One decoding step from the logits of the masked positions only (`maskedPositions`
    /// order, each codebookSize wide): the other positions keep their tokens, so their logits
    /// are never read, and their draws are still made, as the reference's full-grid ones are.
    public func step(maskedLogits: [Float], codebookSize: Int, tokens: [Int], batch: Int, stepIndex: Int,
                     startingMaskRatio: Double = 1, generator: inout TorchGenerator) throws -> StepOutput {
        guard stepIndex >= 0, stepIndex < timesteps.count else {
            throw ChiselError(.invalidParameter, "step \(stepIndex) is outside the \(timesteps.count) set steps")
        }
        let masked = Self.maskedPositions(tokens, maskTokenID: maskTokenID)
        guard batch > 0, codebookSize > 0, tokens.count % batch == 0, maskedLogits.count == masked.count * codebookSize else {
            throw ChiselError(.invalidParameter, "MaskGIT step: \(maskedLogits.count) logits do not cover the \(masked.count) "
                              + "masked of \(tokens.count) tokens × \(codebookSize) codebook entries in \(batch) images")
        }
        let length = tokens.count / batch
        var probabilities = maskedLogits
        KernelProfile.measure("maskgit softmax") {
            probabilities.withUnsafeMutableBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return }
                Attention.softmaxRows(base, rows: masked.count, columns: codebookSize)
            }
        }
        // torch.multinomial(p, 1) on the CPU: argmax of p / q with q ~ Exp(1), one per entry.
        let draws = KernelProfile.measure("maskgit sample") {
            generator.multinomial(probabilities: probabilities, of: masked, rows: tokens.count, columns: codebookSize)
        }
        var predicted = tokens
        var selected = [Float](repeating: .greatestFiniteMagnitude, count: tokens.count)
        for (k, position) in masked.enumerated() {
            predicted[position] = draws[k]
            selected[position] = probabilities[k * codebookSize + draws[k]]
        }
        if stepIndex == timesteps.count - 1 { return StepOutput(tokens: predicted, predicted: predicted, probabilities: selected) }

        let ratio = Float(startingMaskRatio) * maskRatio(stepIndex: stepIndex)
        let scheduled = (Float(length) * ratio).rounded(.down)
        let temperature = temperatures[stepIndex]
        let uniforms = generator.uniform(count: tokens.count)
        var next = predicted
        for image in 0..<batch {
            let range = image * length..<(image + 1) * length
            let unknown = tokens[range].reduce(0) { $0 + ($1 == maskTokenID ? 1 : 0) }
            let count = max(1, min(Float(unknown - 1), scheduled))
            // Confidence: log p + temperature × Gumbel noise, −log(−log u) with both logs clamped.
            let confidence = range.map { i -> Float in
                let gumbel = -log(max(-log(max(uniforms[i], 1e-20)), 1e-20))
                return log(max(selected[i], 1e-20)) + temperature * gumbel
            }
            let cut = confidence.sorted()[min(Int(count), length - 1)]
            for (offset, value) in confidence.enumerated() where value < cut {
                next[range.lowerBound + offset] = maskTokenID
            }
        }
        return StepOutput(tokens: next, predicted: predicted, probabilities: selected)
    }

    /// img2img's starting tokens: each token masked where a uniform draw is below the mask
    /// ratio of step `stepIndex` (strictly; at the last step nothing is masked).
    public func addNoise(_ tokens: [Int], stepIndex: Int, generator: inout TorchGenerator) throws -> [Int] {
        guard stepIndex >= 0, stepIndex < timesteps.count else {
            throw ChiselError(.invalidParameter, "step \(stepIndex) is outside the \(timesteps.count) set steps")
        }
        let ratio = maskRatio(stepIndex: stepIndex)
        let uniforms = generator.uniform(count: tokens.count)
        return zip(tokens, uniforms).map { $1 < ratio ? maskTokenID : $0 }
    }
}
