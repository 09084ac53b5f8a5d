import CChiselKernels
import ChiselBase
import Foundation

/// When float 3×3 stride-1 convolutions use the Winograd algorithm, F(4×4, 3×3) (Lavin & Gray,
/// "Fast Algorithms for Convolutional Neural Networks", 2016), through oneDNN.
///
/// Winograd multiplies less than a direct convolution, but its transformed weights are larger
/// and slow to make, and its rounding differs slightly. So a kernel uses it only where there is
/// enough work to pay for it (`minimumPositions`), keeps the transformed weights only of layers
/// small enough (`keptWeightBytes`) and makes the others per run. oneDNN has no bfloat16 Winograd:
/// bf16 layers of the right shape use Chisel's own F(2×2, 3×3) with bfloat16 products
/// (winograd_bf16.c) instead, and FP32 Winograd on bf16 weights is off by default.
/// `CHISEL_WINOGRAD=0` (or `off`) turns Winograd off, for the numbers closest to PyTorch's direct
/// convolutions. The measurements behind these thresholds are in docs/internals/architecture.md (Winograd).
public struct WinogradPolicy: Sendable, Equatable {
    public var enabled: Bool
    public var minimumPositions: Int
    public var keptWeightBytes: Int
    /// For a bf16 layer, the largest transformed weights (FP32) to keep; larger layers stay direct
    /// bf16 convolutions.
    public var keptWeightBytesBF16: Int
    /// A single image with more output positions than this runs in bands of about this many,
    /// so Winograd's working memory (which grows with the input) stays that of one band.
    public var bandPositions: Int
    /// The bf16-product Winograd's smallest output (batch × height × width positions).
    public var bf16ProductPositions: Int
    /// The largest transformed weights (bfloat16, 16 per input × output channel) a layer keeps
    /// for the bf16-product Winograd; larger layers stay direct.
    public var bf16ProductWeightBytes: Int

    public init(enabled: Bool = true, minimumPositions: Int = 8192, keptWeightBytes: Int = 16 << 20,
                keptWeightBytesBF16: Int = 0, bandPositions: Int = 4096, bf16ProductPositions: Int = 4096,
                bf16ProductWeightBytes: Int = 8 << 20) {
        self.enabled = enabled
        self.minimumPositions = minimumPositions
        self.keptWeightBytes = keptWeightBytes
        self.keptWeightBytesBF16 = keptWeightBytesBF16
        self.bandPositions = bandPositions
        self.bf16ProductPositions = bf16ProductPositions
        self.bf16ProductWeightBytes = bf16ProductWeightBytes
    }

    /// The default; off with `CHISEL_WINOGRAD=0` (or `off`); with `CHISEL_WINOGRAD=all`, every
    /// eligible convolution however small, in bands of 64 positions (for checking its numbers
    /// on small models).
    public static let fromEnvironment: WinogradPolicy = {
        switch ProcessInfo.processInfo.environment["CHISEL_WINOGRAD"]?.lowercased() {
        case "0", "off", "false": WinogradPolicy(enabled: false)
        case "all": WinogradPolicy(minimumPositions: 1, bandPositions: 64, bf16ProductPositions: 1)
        default: WinogradPolicy()
        }
    }()

    /// What a kernel of this layer does for `positions` output positions.
    public enum Mode: Int32, Sendable {
        case direct = 0
        /// Winograd, keeping the transformed weights.
        case kept = 1
        /// Winograd, transforming the weights for each run.
        case transient = 2
    }

    public func mode(inChannels: Int, outChannels: Int, positions: Int, precision: Precision = .f32) -> Mode {
        guard enabled, positions >= minimumPositions else { return .direct }
        let transformedBytes = 36 * inChannels * outChannels * MemoryLayout<Float>.size
        switch precision {
        case .f32: return transformedBytes <= keptWeightBytes ? .kept : .transient
        // FP32 Winograd beats a bf16 direct convolution only when its weights need not be made
        // for each run.
        case .bf16: return transformedBytes <= keptWeightBytesBF16 ? .kept : .direct
        }
    }
}

extension Conv2D {
    /// Whether oneDNN has Winograd convolutions on this CPU (AVX-512); elsewhere every
    /// convolution is direct whatever the policy says.
    public static let winogradSupported = chisel_winograd_supported() != 0

    /// Whether this CPU runs the bf16-product Winograd (AVX-512 BF16); elsewhere bf16 layers
    /// stay direct.
    public static let productWinogradSupported = chisel_wino16_supported() != 0

    /// The Winograd policy new layers start with.
    public static var winograd: WinogradPolicy {
        get { winogradPolicy.withLock { $0 } }
        set { winogradPolicy.withLock { $0 = newValue } }
    }
}

private let winogradPolicy = Locked(WinogradPolicy.fromEnvironment)
