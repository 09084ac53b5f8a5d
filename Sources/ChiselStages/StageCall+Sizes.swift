import ChiselCore

extension StageCall {
    /// A mask for `image`: as given when the sizes agree, else resized (bilinear) to the image's
    /// size with a warning, as inpainting tools do with a mask drawn at another resolution.
    func mask(_ mask: Mask?, sizedFor image: Image) throws -> Mask? {
        guard let mask, mask.width != image.width || mask.height != image.height else { return mask }
        context.warn("mask is \(mask.width)×\(mask.height); resized to the image's \(image.width)×\(image.height)")
        let values = Resampler.resample(mask.values, planes: 1, width: mask.width, height: mask.height,
                                        outWidth: image.width, outHeight: image.height, filter: .bilinear)
        return try Mask(width: image.width, height: image.height, values: values, origin: mask.origin)
    }
}
