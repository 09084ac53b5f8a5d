/// Separable resampling of planar float images.
///
/// Kernels widen by the scale factor when shrinking, so downscaling averages every source pixel
/// (antialiasing) the way PIL's `resize` does; taps outside the source are dropped and the rest
/// renormalised, so edges do not darken.
public enum Resampler {
    /// The taps of one output position along one axis.
    /// Outputs are computed as `anchor + Σ wₖ·(sourceₖ − anchor)`, where the anchor is the
    /// source sample of the largest weight: equal to `Σ wₖ·sourceₖ` since the weights add up to
    /// one, but exact wherever the source is flat, so constant areas (and masks of exactly 0 and
    /// 1) keep their values bit for bit whatever the Float rounding of the weights.
    struct Taps {
        var first: Int
        var weights: [Float]
        /// The index in `weights` of the largest weight.
        var anchor: Int = 0
    }

    /// Taps for resampling the source span `[start, start + length)` of an axis to `count` outputs.
    static func taps(sourceSize: Int, start: Double, length: Double, count: Int, filter: ResampleFilter) -> [Taps] {
        let scale = length / Double(count)
        let widen = max(scale, 1)
        let support = filter.support * widen
        return (0..<count).map { i in
            let center = start + (Double(i) + 0.5) * scale
            if filter == .nearest {
                let index = min(sourceSize - 1, max(0, Int(center.rounded(.down))))
                return Taps(first: index, weights: [1])
            }
            let lo = max(0, Int((center - support).rounded(.down)))
            let hi = min(sourceSize - 1, Int((center + support).rounded(.up)))
            guard lo <= hi else { return Taps(first: min(max(0, lo), sourceSize - 1), weights: [1]) }
            let weights = (lo...hi).map { j in filter.weight((Double(j) + 0.5 - center) / widen) }
            let total = weights.reduce(0, +)
            if total == 0 {
                let nearest = min(sourceSize - 1, max(0, Int(center.rounded(.down))))
                return Taps(first: nearest, weights: [1])
            }
            let normalized = weights.map { Float($0 / total) }
            let anchor = normalized.indices.max { normalized[$0] < normalized[$1] } ?? 0
            return Taps(first: lo, weights: normalized, anchor: anchor)
        }
    }

    /// Resamples `planes` planes of `width`×`height` to `outWidth`×`outHeight`, reading the
    /// source region `region` (x, y, width, height in source pixels, may be fractional).
    /// Results are clamped to [0, 1] so sharp kernels do not overshoot.
    public static func resample(_ pixels: [Float], planes: Int, width: Int, height: Int,
                                region: (x: Double, y: Double, width: Double, height: Double)? = nil,
                                outWidth: Int, outHeight: Int, filter: ResampleFilter) -> [Float] {
        let region = region ?? (0, 0, Double(width), Double(height))
        let xTaps = taps(sourceSize: width, start: region.x, length: region.width, count: outWidth, filter: filter)
        let yTaps = taps(sourceSize: height, start: region.y, length: region.height, count: outHeight, filter: filter)
        var out = [Float](repeating: 0, count: outWidth * outHeight * planes)
        var horizontal = [Float](repeating: 0, count: outWidth * height)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                horizontal.withUnsafeMutableBufferPointer { mid in
                    for p in 0..<planes {
                        let plane = p * width * height
                        for y in 0..<height {
                            let row = plane + y * width
                            for (x, tap) in xTaps.enumerated() {
                                let base = row + tap.first
                                let anchor = src[base + tap.anchor]
                                var sum: Float = 0
                                for (k, w) in tap.weights.enumerated() { sum += w * (src[base + k] - anchor) }
                                mid[y * outWidth + x] = anchor + sum
                            }
                        }
                        let outPlane = p * outWidth * outHeight
                        for (y, tap) in yTaps.enumerated() {
                            let outRow = outPlane + y * outWidth
                            let anchorRow = (tap.first + tap.anchor) * outWidth
                            for x in 0..<outWidth { dst[outRow + x] = 0 }
                            for (k, w) in tap.weights.enumerated() {
                                let midRow = (tap.first + k) * outWidth
                                for x in 0..<outWidth { dst[outRow + x] += w * (mid[midRow + x] - mid[anchorRow + x]) }
                            }
                            for x in 0..<outWidth {
                                dst[outRow + x] = min(1, max(0, mid[anchorRow + x] + dst[outRow + x]))
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
