import ChiselBase
/// What a latent on the wire carries for the diffusion stages besides its values: the random
/// stream to continue and, once noised, where it sits on a schedule and the noise it was given.
public struct DiffusionState: Sendable {
    /// The stream the next draw continues; nil when no stage has drawn yet.
    public var stream: NoiseStream?
    /// Where the latent sits on a schedule; nil for a clean latent.
    public var schedule: NoiseState?
    /// The noise `add_noise` drew (N×C×H×W), which 4-channel inpainting reuses to noise the
    /// original latent at every step, as diffusers does.
    public var initialNoise: [Float]?
    /// The settings of the denoise that made the latent, for the saved image's metadata, as
    /// AUTOMATIC1111's `parameters` keys and values in order.
    public var generation: GenerationInfo?

    public init(stream: NoiseStream? = nil, schedule: NoiseState? = nil, initialNoise: [Float]? = nil,
                generation: GenerationInfo? = nil) {
        self.stream = stream
        self.schedule = schedule
        self.initialNoise = initialNoise
        self.generation = generation
    }

    public var summary: String {
        var parts: [String] = []
        if let schedule { parts.append(schedule.summary) } else { parts.append("clean") }
        if let stream { parts.append("\(stream.kind.rawValue) stream from seed \(stream.seed)") }
        return parts.joined(separator: ", ")
    }
}
