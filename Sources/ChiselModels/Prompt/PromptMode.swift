/// How a prompt becomes the token chunks the text encoder reads.
public enum PromptMode: Sendable, Equatable {
    /// diffusers' `encode_prompt`: `tokenizer(prompt, padding="max_length", max_length=77,
    /// truncation=True)`, so `<|startoftext|>`, the first 75 tokens, `<|endoftext|>` and the pad
    /// token up to 77. The text is taken verbatim: brackets are tokens like any other, every
    /// weight is 1 and tokens past the 75th are dropped.
    case truncate
    /// AUTOMATIC1111's `tokenize_line` (also what ComfyUI users expect of long prompts): the
    /// emphasis syntax is parsed, the tokens are cut into chunks of 75, each wrapped in
    /// `<|startoftext|>` … `<|endoftext|>` and padded to 77, and `BREAK` starts a new chunk.
    ///
    /// `commaBacktrack` is A1111's `comma_padding_backtrack`: when a chunk is full and its last
    /// comma is at most that many tokens back, the tokens after the comma move to the next
    /// chunk. 0 turns it off; A1111's default is 20.
    case chunk(commaBacktrack: Int)

    /// AUTOMATIC1111's defaults: chunks with a comma backtrack of 20.
    public static let a1111 = PromptMode.chunk(commaBacktrack: 20)
}
