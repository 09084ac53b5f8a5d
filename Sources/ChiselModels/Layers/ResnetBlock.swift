import ChiselTensor

/// diffusers' `ResnetBlock2D` with the default time-embedding handling: GroupNorm → SiLU →
/// 3×3 conv, plus the projected time embedding, GroupNorm → SiLU → 3×3 conv, added to the
/// (1×1-projected when the width changes) input.
final class ResnetBlock: Sendable {
    let norm1: GroupNorm, conv1: Conv2D
    let timeProjection: Linear?
    let norm2: GroupNorm, conv2: Conv2D
    let shortcut: Conv2D?

    var convolutions: [Conv2D] { [conv1, conv2] + (shortcut.map { [$0] } ?? []) }

    init(_ w: ScopedWeights, in inChannels: Int, out outChannels: Int, groups: Int, epsilon: Double,
         timeChannels: Int?, precision: Precision) throws {
        norm1 = try Load.groupNorm(w, "norm1", groups: groups, channels: inChannels, epsilon: epsilon)
        conv1 = try Load.conv(w, "conv1", in: inChannels, out: outChannels, kernel: 3, padding: 1, precision: precision)
        timeProjection = try timeChannels.map {
            try Load.linear(w, "time_emb_proj", in: $0, out: outChannels, precision: precision)
        }
        norm2 = try Load.groupNorm(w, "norm2", groups: groups, channels: outChannels, epsilon: epsilon)
        conv2 = try Load.conv(w, "conv2", in: outChannels, out: outChannels, kernel: 3, padding: 1, precision: precision)
        shortcut = inChannels == outChannels ? nil
            : try Load.conv(w, "conv_shortcut", in: inChannels, out: outChannels, kernel: 1, precision: precision)
    }

    /// `timeEmbedding` is SiLU(temb), N×timeChannels, shared by all blocks of a UNet step.
    func callAsFunction(_ x: Tensor, timeEmbedding: Tensor? = nil) throws -> Tensor {
        if conv1.precision == .bf16 && timeProjection == nil {
            // Without a time embedding the first convolution's output only feeds norm2: keep it
            // in bfloat16 (half the memory traffic, and the kernel's fastest form).
            let h = try conv1.halfOutput(norm1.bf16(x, silu: true))
            let residual = try shortcut?(x) ?? x
            return try conv2(norm2.bf16(h, silu: true), adding: residual)
        }
        var h = try conv1.afterNorm(norm1, x, silu: true)
        if let timeProjection, let timeEmbedding {
            h = try Ops.addPerSample(h, timeProjection(timeEmbedding))
        }
        let residual = try shortcut?(x) ?? x
        return try conv2.afterNorm(norm2, h, silu: true, adding: residual)
    }
}
