import ChiselCore
import ChiselDiffusion

/// Replaces the masked area of a clean latent before it is noised — AUTOMATIC1111's "latent
/// noise" (standard normal noise from the stream) and "latent nothing" (zeros) masked content.
public enum FillLatentStage: Stage {
    public enum Fill: String, ParamChoice {
        /// Standard normal noise drawn from the random stream (A1111's "latent noise").
        case noise
        /// Zeros (A1111's "latent nothing").
        case zeros
    }

    public static let latent = Input<Latent>("latent", "The clean image latent (vae_encode).")
    public static let mask = Input<Mask>("mask", "The area to replace (1), at the image's size; binarised at 0.5 on the latent grid.")
    public static let filled = Output<Latent>("latent", "The latent with the masked area replaced, carrying the stream.")
    public static let fill = Param<Fill>("fill", default: .noise, "noise (A1111's latent noise) or zeros (latent nothing).")
    public static let seed = DiffusionParams.seed
    public static let rng = DiffusionParams.rng

    public static let schema = StageSchema(
        "fill_latent", "Replace a latent's masked area with noise or zeros (AUTOMATIC1111's latent noise / latent nothing).",
        inputs: [latent, mask], outputs: [filled], params: [fill, seed, rng])

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        var result = try call[latent]
        let small = LatentMask.values(try call[mask], width: result.width, height: result.height)
        let plane = result.width * result.height
        var state = result.diffusion ?? DiffusionState()
        var replacement = [Float](repeating: 0, count: result.values.count)
        if try call[fill] == .noise {
            var stream = try DiffusionParams.stream(call, continuing: result)
            replacement = stream.normal(count: result.values.count)
            state.stream = stream
        }
        for i in result.values.indices where small[i % plane] >= 0.5 { result.values[i] = replacement[i] }
        result.noise = state
        return [filled(result)]
    }
}
