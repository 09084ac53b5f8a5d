/// What a noise-prediction network outputs: `prediction_type` in a scheduler config (diffusers'
/// `SchedulerMixin` configs).
public enum PredictionType: String, Codable, Sendable, CaseIterable {
    /// The added noise ε (DDPM, Ho et al. 2020).
    case epsilon
    /// The velocity v = √ᾱ·ε − √(1−ᾱ)·x₀ (Salimans & Ho 2022), as SD 2.x 768 models predict.
    case vPrediction = "v_prediction"
    /// The clean sample x₀.
    case sample
    /// Flow-matching models (SD3, Flux); no scheduler here implements it, so every class rejects it.
    case flowPrediction = "flow_prediction"

    /// The parameterisations of Stable Diffusion 1.x/2.x checkpoints.
    public static let stableDiffusion: [PredictionType] = [.epsilon, .vPrediction, .sample]
}
