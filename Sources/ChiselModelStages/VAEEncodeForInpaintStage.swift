import ChiselCore
import ChiselModels
import ChiselStages
import ChiselTensor

/// ComfyUI's VAEEncodeForInpaint: the image cropped to the VAE's multiple (centred), its masked
/// pixels set to grey (0.5) where the mask rounds to 1, encoded to the posterior mean; and the
/// mask grown by `grow_mask_by` pixels (a box of that size, as ComfyUI's convolution with its
/// padding places it: ⌈(g−1)/2⌉ before, the rest after) and rounded, for `ksampler`'s mask.
/// With the mask's area grey, ComfyUI's users run it at denoise 1.
public enum VAEEncodeForInpaintStage: Stage {
    public static let model = DiffusionParams.model
    public static let image = Input<Image>("image", "The image to inpaint.")
    public static let mask = Input<Mask>("mask", "Where to repaint (1), at the image's size.")
    public static let latent = Output<Latent>("latent", "The latent of the grey-filled image (scaled).")
    public static let grownMask = Output<Mask>("mask", "The grown, rounded mask: ksampler's mask input.")
    public static let growMaskBy = Param<Int>("grow_mask_by", default: 6, range: 0...64,
                                              "Pixels to grow the mask by (ComfyUI's default 6).")

    public static let schema = StageSchema(
        "vae_encode_for_inpaint", "ComfyUI's VAEEncodeForInpaint: grey out the masked area, encode, and grow the mask for ksampler.",
        inputs: [model, image, mask], outputs: [latent, grownMask], params: [growMaskBy])

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let sd = try DiffusionParams.stableDiffusion(call)
        let full = try call[image].converted(to: .rgb)
        guard let sizedMask = try call.mask(call[mask], sizedFor: full.width, full.height) else {
            throw call.failure("no mask", code: .invalidParameter)
        }
        let factor = sd.vae.downscale
        let (width, height) = (full.width / factor * factor, full.height / factor * factor)
        guard width > 0, height > 0 else {
            throw call.failure("the image is \(full.width)×\(full.height), smaller than the VAE's \(factor)-pixel grid",
                               code: .invalidParameter)
        }
        let (x0, y0) = ((full.width % factor) / 2, (full.height % factor) / 2)
        let plane = width * height, fullPlane = full.width * full.height
        var maskValues = [Float](repeating: 0, count: plane)
        var pixels = [Float](repeating: 0, count: plane * 3)
        for y in 0..<height {
            for x in 0..<width {
                let source = (y + y0) * full.width + x + x0
                maskValues[y * width + x] = sizedMask.values[source]
                for c in 0..<3 { pixels[c * plane + y * width + x] = full.pixels[c * fullPlane + source] }
            }
        }
        // Grey where the mask rounds to 1, as ComfyUI computes it: (p − 0.5)·keep + 0.5.
        let rounded = maskValues.map { $0.rounded(.toNearestOrEven) }
        for c in 0..<3 {
            for i in 0..<plane { pixels[c * plane + i] = (pixels[c * plane + i] - 0.5) * (1 - rounded[i]) + 0.5 }
        }
        let filled = try Image(width: width, height: height, layout: .rgb, pixels: pixels, origin: full.origin)
        let grown = try Mask(width: width, height: height, values: Self.grow(rounded, maskValues, width: width, height: height,
                                                                             by: try call[growMaskBy]), origin: sizedMask.origin)
        let encoding = try sd.vae.encodeLatents(try VAEPixels.tensor(filled))
        let mean: Tensor
        switch encoding {
        case .distribution(let m, _), .latents(let m): mean = m
        }
        try FiniteCheck.require(mean.data, network: "VAE encoder", step: "the latent mean", call)
        var values = try mean.toNCHW()
        let scale = Float(sd.vae.scalingFactor)
        for i in values.indices { values[i] *= scale }
        let shape = [mean.shape[0], mean.shape[3], mean.shape[1], mean.shape[2]]
        return [latent(try Latent(shape: shape, values: values, origin: full.origin)), grownMask(grown)]
    }

    /// ComfyUI's mask growth: with g > 0, 1 where any rounded value in the g×g box from ⌈(g−1)/2⌉
    /// before to the rest after is 1; with g = 0 the mask rounded.
    static func grow(_ rounded: [Float], _ values: [Float], width: Int, height: Int, by g: Int) -> [Float] {
        guard g > 0 else { return values.map { $0.rounded(.toNearestOrEven) } }
        let before = g / 2   // ⌈(g − 1) / 2⌉
        var out = [Float](repeating: 0, count: width * height)
        for y in 0..<height {
            for x in 0..<width {
                search: for dy in 0..<g {
                    let sy = y - before + dy
                    guard sy >= 0, sy < height else { continue }
                    for dx in 0..<g {
                        let sx = x - before + dx
                        if sx >= 0, sx < width, rounded[sy * width + sx] > 0 {
                            out[y * width + x] = 1
                            break search
                        }
                    }
                }
            }
        }
        return out
    }
}
