import ChiselCore
import Foundation

/// Matches an image's colours to a reference by Reinhard et al.'s colour transfer (2001): each
/// CIELAB channel is shifted and scaled so its mean and standard deviation equal the reference's.
///
/// After an SDEdit pass this pulls drifted colours back to the original's, as img2img colour
/// correction does in other tools.
public enum ColorMatchStage: Stage {
    public static let image = Input<Image>("image", "The image whose colours change.")
    public static let reference = Input<Image>("reference", "The image whose colour statistics are the target.")
    public static let matched = Output<Image>("image", "The colour-matched image, same size and channels.")
    public static let strength = Param<Double>("strength", default: 1, range: 0...1,
                                               "0 leaves the image unchanged, 1 matches fully.")

    public static let schema = StageSchema(
        "color_match", "Match an image's colour statistics to a reference's (Reinhard colour transfer in CIELAB).",
        inputs: [image, reference], outputs: [matched], params: [strength])

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let image = try call[Self.image]
        let reference = try call[Self.reference]
        let strength = Float(try call[Self.strength])
        let isGray = image.layout.colorChannels == 1
        let source = LabPlanes(image.converted(to: .rgb))
        let target = LabPlanes(reference.converted(to: .rgb))
        var lab = source
        for c in 0..<(isGray ? 1 : 3) {
            let (sourceMean, sourceStd) = source.statistics(c)
            let (targetMean, targetStd) = target.statistics(c)
            let gain = sourceStd > 1e-6 ? targetStd / sourceStd : 1
            lab.planes[c] = source.planes[c].map { value in
                let transferred = (value - sourceMean) * gain + targetMean
                return value + strength * (transferred - value)
            }
        }
        var rgb = try lab.rgbImage(like: image)
        if image.layout.hasAlpha {
            rgb = rgb.converted(to: .rgba)
            let alpha = image.planeRange(image.channels - 1)
            rgb.pixels.replaceSubrange(rgb.planeRange(3), with: image.pixels[alpha])
        }
        return [matched(rgb.converted(to: image.layout))]
    }
}

/// An RGB image as three CIELAB planes (D65 white, sRGB transfer curve).
struct LabPlanes {
    var planes: [[Float]]
    let width: Int, height: Int

    init(_ rgb: Image) {
        width = rgb.width
        height = rgb.height
        let n = rgb.planeSize
        var l = [Float](repeating: 0, count: n), a = l, b = l
        for i in 0..<n {
            let (L, A, B) = LabPlanes.lab(rgb.pixels[i], rgb.pixels[n + i], rgb.pixels[2 * n + i])
            l[i] = L; a[i] = A; b[i] = B
        }
        planes = [l, a, b]
    }

    func statistics(_ c: Int) -> (mean: Float, std: Float) {
        let values = planes[c]
        let mean = values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
        let variance = values.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(values.count)
        return (Float(mean), Float(variance.squareRoot()))
    }

    func rgbImage(like image: Image) throws -> Image {
        let n = width * height
        var pixels = [Float](repeating: 0, count: 3 * n)
        for i in 0..<n {
            let (r, g, b) = LabPlanes.rgb(planes[0][i], planes[1][i], planes[2][i])
            pixels[i] = r; pixels[n + i] = g; pixels[2 * n + i] = b
        }
        return try Image(width: width, height: height, layout: .rgb, pixels: pixels, bitDepth: image.bitDepth,
                         origin: image.origin)
    }

    private static let white: (Float, Float, Float) = (0.95047, 1.0, 1.08883)

    static func linear(_ v: Float) -> Float { v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4) }
    static func gamma(_ v: Float) -> Float { v <= 0.0031308 ? 12.92 * v : 1.055 * pow(v, 1 / 2.4) - 0.055 }

    static func lab(_ r: Float, _ g: Float, _ b: Float) -> (Float, Float, Float) {
        let (lr, lg, lb) = (linear(r), linear(g), linear(b))
        let x = (0.4124564 * lr + 0.3575761 * lg + 0.1804375 * lb) / white.0
        let y = (0.2126729 * lr + 0.7151522 * lg + 0.0721750 * lb) / white.1
        let z = (0.0193339 * lr + 0.1191920 * lg + 0.9503041 * lb) / white.2
        func f(_ t: Float) -> Float { t > 216 / 24389 ? cbrt(t) : (24389 / 27 * t + 16) / 116 }
        let (fx, fy, fz) = (f(x), f(y), f(z))
        return (116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz))
    }

    static func rgb(_ l: Float, _ a: Float, _ b: Float) -> (Float, Float, Float) {
        let fy = (l + 16) / 116, fx = fy + a / 500, fz = fy - b / 200
        func finv(_ t: Float) -> Float { t * t * t > 216 / 24389 ? t * t * t : (116 * t - 16) * 27 / 24389 }
        let x = finv(fx) * white.0, y = finv(fy) * white.1, z = finv(fz) * white.2
        let lr = 3.2404542 * x - 1.5371385 * y - 0.4985314 * z
        let lg = -0.9692660 * x + 1.8760108 * y + 0.0415560 * z
        let lb = 0.0556434 * x - 0.2040259 * y + 1.0572252 * z
        func clamp(_ v: Float) -> Float { min(1, max(0, v)) }
        return (clamp(gamma(max(0, lr))), clamp(gamma(max(0, lg))), clamp(gamma(max(0, lb))))
    }
}
