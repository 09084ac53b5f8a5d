import ChiselCore

/// Geometry on planar float buffers shared by images (several planes) and masks (one).
enum Planes {
    /// The `w`×`h` window at (`x`, `y`) of each plane; the window must lie inside.
    static func crop(_ pixels: [Float], planes: Int, width: Int, height: Int, x: Int, y: Int, w: Int, h: Int) -> [Float] {
        var out = [Float](repeating: 0, count: w * h * planes)
        for p in 0..<planes {
            for row in 0..<h {
                let src = (p * height + y + row) * width + x
                let dst = (p * h + row) * w
                out.replaceSubrange(dst..<(dst + w), with: pixels[src..<(src + w)])
            }
        }
        return out
    }


    /// Source index for an outside coordinate, or nil for the constant border.
    static func sourceIndex(_ i: Int, size: Int, border: BorderMode) -> Int? {
        if i >= 0 && i < size { return i }
        switch border {
        case .constant: return nil
        case .edge: return min(size - 1, max(0, i))
        case .reflect:
            guard size > 1 else { return 0 }
            let period = 2 * (size - 1)
            var m = i % period
            if m < 0 { m += period }
            return m < size ? m : period - m
        }
    }

    /// Each plane grown by the given margins; `fill[p]` is plane p's constant border value.
    static func pad(_ pixels: [Float], planes: Int, width: Int, height: Int, left: Int, top: Int, right: Int,
                    bottom: Int, border: BorderMode, fill: [Float]) -> [Float] {
        let w = width + left + right, h = height + top + bottom
        var out = [Float](repeating: 0, count: w * h * planes)
        let columns = (0..<w).map { sourceIndex($0 - left, size: width, border: border) }
        for p in 0..<planes {
            for row in 0..<h {
                let dst = (p * h + row) * w
                guard let sy = sourceIndex(row - top, size: height, border: border) else {
                    for x in 0..<w { out[dst + x] = fill[p] }
                    continue
                }
                let src = (p * height + sy) * width
                for x in 0..<w { out[dst + x] = columns[x].map { pixels[src + $0] } ?? fill[p] }
            }
        }
        return out
    }
}

/// What fills the area a pad adds outside the image.
public enum BorderMode: String, ParamChoice {
    /// A constant value per plane.
    case constant
    /// Repeat the edge pixel.
    case edge
    /// Mirror without repeating the edge pixel (`dcb|abcd|cba`).
    case reflect
}
