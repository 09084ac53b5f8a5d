import ChiselCore
import ChiselDiffusion
import ChiselModels
import ChiselTensor

/// Encodes an image into the VQ model's token grid: `vqvae.encode` then the nearest codebook
/// entry of every latent vector (`vqvae.quantize`), as aMUSEd's img2img and inpainting
/// pipelines tokenise their input.
public enum VQEncodeStage: Stage {
    public static let model = MaskedTokenParams.model
    public static let image = Input<Image>("image", "The image; its sides must be multiples of the VQ model's downscale (16 for aMUSEd).")
    public static let tokens = Output<Tokens>("tokens", "The token grid (nothing masked, confidence 1).")

    public static let schema = StageSchema(
        "vq_encode", "Encode an image to a grid of VQ codebook tokens with an aMUSEd model's VQ-GAN.",
        inputs: [model, image], outputs: [tokens])

    public static func validate(_ check: inout StageCheck) throws {
        MaskedTokenParams.facts(&check)
    }

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let amused = try MaskedTokenParams.amused(call)
        let image = try call[Self.image]
        let factor = amused.vq.scaleFactor
        guard image.width % factor == 0, image.height % factor == 0 else {
            throw call.failure("the image is \(image.width)×\(image.height); the VQ model needs sides that are multiples of "
                               + "\(factor) (resize with multiple_of \(factor))", code: .invalidParameter)
        }
        let encoded = try amused.vq.encode(VQPixels.tensor(image))
        try FiniteCheck.require(encoded, network: "VQ encoder", call)
        let ids = try amused.vq.quantize(encoded)
        let (w, h) = (image.width / factor, image.height / factor)
        return [tokens(try Tokens(width: w, height: h, ids: ids, masked: Array(repeating: false, count: ids.count),
                                  confidence: Array(repeating: 1, count: ids.count), codebookSize: amused.vq.codebookSize,
                                  pixelsPerToken: factor, origin: image.origin))]
    }
}

/// Decodes a token grid to an image: codebook lookup, `post_quant_conv`, the decoder, clipped to
/// [0, 1] (`vqvae.decode(…, force_not_quantize=True).sample.clip(0, 1)`).
public enum VQDecodeStage: Stage {
    public static let model = MaskedTokenParams.model
    public static let tokens = Input<Tokens>("tokens", "A complete token grid (predict_tokens first if some are masked).")
    public static let image = Output<Image>("image", "The decoded RGB image, samples in [0, 1].")

    public static let schema = StageSchema(
        "vq_decode", "Decode a grid of VQ codebook tokens to an image with an aMUSEd model's VQ-GAN.",
        inputs: [model, tokens], outputs: [image])

    public static func validate(_ check: inout StageCheck) throws {
        MaskedTokenParams.facts(&check)
    }

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let amused = try MaskedTokenParams.amused(call)
        let grid = try call[Self.tokens]
        try MaskedTokenParams.checkFits(grid, amused, call: call, input: Self.tokens.name)
        guard grid.maskedCount == 0 else {
            throw call.failure("\(grid.maskedCount) of the \(grid.count) tokens are still masked; predict them first "
                               + "(predict_tokens)", code: .invalidParameter)
        }
        let decoded = try amused.vq.decode(ids: grid.ids, batch: 1, height: grid.height, width: grid.width)
        try FiniteCheck.require(decoded, network: "VQ decoder", call)
        var result = try VQPixels.image(decoded, origin: grid.origin)
        result.generation = grid.maskGIT?.generation
        return [image(result)]
    }
}

/// A grid of masked tokens at an image size, for text-to-image (the pipeline's
/// `torch.full(shape, mask_token_id)`).
public enum EmptyTokensStage: Stage {
    public static let model = MaskedTokenParams.model
    public static let like = OptionalInput<Image>("like", "An image whose size the grid takes (instead of width and height).")
    public static let tokens = Output<Tokens>("tokens", "Every token masked, at width/16 × height/16 for aMUSEd.")
    public static let width = Param<Int?>("width", range: 1...16384, "Image width in pixels; unset takes the model's own size.")
    public static let height = Param<Int?>("height", range: 1...16384, "Image height in pixels; unset takes the model's own size.")

    public static let schema = StageSchema(
        "empty_tokens", "A grid of masked tokens of an image size, to generate from (text-to-image).",
        inputs: [model, like], outputs: [tokens], params: [width, height])

    public static func validate(_ check: inout StageCheck) throws {
        guard let facts = MaskedTokenParams.facts(&check), !check.isConnected(like) else { return }
        let multiple = facts.sizeMultiple
        for side in [width, height] {
            if let value = try check[side], value % multiple != 0 {
                check.reject(side, "\(value) is not a multiple of \(multiple), the size of \(multiple == facts.vqDownscale ? "" : "two ")"
                             + "the model's tokens\(multiple == facts.vqDownscale ? "" : " (its transformer halves the grid)")")
            }
        }
    }

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let amused = try MaskedTokenParams.amused(call)
        let like = try call[Self.like]
        let w = try like?.width ?? call[width] ?? amused.defaultImageSide
        let h = try like?.height ?? call[height] ?? amused.defaultImageSide
        let factor = amused.vq.scaleFactor
        guard w % factor == 0, h % factor == 0 else {
            throw call.failure("\(w)×\(h) is not a multiple of the VQ model's downscale \(factor)", code: .invalidParameter)
        }
        let count = (w / factor) * (h / factor)
        let grid = try Tokens(width: w / factor, height: h / factor, ids: Array(repeating: 0, count: count),
                              masked: Array(repeating: true, count: count), confidence: Array(repeating: 0, count: count),
                              codebookSize: amused.codebookSize, pixelsPerToken: factor, origin: like?.origin)
        try MaskedTokenParams.checkFits(grid, amused, call: call, input: Self.tokens.name)
        return [tokens(grid)]
    }
}

/// Images to and from the VQ model's pixel space: aMUSEd's image processor does not normalise,
/// so pixels stay in [0, 1].
enum VQPixels {
    static func tensor(_ image: Image) throws -> Tensor { try VAEPixels.tensor(image, normalized: false) }

    static func image(_ tensor: Tensor, origin: ImageOrigin?) throws -> Image {
        try VAEPixels.image(tensor, origin: origin, normalized: false)
    }

    /// A per-token value map as a mask at the grid's pixel size (each token's block filled).
    static func mask(_ values: [Float], tokens: Tokens) throws -> Mask {
        let side = tokens.pixelsPerToken
        let (w, h) = (tokens.width * side, tokens.height * side)
        var out = [Float](repeating: 0, count: w * h)
        for y in 0..<h {
            for x in 0..<w { out[y * w + x] = values[(y / side) * tokens.width + x / side] }
        }
        return try Mask(width: w, height: h, values: out, origin: tokens.origin)
    }
}
