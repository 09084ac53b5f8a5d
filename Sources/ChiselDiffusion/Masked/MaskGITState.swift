import ChiselBase
/// What a token grid carries between the masked-token stages: the random stream to continue and,
/// once `mask_tokens` has chosen a starting point, the decoding plan, so that masking and
/// predicting are separate stages that still draw and step as one aMUSEd pipeline does.
public struct MaskGITState: Sendable, Equatable {
    /// The stream the next draw continues; nil when no stage has drawn yet.
    public var stream: NoiseStream?
    /// Where decoding starts; nil means "from the first step of whatever predict_tokens sets".
    public var plan: MaskGITPlan?
    /// The settings of the prediction that made the grid, for the saved image's metadata.
    public var generation: GenerationInfo?

    public init(stream: NoiseStream? = nil, plan: MaskGITPlan? = nil, generation: GenerationInfo? = nil) {
        self.stream = stream
        self.plan = plan
        self.generation = generation
    }

    public var summary: String {
        var parts = [plan?.summary ?? "no decoding plan"]
        if let stream { parts.append("cpu stream from seed \(stream.seed)") }
        return parts.joined(separator: ", ")
    }

    public static func == (a: MaskGITState, b: MaskGITState) -> Bool {
        // Streams compare by seed: two grids from one seed and plan are the same grid.
        a.plan == b.plan && a.generation == b.generation && a.stream?.seed == b.stream?.seed
    }
}

/// The decoding plan a masking stage hands to prediction: the step count, the first step to run
/// and the schedule, as aMUSEd's img2img (`start = N − int(N × strength)`) and inpainting
/// (`starting_mask_ratio`, linear schedule) pipelines set them.
public struct MaskGITPlan: Sendable, Equatable {
    public var steps: Int
    public var startStep: Int
    public var schedule: MaskGITScheduler.Schedule
    /// The inpainting pipeline's scale on the schedule: the masked fraction of the grid.
    public var startingMaskRatio: Double
    public var strength: Double

    public init(steps: Int, startStep: Int, schedule: MaskGITScheduler.Schedule, startingMaskRatio: Double = 1,
                strength: Double = 1) {
        self.steps = steps
        self.startStep = startStep
        self.schedule = schedule
        self.startingMaskRatio = startingMaskRatio
        self.strength = strength
    }

    /// The first step aMUSEd's img2img and inpainting pipelines run: `N − int(N × strength)`.
    public static func startStep(steps: Int, strength: Double) -> Int {
        steps - min(steps, Int(Double(steps) * strength))
    }

    public var summary: String {
        "steps \(startStep + 1)…\(steps) of \(steps) (\(schedule.rawValue))"
            + (startingMaskRatio == 1 ? "" : ", schedule × \(startingMaskRatio)")
    }
}
