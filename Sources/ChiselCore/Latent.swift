/// Where a latent sits on a diffusion schedule, so that the stage that adds noise and the stage
/// that removes it agree without sharing anything but the value on the wire.
public struct NoiseState: Sendable, Equatable {
    /// The scheduler the noise level belongs to, e.g. `euler` or `dpmpp_2m_karras`.
    public var scheduler: String
    /// The number of inference steps of the whole schedule.
    public var steps: Int
    /// The index of the next step to take in that schedule.
    public var stepIndex: Int
    /// The model timestep at `stepIndex`.
    public var timestep: Double
    /// The noise standard deviation at `stepIndex` (σ in the Karras et al. 2022 formulation).
    public var sigma: Double
    /// The seed the noise was drawn from, so that later stages can continue the same stream.
    public var seed: UInt64?

    public init(scheduler: String, steps: Int, stepIndex: Int, timestep: Double, sigma: Double, seed: UInt64? = nil) {
        self.scheduler = scheduler
        self.steps = steps
        self.stepIndex = stepIndex
        self.timestep = timestep
        self.sigma = sigma
        self.seed = seed
    }
}

/// A latent tensor in N×C×H×W layout, with the noise state it carries.
///
/// A latent from a VAE encoder has `noise == nil` (clean); a partially noised latent records the
/// schedule position it sits at.
public struct Latent: Sendable, Equatable {
    public private(set) var shape: [Int]
    public var values: [Float]
    public var noise: NoiseState?
    /// The image the latent was encoded from, for save-path templates further down.
    public var origin: ImageOrigin?

    public init(shape: [Int], values: [Float], noise: NoiseState? = nil, origin: ImageOrigin? = nil) throws {
        guard shape.count == 4, shape.allSatisfy({ $0 > 0 }) else {
            throw ChiselError(.internal, "a latent must be N×C×H×W with positive sizes, got \(shape)")
        }
        let count = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).partialValue }
        guard count == values.count else {
            throw ChiselError(.internal, "latent of shape \(shape) needs \(count) values, got \(values.count)")
        }
        self.shape = shape
        self.values = values
        self.noise = noise
        self.origin = origin
    }

    public var batch: Int { shape[0] }
    public var channels: Int { shape[1] }
    public var height: Int { shape[2] }
    public var width: Int { shape[3] }
}
