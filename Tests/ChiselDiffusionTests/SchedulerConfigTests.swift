import ChiselBase
import Foundation
import Testing
@testable import ChiselDiffusion

@Suite struct SchedulerConfigTests {
    static let sd15 = """
        {"_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
         "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
         "set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1, "trained_betas": null,
         "clip_sample": false}
        """

    func decode(_ json: String) throws -> SchedulerConfig {
        try JSONDecoder().decode(SchedulerConfig.self, from: Data(json.utf8))
    }

    @Test func decodesDiffusersKeys() throws {
        let config = try decode(Self.sd15)
        #expect(config.className == "PNDMScheduler")
        #expect(config.betaSchedule == .scaledLinear)
        #expect(config.betaStart == 0.00085 && config.betaEnd == 0.012)
        #expect(config.stepsOffset == 1 && config.skipPrkSteps == true && config.setAlphaToOne == false)
        #expect(config.trainedBetas == nil)
        // Absent keys stay nil: each class fills in its own default.
        #expect(config.timestepSpacing == nil && config.predictionType == nil)
    }

    @Test func codingKeysAreDiffusersNames() throws {
        #expect(SchedulerConfig.CodingKeys.timestepSpacing.rawValue == "timestep_spacing")
        #expect(SchedulerConfig.CodingKeys.rescaleBetasZeroSnr.rawValue == "rescale_betas_zero_snr")
        var config = SchedulerConfig()
        config.predictionType = .vPrediction
        config.lambdaMinClipped = -5.1
        let round = try JSONDecoder().decode(SchedulerConfig.self, from: JSONEncoder().encode(config))
        #expect(round == config)
        let text = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        #expect(text.contains("\"prediction_type\":\"v_prediction\""))
    }

    @Test func defaultsDifferPerClass() throws {
        let config = try decode(Self.sd15)
        let euler = try EulerDiscreteScheduler(config: config)
        try euler.setTimesteps(10)
        // Euler defaults to linspace: 999 first, fractional in between.
        #expect(euler.timesteps.first == 999)
        let ddim = try DDIMScheduler(config: config)
        try ddim.setTimesteps(10)
        // DDIM defaults to leading: 901, 801, ... with steps_offset 1.
        #expect(ddim.timesteps == [901, 801, 701, 601, 501, 401, 301, 201, 101, 1])
        let heun = try HeunDiscreteScheduler(config: SchedulerConfig())
        // Heun's own beta defaults are 0.00085...0.012 (linear).
        #expect(abs(Double(heun.noiseSchedule.betas[0]) - 0.00085) < 1e-9)
    }

    @Test func unknownValueNamesTheKey() throws {
        do {
            _ = try decode(#"{"beta_schedule": "quadratic"}"#)
            Issue.record("decoding should fail")
        } catch let error as ChiselError {
            #expect(error.code == .invalidParameter)
            #expect(error.jsonPath == "beta_schedule")
            #expect(error.message.contains("scaled_linear"))
        }
    }

    @Test(arguments: [
        (#"{"thresholding": true}"#, SchedulerClass.ddim, "thresholding"),
        (#"{"thresholding": true}"#, .dpmSolverMultistep, "thresholding"),
        (#"{"beta_schedule": "sigmoid"}"#, .ddpm, "beta_schedule"),
        (#"{"use_exponential_sigmas": true}"#, .euler, "use_exponential_sigmas"),
        (#"{"interpolation_type": "log_linear"}"#, .euler, "interpolation_type"),
        (#"{"variance_type": "learned_range"}"#, .ddpm, "variance_type"),
        (#"{"prediction_type": "sample"}"#, .eulerAncestral, "prediction_type"),
        (#"{"use_flow_sigmas": true}"#, .uniPCMultistep, "use_flow_sigmas"),
        (#"{"algorithm_type": "dpmsolver"}"#, .dpmSolverMultistep, "final_sigmas_type"),
    ])
    func unimplementedValueIsRejected(json: String, cls: SchedulerClass, key: String) throws {
        let config = try decode(json)
        do {
            _ = try cls.makeScheduler(config: config)
            Issue.record("\(cls.rawValue) should reject \(json)")
        } catch let error as ChiselError {
            #expect(error.code == .invalidParameter)
            #expect(error.jsonPath == key, "\(error)")
            #expect(error.description.contains(key))
        }
    }

    @Test func keysAClassDoesNotReadAreIgnored() throws {
        // PNDM has no thresholding key in diffusers; like diffusers, it ignores one.
        _ = try PNDMScheduler(config: decode(#"{"thresholding": true}"#))
    }

    @Test func pythonInfinityIsAccepted() throws {
        #expect(try decode(#"{"lambda_min_clipped": "-inf"}"#).lambdaMinClipped == -.infinity)
    }
}
