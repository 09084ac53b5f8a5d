import ChiselCore

/// Adds borders to an image, and marks them in a mask so they can be outpainted.
public enum PadStage: Stage {
    public static let image = Input<Image>("image", "The image to pad.")
    public static let mask = OptionalInput<Mask>("mask", "A mask padded the same way; the new border is set to 1 in it.")
    public static let padded = Output<Image>("image", "The padded image.")
    public static let border = Output<Mask>("mask", "1 on the added border, the input mask (or 0) inside.")
    public static let left = Param<Int>("left", default: 0, range: 0...65536, "Pixels added on the left.")
    public static let top = Param<Int>("top", default: 0, range: 0...65536, "Pixels added on top.")
    public static let right = Param<Int>("right", default: 0, range: 0...65536, "Pixels added on the right.")
    public static let bottom = Param<Int>("bottom", default: 0, range: 0...65536, "Pixels added at the bottom.")
    public static let multipleOf = Param<Int>("multiple_of", default: 1, range: 1...1024,
                                              "Then add on the right and bottom up to a multiple of this.")
    public static let mode = Param<BorderMode>("mode", default: .constant,
                                               "Border content: constant colour, repeated edge, or mirror reflection.")
    public static let color = Param<String>("color", default: "#000000", "Border colour for mode constant: #rrggbb or #rrggbbaa.")

    public static let schema = StageSchema(
        "pad", "Add borders (constant colour, edge or reflection); the mask output marks the new area for outpainting.",
        inputs: [image, mask], outputs: [padded, border],
        params: [left, top, right, bottom, multipleOf, mode, color])

    public static func validate(_ check: inout StageCheck) throws {
        do { _ = try Color(hex: check[color]) } catch let error as ChiselError { check.reject(color, error.message) }
    }

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let image = try call[Self.image]
        let mask = try call[Self.mask]
        try call.checkSameSize(mask, image)
        let left = try call[Self.left], top = try call[Self.top]
        var right = try call[Self.right], bottom = try call[Self.bottom]
        let multiple = try call[multipleOf]
        let width = image.width + left + right, height = image.height + top + bottom
        right += (multiple - width % multiple) % multiple
        bottom += (multiple - height % multiple) % multiple
        let outWidth = image.width + left + right, outHeight = image.height + top + bottom
        guard outWidth * outHeight <= call.context.run.maxPixels else {
            throw call.failure("padding to \(outWidth)×\(outHeight) exceeds the pixel limit of \(call.context.run.maxPixels)")
        }
        let borderMode = try call[mode]
        let color: Color
        do { color = try Color(hex: call[Self.color]) } catch let error as ChiselError {
            throw ChiselError(.invalidParameter, error.message, node: call.node)
        }
        var result = image
        try result.reshape(width: outWidth, height: outHeight, layout: image.layout,
                           pixels: Planes.pad(image.pixels, planes: image.channels, width: image.width,
                                              height: image.height, left: left, top: top, right: right,
                                              bottom: bottom, border: borderMode, fill: color.planes(for: image.layout)))
        let inner = mask?.values ?? [Float](repeating: 0, count: image.planeSize)
        let maskValues = Planes.pad(inner, planes: 1, width: image.width, height: image.height, left: left, top: top,
                                    right: right, bottom: bottom, border: .constant, fill: [1])
        return [padded(result),
                border(try Mask(width: outWidth, height: outHeight, values: maskValues, origin: mask?.origin ?? image.origin))]
    }
}
