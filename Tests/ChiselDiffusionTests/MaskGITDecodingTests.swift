import ChiselTensor
import Foundation
import Testing
@testable import ChiselDiffusion

/// The decoding loop around the scheduler: guidance on the logits, the steps it runs, and the
/// draws it makes, checked against the scheduler stepped by hand.
@Suite struct MaskGITDecodingTests {
    static func logits(_ count: Int, seed: UInt64) -> [Float] {
        var generator = TorchGenerator(seed: seed)
        return generator.normal(count: count).map { $0 * 3 }
    }

    @Test func guidedDecodingStepsOnCombinedLogits() throws {
        let (batch, length, codebook, mask) = (1, 16, 10, 10)
        var scheduler = MaskGITScheduler(maskTokenID: mask)
        try scheduler.setTimesteps(4)
        var decoding = try MaskGITDecoding(scheduler: scheduler, tokens: Array(repeating: mask, count: length),
                                           batch: batch, codebookSize: codebook, guidance: 5)
        var manualTokens = Array(repeating: mask, count: length)
        var a = TorchGenerator(seed: 9), b = TorchGenerator(seed: 9)
        var step = 0
        while !decoding.isFinished {
            let input = decoding.modelInput
            #expect(input.batch == 2 && input.tokens == manualTokens + manualTokens)
            let both = Self.logits(2 * length * codebook, seed: UInt64(step))
            try decoding.step(logits: both, generator: &a)
            let n = length * codebook
            let combined = (0..<n).map { both[$0] + 5 * (both[n + $0] - both[$0]) }
            manualTokens = try scheduler.step(logits: combined, codebookSize: codebook, tokens: manualTokens,
                                              batch: batch, stepIndex: step, generator: &b).tokens
            #expect(decoding.tokens == manualTokens)
            step += 1
        }
        #expect(step == 4 && decoding.completedSteps == 4)
        #expect(!decoding.tokens.contains(mask))
        // Both generators made the same draws.
        #expect(a.uniform(count: 3) == b.uniform(count: 3))
    }

    @Test func unguidedDecodingStartsLateAndSendsOneGrid() throws {
        var scheduler = MaskGITScheduler(maskTokenID: 7, schedule: .linear)
        try scheduler.setTimesteps(6)
        let start = MaskGITPlan.startStep(steps: 6, strength: 0.5)
        #expect(start == 3)
        var tokens = Array(0..<12).map { $0 % 7 }
        tokens[2] = 7
        tokens[5] = 7
        var decoding = try MaskGITDecoding(scheduler: scheduler, tokens: tokens, batch: 1, codebookSize: 7,
                                           startStep: start, guidance: 1)
        #expect(decoding.stepsToRun == 3 && decoding.modelInput.batch == 1)
        var generator = TorchGenerator(seed: 1)
        while !decoding.isFinished { try decoding.step(logits: Self.logits(12 * 7, seed: 3), generator: &generator) }
        // Known tokens are kept; masked ones are filled.
        for i in tokens.indices where tokens[i] != 7 { #expect(decoding.tokens[i] == tokens[i]) }
        #expect(!decoding.tokens.contains(7))
    }

    @Test func startStepFollowsTheReference() {
        #expect(MaskGITPlan.startStep(steps: 12, strength: 0.5) == 6)
        #expect(MaskGITPlan.startStep(steps: 12, strength: 1) == 0)
        #expect(MaskGITPlan.startStep(steps: 12, strength: 0.01) == 12)
        #expect(MaskGITPlan.startStep(steps: 10, strength: 0.75) == 3)  // int(7.5) = 7
    }

    @Test func badStartsAreRefused() throws {
        var scheduler = MaskGITScheduler(maskTokenID: 4)
        try scheduler.setTimesteps(3)
        #expect(throws: (any Error).self) {
            try MaskGITDecoding(scheduler: scheduler, tokens: [4, 4], batch: 1, codebookSize: 4, startStep: 4, guidance: 1)
        }
        #expect(throws: (any Error).self) {
            try MaskGITDecoding(scheduler: scheduler, tokens: [4, 4, 4], batch: 2, codebookSize: 4, guidance: 1)
        }
        #expect(throws: (any Error).self) { try scheduler.setTimesteps(0) }
    }
}

/// Mask-Predict refinement on a toy model whose logits favour the token of the visible
/// neighbours' majority: a grid of two-coloured blocks with stray tokens is repaired, its
/// likelihood rises, and confident tokens stay as they were.
@Suite struct MaskPredictRefinementTests {
    static let (width, height, codebook, mask) = (8, 8, 4, 4)

    /// Logits: for each position, +4 for each visible 4-neighbour's token (masked ones say nothing).
    static func model(_ grid: [Int]) -> [Float] {
        var out = [Float](repeating: 0, count: grid.count * codebook)
        for y in 0..<height {
            for x in 0..<width {
                for (dy, dx) in [(-1, 0), (1, 0), (0, -1), (0, 1)] {
                    let (ny, nx) = (y + dy, x + dx)
                    guard ny >= 0, ny < height, nx >= 0, nx < width else { continue }
                    let t = grid[ny * width + nx]
                    if t < codebook { out[(y * width + x) * codebook + t] += 4 }
                }
            }
        }
        return out
    }

    static var clean: [Int] { (0..<width * height).map { ($0 % width) < width / 2 ? 1 : 2 } }

    @Test func repairsStrayTokensAndRaisesLikelihood() throws {
        var corrupted = Self.clean
        for i in [9, 20, 37, 46, 58] { corrupted[i] = 3 }
        let refinement = try MaskPredictRefinement(iterations: 3, initialFraction: 0.2, threshold: 0.5)
        var generator = TorchGenerator(seed: 0)
        var passes: [Int] = []
        let result = try refinement.run(tokens: corrupted, width: Self.width, height: Self.height,
                                        codebookSize: Self.codebook, maskTokenID: Self.mask, generator: &generator,
                                        logits: Self.model, progress: { done, _ in passes.append(done) })
        #expect(result.tokens == Self.clean)
        #expect(result.logLikelihood > result.initialLogLikelihood + 0.1)
        #expect(passes == Array(1...refinement.passes(width: Self.width, height: Self.height)))
        for i in corrupted.indices where result.initialConfidence[i] >= 0.5 {
            #expect(result.tokens[i] == corrupted[i])
        }
        #expect(result.changedCount == 5)
    }

    @Test func aHighThresholdChangesNothingAboveIt() throws {
        var corrupted = Self.clean
        corrupted[27] = 0
        // A threshold of 0: no token is below it, nothing changes.
        let none = try MaskPredictRefinement(iterations: 2, threshold: 0)
        var generator = TorchGenerator(seed: 0)
        let kept = try none.run(tokens: corrupted, width: Self.width, height: Self.height, codebookSize: Self.codebook,
                                maskTokenID: Self.mask, generator: &generator, logits: Self.model)
        #expect(kept.tokens == corrupted && kept.rounds.isEmpty)
    }

    @Test func onlyTheRegionChanges() throws {
        var corrupted = Self.clean
        for i in [9, 20, 37, 46, 58] { corrupted[i] = 3 }
        // The top half may change; the strays below it stay, though the model doubts them.
        let region = (0..<Self.width * Self.height).map { $0 < 32 }
        let refinement = try MaskPredictRefinement(iterations: 3, initialFraction: 0.2, threshold: 0.5)
        var generator = TorchGenerator(seed: 0)
        let result = try refinement.run(tokens: corrupted, width: Self.width, height: Self.height,
                                        codebookSize: Self.codebook, maskTokenID: Self.mask, region: region,
                                        generator: &generator, logits: Self.model)
        var expected = Self.clean
        for i in [37, 46, 58] { expected[i] = 3 }
        #expect(result.tokens == expected)
        #expect(result.changedCount == 2)
        #expect(result.rounds.allSatisfy { $0.masked.allSatisfy { region[$0] } })
        #expect(throws: (any Error).self) {
            try refinement.run(tokens: corrupted, width: Self.width, height: Self.height, codebookSize: Self.codebook,
                               maskTokenID: Self.mask, region: [true], generator: &generator, logits: Self.model)
        }
    }

    @Test func neighbourhoodsChooseTheCandidates() throws {
        // One stray token among confident ones: alone it is far below 0.1 (p ≈ 6e-6), its 3×3
        // neighbourhood's geometric mean is not (≈ 0.26).
        var corrupted = Self.clean
        corrupted[27] = 3
        var generator = TorchGenerator(seed: 0)
        let alone = try MaskPredictRefinement(iterations: 2, threshold: 0.1, neighbourhood: 0)
        let fixed = try alone.run(tokens: corrupted, width: Self.width, height: Self.height, codebookSize: Self.codebook,
                                  maskTokenID: Self.mask, generator: &generator, logits: Self.model)
        #expect(fixed.tokens == Self.clean)
        let judged = try MaskPredictRefinement(iterations: 2, threshold: 0.1, neighbourhood: 1)
        let kept = try judged.run(tokens: corrupted, width: Self.width, height: Self.height, codebookSize: Self.codebook,
                                  maskTokenID: Self.mask, generator: &generator, logits: Self.model)
        #expect(kept.tokens == corrupted && kept.rounds.isEmpty)
        #expect(throws: (any Error).self) { try MaskPredictRefinement(neighbourhood: -1) }
    }

    /// The input's token weighs in: the toy model favours 1 at position 27 (logit 12 against 4
    /// for 2), but the stray 3's codebook vector (1.1) lies next to 2's (1) and far from 1's (10),
    /// so with evidence 5 the re-prediction is 2 (12 − 5 × 79.2/32.8 < 4 − 5 × 0.01/32.8).
    @Test func evidenceKeepsReplacementsNearTheInputToken() throws {
        var corrupted = Self.clean
        corrupted[27] = 3
        let codebook = try Codebook(entries: [0, 10, 1, 1.1], count: 4, width: 1)
        var generator = TorchGenerator(seed: 0)
        let plain = try MaskPredictRefinement(iterations: 2, threshold: 0.5, evidence: 0)
        let fixed = try plain.run(tokens: corrupted, width: Self.width, height: Self.height, codebookSize: Self.codebook,
                                  maskTokenID: Self.mask, codebook: codebook, generator: &generator, logits: Self.model)
        #expect(fixed.tokens == Self.clean)
        let weighed = try MaskPredictRefinement(iterations: 2, threshold: 0.5, evidence: 5)
        let near = try weighed.run(tokens: corrupted, width: Self.width, height: Self.height, codebookSize: Self.codebook,
                                   maskTokenID: Self.mask, codebook: codebook, generator: &generator, logits: Self.model)
        var expected = Self.clean
        expected[27] = 2
        #expect(near.tokens == expected)
        // Without the codebook, or with one of another size, evidence cannot be weighed.
        #expect(throws: (any Error).self) {
            try weighed.run(tokens: corrupted, width: Self.width, height: Self.height, codebookSize: Self.codebook,
                            maskTokenID: Self.mask, generator: &generator, logits: Self.model)
        }
        let short = try Codebook(entries: [0, 1], count: 2, width: 1)
        #expect(throws: (any Error).self) {
            try weighed.run(tokens: corrupted, width: Self.width, height: Self.height, codebookSize: Self.codebook,
                            maskTokenID: Self.mask, codebook: short, generator: &generator, logits: Self.model)
        }
        #expect(throws: (any Error).self) { try MaskPredictRefinement(evidence: -1) }
    }

    @Test func samplingDrawsFromTheGenerator() throws {
        var corrupted = Self.clean
        corrupted[12] = 0
        let sampled = try MaskPredictRefinement(iterations: 1, initialFraction: 0.05, threshold: 0.9, temperature: 1)
        var a = TorchGenerator(seed: 4), b = TorchGenerator(seed: 4)
        let first = try sampled.run(tokens: corrupted, width: Self.width, height: Self.height,
                                    codebookSize: Self.codebook, maskTokenID: Self.mask, generator: &a, logits: Self.model)
        let second = try sampled.run(tokens: corrupted, width: Self.width, height: Self.height,
                                     codebookSize: Self.codebook, maskTokenID: Self.mask, generator: &b, logits: Self.model)
        #expect(first == second)
        // One exponential per codebook entry for each re-masked token, and nothing else.
        let remasked = try #require(first.rounds.first).masked.count
        #expect(remasked >= 1 && remasked <= 3)  // floor(64 × 0.05)
        var c = TorchGenerator(seed: 4)
        _ = c.exponential(count: remasked * Self.codebook)
        #expect(a.uniform(count: 2) == c.uniform(count: 2))
    }

    @Test func incompleteGridsAndBadSettingsAreRefused() throws {
        var generator = TorchGenerator(seed: 0)
        var grid = Self.clean
        grid[0] = Self.mask
        let refinement = try MaskPredictRefinement()
        #expect(throws: (any Error).self) {
            try refinement.run(tokens: grid, width: Self.width, height: Self.height, codebookSize: Self.codebook,
                               maskTokenID: Self.mask, generator: &generator, logits: Self.model)
        }
        #expect(throws: (any Error).self) { try MaskPredictRefinement(iterations: 0) }
        #expect(throws: (any Error).self) { try MaskPredictRefinement(initialFraction: 0) }
        #expect(throws: (any Error).self) { try MaskPredictRefinement(threshold: 1.5) }
    }
}
