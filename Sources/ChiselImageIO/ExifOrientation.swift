/// Reads the orientation tag of an EXIF block and maps display pixels back to stored ones.
///
/// Orientation values follow EXIF/TIFF: 1 upright, 2 mirrored left-right, 3 rotated 180°,
/// 4 mirrored top-bottom, 5 transposed, 6 needs a 90° clockwise turn, 7 transversed,
/// 8 needs a 90° counter-clockwise turn.
public enum ExifOrientation {
    /// The orientation tag (0x0112) of IFD0 of a TIFF structure (an EXIF block after "Exif\0\0").
    ///
    /// Returns 1 for anything missing, malformed or out of range: a damaged EXIF block must
    /// never stop an image from loading.
    public static func orientation(tiff bytes: [UInt8]) -> Int {
        guard bytes.count >= 8 else { return 1 }
        let littleEndian: Bool
        switch (bytes[0], bytes[1]) {
        case (0x49, 0x49): littleEndian = true
        case (0x4D, 0x4D): littleEndian = false
        default: return 1
        }
        func read(_ offset: Int, _ size: Int) -> Int? {
            guard offset >= 0, size <= bytes.count, offset <= bytes.count - size else { return nil }
            var value = 0
            for i in 0..<size {
                let byte = Int(bytes[offset + (littleEndian ? size - 1 - i : i)])
                value = value << 8 | byte
            }
            return value
        }
        guard read(2, 2) == 42, let ifd = read(4, 4), let entries = read(ifd, 2) else { return 1 }
        for index in 0..<entries {
            let entry = ifd + 2 + 12 * index
            guard let tag = read(entry, 2), let type = read(entry + 2, 2), let count = read(entry + 4, 4) else {
                return 1
            }
            guard tag == 0x0112 else { continue }
            let value: Int?
            switch type {
            case 3: value = read(entry + 8, 2)  // SHORT, as the standard says
            case 4: value = read(entry + 8, 4)  // LONG, written by a few tools
            default: value = nil
            }
            guard count >= 1, let value, (1...8).contains(value) else { return 1 }
            return value
        }
        return 1
    }

    /// Whether the orientation swaps width and height.
    public static func swapsAxes(_ orientation: Int) -> Bool { (5...8).contains(orientation) }

    /// For the upright image of a stored `width`×`height` image: the stored index of display
    /// pixel (0, 0) and how far the stored index moves per display column and per display row.
    static func walk(_ orientation: Int, width w: Int, height h: Int) -> (start: Int, column: Int, row: Int) {
        switch orientation {
        case 2: (w - 1, -1, w)
        case 3: ((h - 1) * w + w - 1, -1, -w)
        case 4: ((h - 1) * w, 1, -w)
        case 5: (0, w, 1)
        case 6: ((h - 1) * w, -w, 1)
        case 7: ((h - 1) * w + w - 1, -w, -1)
        case 8: (w - 1, w, -1)
        default: (0, 1, w)
        }
    }
}
