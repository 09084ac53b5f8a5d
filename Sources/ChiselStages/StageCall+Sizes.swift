import ChiselCore

extension StageCall {
    /// Stages that take an image and its mask need both the same size.
    func checkSameSize(_ mask: Mask?, _ image: Image) throws {
        if let mask, mask.width != image.width || mask.height != image.height {
            throw failure("mask is \(mask.width)×\(mask.height) but the image is \(image.width)×\(image.height)")
        }
    }

    /// A mask for an image of `width`×`height`: as given when the sizes agree, else resized
    /// (bilinear) with a warning, as inpainting tools do with a mask drawn at another resolution.
    public func mask(_ mask: Mask?, sizedFor width: Int, _ height: Int) throws -> Mask? {
        guard let mask, mask.width != width || mask.height != height else { return mask }
        context.warn("mask is \(mask.width)×\(mask.height); resized to the image's \(width)×\(height)")
        let values = Resampler.resample(mask.values, planes: 1, width: mask.width, height: mask.height,
                                        outWidth: width, outHeight: height, filter: .bilinear)
        return try Mask(width: width, height: height, values: values, origin: mask.origin)
    }
}
