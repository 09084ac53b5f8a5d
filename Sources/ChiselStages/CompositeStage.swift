import ChiselCore

/// Pastes an edited image onto the original through a mask: where the mask is 0 the original's
/// samples are copied unchanged, bit for bit.
public enum CompositeStage: Stage {
    public static let base = Input<Image>("base", "The original image.")
    public static let overlay = Input<Image>("overlay", "The edited image to paste.")
    public static let mask = OptionalInput<Mask>(
        "mask", "Where to paste (1 = overlay, 0 = base), the base's size; unset pastes everywhere.")
    public static let composite = Output<Image>("image", "The composite, with the base's size and channels.")
    public static let x = Param<Int>("x", default: 0, range: -1_000_000...1_000_000, "Where the overlay's left edge goes on the base.")
    public static let y = Param<Int>("y", default: 0, range: -1_000_000...1_000_000, "Where the overlay's top edge goes on the base.")
    public static let fitOverlay = Param<Bool>(
        "fit_overlay", default: true,
        "When the overlay's size differs from the base's and x = y = 0, resize it to the base's size first.")
    public static let filter = Param<ResampleFilter>(
        "filter", default: .lanczos, "Filter used when the overlay must be resized (a mask of another size is resized bilinearly).")

    public static let schema = StageSchema(
        "composite", "Paste an edited image onto the original through a (feathered) mask; mask-0 pixels stay bit-exact.",
        inputs: [base, overlay, mask], outputs: [composite], params: [x, y, fitOverlay, filter])

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let base = try call[Self.base]
        let given = try call[Self.overlay]
        var overlay = given.converted(to: base.layout)
        let filter = try call[Self.filter]
        let x0 = try call[x], y0 = try call[y]
        if try call[fitOverlay], x0 == 0, y0 == 0, overlay.width != base.width || overlay.height != base.height {
            try overlay.reshape(width: base.width, height: base.height, layout: base.layout,
                                pixels: Resampler.resample(overlay.pixels, planes: overlay.channels, width: overlay.width,
                                                           height: overlay.height, outWidth: base.width,
                                                           outHeight: base.height, filter: filter))
        }
        var maskValues: [Float]?
        if let mask = try call[Self.mask] {
            if mask.width == base.width && mask.height == base.height {
                maskValues = mask.values
            } else {
                call.context.warn("mask is \(mask.width)×\(mask.height); resized to the base's \(base.width)×\(base.height)")
                maskValues = Resampler.resample(mask.values, planes: 1, width: mask.width, height: mask.height,
                                                outWidth: base.width, outHeight: base.height, filter: .bilinear)
            }
        }
        var out = base.pixels
        let n = base.planeSize
        // The overlay may lie partly or wholly outside the base.
        let rows = max(0, y0)..<max(max(0, y0), min(base.height, y0 + overlay.height))
        let columns = max(0, x0)..<max(max(0, x0), min(base.width, x0 + overlay.width))
        for y in rows {
            for x in columns {
                let i = y * base.width + x
                let m = min(1, max(0, maskValues?[i] ?? 1))
                if m == 0 { continue }
                let j = (y - y0) * overlay.width + (x - x0)
                for c in 0..<base.channels {
                    out[c * n + i] = base.pixels[c * n + i] * (1 - m) + overlay.pixels[c * overlay.planeSize + j] * m
                }
            }
        }
        var result = base
        result.pixels = out
        result.generation = given.generation ?? base.generation
        return [composite(result)]
    }
}
