import ChiselCore
import ChiselDiffusion
import ChiselModels
import ChiselStages
import ChiselTensor

/// Whether a VAE pass runs over tiles (diffusers' `vae.enable_tiling()`): `on` tiles wherever
/// diffusers would (a side over the config's `sample_size`), `off` never, `auto` only where
/// an untiled pass would need more than `VAETiling.untiledBudget` of activations.
public enum VAETiling: String, ParamChoice {
    case auto, on, off

    /// 4 GiB: an SD VAE decodes about 1180² untiled within it; 2048² needs tiles.
    public static let untiledBudget = 4 << 30

    /// Validation's half of tiling: `on` needs a VAE that tiles (AutoencoderKL).
    static func check(_ check: inout StageCheck, _ facts: StableDiffusionFacts?) throws {
        guard let facts, try check[param] == .on, !facts.vaeTiles else { return }
        check.reject(param, "tiling applies to AutoencoderKL VAEs; this model's VAE is \(facts.vaeClass)")
    }

    public static let param = Param<VAETiling>(
        "tiling", default: .auto,
        "on: tiles as diffusers' vae.enable_tiling() (sample_size tiles, 25% overlap, linear blending); off: never; auto: where an untiled pass would need over 4 GiB.")

    /// The VAE to tile with, or nil for an untiled pass.
    func tiled(_ vae: any LatentAutoencoder, tiles: (AutoencoderKL) -> Bool, pixels: Int, call: StageCall) throws -> AutoencoderKL? {
        switch self {
        case .off:
            return nil
        case .on:
            guard let kl = vae as? AutoencoderKL else {
                throw call.failure("tiling applies to AutoencoderKL VAEs; this model's VAE is \(vae.className)", code: .invalidParameter)
            }
            return tiles(kl) ? kl : nil
        case .auto:
            guard let kl = vae as? AutoencoderKL, tiles(kl), kl.untiledPeakBytes(pixels: pixels) > Self.untiledBudget else { return nil }
            call.context.note("tiling the VAE (\(pixels / 1_000_000) MP would need \(kl.untiledPeakBytes(pixels: pixels) >> 30) GiB untiled)")
            return kl
        }
    }
}

/// Encodes an image into the checkpoint's latent space (`vae.encode(image).latent_dist`),
/// scaled by the VAE's scaling factor.
public enum VAEEncodeStage: Stage {
    public enum Sampling: String, ParamChoice {
        /// A sample of the latent distribution, its noise drawn from the stream (diffusers' img2img).
        case sample
        /// The distribution's mean (no draw).
        case mean
    }

    public static let model = DiffusionParams.model
    public static let image = Input<Image>("image", "The image; its sides must be multiples of the VAE's downscale (8 for SD).")
    public static let mask = OptionalInput<Mask>(
        "mask", "Blank the area to repaint (mask ≥ 0.5) first, as inpainting models take their masked-image latent.")
    public static let stream = OptionalInput<Latent>(
        "stream", "A latent whose random stream this draw continues (the order of one pipeline's draws).")
    public static let latent = Output<Latent>("latent", "The scaled latent, carrying the random stream.")
    public static let sampling = Param<Sampling>("sampling", default: .sample, "sample (diffusers) or mean.")
    public static let seed = DiffusionParams.seed
    public static let rng = DiffusionParams.rng
    public static let tiling = VAETiling.param

    public static let schema = StageSchema(
        "vae_encode", "Encode an image to a latent with the checkpoint's VAE (sampled from the stream, or the mean).",
        inputs: [model, image, mask, stream], outputs: [latent], params: [sampling, seed, rng, tiling])

    public static func validate(_ check: inout StageCheck) throws {
        try VAETiling.check(&check, DiffusionParams.facts(&check))
    }

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let sd = try DiffusionParams.stableDiffusion(call)
        let image = try call[Self.image]
        let factor = sd.vae.downscale
        guard image.width % factor == 0, image.height % factor == 0 else {
            throw call.failure("the image is \(image.width)×\(image.height); the VAE needs sides that are multiples of \(factor) "
                               + "(resize with multiple_of \(factor))", code: .invalidParameter)
        }
        let mask = try call.mask(call[Self.mask], sizedFor: image.width, image.height)
        let pixels = try VAEPixels.tensor(image, blank: mask)
        let encoding: LatentEncoding
        if let kl = try call[tiling].tiled(sd.vae, tiles: { $0.tilesEncode(width: image.width, height: image.height) },
                                           pixels: image.width * image.height, call: call) {
            let (mean, std) = try kl.encodeTiled(pixels)
            encoding = .distribution(mean: mean, std: std)
        } else {
            encoding = try sd.vae.encodeLatents(pixels)
        }
        switch encoding {
        case .distribution(let m, let std):
            try FiniteCheck.require(m, network: "VAE encoder", step: "the latent mean", call)
            try FiniteCheck.require(std, network: "VAE encoder", step: "the latent deviation", call)
        case .latents(let m):
            try FiniteCheck.require(m, network: "VAE encoder", call)
        }
        let mean: Tensor
        var values: [Float]
        var stream: NoiseStream?
        switch encoding {
        case .distribution(let m, let std) where try call[sampling] == .sample:
            mean = m
            values = try m.toNCHW()
            var source = try DiffusionParams.stream(call, continuing: try call[Self.stream])
            let deviation = try std.toNCHW()
            let eps = source.normal(count: values.count)
            for i in values.indices { values[i] += deviation[i] * eps[i] }
            stream = source
        case .latents(let m) where try call[sampling] == .sample:
            // An encoder without a distribution (TAESD): diffusers draws nothing here, and the
            // stream starts (or continues) untouched for the next draw.
            mean = m
            values = try m.toNCHW()
            stream = try DiffusionParams.stream(call, continuing: try call[Self.stream])
        case .distribution(let m, _), .latents(let m):
            mean = m
            values = try m.toNCHW()
            stream = try call[Self.stream]?.diffusion?.stream
        }
        let scale = Float(sd.vae.scalingFactor)
        for i in values.indices { values[i] *= scale }
        let shape = [mean.shape[0], mean.shape[3], mean.shape[1], mean.shape[2]]
        return [latent(try Latent(shape: shape, values: values, noise: stream.map { DiffusionState(stream: $0) },
                                  origin: image.origin))]
    }
}

/// Decodes a latent to an image with the checkpoint's VAE (`vae.decode(latents / scaling_factor)`).
public enum VAEDecodeStage: Stage {
    public static let model = DiffusionParams.model
    public static let latent = Input<Latent>("latent", "The latent to decode.")
    public static let image = Output<Image>("image", "The decoded RGB image, samples in [0, 1].")
    public static let tiling = VAETiling.param

    public static let schema = StageSchema(
        "vae_decode", "Decode a latent to an image with the checkpoint's VAE.",
        inputs: [model, latent], outputs: [image], params: [tiling])

    public static func validate(_ check: inout StageCheck) throws {
        try VAETiling.check(&check, DiffusionParams.facts(&check))
    }

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let sd = try DiffusionParams.stableDiffusion(call)
        var latent = try call[Self.latent]
        guard latent.channels == sd.vae.latentChannels else {
            throw call.failure("the latent has \(latent.channels) channels; this VAE decodes \(sd.vae.latentChannels)",
                               code: .invalidParameter)
        }
        let scale = Float(sd.vae.scalingFactor)
        latent.values = latent.values.map { $0 / scale }
        let input = try latent.channelsLast()
        let (w, h) = (latent.width, latent.height)
        let decoded = try call[tiling].tiled(sd.vae, tiles: { $0.tilesDecode(width: w, height: h) },
                                             pixels: w * h * sd.vae.downscale * sd.vae.downscale, call: call)
            .map { try $0.decodeTiled(input) } ?? sd.vae.decode(input)
        guard decoded.shape[0] == 1 else {
            throw call.failure("vae_decode makes one image; the latent holds a batch of \(decoded.shape[0])", code: .invalidParameter)
        }
        try FiniteCheck.require(decoded, network: "VAE decoder", call)
        var result = try VAEPixels.image(decoded, origin: latent.origin)
        result.generation = latent.diffusion?.generation
        return [image(result)]
    }
}

/// A latent of zeros at an image size, for text-to-image: `add_noise` with `pure_noise` turns it
/// into the initial noise.
public enum EmptyLatentStage: Stage {
    public static let model = DiffusionParams.model
    public static let like = OptionalInput<Image>("like", "An image whose size the latent takes (instead of width and height).")
    public static let latent = Output<Latent>("latent", "Zeros of the model's latent channels at width/8 × height/8.")
    public static let width = Param<Int>("width", default: 512, range: 8...16384, "Image width in pixels.")
    public static let height = Param<Int>("height", default: 512, range: 8...16384, "Image height in pixels.")

    public static let schema = StageSchema(
        "empty_latent", "A blank latent of an image size, to generate from noise (text-to-image).",
        inputs: [model, like], outputs: [latent], params: [width, height])

    public static func validate(_ check: inout StageCheck) throws {
        guard let facts = DiffusionParams.facts(&check), !check.isConnected(like) else { return }
        let factor = facts.vaeDownscale
        for side in [width, height] where try check[side] % factor != 0 {
            check.reject(side, "\(try check[side]) is not a multiple of the VAE's downscale \(factor)")
        }
    }

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let sd = try DiffusionParams.stableDiffusion(call)
        let like = try call[Self.like]
        let w = try like?.width ?? call[width]
        let h = try like?.height ?? call[height]
        let factor = sd.vae.downscale
        guard w % factor == 0, h % factor == 0 else {
            throw call.failure("\(w)×\(h) is not a multiple of the VAE's downscale \(factor)", code: .invalidParameter)
        }
        let shape = [1, sd.unet.config.outChannels, h / factor, w / factor]
        return [latent(try Latent(shape: shape, values: [Float](repeating: 0, count: shape.reduce(1, *)), origin: like?.origin))]
    }
}
