import ChiselCore

extension StageCall {
    /// Stages that take an image and its mask need both the same size.
    func checkSameSize(_ mask: Mask?, _ image: Image) throws {
        if let mask, mask.width != image.width || mask.height != image.height {
            throw failure("mask is \(mask.width)×\(mask.height) but the image is \(image.width)×\(image.height)")
        }
    }
}
