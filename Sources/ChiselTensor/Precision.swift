/// The arithmetic of convolutions and matrix products. Normalisations, softmax and
/// element-wise work stay in FP32 in both, as PyTorch's autocast keeps them.
public enum Precision: String, Sendable, CaseIterable {
    case f32
    /// Weights stored in bfloat16; activations converted to bfloat16 for each product, which
    /// accumulates in FP32.
    case bf16
}
