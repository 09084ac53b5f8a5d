import ChiselCore

/// The tile ControlNet's control image: the image itself, optionally downscaled by a rate (as
/// AUTOMATIC1111's tile_resample preprocessor's down-sampling rate) and blurred, so the
/// ControlNet keeps the layout and colours while the edit re-draws the detail. The denoise
/// resizes it back to the edit's size.
public enum ControlTileStage: Stage {
    public static let image = Input<Image>("image", "The image being edited.")
    public static let tile = Output<Image>("image", "The control image: the image, downscaled by the rate and blurred.")
    public static let downsample = Param<Double>("downsample", default: 1, range: 1...64,
                                                 "Divide the size by this rate (antialiased) before the ControlNet sees it.")
    public static let blur = Param<Double>("blur", default: 0, range: 0...100, "Gaussian blur σ in pixels after downscaling; 0 none.")

    public static let schema = StageSchema(
        "control_tile", "Make a tile ControlNet's control image: the image downscaled by a rate and optionally blurred.",
        inputs: [image], outputs: [tile], params: [downsample, blur])

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let source = try call[image].converted(to: .rgb)
        let rate = try call[downsample]
        let width = max(1, Int((Double(source.width) / rate).rounded(.down)))
        let height = max(1, Int((Double(source.height) / rate).rounded(.down)))
        var pixels = source.pixels
        if width != source.width || height != source.height {
            pixels = Resampler.resample(pixels, planes: 3, width: source.width, height: source.height, outWidth: width, outHeight: height,
                                        filter: .bilinear)
        }
        pixels = GaussianBlur.blur(pixels, planes: 3, width: width, height: height, sigma: try call[blur])
        return [tile(try Image(width: width, height: height, layout: .rgb, pixels: pixels, bitDepth: source.bitDepth, origin: source.origin))]
    }
}
