import ChiselCore

/// Which part of an image becomes a mask.
public enum MaskSource: String, ParamChoice {
    /// Alpha when the image has a non-opaque alpha channel, otherwise luminance.
    case auto
    case luminance
    /// Transparency: fully transparent pixels become 1 (edit), opaque ones 0 (keep).
    case alpha
    case red, green, blue

    /// Extracts the mask, then thresholds (values ≥ `threshold` → 1, others → 0) and inverts.
    public func mask(from image: Image, threshold: Double?, invert: Bool) throws -> Mask {
        let n = image.planeSize
        let layout = image.layout
        let alphaPlane = layout.hasAlpha ? Array(image.pixels[image.planeRange(layout.channels - 1)]) : nil
        var source = self
        if source == .auto {
            source = (alphaPlane?.contains { $0 < 1 } ?? false) ? .alpha : .luminance
        }
        var values: [Float]
        switch source {
        case .auto, .luminance:
            values = Array(image.converted(to: .gray).pixels[0..<n])
        case .alpha:
            guard let alphaPlane else {
                throw ChiselError(.invalidParameter, "the image has no alpha channel to read a mask from; use source \"luminance\"")
            }
            values = alphaPlane.map { 1 - $0 }
        case .red, .green, .blue:
            // A gray image's colour channels are its gray (as converting it to RGB makes them).
            let channel = layout.colorChannels == 3 ? (source == .red ? 0 : source == .green ? 1 : 2) : 0
            values = Array(image.pixels[image.planeRange(channel)])
        }
        if let threshold {
            let t = Float(threshold)
            values = values.map { $0 >= t ? 1 : 0 }
        }
        if invert { values = values.map { 1 - $0 } }
        return try Mask(width: image.width, height: image.height, values: values, origin: image.origin)
    }
}

extension MaskSource {
    public static let source = Param<MaskSource>(
        "source", default: .auto,
        "What becomes the mask: auto (alpha if not opaque, else luminance), luminance, alpha (transparent = 1), red, green or blue.")
    public static let threshold = Param<Double?>(
        "threshold", range: 0...1, "If set, values at or above it become 1 and the rest 0; unset keeps a soft mask.")
    public static let invert = Param<Bool>("invert", default: false, "Swap edit and keep areas after thresholding.")

    /// The parameters every image → mask stage shares.
    static let params: [any ParamKey] = [source, threshold, invert]

    static func mask(from image: Image, call: StageCall) throws -> Mask {
        try call[source].mask(from: image, threshold: call[threshold], invert: call[invert])
    }
}
