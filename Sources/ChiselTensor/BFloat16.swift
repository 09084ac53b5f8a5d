/// bfloat16 as raw bits: the top half of an IEEE binary32.
public enum BFloat16 {
    /// Rounds to nearest even, as PyTorch's `.to(torch.bfloat16)` does; NaN stays NaN.
    public static func bits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(bits >> 16) | 0x40 }
        let rounding = 0x7FFF + ((bits >> 16) & 1)
        return UInt16((bits &+ rounding) >> 16)
    }

    public static func float(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    public static func convert(_ values: [Float]) -> [UInt16] { values.map(bits) }
}
