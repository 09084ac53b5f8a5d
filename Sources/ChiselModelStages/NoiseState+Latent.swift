import ChiselCore
import ChiselDiffusion

/// A latent on the wire carries its diffusion state (random stream, schedule position).
extension DiffusionState: LatentNoise {
    public func isSame(as other: any LatentNoise) -> Bool {
        guard let other = other as? DiffusionState else { return false }
        return schedule == other.schedule && stream?.seed == other.stream?.seed && initialNoise == other.initialNoise
    }
}

extension Latent {
    /// The diffusion state the stages put on this latent, if any.
    public var diffusion: DiffusionState? { noise as? DiffusionState }

    /// Where the latent sits on a schedule; nil for a clean latent.
    public var noiseState: NoiseState? { diffusion?.schedule }
}
