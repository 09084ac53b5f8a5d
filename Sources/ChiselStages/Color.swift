import ChiselCore

/// An RGBA colour parsed from `#rgb`, `#rgba`, `#rrggbb` or `#rrggbbaa`.
struct Color: Equatable {
    var red: Float, green: Float, blue: Float, alpha: Float

    init(red: Float, green: Float, blue: Float, alpha: Float) {
        self.red = red; self.green = green; self.blue = blue; self.alpha = alpha
    }

    init(hex text: String) throws {
        var digits = Substring(text)
        if digits.hasPrefix("#") { digits = digits.dropFirst() }
        if digits.count == 3 || digits.count == 4 { digits = Substring(digits.flatMap { [$0, $0] }) }
        guard digits.count == 6 || digits.count == 8, digits.allSatisfy(\.isHexDigit),
            let value = UInt32(digits, radix: 16)
        else {
            throw ChiselError(.invalidParameter, "colour \"\(text)\" is not #rrggbb or #rrggbbaa")
        }
        let v = digits.count == 6 ? (value << 8) | 0xFF : value
        red = Float((v >> 24) & 0xFF) / 255
        green = Float((v >> 16) & 0xFF) / 255
        blue = Float((v >> 8) & 0xFF) / 255
        alpha = Float(v & 0xFF) / 255
    }

    /// One value per plane of `layout`.
    func planes(for layout: PixelLayout) -> [Float] {
        let gray = 0.299 * red + 0.587 * green + 0.114 * blue
        switch layout {
        case .gray: return [gray]
        case .grayAlpha: return [gray, alpha]
        case .rgb: return [red, green, blue]
        case .rgba: return [red, green, blue, alpha]
        }
    }
}
