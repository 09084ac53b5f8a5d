/// How the per-token weights of `PromptMode.chunk` change the text encoder's hidden states.
/// Each applies to one 77-token chunk `z` (77 × hidden) with weights `w` (one per token, 1 for
/// `<|startoftext|>`, `<|endoftext|>` and padding).
public enum PromptWeighting: String, Sendable, Equatable, CaseIterable {
    /// AUTOMATIC1111's default emphasis, "Original" (modules/sd_emphasis.py `EmphasisOriginal`):
    /// `z'[t] = z[t] · w[t]`, then `z' *= mean(z) / mean(z')`, the means taken over the whole
    /// chunk (all 77 × hidden values), so the chunk keeps its mean.
    case a1111 = "a1111"
    /// AUTOMATIC1111's "No norm" emphasis (`EmphasisOriginalNoNorm`): `z'[t] = z[t] · w[t]`.
    case a1111NoNorm = "a1111_no_norm"
    /// ComfyUI's default (comfy/sd1_clip.py `ClipTokenWeightEncoder.encode_token_weights`):
    /// `z'[t] = (z[t] − e[t]) · w[t] + e[t]` for tokens whose weight is not 1, where `e` is the
    /// encoding of the empty chunk (`<|startoftext|>`, `<|endoftext|>`, padding) at the same
    /// positions. A weight scales a token's distance from "no prompt" rather than its size.
    case comfy = "comfy"
    /// AUTOMATIC1111's "Ignore": the syntax is parsed (brackets vanish) but weights are not applied.
    case ignore = "ignore"
}
