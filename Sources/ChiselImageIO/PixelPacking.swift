import ChiselCore

/// Conversions between the codecs' interleaved integer samples and `Image`'s planar floats.
enum PixelPacking {
    /// `v / 255` for every byte, so the 8-bit path is a table lookup.
    private static let unit8: [Float] = (0...255).map { Float($0) / 255 }

    /// Planar floats from `count` interleaved pixels of `channels` 8-bit samples.
    static func planar(from samples: UnsafePointer<UInt8>, pixels count: Int, channels: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count * channels) { out, initialized in
            unit8.withUnsafeBufferPointer { table in
                for c in 0..<channels {
                    let plane = c * count
                    for i in 0..<count { out[plane + i] = table[Int(samples[i * channels + c])] }
                }
            }
            initialized = count * channels
        }
    }

    /// Planar floats from `count` interleaved pixels of `channels` 16-bit samples.
    static func planar(from samples: UnsafePointer<UInt16>, pixels count: Int, channels: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count * channels) { out, initialized in
            for c in 0..<channels {
                let plane = c * count
                for i in 0..<count { out[plane + i] = Float(samples[i * channels + c]) / 65535 }
            }
            initialized = count * channels
        }
    }

    /// `round(clamp(v, 0, 1) * maxValue)`, with NaN written as 0.
    @inline(__always)
    static func quantize(_ value: Float, maxValue: Float) -> Float {
        guard value > 0 else { return 0 }
        return (min(value, 1) * maxValue).rounded()
    }

    /// Interleaved 8-bit samples of the first `channels` planes of `image`.
    static func interleaved8(_ image: Image, channels: Int) -> [UInt8] {
        let count = image.planeSize
        return [UInt8](unsafeUninitializedCapacity: count * channels) { out, initialized in
            image.pixels.withUnsafeBufferPointer { src in
                for c in 0..<channels {
                    let plane = c * count
                    for i in 0..<count { out[i * channels + c] = UInt8(quantize(src[plane + i], maxValue: 255)) }
                }
            }
            initialized = count * channels
        }
    }

    /// Interleaved 16-bit samples (native byte order) of the first `channels` planes of `image`.
    static func interleaved16(_ image: Image, channels: Int) -> [UInt16] {
        let count = image.planeSize
        return [UInt16](unsafeUninitializedCapacity: count * channels) { out, initialized in
            image.pixels.withUnsafeBufferPointer { src in
                for c in 0..<channels {
                    let plane = c * count
                    for i in 0..<count { out[i * channels + c] = UInt16(quantize(src[plane + i], maxValue: 65535)) }
                }
            }
            initialized = count * channels
        }
    }
}
