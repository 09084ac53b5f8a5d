import CChiselKernels
import ChiselBase
import Foundation

/// When float 3×3 stride-1 convolutions use the Winograd algorithm, F(4×4, 3×3) (Lavin & Gray,
/// "Fast Algorithms for Convolutional Neural Networks", 2016), through oneDNN.
///
/// Winograd multiplies about a quarter as often as a direct convolution; on this project's
/// AVX-512 machine oneDNN's version runs the SD 1.5 UNet's 64×64 and the VAE's large
/// convolutions about three times faster. It has two costs: its transformed weights are four
/// times the plain ones (6×6 per 3×3 kernel), and oneDNN makes them slowly (tens of
/// milliseconds for a 512-channel layer), and its rounding differs from a direct convolution's
/// (relative errors of about 1e-6 instead of 1e-7; the parity tests hold either way).
///
/// So a kernel uses it only where there is enough work to pay for it: at least `minimumPositions`
/// output positions (batch × height × width; the UNet's 64×64 level at batch 2, the VAE from
/// 128×128 at 512² images). Its transformed weights are kept when they are at most
/// `keptWeightBytes` (the 320-channel UNet and 128/256-channel VAE layers), and otherwise made
/// for each run and dropped after, so the larger layers cost no lasting memory.
/// `CHISEL_WINOGRAD=0` (or `off`) turns it off, for the numbers closest to PyTorch's direct
/// convolutions.
///
/// oneDNN has no bfloat16 Winograd. Its FP32 Winograd on a bf16 layer's rounded weights beats a
/// single bf16 direct convolution here (about 1.5×), and `keptWeightBytesBF16` allows it for
/// layers whose transformed weights fit; but over a whole bf16 UNet it measured no faster (the
/// float activations it reads and writes cost what the arithmetic saves) and 0.5 GiB larger,
/// so it is off (0) by default. Instead, bf16 layers with padding 1, a multiple of 32 input and
/// of 64 output channels, and transformed weights of at most `bf16ProductWeightBytes` use
/// Chisel's own F(2×2, 3×3) with bfloat16 products (winograd_bf16.c) from
/// `bf16ProductPositions` output positions up; its rounding is about twice a direct bf16
/// convolution's (the transformed values are what is rounded to bfloat16).
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
