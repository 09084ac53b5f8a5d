/// CLIP's pre-tokenization: the matches of
/// `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
/// in order, as `re.findall` returns them in transformers' slow `CLIPTokenizer` and as the
/// `Split(..., behavior="removed", invert=True)` pre-tokenizer keeps them in tokenizer.json.
/// Whitespace, which no alternative matches, is dropped.
///
/// Matched by hand over Unicode scalars: each alternative is a literal, a run of one class or a
/// single digit, so the first alternative that matches at a position is the whole story.
struct CLIPPreTokenizer: Sendable {
    /// Whether the pattern starts with the two special-token alternatives. The slow tokenizer's
    /// and transformers 5's tokenizer.json do; the one transformers 4.x's CLIPTokenizerFast
    /// writes does not.
    var matchesSpecialTokens: Bool
    /// Whether to match the way the `regex` module does with `re.IGNORECASE`, as the slow
    /// tokenizer compiles the pattern: the long s `ſ` matches the `s` of `'s`, and U+0345
    /// (combining ypogegrammeni, whose case folding is the letter ι) matches no alternative.
    var matchesLikePythonIgnoreCase: Bool

    private static let specialTokens = ["<|startoftext|>", "<|endoftext|>"].map { Array($0.unicodeScalars) }
    private static let contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"].map { Array($0.unicodeScalars) }

    private enum ScalarClass { case letter, number, other, unmatched }

    /// The ranges of `text` that the pattern matches, left to right.
    func pieces(_ text: [Unicode.Scalar]) -> [Range<Int>] {
        var pieces: [Range<Int>] = []
        var i = 0
        while i < text.count {
            if let length = literalLength(text, at: i) {
                pieces.append(i..<(i + length))
                i += length
                continue
            }
            switch scalarClass(text[i]) {
            case .letter:
                let end = runEnd(text, from: i, of: .letter)
                pieces.append(i..<end)
                i = end
            case .number:
                pieces.append(i..<(i + 1))
                i += 1
            case .other:
                let end = runEnd(text, from: i, of: .other)
                pieces.append(i..<end)
                i = end
            case .unmatched:
                i += 1
            }
        }
        return pieces
    }

    private func runEnd(_ text: [Unicode.Scalar], from start: Int, of kind: ScalarClass) -> Int {
        var end = start + 1
        while end < text.count, scalarClass(text[end]) == kind { end += 1 }
        return end
    }

    /// The length of the special token or contraction that the pattern matches at `index`.
    private func literalLength(_ text: [Unicode.Scalar], at index: Int) -> Int? {
        let first = text[index]
        let candidates: [[Unicode.Scalar]]
        if first == "'" {
            candidates = Self.contractions
        } else if first == "<", matchesSpecialTokens {
            candidates = Self.specialTokens
        } else {
            return nil
        }
        for literal in candidates where index + literal.count <= text.count {
            var matched = true
            for (offset, expected) in literal.enumerated() where !matches(text[index + offset], expected) {
                matched = false
                break
            }
            if matched { return literal.count }
        }
        return nil
    }

    private func matches(_ scalar: Unicode.Scalar, _ expected: Unicode.Scalar) -> Bool {
        if scalar == expected { return true }
        guard matchesLikePythonIgnoreCase else { return false }
        // Simple case folding: an ASCII letter also matches its capital, and `s` the long s
        // (`k` would also match the Kelvin sign, but the pattern has no `k`).
        if expected.properties.isLowercase, scalar.value == expected.value - 32 { return true }
        return expected == "s" && scalar == "\u{17F}"
    }

    private func scalarClass(_ scalar: Unicode.Scalar) -> ScalarClass {
        if scalar.isASCII {
            switch scalar.value {
            case 0x41...0x5A, 0x61...0x7A: return .letter
            case 0x30...0x39: return .number
            case 0x09...0x0D, 0x20: return .unmatched
            default: return .other
            }
        }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            // \s is Unicode's White_Space property in both Python's regex and Oniguruma.
            if scalar.properties.isWhitespace { return .unmatched }
            if matchesLikePythonIgnoreCase, scalar.value == 0x345 { return .unmatched }
            return .other
        }
    }
}
