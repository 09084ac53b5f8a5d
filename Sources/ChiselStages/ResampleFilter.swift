import ChiselCore
import Foundation

/// The interpolation kernel of a resize, as PIL and most editors name them.
public enum ResampleFilter: String, ParamChoice {
    case nearest, bilinear, bicubic, lanczos

    /// Half-width of the kernel at scale 1, in source pixels.
    var support: Double {
        switch self {
        case .nearest: 0.5
        case .bilinear: 1
        case .bicubic: 2
        case .lanczos: 3
        }
    }

    func weight(_ x: Double) -> Double {
        let ax = abs(x)
        switch self {
        case .nearest:
            return ax < 0.5 ? 1 : 0
        case .bilinear:
            return max(0, 1 - ax)
        case .bicubic:
            // Keys' cubic convolution with a = -0.5 (as PIL's BICUBIC).
            let a = -0.5
            if ax < 1 { return ((a + 2) * ax - (a + 3)) * ax * ax + 1 }
            if ax < 2 { return (((ax - 5) * ax + 8) * ax - 4) * a }
            return 0
        case .lanczos:
            if ax >= 3 { return 0 }
            if ax < 1e-9 { return 1 }
            let px = Double.pi * ax
            return 3 * sin(px) * sin(px / 3) / (px * px)
        }
    }
}
