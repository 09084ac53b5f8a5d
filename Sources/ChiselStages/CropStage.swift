import ChiselCore

/// Crops an image (and optionally its mask) to a box, or to the mask's bounds plus a margin.
public enum CropStage: Stage {
    public enum Region: String, ParamChoice { case box, mask }

    public static let image = Input<Image>("image", "The image to crop.")
    public static let mask = OptionalInput<Mask>("mask", "A mask cropped the same way (needed for region \"mask\").")
    public static let cropped = Output<Image>("image", "The cropped image.")
    public static let croppedMask = Output<Mask>("mask", requires: mask, "The cropped mask.")
    public static let region = Param<Region>(
        "region", default: .box,
        "box: x, y, width, height; mask: the bounds of the mask's nonzero pixels, grown by padding.")
    public static let x = Param<Int>("x", default: 0, range: 0...1_000_000, "Left edge of the box.")
    public static let y = Param<Int>("y", default: 0, range: 0...1_000_000, "Top edge of the box.")
    public static let width = Param<Int>("width", default: 0, range: 0...1_000_000, "Box width; 0 reaches the right edge.")
    public static let height = Param<Int>("height", default: 0, range: 0...1_000_000, "Box height; 0 reaches the bottom edge.")
    public static let padding = Param<Int>("padding", default: 32, range: 0...100_000,
                                           "Margin around the mask bounds (region \"mask\"), clamped to the image.")
    public static let aspectWidth = Param<Int>(
        "aspect_width", default: 0, range: 0...65536,
        "With aspect_height and region \"mask\": grow the box to this aspect ratio (AUTOMATIC1111's only-masked inpainting); 0 keeps it.")
    public static let aspectHeight = Param<Int>("aspect_height", default: 0, range: 0...65536, "See aspect_width.")

    public static let schema = StageSchema(
        "crop", "Crop an image and its mask to a box, or to the mask's bounding box plus padding.",
        inputs: [image, mask], outputs: [cropped, croppedMask],
        params: [region, x, y, width, height, padding, aspectWidth, aspectHeight])

    public static func validate(_ check: inout StageCheck) throws {
        if try check[region] == .mask, !check.isConnected(mask) {
            check.reject(region, "region \"mask\" needs the mask input connected")
        }
    }

    /// The bounding box of values above zero, or nil for an empty mask.
    public static func bounds(of mask: Mask) -> (x: Int, y: Int, width: Int, height: Int)? {
        var minX = mask.width, minY = mask.height, maxX = -1, maxY = -1
        for y in 0..<mask.height {
            for x in 0..<mask.width where mask.values[y * mask.width + x] > 0 {
                minX = min(minX, x); maxX = max(maxX, x)
                minY = min(minY, y); maxY = max(maxY, y)
            }
        }
        guard maxX >= 0 else { return nil }
        return (minX, minY, maxX - minX + 1, maxY - minY + 1)
    }

    /// The mask's bounds grown by `padding` and clamped to the image, then, when `aspect` is set,
    /// grown along one side to that aspect ratio and shifted back inside the image, as
    /// AUTOMATIC1111's `get_crop_region` and `expand_crop_region` do. Nil for an empty mask.
    public static func maskBox(_ mask: Mask, padding pad: Int, aspect: (width: Int, height: Int) = (0, 0))
        -> (x: Int, y: Int, width: Int, height: Int)?
    {
        guard let b = bounds(of: mask) else { return nil }
        var x0 = max(0, b.x - pad), y0 = max(0, b.y - pad)
        var x1 = min(mask.width, b.x + b.width + pad), y1 = min(mask.height, b.y + b.height + pad)
        if aspect.width > 0, aspect.height > 0 {
            let target = Double(aspect.width) / Double(aspect.height)
            func grow(_ lo: inout Int, _ hi: inout Int, to desired: Double, limit: Int) {
                let diff = Int(desired - Double(hi - lo))
                lo -= diff / 2
                hi += diff - diff / 2
                if hi >= limit { lo -= hi - limit; hi = limit }
                if lo < 0 { hi -= lo; lo = 0 }
                hi = min(hi, limit)
            }
            if Double(x1 - x0) / Double(y1 - y0) > target {
                grow(&y0, &y1, to: Double(x1 - x0) / target, limit: mask.height)
            } else {
                grow(&x0, &x1, to: Double(y1 - y0) * target, limit: mask.width)
            }
        }
        return (x0, y0, x1 - x0, y1 - y0)
    }

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let image = try call[Self.image]
        let mask = try call[Self.mask]
        try call.checkSameSize(mask, image)
        var box: (x: Int, y: Int, width: Int, height: Int)
        switch try call[region] {
        case .box:
            let x = try call[Self.x], y = try call[Self.y]
            let w = try call[width], h = try call[height]
            box = (x, y, w == 0 ? image.width - x : w, h == 0 ? image.height - y : h)
            guard x < image.width, y < image.height, box.width > 0, box.height > 0,
                x + box.width <= image.width, y + box.height <= image.height
            else {
                throw call.failure("crop box at (\(x), \(y)) of \(box.width)×\(box.height) does not fit the "
                                   + "\(image.width)×\(image.height) image", code: .invalidParameter)
            }
        case .mask:
            guard let mask else { throw call.failure("region \"mask\" needs the mask input connected", code: .invalidParameter) }
            guard let found = maskBox(mask, padding: try call[padding], aspect: (try call[aspectWidth], try call[aspectHeight])) else {
                throw call.failure("the mask is empty: nothing to crop around")
            }
            box = found
        }
        var result = image
        try result.reshape(width: box.width, height: box.height, layout: image.layout,
                           pixels: Planes.crop(image.pixels, planes: image.channels, width: image.width,
                                               height: image.height, x: box.x, y: box.y, w: box.width, h: box.height))
        let croppedMask = try mask.map { mask in
            let values = Planes.crop(mask.values, planes: 1, width: mask.width, height: mask.height,
                                     x: box.x, y: box.y, w: box.width, h: box.height)
            return try Mask(width: box.width, height: box.height, values: values, origin: mask.origin)
        }
        return [cropped(result), Self.croppedMask(croppedMask)]
    }
}
