import Foundation
import Testing
@testable import ChiselDiffusion

@Suite struct NoiseScheduleTests {
    static let configNames = ["sd15", "sd2_v", "trailing", "linspace", "leading", "zero_snr", "cosine", "linear"]

    /// betas and alphas_cumprod equal torch's bit for bit (AVX-512 linspace, double-accumulated cumprod).
    @Test(arguments: configNames)
    func matchesTorch(name: String) throws {
        let common = try #require(Fixtures.common)
        let entry = try #require(common.noise_schedules[name])
        let cls: SchedulerClass = entry.config.className == "DDPMScheduler" ? .ddpm : .ddim
        let schedule = try NoiseSchedule(config: entry.config, for: cls)
        let betas = try floats(entry.betas), alphas = try floats(entry.alphas_cumprod)
        if name == "zero_snr" {
            // rescale_zero_terminal_snr takes torch.sqrt of a 1000-vector, which on the reference
            // build (MKL/AVX-512) is not correctly rounded; ours is, so compare with a bound.
            let rel = zip(schedule.alphasCumprod, alphas).filter { $1 > 0 }.map { abs(Double($0) - Double($1)) / Double($1) }
            #expect((rel.max() ?? 0) <= 1e-5, "\(name): alphas_cumprod max rel \(rel.max() ?? 0)")
            return
        }
        let betaMismatch = zip(schedule.betas, betas).filter { $0.bitPattern != $1.bitPattern }.count
        let alphaMismatch = zip(schedule.alphasCumprod, alphas).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(betaMismatch == 0, "\(name): \(betaMismatch) betas differ")
        #expect(alphaMismatch == 0, "\(name): \(alphaMismatch) alphas_cumprod differ")
    }
}

@Suite struct LMSCoefficientTests {
    /// The closed-form integral against 20-point Gauss–Legendre quadrature of the same polynomial
    /// (exact for degree ≤ 3 up to rounding); diffusers' scipy quad agrees with both to ~1e-7 relative,
    /// the float32 evaluation of its integrand (checked end to end by the fixture tests).
    @Test func closedFormMatchesQuadrature() throws {
        var config = SchedulerConfig()
        config.betaSchedule = .scaledLinear; config.betaStart = 0.00085; config.betaEnd = 0.012
        let lms = try LMSDiscreteScheduler(config: config)
        try lms.setTimesteps(10)
        let sigmas = lms.sigmaTable.map(Double.init)
        // Gauss–Legendre nodes on [-1, 1] for 4 points (exact for degree 7).
        let nodes = [-0.8611363115940526, -0.3399810435848563, 0.3399810435848563, 0.8611363115940526]
        let weights = [0.3478548451374538, 0.6521451548625461, 0.6521451548625461, 0.3478548451374538]
        for t in 3..<9 {
            for j in 0..<4 {
                func basis(_ tau: Double) -> Double {
                    (0..<4).filter { $0 != j }.reduce(1.0) { $0 * (tau - sigmas[t - $1]) / (sigmas[t - j] - sigmas[t - $1]) }
                }
                let a = sigmas[t], b = sigmas[t + 1]
                let quad = zip(nodes, weights).reduce(0.0) { $0 + $1.1 * basis((b - a) / 2 * $1.0 + (a + b) / 2) } * (b - a) / 2
                let closed = try lms.lmsCoefficient(order: 4, index: t, current: j)
                #expect(abs(closed - quad) <= 1e-12 * max(1, abs(quad)), "t=\(t) j=\(j): \(closed) vs \(quad)")
            }
        }
    }
}
