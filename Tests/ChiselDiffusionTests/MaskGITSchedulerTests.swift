import Foundation
import Testing
@testable import ChiselDiffusion

/// MaskGIT decoding against diffusers' AmusedScheduler (tools/diffusion/make_maskgit_fixtures.py):
/// the same logits and seed give the same tokens at every step.
@Suite struct MaskGITSchedulerTests {
    struct File: Decodable {
        struct Step: Decodable {
            let timestep: Int
            let logits: [Float]
            let prev_sample: [Int]
            let pred_original_sample: [Int]
        }
        struct StepCase: Decodable, CustomStringConvertible, Sendable {
            let name: String, schedule: String, steps: Int, mask_token_id: Int
            let temperature: Temperature
            let batch: Int, tokens: Int, codebook: Int, seed: UInt64
            let starting_mask_ratio: Double
            let timesteps: [Int], temperatures: [Float]
            let initial: [Int]
            let steps_run: [Step]
            var description: String { name }
        }
        /// A pair, or one value (the scalar form).
        enum Temperature: Decodable, Sendable {
            case range(Float, Float), start(Float)
            init(from decoder: Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let pair = try? container.decode([Float].self), pair.count == 2 {
                    self = .range(pair[0], pair[1])
                } else {
                    self = .start(try container.decode(Float.self))
                }
            }
        }
        struct NoiseCase: Decodable, CustomStringConvertible, Sendable {
            struct Run: Decodable, Sendable { let step_index: Int, noised: [Int] }
            let name: String, schedule: String, steps: Int, mask_token_id: Int, seed: UInt64
            let sample: [Int]
            let runs: [Run]
            var description: String { name }
        }
        let steps: [StepCase]
        let add_noise: [NoiseCase]
    }

    static let file: File? = {
        guard let root = Bundle.module.resourceURL,
              let data = try? Data(contentsOf: root.appendingPathComponent("Fixtures/maskgit/amused_scheduler.json"))
        else { return nil }
        return try? JSONDecoder().decode(File.self, from: data)
    }()

    static func scheduler(_ schedule: String, maskID: Int) throws -> MaskGITScheduler {
        MaskGITScheduler(maskTokenID: maskID, schedule: try #require(MaskGITScheduler.Schedule(rawValue: schedule)))
    }

    @Test func fixturesAreThere() {
        #expect(Self.file?.steps.count == 5)
        #expect(Self.file?.add_noise.count == 2)
    }

    @Test(arguments: file?.steps ?? [])
    func decodingMatchesTheReference(c: File.StepCase) throws {
        var scheduler = try Self.scheduler(c.schedule, maskID: c.mask_token_id)
        switch c.temperature {
        case .range(let a, let b): try scheduler.setTimesteps(c.steps, temperature: .range(a, b))
        case .start(let a): try scheduler.setTimesteps(c.steps, temperature: .start(a))
        }
        #expect(scheduler.timesteps == c.timesteps)
        #expect(scheduler.temperatures == c.temperatures)
        var generator = TorchGenerator(seed: c.seed)
        var tokens = c.initial
        for (index, step) in c.steps_run.enumerated() {
            let out = try scheduler.step(logits: step.logits, codebookSize: c.codebook, tokens: tokens, batch: c.batch,
                                         stepIndex: index, startingMaskRatio: c.starting_mask_ratio,
                                         generator: &generator)
            #expect(out.predicted == step.pred_original_sample, "step \(index): sampled tokens")
            #expect(out.tokens == step.prev_sample, "step \(index): tokens after re-masking")
            tokens = step.prev_sample
        }
    }

    @Test(arguments: file?.add_noise ?? [])
    func img2imgMaskingMatchesTheReference(c: File.NoiseCase) throws {
        var scheduler = try Self.scheduler(c.schedule, maskID: c.mask_token_id)
        try scheduler.setTimesteps(c.steps)
        for run in c.runs {
            var generator = TorchGenerator(seed: c.seed)
            #expect(try scheduler.addNoise(c.sample, stepIndex: run.step_index, generator: &generator) == run.noised)
        }
    }

    /// The float32 schedule: 12 cosine steps over 256 tokens re-mask 127 at step 7
    /// (cos(π/3) rounds to 0.49999997 in float32), and a whole grid is masked at least down to 1.
    @Test func cosineScheduleIsFloat32() throws {
        var scheduler = MaskGITScheduler(maskTokenID: 9)
        try scheduler.setTimesteps(12)
        let counts = (0..<11).map { Int((Float(256) * scheduler.maskRatio(stepIndex: $0)).rounded(.down)) }
        #expect(counts == [253, 247, 236, 221, 203, 181, 155, 127, 97, 66, 33])
        // At the last step cos(float32(π)/2) is −4.371139e-8, as torch computes it.
        #expect(scheduler.maskRatio(stepIndex: 11) == -4.371139e-8)
        #expect(throws: (any Error).self) { try scheduler.setTimesteps(0) }
    }
}
