/// The normalizer of CLIP's tokenizer.json, which `CLIPTokenizerFast` (and transformers 5's
/// `CLIPTokenizer`) run: `Sequence([NFC(), Replace(Regex("\s+"), " "), Lowercase()])` from
/// transformers' `CLIPConverter`.
///
/// Unlike the slow tokenizer's clean-up it deletes nothing (control and format characters,
/// ZWJ included, reach the byte-level BPE), does not split CJK ideographs apart, and
/// lowercases code point by code point (Rust's `char::to_lowercase`), so a final capital sigma
/// becomes `σ`, not `ς`.
enum TokenizersNormalizer {
    static func normalize<Text: StringProtocol>(_ text: Text) -> [Unicode.Scalar] {
        let composed = CanonicalComposition.nfc(String(text))
        var result: [Unicode.Scalar] = []
        result.reserveCapacity(composed.count)
        var inWhitespace = false
        for scalar in composed {
            // Oniguruma's \s is Unicode's White_Space property.
            if scalar.properties.isWhitespace {
                if !inWhitespace { result.append(" ") }
                inWhitespace = true
                continue
            }
            inWhitespace = false
            PythonText.appendFullLowercase(of: scalar, to: &result)
        }
        return result
    }
}
