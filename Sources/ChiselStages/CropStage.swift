import ChiselCore

/// Crops an image (and optionally its mask) to a box, or to the mask's bounds plus a margin.
public enum CropStage: Stage {
    public enum Region: String, CaseIterable { case box, mask }

    public static let schema = StageSchema(
        "crop", "Crop an image and its mask to a box, or to the mask's bounding box plus padding.",
        inputs: [
            .image("image", "The image to crop."),
            .mask("mask", optional: true, "A mask cropped the same way (needed for region \"mask\")."),
        ],
        outputs: [
            .image("image", "The cropped image."),
            .mask("mask", requires: "mask", "The cropped mask."),
        ],
        params: [
            .choice("region", Region.allCases.map(\.rawValue), default: "box",
                    "box: x, y, width, height; mask: the bounds of the mask's nonzero pixels, grown by padding."),
            .int("x", default: 0, range: 0...1_000_000, "Left edge of the box."),
            .int("y", default: 0, range: 0...1_000_000, "Top edge of the box."),
            .int("width", default: 0, range: 0...1_000_000, "Box width; 0 reaches the right edge."),
            .int("height", default: 0, range: 0...1_000_000, "Box height; 0 reaches the bottom edge."),
            .int("padding", default: 32, range: 0...100_000, "Margin around the mask bounds (region \"mask\"), clamped to the image."),
        ])

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

    public static func run(_ call: StageCall) async throws -> [String: Value] {
        let image = try call.image("image")
        let mask = try call.optionalMask("mask")
        try call.checkSameSize(mask, image)
        var box: (x: Int, y: Int, width: Int, height: Int)
        switch try call.choice("region", as: Region.self) {
        case .box:
            let x = try call.int("x"), y = try call.int("y")
            let w = try call.int("width"), h = try call.int("height")
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
            let pad = try call.int("padding")
            let x0 = max(0, b.x - pad), y0 = max(0, b.y - pad)
            let x1 = min(image.width, b.x + b.width + pad), y1 = min(image.height, b.y + b.height + pad)
            box = (x0, y0, x1 - x0, y1 - y0)
        }
        var result = image
        try result.reshape(width: box.width, height: box.height, layout: image.layout,
                           pixels: Planes.crop(image.pixels, planes: image.channels, width: image.width,
                                               height: image.height, x: box.x, y: box.y, w: box.width, h: box.height))
        var outputs: [String: Value] = ["image": .image(result)]
        if let mask {
            let values = Planes.crop(mask.values, planes: 1, width: mask.width, height: mask.height,
                                     x: box.x, y: box.y, w: box.width, h: box.height)
            outputs["mask"] = .mask(try Mask(width: box.width, height: box.height, values: values, origin: mask.origin))
        }
        return outputs
    }
}
