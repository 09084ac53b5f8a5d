import CChiselKernels

/// The arithmetic of convolutions and matrix products. Normalisations, softmax and
/// element-wise work stay in FP32 in both, as PyTorch's autocast keeps them.
public enum Precision: String, Sendable, CaseIterable {
    case f32
    /// Weights stored in bfloat16; activations converted to bfloat16 for each product, which
    /// accumulates in FP32.
    case bf16

    /// True on CPUs where oneDNN has no bfloat16 kernels (before AVX-512): there a bf16
    /// convolution or matrix product multiplies the same bfloat16-rounded weights and
    /// activations in FP32 kernels, so its numbers are a bf16 product's (summed in another
    /// order), its speed FP32's, and its weights take FP32's memory.
    public static let bf16Emulated = chisel_bf16_emulated() != 0
}
