import Foundation
import Testing
@testable import ChiselDiffusion

/// The per-kind files written by tools/diffusion/make_scheduler_fixtures.py.
struct SchedulerFixture: Decodable {
    struct Schedule: Decodable {
        let steps: Int
        let timesteps: [Double]?
        let sigmas: [Double]?
        let init_noise_sigma: Double?
        let error: String?
    }
    struct Run: Decodable {
        let steps: Int
        let strength: Double?
        let t_start: Int
        let begin_index: Int
        let latents: String
        let scaled_first: String?
        let outputs: [String]
        let noise_draws: [Int]
        let denoised: [String]?
    }
    struct Case: Decodable {
        let config_name: String
        let config: SchedulerConfig
        let overrides: SchedulerConfig
        let step_kwargs: [String: Double]
        let schedules: [Schedule]
        let runs: [Run]
    }
    let kind: String
    let `class`: String
    let cases: [Case]
}

struct CommonFixture: Decodable {
    struct Betas: Decodable {
        let config: SchedulerConfig
        let betas: String
        let alphas_cumprod: String
    }
    let shape: [Int]
    let probe: [Int]
    let x0: String
    let noise: String
    let base: String
    let noise_schedules: [String: Betas]
}

enum Fixtures {
    static func url(_ name: String) throws -> URL {
        let root = try #require(Bundle.module.resourceURL)
        return root.appendingPathComponent("Fixtures/schedulers/\(name).json")
    }

    static func load<T: Decodable>(_ type: T.Type, _ name: String) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: url(name)))
    }

    static let common: CommonFixture? = try? load(CommonFixture.self, "common")

    /// The kinds the fixture script wrote, one file each.
    static let kinds = ["ddim", "ddim_eta", "ddpm", "pndm", "pndm_prk", "lms", "lms_karras", "euler", "euler_karras",
                        "euler_a", "heun", "dpmpp_2m", "dpmpp_2m_karras", "dpmpp_2m_sde", "dpmpp_2m_sde_karras",
                        "dpmpp_3m", "unipc", "lcm"]
}

/// Little-endian float32 bytes in base64, as the script writes tensors.
func floats(_ base64: String) throws -> [Float] {
    let data = try #require(Data(base64Encoded: base64))
    return data.withUnsafeBytes { raw in
        (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
    }
}

/// The script's `counter_noise`: a splitmix64 hash of (draw, index) mapped to [−1.5, 1.5) in float32.
struct CounterNoise: NoiseSource {
    var draws: [Int] = []

    mutating func normal(count: Int) -> [Float] {
        let draw = UInt64(draws.count)
        draws.append(count)
        return (0..<count).map { j in
            var z = draw &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(j) &* 0xBF58_476D_1CE4_E5B9 &+ 0x94D0_49BB_1331_11EB
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            let u = Float(z >> 40) / Float(1 << 24)
            return (u - 0.5) * 3
        }
    }

    mutating func uniform(count: Int) -> [Float] { Array(repeating: 0.5, count: count) }
}

/// The script's `fake_model`: a stand-in UNet depending on the scaled sample and the timestep.
func fakeModel(_ scaled: [Float], timestep: Double, base: [Float]) -> [Float] {
    let c1 = Float(0.05 + 0.9 * timestep / 1000.0)
    let c2 = Float(0.5 - 0.3 * timestep / 1000.0)
    return zip(scaled, base).map { x, b in let p = x * c1, q = b * c2; return p + q }
}

/// Largest differences seen: absolute, relative (over |reference| ≥ 1e-3), and scaled (absolute
/// over the largest magnitude among the reference tensor and the step's input latent, at least 1)
/// — the figure the bounds apply to, since float32 cancellation (x − σ·ε at σ = 4096) and elements
/// near zero inherit the rounding of the operands.
struct ErrorStats: CustomStringConvertible {
    var maxAbs: Double = 0
    var maxRel: Double = 0
    var maxScaled: Double = 0
    var count = 0

    mutating func add(_ actual: [Float], _ expected: [Float], input: [Float] = []) {
        let magnitudes = (expected + input).map { abs(Double($0)) }.filter(\.isFinite)
        let scale = max(1, magnitudes.max() ?? 1)
        for (a, e) in zip(actual, expected) {
            count += 1
            if a.isNaN && e.isNaN { continue }
            let d = abs(Double(a) - Double(e))
            let diff = d.isNaN ? Double.infinity : d
            maxAbs = max(maxAbs, diff)
            maxScaled = max(maxScaled, diff / scale)
            if abs(e) >= 1e-3 { maxRel = max(maxRel, diff / Double(abs(e))) }
        }
    }

    mutating func merge(_ other: ErrorStats) {
        maxAbs = max(maxAbs, other.maxAbs); maxRel = max(maxRel, other.maxRel)
        maxScaled = max(maxScaled, other.maxScaled); count += other.count
    }

    var description: String {
        String(format: "max scaled %.3g, max abs %.3g, max rel %.3g over %d values", maxScaled, maxAbs, maxRel, count)
    }
}
