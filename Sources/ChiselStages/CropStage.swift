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

    public static let schema = StageSchema(
        "crop", "Crop an image and its mask to a box, or to the mask's bounding box plus padding.",
        inputs: [image, mask], outputs: [cropped, croppedMask],
        params: [region, x, y, width, height, padding])

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
            guard let b = bounds(of: mask) else { throw call.failure("the mask is empty: nothing to crop around") }
            let pad = try call[padding]
            let x0 = max(0, b.x - pad), y0 = max(0, b.y - pad)
            let x1 = min(image.width, b.x + b.width + pad), y1 = min(image.height, b.y + b.height + pad)
            box = (x0, y0, x1 - x0, y1 - y0)
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
