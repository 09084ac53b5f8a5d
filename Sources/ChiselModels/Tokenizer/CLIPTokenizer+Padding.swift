extension CLIPTokenizer {
    /// Whether `callAsFunction` fills the sequence up to the maximum length.
    public enum Padding: Sendable, Equatable {
        /// Pad with the pad token up to the maximum length: transformers' `padding="max_length"`,
        /// which every Stable Diffusion pipeline uses.
        case maxLength
        /// No padding: transformers' `padding=False`.
        case doNotPad
    }
}
