import ChiselCore
import ChiselDiffusion
import ChiselModels
import ChiselTensor

extension RNGKind: ParamChoice {}

/// The parameters and conversions the model stages share.
enum DiffusionParams {
    static let model = ModelInput("model", "A Stable Diffusion checkpoint from the graph's models section.")

    static let seed = Param<Seed>(
        seed: "seed",
        "Seed of the random stream; -1 continues the input latent's stream, or draws a random seed (reported) when it has none.")
    static let rng = Param<RNGKind>(
        "rng", default: .cpu, "Generator: cpu (PyTorch's CPU generator, as diffusers and ComfyUI) or cuda (AUTOMATIC1111's NV Philox).")

    /// The stream a stage draws from: a fresh one for an explicit seed, else the one `latent`
    /// carries, else a fresh one from a random seed (reported as a note).
    static func stream(_ call: StageCall, continuing latent: Latent?) throws -> NoiseStream {
        if let seed = try call[Self.seed].value { return NoiseStream(seed: seed, kind: try call[rng]) }
        if let stream = latent?.diffusion?.stream { return stream }
        let drawn = RandomSeed.resolve(nil)
        call.context.note("seed \(drawn) (drawn at random)")
        call.context.record(Self.seed, .fixed(drawn))
        return NoiseStream(seed: drawn, kind: try call[rng])
    }

    /// What validation knows of the Stable Diffusion checkpoint on the model input; an aMUSEd
    /// model there is reported. Nil when the model's configs cannot be read before loading.
    static func facts(_ check: inout StageCheck) -> StableDiffusionFacts? {
        switch ModelFacts(check.source(of: model)) {
        case .stableDiffusion(let facts)?:
            return facts
        case .amused?:
            check.reject(input: model, "this stage takes a Stable Diffusion checkpoint; the model is an aMUSEd one "
                         + "(vq_encode, mask_tokens, predict_tokens and vq_decode edit with it)", code: .model)
            return nil
        case .t2iAdapter?:
            check.reject(input: model, "this stage takes a Stable Diffusion checkpoint; the model is a T2I-Adapter "
                         + "(connect it to a t2i_adapter node, whose control output goes to denoise)", code: .model)
            return nil
        case .controlNet?:
            check.reject(input: model, "this stage takes a Stable Diffusion checkpoint; the model is a ControlNet "
                         + "(connect it to a controlnet node, whose control output goes to denoise)", code: .model)
            return nil
        case nil:
            return nil
        }
    }

    static func stableDiffusion(_ call: StageCall) throws -> StableDiffusionModel {
        try call.model(model, as: StableDiffusionModel.self)
    }
}

/// Images to and from the VAE's pixel space, as diffusers' `VaeImageProcessor` does.
enum VAEPixels {
    /// An RGB image as an N×H×W×3 tensor in [-1, 1] (`preprocess`: ×2 − 1). Where `blank` is
    /// set (a mask, 1 = edit, binarised at 0.5), the pixels are 0, as the inpainting pipelines
    /// blank the area to repaint (`image * (mask < 0.5)`).
    /// `normalized` false keeps the samples in [0, 1] (aMUSEd's VQ model, `do_normalize=False`).
    static func tensor(_ image: Image, blank mask: Mask? = nil, normalized: Bool = true) throws -> Tensor {
        let rgb = image.converted(to: .rgb)
        let (w, h) = (rgb.width, rgb.height)
        let n = w * h
        var data = [Float](repeating: 0, count: n * 3)
        for i in 0..<n {
            let keep: Float = mask.map { $0.values[i] >= 0.5 ? 0 : 1 } ?? 1
            for c in 0..<3 {
                let v = rgb.pixels[c * n + i]
                data[i * 3 + c] = (normalized ? v * 2 - 1 : v) * keep
            }
        }
        return try Tensor(shape: [1, h, w, 3], data: data)
    }

    /// A decoded N×H×W×3 tensor as an RGB image in [0, 1] (`postprocess`: /2 + 0.5, clamped;
    /// with `normalized` false only clamped).
    static func image(_ tensor: Tensor, origin: ImageOrigin?, normalized: Bool = true) throws -> Image {
        let (h, w) = (tensor.shape[1], tensor.shape[2])
        let n = w * h
        var pixels = [Float](repeating: 0, count: n * 3)
        for i in 0..<n {
            for c in 0..<3 {
                let v = tensor.data[i * 3 + c]
                pixels[c * n + i] = min(1, max(0, normalized ? v / 2 + 0.5 : v))
            }
        }
        // A model's image keeps the depth of the file its latent came from (16-bit PNG in, 16-bit out).
        return try Image(width: w, height: h, layout: .rgb, pixels: pixels, bitDepth: origin?.bitDepth ?? 8, origin: origin)
    }
}

/// A mask at latent size, as `torch.nn.functional.interpolate(mask, size)` (nearest) after the
/// inpainting pipelines' mask processor binarised it at 0.5.
enum LatentMask {
    static func values(_ mask: Mask, width: Int, height: Int, binarize: Bool = true) -> [Float] {
        var out = [Float](repeating: 0, count: width * height)
        for y in 0..<height {
            let sy = min(mask.height - 1, y * mask.height / height)
            for x in 0..<width {
                let sx = min(mask.width - 1, x * mask.width / width)
                let v = mask.values[sy * mask.width + sx]
                out[y * width + x] = binarize ? (v >= 0.5 ? 1 : 0) : min(1, max(0, v))
            }
        }
        return out
    }
}
