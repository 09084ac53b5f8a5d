/// What a noise-prediction network outputs, from `prediction_type` in a scheduler config
/// (diffusers' `SchedulerMixin` configs).
public enum PredictionType: String, Sendable, CaseIterable {
    /// The added noise ε (DDPM, Ho et al. 2020).
    case epsilon
    /// The velocity v = √ᾱ·ε − √(1−ᾱ)·x₀ (Salimans & Ho 2022), as SD 2.x 768 models predict.
    case vPrediction = "v_prediction"
    /// The clean sample x₀.
    case sample
}
