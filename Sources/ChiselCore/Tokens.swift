/// A grid of VQ codebook indices, as masked-token models (MaskGIT, MUSE, aMUSEd) use them.
public struct Tokens: Sendable, Equatable {
    public private(set) var width: Int
    public private(set) var height: Int
    /// Row-major codebook indices.
    public var ids: [Int32]
    /// Row-major: true where the token is masked (to be predicted).
    public var masked: [Bool]
    /// Row-major confidence of each token, in [0, 1]; 1 for tokens that came from an image.
    public var confidence: [Float]
    /// The number of entries in the codebook; valid ids are `0..<codebookSize`.
    public var codebookSize: Int
    public var origin: ImageOrigin?

    public init(width: Int, height: Int, ids: [Int32], masked: [Bool], confidence: [Float], codebookSize: Int,
                origin: ImageOrigin? = nil) throws {
        let count = width * height
        guard width > 0, height > 0, ids.count == count, masked.count == count, confidence.count == count else {
            throw ChiselError(.internal, "token grid \(width)×\(height) needs \(count) ids, mask flags and confidences")
        }
        guard codebookSize > 0, ids.allSatisfy({ $0 >= 0 && Int($0) < codebookSize }) else {
            throw ChiselError(.internal, "token ids must lie in 0..<\(codebookSize)")
        }
        self.width = width
        self.height = height
        self.ids = ids
        self.masked = masked
        self.confidence = confidence
        self.codebookSize = codebookSize
        self.origin = origin
    }
}
