import ChiselCore
import ChiselDiffusion
import ChiselImageIO
import ChiselModels
import ChiselModelStages
import ChiselTensor
import Foundation
import Testing

/// Mask-Predict refinement on the small random-weight aMUSEd model: it raises the token grid's
/// mean log-likelihood under the model, never changes a token whose confidence was at or above
/// the threshold, and its masks mark exactly the tokens still below it.
@Suite(.serialized) struct RefineTokensTests {
    static let model = AmusedPipelineParityTests.repository + "/Tests/ChiselModelsTests/Fixtures/amused/small"

    static func refine(_ model: AmusedModel, tokens: Tokens, threshold: Double, iterations: Int = 4, neighbourhood: Int = 0,
                       evidence: Double = 1, region: Mask? = nil)
        async throws -> (Tokens, Mask, Mask, MaskPredictRefinement.Result, Mask, Mask)
    {
        let run = AmusedPipelineParityTests.Run(model)
        let out = try await RefineTokensStage.run(run.call(RefineTokensStage.self, [
            RefineTokensStage.threshold(threshold), RefineTokensStage.iterations(iterations), RefineTokensStage.fraction(0.3),
            RefineTokensStage.neighbourhood(neighbourhood), RefineTokensStage.evidence(evidence)],
            [RefineTokensStage.tokens(tokens)] + (region.map { [RefineTokensStage.region($0)] } ?? [])))
        // The same run through the algorithm directly, for its before/after likelihoods.
        let refinement = try MaskPredictRefinement(iterations: iterations, initialFraction: 0.3, threshold: Float(threshold),
                                                   neighbourhood: neighbourhood, evidence: Float(evidence))
        let flags = region.map { mask in
            (0..<tokens.count).map { mask.values[($0 / tokens.width) * 2 * mask.width + ($0 % tokens.width) * 2] > 0.5 }
        }
        var generator = TorchGenerator(seed: 0)
        let empty = try model.encodePrompts([""])
        let result = try refinement.run(
            tokens: tokens.ids.map(Int.init), width: tokens.width, height: tokens.height, codebookSize: model.codebookSize,
            maskTokenID: model.maskTokenID, region: flags, codebook: model.vq.codebook, generator: &generator,
            logits: { grid in
                try model.transformer.logits(
                    ids: grid.map { Int32($0) }, batch: 1, height: tokens.height, width: tokens.width,
                    encoderHiddenStates: empty.hiddenStates, pooledText: empty.pooled,
                    microConditioning: [Float(tokens.width * 2), Float(tokens.height * 2), 0, 0, 6]).data
            })
        return (try #require(out[RefineTokensStage.refined]), try #require(out[RefineTokensStage.lowConfidence]),
                try #require(out[RefineTokensStage.confidenceMap]), result, try #require(out[RefineTokensStage.changed]),
                try #require(out[RefineTokensStage.found]))
    }

    /// The parity fixture's image and its tokens (vq_encode).
    static func encodedFixture(_ model: AmusedModel) async throws -> (Image, Tokens) {
        let image = try ImageReader.read(path: AmusedPipelineParityTests.fixtures + "/image-small.png").image
        let run = AmusedPipelineParityTests.Run(model)
        let encoded = try await VQEncodeStage.run(run.call(VQEncodeStage.self, [], [VQEncodeStage.image(image)]))
        return (image, try #require(encoded[VQEncodeStage.tokens]))
    }

    @Test func refinementRaisesLikelihoodAndKeepsConfidentTokens() async throws {
        let model = try AmusedModel.load(path: Self.model)
        let (image, clean) = try await Self.encodedFixture(model)
        var grid = clean
        // Corrupt a quarter of the tokens with ids from a fixed stream.
        var generator = TorchGenerator(seed: 5)
        let draws = generator.uniform(count: 2 * grid.count)
        for i in 0..<grid.count where draws[i] < 0.25 { grid.ids[i] = Int32(draws[grid.count + i] * Float(model.codebookSize)) }

        // A threshold at the median initial confidence: half the grid may change, half may not.
        let (_, _, _, probe, _, _) = try await Self.refine(model, tokens: grid, threshold: 0, iterations: 1)
        let median = Double(probe.initialConfidence.sorted()[grid.count / 2])
        let (refined, mask, confidence, result, changed, found) = try await Self.refine(model, tokens: grid, threshold: median)

        #expect(refined.ids.map(Int.init) == result.tokens, "the stage and the algorithm agree")
        #expect(result.changedCount > 0, "refinement changed no token")
        #expect(result.logLikelihood > result.initialLogLikelihood,
                "mean log-likelihood \(result.initialLogLikelihood) → \(result.logLikelihood)")
        var kept = 0
        for i in 0..<grid.count where Double(result.initialConfidence[i]) >= median {
            #expect(refined.ids[i] == grid.ids[i], "token \(i) was above the threshold and changed")
            kept += 1
        }
        #expect(kept >= grid.count / 2 - 1)
        // The masks at the image's size: 1 exactly where the final confidence is below the threshold,
        // (found) where the input's was, and (changed) exactly where a token was replaced.
        #expect(mask.width == image.width && mask.height == image.height)
        for y in 0..<mask.height {
            for x in 0..<mask.width {
                let token = (y / 2) * refined.width + x / 2
                let below = Double(refined.confidence[token]) < median
                #expect(mask.values[y * mask.width + x] == (below ? 1 : 0))
                #expect(confidence.values[y * mask.width + x] == refined.confidence[token])
                #expect(changed.values[y * mask.width + x] == (refined.ids[token] != grid.ids[token] ? 1 : 0))
                #expect(found.values[y * mask.width + x] == (Double(result.initialConfidence[token]) < median ? 1 : 0))
            }
        }
    }

    /// The masks judge by neighbourhood: the geometric mean of the confidences in the window,
    /// cut at the grid's edges.
    @Test func neighbourhoodConfidenceIsTheWindowsGeometricMean() {
        // 3×2 grid: one doubtful token among confident ones.
        let confidence: [Float] = [1, 1, 1,
                                   1, 0.001, 1]
        #expect(MaskPredictRefinement.neighbourhoodConfidence(confidence, width: 3, height: 2, radius: 0) == confidence)
        let judged = MaskPredictRefinement.neighbourhoodConfidence(confidence, width: 3, height: 2, radius: 1)
        // Every window holds the doubtful token: corners 4 tokens (0.001^(1/4)), the middle column 6.
        let corner = Float(pow(0.001, 1.0 / 4)), middle = Float(pow(0.001, 1.0 / 6))
        for (i, expected) in [corner, middle, corner, corner, middle, corner].enumerated() {
            #expect(abs(judged[i] - expected) < 1e-5, "token \(i): \(judged[i]) vs \(expected)")
        }
        // A lone doubtful token is no region at a threshold its neighbourhood clears.
        #expect(judged.allSatisfy { $0 > 0.1 })
    }

    @Test func foundMaskJudgesByNeighbourhood() async throws {
        let model = try AmusedModel.load(path: Self.model)
        let (_, grid) = try await Self.encodedFixture(model)
        let (_, _, _, probe, _, _) = try await Self.refine(model, tokens: grid, threshold: 0, iterations: 1)
        let median = Double(probe.initialConfidence.sorted()[grid.count / 2])
        let (refined, _, _, result, _, found) = try await Self.refine(model, tokens: grid, threshold: median, iterations: 1,
                                                                      neighbourhood: 1)
        let judged = MaskPredictRefinement.neighbourhoodConfidence(result.initialConfidence, width: grid.width,
                                                                   height: grid.height, radius: 1)
        for y in 0..<found.height {
            for x in 0..<found.width {
                let token = (y / 2) * refined.width + x / 2
                #expect(found.values[y * found.width + x] == (Double(judged[token]) < median ? 1 : 0))
            }
        }
    }

    /// A region input: only the tokens it covers may change (here every one of them is a
    /// candidate, threshold 1); the rest is context, as `chisel inpaint --token-mode refine` uses it.
    @Test func onlyTheRegionChanges() async throws {
        let model = try AmusedModel.load(path: Self.model)
        let (image, grid) = try await Self.encodedFixture(model)
        let left = try Mask(width: image.width, height: image.height,
                            values: (0..<image.width * image.height).map { $0 % image.width < image.width / 2 ? 1 : 0 })
        let (refined, _, _, result, changed, _) = try await Self.refine(model, tokens: grid, threshold: 1, iterations: 2,
                                                                        region: left)
        #expect(refined.ids.map(Int.init) == result.tokens, "the stage and the algorithm agree")
        var inside = 0
        for i in 0..<grid.count {
            if i % grid.width < grid.width / 2 {
                if refined.ids[i] != grid.ids[i] { inside += 1 }
            } else {
                #expect(refined.ids[i] == grid.ids[i], "token \(i) outside the region changed")
            }
        }
        #expect(inside > 0, "no token inside the region changed")
        #expect(changed.values.enumerated().allSatisfy { $0.element == 0 || $0.offset % image.width < image.width / 2 })
    }

    @Test func maskedGridsAreRefused() async throws {
        let model = try AmusedModel.load(path: Self.model)
        let run = AmusedPipelineParityTests.Run(model)
        let empty = try await EmptyTokensStage.run(run.call(EmptyTokensStage.self, [EmptyTokensStage.width(16), EmptyTokensStage.height(16)]))
        let grid = try #require(empty[EmptyTokensStage.tokens])
        await #expect(throws: ChiselError.self) {
            try await RefineTokensStage.run(run.call(RefineTokensStage.self, [], [RefineTokensStage.tokens(grid)]))
        }
    }
}
