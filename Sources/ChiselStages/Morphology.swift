/// Grey-scale dilation and erosion of a mask by a disk, so growing a mask keeps round corners.
public enum Morphology {
    /// Each value becomes the maximum within Euclidean distance `radius` (pixels outside ignored).
    public static func dilate(_ values: [Float], width: Int, height: Int, radius: Int) -> [Float] {
        guard radius > 0 else { return values }
        let halfWidths = (0...radius).map { dy in Int(Double(radius * radius - dy * dy).squareRoot()) }
        var out = [Float](repeating: -.infinity, count: values.count)
        var rowMax = [Float](repeating: 0, count: width)
        var deque = [Int](repeating: 0, count: width)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    for dy in -radius...radius {
                        let sy = y + dy
                        guard sy >= 0 && sy < height else { continue }
                        slidingMax(src, row: sy * width, width: width, half: halfWidths[abs(dy)],
                                   into: &rowMax, deque: &deque)
                        let outRow = y * width
                        for x in 0..<width where rowMax[x] > dst[outRow + x] { dst[outRow + x] = rowMax[x] }
                    }
                }
            }
        }
        return out
    }

    /// Each value becomes the minimum within Euclidean distance `radius`.
    public static func erode(_ values: [Float], width: Int, height: Int, radius: Int) -> [Float] {
        // Negation is exact in floating point, where 1 − v is not.
        dilate(values.map { -$0 }, width: width, height: height, radius: radius).map { -$0 }
    }

    /// Maximum over `[x - half, x + half]` of one row with a monotonic queue: O(width).
    private static func slidingMax(_ src: UnsafeBufferPointer<Float>, row: Int, width: Int, half: Int,
                                   into out: inout [Float], deque: inout [Int]) {
        var head = 0, tail = 0
        var next = 0
        for x in 0..<width {
            let hi = min(width - 1, x + half)
            while next <= hi {
                let v = src[row + next]
                while tail > head && src[row + deque[tail - 1]] <= v { tail -= 1 }
                deque[tail] = next
                tail += 1
                next += 1
            }
            while deque[head] < x - half { head += 1 }
            out[x] = src[row + deque[head]]
        }
    }
}
