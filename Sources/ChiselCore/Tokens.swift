/// What a token grid carries for the masked-token stages besides its ids: the random stream to
/// continue and the decoding plan (steps, where to start). The core knows no scheduler; the
/// MVTM stages put their state here and read it back, as latents carry `LatentNoise`.
public protocol TokenDecodingState: Sendable {
    /// A one-line description for logs and messages.
    var summary: String { get }
    /// Whether `other` is the same state (for `Tokens`' equality).
    func isSame(as other: any TokenDecodingState) -> Bool
}

/// A grid of VQ codebook indices, as masked-token models (MaskGIT, MUSE, aMUSEd) use them.
public struct Tokens: Sendable, Equatable {
    public private(set) var width: Int
    public private(set) var height: Int
    /// Row-major codebook indices. A masked token keeps the id it had, so a mask can be undone.
    public var ids: [Int32]
    /// Row-major: true where the token is masked (to be predicted).
    public var masked: [Bool]
    /// Row-major confidence of each token, in [0, 1]; 1 for tokens that came from an image.
    public var confidence: [Float]
    /// The number of entries in the codebook; valid ids are `0..<codebookSize`.
    public var codebookSize: Int
    /// How many pixels one token covers along each side (the VQ model's downscale factor).
    public var pixelsPerToken: Int
    /// The decoding state the MVTM stages carry along (random stream, steps); nil for a grid
    /// fresh from an encoder.
    public var state: (any TokenDecodingState)?
    public var origin: ImageOrigin?

    public init(width: Int, height: Int, ids: [Int32], masked: [Bool], confidence: [Float], codebookSize: Int,
                pixelsPerToken: Int = 1, state: (any TokenDecodingState)? = nil, origin: ImageOrigin? = nil) throws {
        let count = width * height
        guard width > 0, height > 0, ids.count == count, masked.count == count, confidence.count == count else {
            throw ChiselError(.internal, "token grid \(width)×\(height) needs \(count) ids, mask flags and confidences")
        }
        guard codebookSize > 0, ids.allSatisfy({ $0 >= 0 && Int($0) < codebookSize }) else {
            throw ChiselError(.internal, "token ids must lie in 0..<\(codebookSize)")
        }
        guard pixelsPerToken > 0 else { throw ChiselError(.internal, "a token must cover at least one pixel") }
        self.width = width
        self.height = height
        self.ids = ids
        self.masked = masked
        self.confidence = confidence
        self.codebookSize = codebookSize
        self.pixelsPerToken = pixelsPerToken
        self.state = state
        self.origin = origin
    }

    public var count: Int { width * height }
    public var maskedCount: Int { masked.reduce(0) { $0 + ($1 ? 1 : 0) } }

    public static func == (a: Tokens, b: Tokens) -> Bool {
        guard a.width == b.width, a.height == b.height, a.ids == b.ids, a.masked == b.masked,
              a.confidence == b.confidence, a.codebookSize == b.codebookSize, a.pixelsPerToken == b.pixelsPerToken,
              a.origin == b.origin else { return false }
        switch (a.state, b.state) {
        case (nil, nil): return true
        case let (x?, y?): return x.isSame(as: y)
        default: return false
        }
    }
}
