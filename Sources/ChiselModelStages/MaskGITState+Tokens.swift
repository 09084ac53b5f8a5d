import ChiselCore
import ChiselDiffusion

/// A token grid on the wire carries its MVTM state (random stream, decoding plan).
extension MaskGITState: TokenDecodingState {
    public func isSame(as other: any TokenDecodingState) -> Bool { (other as? MaskGITState) == self }
}

extension Tokens {
    /// The MVTM state the stages put on this grid, if any.
    public var maskGIT: MaskGITState? { state as? MaskGITState }
}
