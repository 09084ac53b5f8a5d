import ChiselCore

/// Fills the masked area of an image with colours spread in from around it — AUTOMATIC1111's
/// "fill" masked content (`modules/masking.py` `fill`): the unmasked pixels, weighted by their
/// opacity, are blurred at σ 256, 64, 16, 4, 2 and 0 and laid over each other, so the hole takes
/// the surrounding colours, finer towards its edge, and the rest keeps its own.
public enum FillMaskedStage: Stage {
    public static let image = Input<Image>("image", "The image.")
    public static let mask = Input<Mask>("mask", "The area to fill (1), at the image's size.")
    public static let filled = Output<Image>("image", "The image with the masked area filled from around it (RGB).")

    public static let schema = StageSchema(
        "fill_masked", "Fill the masked area with colours blurred in from around it (AUTOMATIC1111's \"fill\" masked content).",
        inputs: [image, mask], outputs: [filled])

    /// A1111's passes: (blur σ, how many times the blurred layer is composited).
    static let passes: [(sigma: Double, repeats: Int)] = [(256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1)]

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let rgb = try call[image].converted(to: .rgb)
        guard let mask = try call.mask(call[Self.mask], sizedFor: rgb.width, rgb.height) else { return [filled(rgb)] }
        let (w, h) = (rgb.width, rgb.height)
        let n = w * h
        // Premultiplied layer: colour × opacity, opacity = 1 − mask.
        var layer = [Float](repeating: 0, count: 4 * n)
        for i in 0..<n {
            let alpha = 1 - min(1, max(0, mask.values[i]))
            for c in 0..<3 { layer[c * n + i] = rgb.pixels[c * n + i] * alpha }
            layer[3 * n + i] = alpha
        }
        var out = [Float](repeating: 0, count: 4 * n)  // premultiplied, starts transparent
        for pass in passes {
            let blurred = GaussianBlur.blur(layer, planes: 4, width: w, height: h, sigma: min(pass.sigma, Double(max(w, h))))
            for _ in 0..<pass.repeats {
                for i in 0..<n {
                    // Porter–Duff "over" in premultiplied form: out = src + out·(1 − src.alpha).
                    let keep = 1 - blurred[3 * n + i]
                    for c in 0..<4 { out[c * n + i] = blurred[c * n + i] + out[c * n + i] * keep }
                }
            }
        }
        var result = rgb
        for i in 0..<n {
            let alpha = out[3 * n + i]
            for c in 0..<3 { result.pixels[c * n + i] = alpha > 0 ? min(1, max(0, out[c * n + i] / alpha)) : 0 }
        }
        return [filled(result)]
    }
}
