import ChiselCore

extension Image {
    /// The image turned upright for an EXIF `orientation` (1 to 8; anything else leaves it as is).
    public func applyingExifOrientation(_ orientation: Int) -> Image {
        guard (2...8).contains(orientation) else { return self }
        let (outWidth, outHeight) = ExifOrientation.swapsAxes(orientation) ? (height, width) : (width, height)
        let walk = ExifOrientation.walk(orientation, width: width, height: height)
        let n = planeSize
        let result = [Float](unsafeUninitializedCapacity: pixels.count) { out, initialized in
            pixels.withUnsafeBufferPointer { src in
                for c in 0..<channels {
                    let plane = c * n
                    var o = plane
                    for y in 0..<outHeight {
                        var s = plane + walk.start + y * walk.row
                        for _ in 0..<outWidth {
                            out[o] = src[s]
                            o += 1
                            s += walk.column
                        }
                    }
                }
            }
            initialized = pixels.count
        }
        // Cannot fail: the sample count is unchanged and the sides are swapped at most.
        return (try? Image(width: outWidth, height: outHeight, layout: layout, pixels: result, bitDepth: bitDepth,
                           origin: origin)) ?? self
    }
}
