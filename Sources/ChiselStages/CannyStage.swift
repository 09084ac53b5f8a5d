import ChiselCore
import Foundation

/// Canny edges as OpenCV's `cv2.Canny(image, low, high)` finds them on 8-bit images — the
/// canny ControlNet's preprocessor in diffusers' examples and AUTOMATIC1111's extension: 3×3
/// Sobel gradients (borders replicated), the L1 magnitude |dx| + |dy| (or the squared L2 with
/// `l2_gradient`, thresholds squared to match), for colour images the channel with the largest
/// magnitude, non-maximum suppression in four directions, then hysteresis from the pixels
/// above `high` through those above `low`. Optionally a Gaussian blur first.
public enum CannyStage: Stage {
    public static let image = Input<Image>("image", "The image to find edges in (read as 8-bit samples, as OpenCV takes it).")
    public static let edges = Output<Image>("image", "White edges on black, RGB, at the image's size.")
    public static let low = Param<Double>("low", default: 100, range: 0...10_000,
                                          "Hysteresis's lower threshold: weaker edge pixels join only when linked to strong ones.")
    public static let high = Param<Double>("high", default: 200, range: 0...10_000, "Pixels whose gradient exceeds it are edges.")
    public static let l2Gradient = Param<Bool>("l2_gradient", default: false,
                                               "The gradient's Euclidean magnitude instead of |dx| + |dy| (OpenCV's L2gradient).")
    public static let blur = Param<Double>("blur", default: 0, range: 0...100,
                                           "Gaussian blur of this σ (pixels) before the gradients; 0, as cv2.Canny, blurs nothing.")

    public static let schema = StageSchema(
        "canny", "Find Canny edges (OpenCV's cv2.Canny) as a control image for a canny ControlNet.",
        inputs: [image], outputs: [edges], params: [low, high, l2Gradient, blur])

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let source = try call[image]
        let color = source.layout == .gray || source.layout == .grayAlpha ? source.converted(to: .gray) : source.converted(to: .rgb)
        let channels = color.layout.channels
        var planes = color.pixels
        if try call[blur] > 0 {
            planes = GaussianBlur.blur(planes, planes: channels, width: color.width, height: color.height, sigma: try call[blur])
        }
        let samples = planes.map { UInt8(min(255, max(0, ($0 * 255).rounded()))) }
        let map = Canny.edges(samples, channels: channels, width: color.width, height: color.height,
                              low: try call[low], high: try call[high], l2: try call[l2Gradient])
        let n = color.width * color.height
        var pixels = [Float](repeating: 0, count: 3 * n)
        for i in 0..<n where map[i] {
            pixels[i] = 1
            pixels[n + i] = 1
            pixels[2 * n + i] = 1
        }
        return [edges(try Image(width: color.width, height: color.height, layout: .rgb, pixels: pixels, origin: source.origin))]
    }
}

/// OpenCV's Canny on planar 8-bit samples.
public enum Canny {
    /// Whether each pixel is an edge, row by row.
    public static func edges(_ samples: [UInt8], channels: Int, width: Int, height: Int, low lowThreshold: Double,
                             high highThreshold: Double, l2: Bool) -> [Bool] {
        let n = width * height
        var (lowValue, highValue) = (min(lowThreshold, highThreshold), max(lowThreshold, highThreshold))
        if l2 {
            lowValue = min(32767, lowValue)
            highValue = min(32767, highValue)
            if lowValue > 0 { lowValue *= lowValue }
            if highValue > 0 { highValue *= highValue }
        }
        let low = Int(lowValue.rounded(.down)), high = Int(highValue.rounded(.down))

        // Sobel per channel (BORDER_REPLICATE), keeping for each pixel the channel of largest magnitude.
        var dx = [Int](repeating: 0, count: n), dy = [Int](repeating: 0, count: n)
        // Magnitudes with a zero border of one pixel all round: (width + 2) × (height + 2).
        let stride = width + 2
        var magnitude = [Int](repeating: 0, count: stride * (height + 2))
        for c in 0..<channels {
            let plane = c * n
            func at(_ x: Int, _ y: Int) -> Int {
                Int(samples[plane + min(height - 1, max(0, y)) * width + min(width - 1, max(0, x))])
            }
            for y in 0..<height {
                for x in 0..<width {
                    let gx = (at(x + 1, y - 1) - at(x - 1, y - 1)) + 2 * (at(x + 1, y) - at(x - 1, y)) + (at(x + 1, y + 1) - at(x - 1, y + 1))
                    let gy = (at(x - 1, y + 1) - at(x - 1, y - 1)) + 2 * (at(x, y + 1) - at(x, y - 1)) + (at(x + 1, y + 1) - at(x + 1, y - 1))
                    let m = l2 ? gx * gx + gy * gy : abs(gx) + abs(gy)
                    let cell = (y + 1) * stride + x + 1
                    // OpenCV keeps the first channel on ties.
                    if c == 0 || m > magnitude[cell] {
                        magnitude[cell] = m
                        dx[y * width + x] = gx
                        dy[y * width + x] = gy
                    }
                }
            }
        }

        // Non-maximum suppression: 0 maybe an edge, 1 not, 2 an edge; a border of 1 all round.
        var map = [UInt8](repeating: 1, count: stride * (height + 2))
        var stack: [Int] = []
        let tan22: Int = 13573  // tan(22.5°) · 2^15
        for y in 0..<height {
            for x in 0..<width {
                let cell = (y + 1) * stride + x + 1
                let m = magnitude[cell]
                guard m > low else { continue }
                let xs = dx[y * width + x], ys = dy[y * width + x]
                let ax = abs(xs), ay = abs(ys) << 15
                let tg22x = ax * tan22
                var peak: Bool
                if ay < tg22x {
                    peak = m > magnitude[cell - 1] && m >= magnitude[cell + 1]
                } else if ay > tg22x + (ax << 16) {
                    peak = m > magnitude[cell - stride] && m >= magnitude[cell + stride]
                } else {
                    let s = (xs < 0) != (ys < 0) ? -1 : 1
                    peak = m > magnitude[cell - stride - s] && m > magnitude[cell + stride + s]
                }
                guard peak else { continue }
                if m > high {
                    map[cell] = 2
                    stack.append(cell)
                } else {
                    map[cell] = 0
                }
            }
        }

        // Hysteresis: grow the edges through their 8 neighbours that may be edges.
        let neighbours = [-stride - 1, -stride, -stride + 1, -1, 1, stride - 1, stride, stride + 1]
        while let cell = stack.popLast() {
            for offset in neighbours where map[cell + offset] == 0 {
                map[cell + offset] = 2
                stack.append(cell + offset)
            }
        }
        var out = [Bool](repeating: false, count: n)
        for y in 0..<height {
            for x in 0..<width { out[y * width + x] = map[(y + 1) * stride + x + 1] == 2 }
        }
        return out
    }
}
