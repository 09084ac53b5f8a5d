import CChiselKernels
import Foundation

/// Element-wise activations, as PyTorch defines them.
public enum Activation: String, Sendable {
    case silu
    /// GELU with the exact erf form (`torch.nn.functional.gelu`, approximate="none").
    case gelu
    /// CLIP's `x · sigmoid(1.702 x)`.
    case quickGelu = "quick_gelu"

    @inline(__always)
    public func apply(_ x: Float) -> Float {
        switch self {
        case .silu: x / (1 + expf(-x))
        case .gelu: 0.5 * x * (1 + erff(x * 0.70710678118654752))
        case .quickGelu: x / (1 + expf(-1.702 * x))
        }
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        KernelProfile.measure("activation") {
            var out = x
            let kind: Int32 = switch self {
            case .silu: 0
            case .gelu: 1
            case .quickGelu: 2
            }
            out.data.withUnsafeMutableBufferPointer { data in
                guard let base = data.baseAddress else { return }
                Parallel.forEachChunk(data.count, minimumChunk: 4096) { range in
                    chisel_activation(base + range.lowerBound, Int64(range.count), kind)
                }
            }
            return out
        }
    }
}
