/// How the channels of an `Image` are laid out.
public enum PixelLayout: String, Sendable, Equatable, CaseIterable {
    case gray
    case grayAlpha = "gray_alpha"
    case rgb
    case rgba

    public var channels: Int {
        switch self {
        case .gray: 1
        case .grayAlpha: 2
        case .rgb: 3
        case .rgba: 4
        }
    }

    public var hasAlpha: Bool { self == .grayAlpha || self == .rgba }
    /// The number of colour channels, alpha left out.
    public var colorChannels: Int { hasAlpha ? channels - 1 : channels }

    public init?(channels: Int) {
        switch channels {
        case 1: self = .gray
        case 2: self = .grayAlpha
        case 3: self = .rgb
        case 4: self = .rgba
        default: return nil
        }
    }
}

/// Where an image came from: the file, so that save paths can use its stem.
public struct ImageOrigin: Sendable, Equatable {
    /// The absolute path of the file the image was read from.
    public var path: String
    /// The file's bit depth (8, or 16 for a 16-bit PNG): what images a model makes from it are
    /// saved at, so an edit keeps its input's depth whether or not it is pasted back.
    public var bitDepth: Int
    public init(path: String, bitDepth: Int = 8) {
        self.path = path
        self.bitDepth = bitDepth
    }

    /// The file name without folder and extension: `photo` for `/a/photo.jpg`.
    public var stem: String {
        let name = path.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? path
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return name }
        return String(name[..<dot])
    }
}

/// An image on the wires: float samples, nominally in [0, 1], stored planar (channel-major).
///
/// The sample at channel `c`, row `y`, column `x` is `pixels[(c * height + y) * width + x]`.
/// 16-bit sources keep their precision: `Float` holds every `v / 65535` exactly enough that
/// `round(sample * 65535)` gives back `v`.
public struct Image: Sendable, Equatable {
    public private(set) var width: Int
    public private(set) var height: Int
    public private(set) var layout: PixelLayout
    public var pixels: [Float]
    /// The sample depth of the source file (8 or 16); writers use it when no depth is asked for.
    public var bitDepth: Int
    public var origin: ImageOrigin?
    /// How the image was generated, when a diffusion stage made it; written into saved PNGs.
    public var generation: GenerationInfo?

    /// Creates an image; `pixels.count` must be `width * height * layout.channels`.
    public init(width: Int, height: Int, layout: PixelLayout, pixels: [Float], bitDepth: Int = 8,
                origin: ImageOrigin? = nil) throws {
        guard width > 0, height > 0 else {
            throw ChiselError(.invalidImage, "image size \(width)×\(height) is empty")
        }
        let (area, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, area.multipliedReportingOverflow(by: layout.channels).partialValue == pixels.count else {
            throw ChiselError(.internal, "image of \(width)×\(height) \(layout.rawValue) needs \(width * height * layout.channels) samples, got \(pixels.count)")
        }
        self.width = width
        self.height = height
        self.layout = layout
        self.pixels = pixels
        self.bitDepth = bitDepth
        self.origin = origin
    }

    /// A blank image filled with `value` in every channel.
    public init(width: Int, height: Int, layout: PixelLayout, filledWith value: Float = 0, bitDepth: Int = 8,
                origin: ImageOrigin? = nil) throws {
        guard width > 0, height > 0 else {
            throw ChiselError(.invalidImage, "image size \(width)×\(height) is empty")
        }
        try self.init(width: width, height: height, layout: layout,
                      pixels: [Float](repeating: value, count: width * height * layout.channels),
                      bitDepth: bitDepth, origin: origin)
    }

    public var channels: Int { layout.channels }
    public var planeSize: Int { width * height }

    /// The range of `pixels` that holds channel `c`.
    public func planeRange(_ c: Int) -> Range<Int> { (c * planeSize)..<((c + 1) * planeSize) }

    /// The same pixels in another layout: gray is repeated into RGB, RGB is reduced to gray by
    /// Rec. 601 luma (as libjpeg and PIL do), alpha is dropped or added as opaque.
    public func converted(to target: PixelLayout) -> Image {
        if target == layout { return self }
        let n = planeSize
        var out = [Float](repeating: 1, count: n * target.channels)
        let colorIn = layout.colorChannels, colorOut = target.colorChannels
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                if colorIn == colorOut {
                    for c in 0..<colorIn { for i in 0..<n { dst[c * n + i] = src[c * n + i] } }
                } else if colorIn == 1 {
                    for c in 0..<3 { for i in 0..<n { dst[c * n + i] = src[i] } }
                } else {
                    for i in 0..<n {
                        dst[i] = 0.299 * src[i] + 0.587 * src[n + i] + 0.114 * src[2 * n + i]
                    }
                }
                if target.hasAlpha && layout.hasAlpha {
                    let a = colorIn * n, b = colorOut * n
                    for i in 0..<n { dst[b + i] = src[a + i] }
                }
            }
        }
        // Safe: the sizes are those of a valid image.
        var result = self
        result.layout = target
        result.pixels = out
        return result
    }

    /// Replaces size and pixels together; `pixels.count` must match.
    public mutating func reshape(width: Int, height: Int, layout: PixelLayout, pixels: [Float]) throws {
        self = try Image(width: width, height: height, layout: layout, pixels: pixels,
                         bitDepth: bitDepth, origin: origin)
    }
}
