extension CLIPTokenizer {
    /// Which transformers tokenizer to reproduce where the two disagree.
    ///
    /// They agree on ordinary prompts. They differ on text that the slow tokenizer's clean-up
    /// changes: control and format characters (ZWJ inside emoji sequences, soft hyphens, BOMs),
    /// private-use and unassigned code points, U+FFFD, CJK ideographs (split one per word by the
    /// slow tokenizer), a word-final capital sigma (`ς` against `σ`), and two quirks of the slow
    /// tokenizer's case-insensitive regular expression (`'ſ`, U+0345).
    public enum Behavior: Sendable, Equatable {
        /// transformers 4.x's slow, pure-Python `CLIPTokenizer` without ftfy: what diffusers'
        /// pipelines load from a `tokenizer/` folder of vocab.json and merges.txt.
        case slow
        /// tokenizer.json's pipeline, as `CLIPTokenizerFast` and transformers 5's
        /// `CLIPTokenizer` run it.
        case fast
    }
}
