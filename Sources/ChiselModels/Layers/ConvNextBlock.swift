import ChiselTensor

/// diffusers' `ConvNextBlock` (uvit_2d.py): depthwise 3×3 convolution, RMSNorm, Linear C → 4C,
/// exact GELU, global response norm, Linear 4C → C, plus the input; then the adaptive
/// modulation `x · (1 + scale) + shift` from the conditioning, after the residual.
final class ConvNextBlock: Sendable {
    let depthwise: DepthwiseConv2D
    let norm: RMSNorm
    let expand: Linear
    let responseNorm: GlobalResponseNorm
    let contract: Linear
    let conditionMapper: Linear

    init(_ w: ScopedWeights, channels: Int, conditionDim: Int, epsilon: Double, affine: Bool, precision: Precision)
        throws
    {
        let wide = 4 * channels
        depthwise = try DepthwiseConv2D(channels: channels, weights: w.floats("depthwise.weight", shape: [channels, 1, 3, 3]),
                                        bias: w.contains("depthwise.bias") ? w.floats("depthwise.bias", shape: [channels]) : nil)
        norm = try Load.rmsNorm(w, "norm", features: channels, epsilon: epsilon, affine: affine)
        expand = try Load.linear(w, "channelwise_linear_1", in: channels, out: wide, precision: precision)
        responseNorm = try GlobalResponseNorm(channels: wide,
                                              gamma: w.floats("channelwise_norm.gamma", shape: [1, 1, 1, wide]),
                                              beta: w.floats("channelwise_norm.beta", shape: [1, 1, 1, wide]))
        contract = try Load.linear(w, "channelwise_linear_2", in: wide, out: channels, precision: precision)
        conditionMapper = try Load.linear(w, "cond_embeds_mapper", in: conditionDim, out: 2 * channels,
                                          precision: precision)
    }

    /// The block's scale and shift, N×2C, from `condition` (SiLU of the conditioning vector).
    func modulation(condition: Tensor) throws -> Tensor { try conditionMapper(condition) }

    /// `x` is N×H×W×C; `modulation` from `modulation(condition:)`.
    func callAsFunction(_ x: Tensor, modulation: Tensor) throws -> Tensor {
        let activated = try Activation.gelu(expand.afterNorm(norm, depthwise(x)))
        let h = contract.precision == .bf16
            ? try contract(responseNorm.bf16(activated), adding: x)
            : try contract(responseNorm(activated), adding: x)
        return try Ops.modulate(h, by: modulation)
    }
}
