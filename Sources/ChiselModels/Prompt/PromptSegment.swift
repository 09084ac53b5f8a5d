/// One piece of a prompt parsed for emphasis: a stretch of text with its attention weight, or
/// a `BREAK`, which ends the current 75-token chunk.
public enum PromptSegment: Sendable, Equatable {
    /// Text and the product of the multipliers of the brackets around it. The text can be
    /// empty: AUTOMATIC1111's parser keeps the empty pieces around a `BREAK`, and they add no
    /// tokens.
    case text(String, weight: Double)
    /// `BREAK` written in capitals as a word of its own, outside any bracket.
    case chunkBreak
}
