import ChiselBase
import Foundation
import Testing
@testable import ChiselDiffusion

/// ComfyUI's sigma lists and KSampler cuts for SD 1.x's schedule (β 0.00085…0.012, scaled
/// linear), against the values ComfyUI's own functions print (tools/interop/COMFY.md §5).
@Suite struct KSamplingTests {
    static let sd: KModelSampling = {
        var config = SchedulerConfig()
        config.betaStart = 0.00085
        config.betaEnd = 0.012
        config.betaSchedule = .scaledLinear
        config.numTrainTimesteps = 1000
        // The config above is valid; a failure would make every test below fail on empty sigmas.
        return (try? KModelSampling(config: config)) ?? KModelSampling.empty
    }()

    static func close(_ a: [Float], _ b: [Float], tolerance: Float = 2e-5) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    @Test func trainingSigmasAndTimesteps() {
        #expect(abs(Self.sd.sigmaMin - 0.0291671585) < 1e-8 && abs(Self.sd.sigmaMax - 14.614642) < 1e-5)
        #expect(Self.sd.timestep(sigma: Self.sd.sigmaMax) == 999 && Self.sd.timestep(sigma: Self.sd.sigmaMin) == 0)
        #expect(Self.sd.timestep(sigma: 1.0) == 354, "the nearest integer timestep in log-sigma")
        #expect(abs(Self.sd.sigma(timestep: 500.5) - (Self.sd.sigmas[500] * Self.sd.sigmas[501]).squareRoot()) < 1e-5)
    }

    @Test func eightStepSchedulesMatchComfyUI() {
        let normal = KSchedule.normal.sigmas(steps: 8, model: Self.sd)
        #expect(Self.close(normal, [14.61464, 6.678, 3.52206, 2.06064, 1.27683, 0.79126, 0.43967, 0.02917, 0]), "\(normal)")
        let karras = KSchedule.karras.sigmas(steps: 8, model: Self.sd)
        #expect(Self.close(karras, [14.61464, 7.90293, 4.02774, 1.91036, 0.82887, 0.32112, 0.1072, 0.02917, 0]), "\(karras)")
        let ddim = KSchedule.ddimUniform.sigmas(steps: 8, model: Self.sd)
        #expect(Self.close(ddim, [7.37184, 4.1167, 2.51092, 1.62369, 1.07603, 0.6984, 0.40222, 0.04131, 0]), "\(ddim)")
        // ddim_uniform can give more sigmas than steps + 1 (1000 // 6 = 166: 7 steps).
        #expect(KSchedule.ddimUniform.sigmas(steps: 6, model: Self.sd).count == 8)
        for schedule in KSchedule.allCases {
            let sigmas = schedule.sigmas(steps: 8, model: Self.sd)
            #expect(sigmas.last == 0 && zip(sigmas, sigmas.dropFirst()).allSatisfy { $0 > $1 }, "\(schedule): \(sigmas)")
        }
    }

    @Test func denoiseTakesTheTailOfALongerSchedule() throws {
        let full = KSchedule.normal.sigmas(steps: 16, model: Self.sd)   // int(10 / 0.6) = 16
        let cut = try #require(KSigmas.sigmas(sampler: .euler, schedule: .normal, steps: 10, denoise: 0.6, model: Self.sd))
        #expect(cut == Array(full.suffix(11)))
        // KSamplerAdvanced: steps 4… of 10; end_at_step 7 with the last sigma forced to 0, or kept.
        let ten = KSchedule.normal.sigmas(steps: 10, model: Self.sd)
        #expect(KSigmas.sigmas(sampler: .euler, schedule: .normal, steps: 10, denoise: 1, model: Self.sd, startStep: 4) == Array(ten[4...]))
        let stopped = try #require(KSigmas.sigmas(sampler: .euler, schedule: .normal, steps: 10, denoise: 1, model: Self.sd,
                                                  lastStep: 7, forceFullDenoise: true))
        #expect(stopped == Array(ten[...6]) + [0])
        let leftover = KSigmas.sigmas(sampler: .euler, schedule: .normal, steps: 10, denoise: 1, model: Self.sd, lastStep: 7)
        #expect(leftover == Array(ten[...7]))
        #expect(KSigmas.sigmas(sampler: .euler, schedule: .normal, steps: 10, denoise: 1, model: Self.sd, startStep: 10) == nil)
        // dpm_2 drops the penultimate sigma of a steps + 1 schedule.
        let eleven = KSchedule.karras.sigmas(steps: 11, model: Self.sd)
        #expect(KSigmas.sigmas(sampler: .dpm2, schedule: .karras, steps: 10, denoise: 1, model: Self.sd)
                == Array(eleven.dropLast(2)) + [0])
    }

    @Test func maxDenoiseScalesByTheSqrtOfOnePlusSigmaSquared() {
        let start = KDiffusion.noised([1], noise: [1], sigma: Self.sd.sigmaMax, model: Self.sd)
        #expect(abs(start[0] - (1 + (1 + Self.sd.sigmaMax * Self.sd.sigmaMax).squareRoot())) < 1e-4)
        let partial = KDiffusion.noised([1], noise: [1], sigma: 2, model: Self.sd)
        #expect(partial == [3])
    }
}
