import ChiselCore

/// Adds borders to an image, and marks them in a mask so they can be outpainted.
public enum PadStage: Stage {
    public static let schema = StageSchema(
        "pad", "Add borders (constant colour, edge or reflection); the mask output marks the new area for outpainting.",
        inputs: [
            .image("image", "The image to pad."),
            .mask("mask", optional: true, "A mask padded the same way; the new border is set to 1 in it."),
        ],
        outputs: [
            .image("image", "The padded image."),
            .mask("mask", "1 on the added border, the input mask (or 0) inside."),
        ],
        params: [
            .int("left", default: 0, range: 0...65536, "Pixels added on the left."),
            .int("top", default: 0, range: 0...65536, "Pixels added on top."),
            .int("right", default: 0, range: 0...65536, "Pixels added on the right."),
            .int("bottom", default: 0, range: 0...65536, "Pixels added at the bottom."),
            .int("multiple_of", default: 1, range: 1...1024,
                 "Then add on the right and bottom up to a multiple of this."),
            .choice("mode", Planes.Border.allCases.map(\.rawValue), default: "constant",
                    "Border content: constant colour, repeated edge, or mirror reflection."),
            .string("color", default: "#000000", "Border colour for mode constant: #rrggbb or #rrggbbaa."),
        ])

    public static func run(_ call: StageCall) async throws -> [String: Value] {
        let image = try call.image("image")
        let mask = try call.optionalMask("mask")
        try call.checkSameSize(mask, image)
        let left = try call.int("left"), top = try call.int("top")
        var right = try call.int("right"), bottom = try call.int("bottom")
        let multiple = try call.int("multiple_of")
        let width = image.width + left + right, height = image.height + top + bottom
        right += (multiple - width % multiple) % multiple
        bottom += (multiple - height % multiple) % multiple
        let outWidth = image.width + left + right, outHeight = image.height + top + bottom
        guard outWidth * outHeight <= call.context.run.maxPixels else {
            throw call.failure("padding to \(outWidth)×\(outHeight) exceeds the pixel limit of \(call.context.run.maxPixels)")
        }
        let border = try call.choice("mode", as: Planes.Border.self)
        let color: Color
        do { color = try Color(hex: call.string("color")) } catch let error as ChiselError {
            throw ChiselError(.invalidParameter, error.message, node: call.node)
        }
        var result = image
        try result.reshape(width: outWidth, height: outHeight, layout: image.layout,
                           pixels: Planes.pad(image.pixels, planes: image.channels, width: image.width,
                                              height: image.height, left: left, top: top, right: right,
                                              bottom: bottom, border: border, fill: color.planes(for: image.layout)))
        let inner = mask?.values ?? [Float](repeating: 0, count: image.planeSize)
        let maskValues = Planes.pad(inner, planes: 1, width: image.width, height: image.height, left: left, top: top,
                                    right: right, bottom: bottom, border: .constant, fill: [1])
        return [
            "image": .image(result),
            "mask": .mask(try Mask(width: outWidth, height: outHeight, values: maskValues, origin: mask?.origin ?? image.origin)),
        ]
    }
}
