/// A channels-last tensor of bfloat16 values (raw bits), handed from a normalisation straight
/// to a `.bf16` convolution so the convolution need not convert its input.
public struct HalfTensor: Sendable {
    public let shape: [Int]
    public var data: [UInt16]

    public init(uninitialized shape: [Int]) {
        self.shape = shape
        let count = shape.reduce(1, *)
        self.data = [UInt16](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }

    public var rank: Int { shape.count }

    /// The values widened to FP32.
    public func floats() -> [Float] { data.map(BFloat16.float) }
}
