import ChiselCore

/// Puts an image processed from a crop back where the crop came from: the box is found again
/// from the same mask, padding and aspect as `crop` used, the processed image is resized to the
/// box and pasted through the paste mask — AUTOMATIC1111's "only masked" inpainting.
public enum PasteCropStage: Stage {
    public static let base = Input<Image>("base", "The full image the crop was taken from.")
    public static let overlay = Input<Image>("overlay", "The processed crop, at any size.")
    public static let region = Input<Mask>("region", "The mask the crop's box came from (crop's region \"mask\").")
    public static let mask = OptionalInput<Mask>("mask", "Where to paste (1 = overlay), the base's size; unset: the region mask.")
    public static let pasted = Output<Image>("image", "The base with the processed crop pasted in; pixels where the mask is 0 stay bit-exact.")
    public static let padding = CropStage.padding
    public static let aspectWidth = CropStage.aspectWidth
    public static let aspectHeight = CropStage.aspectHeight
    public static let filter = Param<ResampleFilter>("filter", default: .lanczos, "Filter that resizes the overlay to the box.")

    public static let schema = StageSchema(
        "paste_crop", "Resize a processed crop back to its box (found again from the mask) and paste it through a mask.",
        inputs: [base, overlay, region, mask], outputs: [pasted], params: [padding, aspectWidth, aspectHeight, filter])

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let base = try call[Self.base]
        guard let regionMask = try call.mask(call[region], sizedFor: base.width, base.height),
            let box = CropStage.maskBox(regionMask, padding: try call[padding], aspect: (try call[aspectWidth], try call[aspectHeight]))
        else { return [pasted(base)] }
        let given = try call[overlay]
        var piece = given.converted(to: base.layout)
        try piece.reshape(width: box.width, height: box.height, layout: base.layout,
                          pixels: Resampler.resample(piece.pixels, planes: piece.channels, width: piece.width, height: piece.height,
                                                     outWidth: box.width, outHeight: box.height, filter: try call[filter]))
        let weights = try call.mask(call[mask], sizedFor: base.width, base.height) ?? regionMask
        var result = base
        let n = base.planeSize
        for y in box.y..<(box.y + box.height) {
            for x in box.x..<(box.x + box.width) {
                let i = y * base.width + x
                let m = min(1, max(0, weights.values[i]))
                if m == 0 { continue }
                let j = (y - box.y) * box.width + (x - box.x)
                for c in 0..<base.channels {
                    result.pixels[c * n + i] = base.pixels[c * n + i] * (1 - m) + piece.pixels[c * piece.planeSize + j] * m
                }
            }
        }
        result.generation = given.generation ?? base.generation
        return [pasted(result)]
    }
}
