import Foundation

/// Separable Gaussian blur of planar float data, edges extended by repeating the border.
public enum GaussianBlur {
    /// The normalised kernel for standard deviation `sigma`, cut at 3σ.
    public static func kernel(sigma: Double) -> [Float] {
        let radius = max(1, Int((3 * sigma).rounded(.up)))
        var weights = (-radius...radius).map { x in exp(-Double(x * x) / (2 * sigma * sigma)) }
        let total = weights.reduce(0, +)
        weights = weights.map { $0 / total }
        return weights.map(Float.init)
    }

    /// Blurs each of `planes` planes of `width`×`height` with standard deviation `sigma` pixels.
    public static func blur(_ pixels: [Float], planes: Int, width: Int, height: Int, sigma: Double) -> [Float] {
        guard sigma > 0 else { return pixels }
        let kernel = kernel(sigma: sigma)
        let radius = kernel.count / 2
        var out = pixels
        var line = [Float](repeating: 0, count: max(width, height) + 2 * radius)
        out.withUnsafeMutableBufferPointer { data in
            line.withUnsafeMutableBufferPointer { buffer in
                for p in 0..<planes {
                    let plane = p * width * height
                    for y in 0..<height {
                        let row = plane + y * width
                        for i in 0..<(width + 2 * radius) {
                            buffer[i] = data[row + min(width - 1, max(0, i - radius))]
                        }
                        for x in 0..<width {
                            var sum: Float = 0
                            for k in 0..<kernel.count { sum += kernel[k] * buffer[x + k] }
                            data[row + x] = sum
                        }
                    }
                    for x in 0..<width {
                        for i in 0..<(height + 2 * radius) {
                            buffer[i] = data[plane + min(height - 1, max(0, i - radius)) * width + x]
                        }
                        for y in 0..<height {
                            var sum: Float = 0
                            for k in 0..<kernel.count { sum += kernel[k] * buffer[y + k] }
                            data[plane + y * width + x] = sum
                        }
                    }
                }
            }
        }
        return out
    }
}
