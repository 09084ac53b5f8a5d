/// The text clean-up of transformers' slow `CLIPTokenizer` when ftfy is not installed (the
/// default: transformers does not depend on ftfy). `CLIPTokenizer._tokenize` then runs
/// `" ".join(BasicTokenizer(strip_accents=False, do_split_on_punc=False).tokenize(text))`
/// (transformers 4.57, models/clip/tokenization_clip.py), which:
///
/// 1. `_clean_text`: drops U+0000, U+FFFD and every category C* code point (controls, format
///    characters such as ZWJ, soft hyphen and BOM, private use, unassigned) except tab, newline
///    and carriage return; turns those three, the space and every Zs character into a space;
/// 2. `_tokenize_chinese_chars`: puts spaces around CJK ideographs, so each is a word;
/// 3. normalizes to NFC;
/// 4. splits on whitespace (`str.split()`) and lowercases each word with `str.lower()`
///    (accents are kept, punctuation is not split off).
///
/// With ftfy installed transformers runs `ftfy.fix_text` instead, which also unescapes HTML
/// entities and repairs mojibake; Chisel does not mirror that path.
enum BasicTokenizerCleanup {
    /// The words of `text` after clean-up, lowercased, joined by single spaces.
    static func clean<Text: StringProtocol>(_ text: Text) -> [Unicode.Scalar] {
        var cleaned = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar.value == 0 || scalar.value == 0xFFFD || isControl(scalar) { continue }
            if isWhitespace(scalar) {
                cleaned.append(" ")
            } else if isCJKIdeograph(scalar) {
                cleaned.append(" ")
                cleaned.append(scalar)
                cleaned.append(" ")
            } else {
                cleaned.append(scalar)
            }
        }
        let composed = CanonicalComposition.nfc(String(cleaned))
        var result: [Unicode.Scalar] = []
        result.reserveCapacity(composed.count)
        for word in PythonText.words(composed) {
            if !result.isEmpty { result.append(" ") }
            PythonText.lowercased(word, into: &result)
        }
        return result
    }

    /// `_is_control` of transformers' tokenization_utils.py: category C*, but not \t \n \r.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "\t" || scalar == "\n" || scalar == "\r" { return false }
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    /// `_is_whitespace` of transformers' tokenization_utils.py: space, \t \n \r, or category Zs.
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r" { return true }
        return scalar.properties.generalCategory == .spaceSeparator
    }

    /// `BasicTokenizer._is_chinese_char`: the CJK Unified Ideographs blocks and their extensions
    /// A to E, and the compatibility ideographs (not kana, not hangul).
    static func isCJKIdeograph(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
            0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}
