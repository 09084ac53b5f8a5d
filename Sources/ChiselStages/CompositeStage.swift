import ChiselCore

/// Pastes an edited image onto the original through a mask: where the mask is 0 the original's
/// samples are copied unchanged, bit for bit.
public enum CompositeStage: Stage {
    public static let schema = StageSchema(
        "composite", "Paste an edited image onto the original through a (feathered) mask; mask-0 pixels stay bit-exact.",
        inputs: [
            .image("base", "The original image."),
            .image("overlay", "The edited image to paste."),
            .mask("mask", optional: true, "Where to paste (1 = overlay, 0 = base), the base's size; unset pastes everywhere."),
        ],
        outputs: [.image("image", "The composite, with the base's size and channels.")],
        params: [
            .int("x", default: 0, range: -1_000_000...1_000_000, "Where the overlay's left edge goes on the base."),
            .int("y", default: 0, range: -1_000_000...1_000_000, "Where the overlay's top edge goes on the base."),
            .bool("fit_overlay", default: true,
                  "When the overlay's size differs from the base's and x = y = 0, resize it to the base's size first."),
            .choice("filter", ResampleFilter.allCases.map(\.rawValue), default: "lanczos",
                    "Filter used when the overlay must be resized (a mask of another size is resized bilinearly)."),
        ])

    public static func run(_ call: StageCall) async throws -> [String: Value] {
        let base = try call.image("base")
        var overlay = try call.image("overlay").converted(to: base.layout)
        let filter = try call.choice("filter", as: ResampleFilter.self)
        let x0 = try call.int("x"), y0 = try call.int("y")
        if try call.bool("fit_overlay"), x0 == 0, y0 == 0, overlay.width != base.width || overlay.height != base.height {
            try overlay.reshape(width: base.width, height: base.height, layout: base.layout,
                                pixels: Resampler.resample(overlay.pixels, planes: overlay.channels, width: overlay.width,
                                                           height: overlay.height, outWidth: base.width,
                                                           outHeight: base.height, filter: filter))
        }
        var maskValues: [Float]?
        if let mask = try call.optionalMask("mask") {
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
        return ["image": .image(result)]
    }
}
