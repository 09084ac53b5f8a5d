/// The type of a value on a wire between stages.
public enum ValueType: String, Sendable, Equatable, CaseIterable {
    case image, mask, latent, tokens, conditioning, control, model
}

/// A value on a wire between stages.
public enum Value: Sendable {
    case image(Image)
    case mask(Mask)
    case latent(Latent)
    case tokens(Tokens)
    case conditioning(Conditioning)
    case control(Control)
    case model(any LoadedModel)

    public var type: ValueType {
        switch self {
        case .image: .image
        case .mask: .mask
        case .latent: .latent
        case .tokens: .tokens
        case .conditioning: .conditioning
        case .control: .control
        case .model: .model
        }
    }
}
