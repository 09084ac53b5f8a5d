import ChiselCore

/// Resizes an image (and optionally its mask, identically).
public enum ResizeStage: Stage {
    public enum Mode: String, ParamChoice {
        /// Keep the aspect ratio and fit inside width × height.
        case fit
        /// Keep the aspect ratio, cover width × height and crop the overflow evenly.
        case fill
        /// Exactly width × height, aspect ratio ignored.
        case stretch
    }

    public static let image = Input<Image>("image", "The image to resize.")
    public static let mask = OptionalInput<Mask>("mask", "A mask resized the same way.")
    public static let resized = Output<Image>("image", "The resized image.")
    public static let resizedMask = Output<Mask>("mask", requires: mask, "The resized mask.")
    public static let width = Param<Int>("width", default: 0, range: 0...65536,
                                         "Target width; 0 follows the aspect ratio from height.")
    public static let height = Param<Int>("height", default: 0, range: 0...65536,
                                          "Target height; 0 follows the aspect ratio from width.")
    public static let scale = Param<Double?>("scale", range: 0.001...64, "Scale factor; when set, width and height are ignored.")
    public static let mode = Param<Mode>("mode", default: .fit,
                                         "With both width and height: fit inside, fill and crop, or stretch.")
    public static let multipleOf = Param<Int>("multiple_of", default: 1, range: 1...1024,
                                              "Round the result down to a multiple of this (8 for Stable Diffusion latents).")
    public static let filter = Param<ResampleFilter>("filter", default: .lanczos, "Interpolation filter.")

    public static let schema = StageSchema(
        "resize", "Resize an image and its mask: fit, fill (cover + centre crop) or stretch, to a multiple of N.",
        inputs: [image, mask], outputs: [resized, resizedMask],
        params: [width, height, scale, mode, multipleOf, filter])

    public static func validate(_ check: inout StageCheck) throws {
        if try check[scale] == nil, try check[width] == 0, try check[height] == 0 {
            check.reject(width, "give width, height or scale")
        }
    }

    /// The output size and the source region it samples, for a source of `width`×`height`.
    public static func plan(width sourceWidth: Int, height sourceHeight: Int, targetWidth: Int, targetHeight: Int,
                            scale: Double?, mode: Mode, multipleOf: Int)
        throws -> (width: Int, height: Int, region: (x: Double, y: Double, width: Double, height: Double))
    {
        let sw = Double(sourceWidth), sh = Double(sourceHeight)
        var w: Int, h: Int
        var cover = false
        if let scale {
            w = Int((sw * scale).rounded())
            h = Int((sh * scale).rounded())
        } else if targetWidth > 0 && targetHeight == 0 {
            w = targetWidth
            h = Int((sh * Double(targetWidth) / sw).rounded())
        } else if targetHeight > 0 && targetWidth == 0 {
            h = targetHeight
            w = Int((sw * Double(targetHeight) / sh).rounded())
        } else if targetWidth > 0 && targetHeight > 0 {
            switch mode {
            case .stretch, .fill:
                w = targetWidth
                h = targetHeight
                cover = mode == .fill
            case .fit:
                let s = min(Double(targetWidth) / sw, Double(targetHeight) / sh)
                w = min(targetWidth, Int((sw * s).rounded()))
                h = min(targetHeight, Int((sh * s).rounded()))
            }
        } else {
            throw ChiselError(.invalidParameter, "give width, height or scale")
        }
        w = max(multipleOf, (max(1, w) / multipleOf) * multipleOf)
        h = max(multipleOf, (max(1, h) / multipleOf) * multipleOf)
        var region = (x: 0.0, y: 0.0, width: sw, height: sh)
        if cover {
            let aspect = Double(w) / Double(h)
            if sw / sh > aspect {
                region.width = sh * aspect
                region.x = (sw - region.width) / 2
            } else {
                region.height = sw / aspect
                region.y = (sh - region.height) / 2
            }
        }
        return (w, h, region)
    }

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let image = try call[Self.image]
        let mask = try call[Self.mask]
        try call.checkSameSize(mask, image)
        let target = try plan(width: image.width, height: image.height, targetWidth: call[width],
                              targetHeight: call[height], scale: call[scale], mode: call[mode],
                              multipleOf: call[multipleOf])
        let multiple = try call[multipleOf]
        if multiple > 1 {
            let exact = try plan(width: image.width, height: image.height, targetWidth: call[width],
                                 targetHeight: call[height], scale: call[scale], mode: call[mode], multipleOf: 1)
            if exact.width != target.width || exact.height != target.height {
                let up = target.width > exact.width || target.height > exact.height
                call.context.warn("\(exact.width)×\(exact.height) rounded \(up ? "up" : "down") to \(target.width)×\(target.height), "
                                  + "a multiple of \(multiple)\(up ? " (the smallest size there is)" : "")")
            }
        }
        guard target.width * target.height <= call.context.run.maxPixels else {
            throw call.failure("resizing to \(target.width)×\(target.height) exceeds the pixel limit of \(call.context.run.maxPixels)")
        }
        if target.width == image.width, target.height == image.height,
            target.region == (0, 0, Double(image.width), Double(image.height)) {
            return [resized(image), Self.resizedMask(mask)]  // already the size asked for: samples kept exactly
        }
        let filter = try call[Self.filter]
        var result = image
        try result.reshape(width: target.width, height: target.height, layout: image.layout,
                           pixels: Resampler.resample(image.pixels, planes: image.channels, width: image.width,
                                                      height: image.height, region: target.region,
                                                      outWidth: target.width, outHeight: target.height, filter: filter))
        let resizedMask = try mask.map { mask in
            let values = Resampler.resample(mask.values, planes: 1, width: mask.width, height: mask.height,
                                            region: target.region, outWidth: target.width, outHeight: target.height,
                                            filter: filter)
            return try Mask(width: target.width, height: target.height, values: values, origin: mask.origin)
        }
        return [resized(result), Self.resizedMask(resizedMask)]
    }
}
