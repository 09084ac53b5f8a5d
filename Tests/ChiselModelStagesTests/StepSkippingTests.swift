import ChiselCore
import ChiselImageIO
import ChiselModels
import ChiselModelStages
import ChiselTensor
import Foundation
import Testing

/// The step-skipping options of denoise: guidance inside an interval of the steps, and DeepCache
/// (`cache_interval`). Off, they change nothing (the parity tests run without them); on, each
/// does exactly what it says.
@Suite(.serialized) struct StepSkippingTests {
    static let references = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../ChiselModelsTests/Fixtures/reference").standardized.path
    static let image = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/pipelines/image.png").path

    /// The noised latent and the prompts of a 10-step img2img at 0.8 (8 loop steps) on sd1-tiny.
    static func start(_ run: ModelStageRun<StableDiffusionModel>) async throws -> (Latent, Conditioning) {
        let text = try await EncodePromptStage.run(run.call(EncodePromptStage.self, [
            EncodePromptStage.prompt("a red fox in the snow"), EncodePromptStage.negativePrompt("blurry")]))
        let picture = try ImageReader.read(path: Self.image).image.converted(to: .rgb)
        let encoded = try await VAEEncodeStage.run(run.call(VAEEncodeStage.self, [VAEEncodeStage.seed(.fixed(5))], [VAEEncodeStage.image(picture)]))
        let noised = try await AddNoiseStage.run(run.call(AddNoiseStage.self, [
            AddNoiseStage.scheduler("euler"), AddNoiseStage.steps(10), AddNoiseStage.strength(0.8)],
            [AddNoiseStage.latent(try #require(encoded[VAEEncodeStage.latent]))]))
        return (try #require(noised[AddNoiseStage.noised]), try #require(text[EncodePromptStage.conditioning]))
    }

    static func denoise(_ run: ModelStageRun<StableDiffusionModel>, _ latent: Latent, _ text: Conditioning,
                        _ params: [ParamSetting]) async throws -> Latent {
        let out = try await DenoiseStage.run(run.call(DenoiseStage.self, params, [DenoiseStage.latent(latent), DenoiseStage.conditioning(text)]))
        return try #require(out[DenoiseStage.denoised])
    }

    /// guidance_end 0.5 over 8 steps guides the first 4 ((i + 1)/8 ≤ 0.5) and runs the prompt
    /// alone on the rest: the same numbers as stopping a guided loop at its 4th step and
    /// finishing unguided (guidance 1) from there.
    @Test func guidanceEndIsAGuidedLoopThenAnUnguidedOne() async throws {
        let run = ModelStageRun(try StableDiffusionModel.load(path: Self.references + "/sd1-tiny"))
        let (latent, text) = try await Self.start(run)
        let truncated = try await Self.denoise(run, latent, text, [DenoiseStage.guidance(7.5), DenoiseStage.guidanceEnd(0.5)])
        let stepIndex = try #require(latent.noiseState?.stepIndex)
        let half = try await Self.denoise(run, latent, text, [DenoiseStage.guidance(7.5), DenoiseStage.stopAt(stepIndex + 4)])
        let finished = try await Self.denoise(run, half, text, [DenoiseStage.guidance(1)])
        #expect(truncated.values == finished.values)
        let full = try await Self.denoise(run, latent, text, [DenoiseStage.guidance(7.5)])
        #expect(full.values != truncated.values, "the unguided half changes the result")
        // guidance_start 0.5 is the other half: unguided, then guided.
        let late = try await Self.denoise(run, latent, text, [DenoiseStage.guidance(7.5), DenoiseStage.guidanceStart(0.5)])
        let first = try await Self.denoise(run, latent, text, [DenoiseStage.guidance(1), DenoiseStage.stopAt(stepIndex + 4)])
        let then = try await Self.denoise(run, first, text, [DenoiseStage.guidance(7.5)])
        #expect(late.values == then.values)
    }

    /// DeepCache's cheap step, given the features a full step kept at the same input, gives
    /// the full step's output: the shallow layers it reruns and the skips it feeds are the ones
    /// the full UNet ran.
    @Test func theCachedStepReproducesTheFullOneOnTheSameInput() throws {
        let model = try StableDiffusionModel.load(path: Self.references + "/sd1-tiny")
        let config = model.unet.config
        let sample = try Tensor(shape: [2, 8, 12, config.inChannels], data: randomValues(2 * 8 * 12 * config.inChannels, seed: 3, scale: 2))
        let context = try Tensor(shape: [2, 7, config.crossAttentionDim], data: randomValues(2 * 7 * config.crossAttentionDim, seed: 4))
        let cache = UNetCache()
        let full = try model.unet(sample, timesteps: [300], context: context, cache: cache)
        cache.reuse = true
        let cached = try model.unet(sample, timesteps: [300], context: context, cache: cache)
        let largest = zip(full.data, cached.data).map { abs($0 - $1) }.max() ?? .infinity
        #expect(largest < 1e-5, "max |Δ| \(largest)")
        // At another timestep the cheap step differs from a full one (the deep features are stale).
        let later = try model.unet(sample, timesteps: [100], context: context, cache: cache)
        cache.reuse = false
        let laterFull = try model.unet(sample, timesteps: [100], context: context)
        #expect(later.data != laterFull.data)
        // Half the batch (guidance dropped since the features were kept) reuses their second half.
        cache.reuse = true
        let single = try model.unet(try Tensor(shape: [1, 8, 12, config.inChannels], data: Array(sample.data[(sample.data.count / 2)...])),
                                    timesteps: [100], context: try Tensor(shape: [1, 7, config.crossAttentionDim],
                                                                          data: Array(context.data[(context.data.count / 2)...])), cache: cache)
        let secondHalf = Array(later.data[(later.data.count / 2)...])
        #expect((zip(single.data, secondHalf).map { abs($0 - $1) }.max() ?? .infinity) < 1e-5)
    }

    /// A whole edit with DeepCache every 3rd step stays near the full one and is not it.
    @Test func aCachedEditStaysNearTheFullOne() async throws {
        let run = ModelStageRun(try StableDiffusionModel.load(path: Self.references + "/sd1-tiny"))
        let (latent, text) = try await Self.start(run)
        let full = try await Self.denoise(run, latent, text, [DenoiseStage.guidance(7.5)])
        let one = try await Self.denoise(run, latent, text, [DenoiseStage.guidance(7.5), DenoiseStage.cacheInterval(1)])
        #expect(one.values == full.values, "interval 1 is off")
        let cached = try await Self.denoise(run, latent, text, [DenoiseStage.guidance(7.5), DenoiseStage.cacheInterval(3)])
        let scale = full.values.map(abs).max() ?? 1
        let largest = zip(full.values, cached.values).map { abs($0 - $1) }.max() ?? .infinity
        #expect(largest > 0 && largest < scale, "max |Δ| \(largest) of \(scale)")
    }

    /// Token merging: 0 is off (the default's numbers), a ratio changes the edit a little (the
    /// parity cases pin its numbers to tomesd's), says itself in the infotext as A1111 does,
    /// and combines with DeepCache.
    @Test func tokenMergingIsOffAtZeroAndSaysItsRatio() async throws {
        let run = ModelStageRun(try StableDiffusionModel.load(path: Self.references + "/sd1-tiny"))
        let (latent, text) = try await Self.start(run)
        let full = try await Self.denoise(run, latent, text, [DenoiseStage.guidance(7.5)])
        let zero = try await Self.denoise(run, latent, text, [DenoiseStage.guidance(7.5), DenoiseStage.tokenMerging(0)])
        #expect(zero.values == full.values)
        #expect(full.diffusion?.generation?.value("Token merging ratio") == nil)
        let merged = try await Self.denoise(run, latent, text, [DenoiseStage.guidance(7.5), DenoiseStage.tokenMerging(0.5)])
        let scale = full.values.map(abs).max() ?? 1
        let largest = zip(full.values, merged.values).map { abs($0 - $1) }.max() ?? .infinity
        #expect(largest > 0 && largest < scale, "max |Δ| \(largest) of \(scale)")
        #expect(merged.diffusion?.generation?.value("Token merging ratio") == "0.5")
        // The coarser level (the tiny UNet's second, which has no transformer going down but one in its mid block) adds merges.
        let deeper = try await Self.denoise(run, latent, text, [DenoiseStage.guidance(7.5), DenoiseStage.tokenMerging(0.5),
                                                                DenoiseStage.tokenMergingDownsample(2)])
        #expect(deeper.values != merged.values)
        let both = try await Self.denoise(run, latent, text, [DenoiseStage.guidance(7.5), DenoiseStage.tokenMerging(0.5),
                                                              DenoiseStage.cacheInterval(3)])
        #expect(both.values != merged.values && both.values.allSatisfy(\.isFinite))
    }
}
