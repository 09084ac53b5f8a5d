import ChiselTensor

/// diffusers' `UNetMidBlock2D` as the VAE encoder and decoder use it: ResNet, optional
/// single-head attention, ResNet, at the lowest resolution.
final class VAEMidBlock: Sendable {
    let first: ResnetBlock, attention: VAEAttention?, second: ResnetBlock

    init(_ w: ScopedWeights, channels: Int, groups: Int, attention: Bool, precision: Precision) throws {
        first = try ResnetBlock(w.scoped("resnets.0."), in: channels, out: channels, groups: groups, epsilon: 1e-6,
                                timeChannels: nil, precision: precision)
        self.attention = attention
            ? try VAEAttention(w.scoped("attentions.0."), channels: channels, groups: groups, precision: precision)
            : nil
        second = try ResnetBlock(w.scoped("resnets.1."), in: channels, out: channels, groups: groups, epsilon: 1e-6,
                                 timeChannels: nil, precision: precision)
    }

    var convolutions: [Conv2D] { first.convolutions + second.convolutions }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        var h = try first(x)
        if let attention { h = try attention(h) }
        return try second(h)
    }
}
