import ChiselCore
import ChiselDiffusion

/// A latent on the wires carries its diffusion noise level as a `NoiseState`.
extension NoiseState: LatentNoise {}

extension Latent {
    /// The noise state the diffusion stages put on this latent, if any.
    public var noiseState: NoiseState? { noise as? NoiseState }
}
