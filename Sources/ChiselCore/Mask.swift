/// A single-channel mask with values in [0, 1]: 1 marks pixels to edit, 0 pixels to keep.
public struct Mask: Sendable, Equatable {
    public private(set) var width: Int
    public private(set) var height: Int
    /// Row-major values: the value at row `y`, column `x` is `values[y * width + x]`.
    public var values: [Float]
    public var origin: ImageOrigin?

    public init(width: Int, height: Int, values: [Float], origin: ImageOrigin? = nil) throws {
        guard width > 0, height > 0 else {
            throw ChiselError(.invalidImage, "mask size \(width)×\(height) is empty")
        }
        guard width.multipliedReportingOverflow(by: height).partialValue == values.count else {
            throw ChiselError(.internal, "mask of \(width)×\(height) needs \(width * height) values, got \(values.count)")
        }
        self.width = width
        self.height = height
        self.values = values
        self.origin = origin
    }

    public init(width: Int, height: Int, filledWith value: Float, origin: ImageOrigin? = nil) throws {
        guard width > 0, height > 0 else {
            throw ChiselError(.invalidImage, "mask size \(width)×\(height) is empty")
        }
        try self.init(width: width, height: height,
                      values: [Float](repeating: value, count: width * height), origin: origin)
    }

    /// The fraction of the mask's area that is set, weighted by value.
    public var coverage: Double {
        values.isEmpty ? 0 : values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
    }
}
