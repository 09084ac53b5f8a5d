import ChiselBase

/// AUTOMATIC1111's emphasis syntax, as `parse_prompt_attention` in modules/prompt_parser.py
/// reads it:
///
/// - `(text)` multiplies the weight of `text` by 1.1, `[text]` divides it by 1.1, `(text:1.3)`
///   multiplies it by 1.3; brackets nest and their multipliers multiply;
/// - `\(`, `\)`, `\[`, `\]` and `\\` are the characters themselves; any other backslash is dropped;
/// - a bracket left open multiplies everything after it to the end of the prompt; a closing
///   bracket with no open one of its kind is text;
/// - `BREAK` in capitals, as a word of its own, ends the current chunk;
/// - neighbouring pieces of equal weight are merged into one.
///
/// Details that follow from the reference and are kept: the prompt is cut into tokens by the
/// reference's regular expression, first alternative first (`:` is only a weight when a number
/// and `)` follow at once: `(a: 1.5)` is the text `a: 1.5` at 1.1); weights are doubles
/// multiplied in the reference's order (inner brackets first, then brackets left open, round
/// ones before square ones, outermost first); `BREAK` inside brackets is the text `BREAK` with
/// weight −1 times the brackets' multiplier, as A1111 then tokenizes it; a weight that Python's
/// `float` refuses (`(a:1.2.3)`, `(a:.)`) is an error, as it is in A1111.
///
/// Prompt editing (`[a:b:0.5]`), alternation (`[a|b]`) and `AND` are A1111 features of other
/// functions, run before this one; they are not handled, and their characters reach this parser
/// as text and brackets.
public enum EmphasisParser {
    static let roundMultiplier = 1.1
    static let squareMultiplier = 1 / 1.1

    /// The segments of `prompt`, never empty: a prompt with nothing in it is `[.text("", 1)]`.
    public static func parse(_ prompt: String) throws -> [PromptSegment] {
        let scalars = Array(prompt.unicodeScalars)
        // A1111's working list of [text, weight]; a BREAK is ["BREAK", -1] until the end.
        var runs: [(text: [Unicode.Scalar], weight: Double)] = []
        var roundBrackets: [Int] = []
        var squareBrackets: [Int] = []

        func multiply(from start: Int, by multiplier: Double) {
            for i in start..<runs.count { runs[i].weight *= multiplier }
        }

        var i = 0
        while i < scalars.count {
            let token = Self.token(scalars, at: i)
            defer { i = token.end }
            switch token.kind {
            case .escape:
                runs.append((Array(scalars[(i + 1)..<token.end]), 1))
            case .openRound:
                roundBrackets.append(runs.count)
            case .openSquare:
                squareBrackets.append(runs.count)
            case .weight(let digits) where !roundBrackets.isEmpty:
                let text = String(String.UnicodeScalarView(digits))
                guard let weight = pythonFloat(digits) else {
                    throw ChiselError(
                        .invalidParameter,
                        "the emphasis weight '\(text)' in the prompt is not a number (as in '(text:1.2)')")
                }
                multiply(from: roundBrackets.removeLast(), by: weight)
            case .closeRound where !roundBrackets.isEmpty:
                multiply(from: roundBrackets.removeLast(), by: roundMultiplier)
            case .closeSquare where !squareBrackets.isEmpty:
                multiply(from: squareBrackets.removeLast(), by: squareMultiplier)
            default:
                for (index, part) in splitOnBreak(scalars[i..<token.end]).enumerated() {
                    if index > 0 { runs.append((Array("BREAK".unicodeScalars), -1)) }
                    runs.append((Array(part), 1))
                }
            }
        }
        for position in roundBrackets { multiply(from: position, by: roundMultiplier) }
        for position in squareBrackets { multiply(from: position, by: squareMultiplier) }
        if runs.isEmpty { runs = [([], 1)] }

        var merged: [(text: [Unicode.Scalar], weight: Double)] = []
        for run in runs {
            if let last = merged.last, last.weight == run.weight {
                merged[merged.count - 1].text += run.text
            } else {
                merged.append(run)
            }
        }
        // tokenize_line's test for a chunk break.
        let breakText = Array("BREAK".unicodeScalars)
        return merged.map { run in
            run.text == breakText && run.weight == -1
                ? .chunkBreak : .text(String(String.UnicodeScalarView(run.text)), weight: run.weight)
        }
    }

    private enum TokenKind: Equatable {
        case escape, openRound, openSquare, closeRound, closeSquare
        /// `:` + number + `)`; the number's characters (sign, digits and dots).
        case weight([Unicode.Scalar])
        /// A run of ordinary characters, a lone `:`, or a bracket that closes nothing.
        case text
    }

    /// The reference's `re_attention` at `index`: its alternatives in order, the first that
    /// matches wins.
    private static func token(_ s: [Unicode.Scalar], at index: Int) -> (kind: TokenKind, end: Int) {
        switch s[index] {
        case "\\":
            // `\(` `\)` `\[` `\]` `\\`, else the backslash alone (which adds an empty run).
            if index + 1 < s.count, "()[]\\".unicodeScalars.contains(s[index + 1]) { return (.escape, index + 2) }
            return (.escape, index + 1)
        case "(": return (.openRound, index + 1)
        case "[": return (.openSquare, index + 1)
        case ":":
            // `:([+-]?[.\d]+)\)`: the greedy run of dots and digits must be followed by `)`.
            var end = index + 1
            if end < s.count, s[end] == "+" || s[end] == "-" { end += 1 }
            let digitsStart = end
            while end < s.count, s[end] == "." || isDecimalDigit(s[end]) { end += 1 }
            if end > digitsStart, end < s.count, s[end] == ")" {
                return (.weight(Array(s[(index + 1)..<end])), end + 1)
            }
            return (.text, index + 1)
        case ")": return (.closeRound, index + 1)
        case "]": return (.closeSquare, index + 1)
        default:
            var end = index + 1
            while end < s.count, !"\\()[]:".unicodeScalars.contains(s[end]) { end += 1 }
            return (.text, end)
        }
    }

    /// `re.split(r"\s*\bBREAK\b\s*", text)`: Python's `\s` and `\w` on Unicode text.
    static func splitOnBreak(_ text: ArraySlice<Unicode.Scalar>) -> [ArraySlice<Unicode.Scalar>] {
        let word = Array("BREAK".unicodeScalars)
        var parts: [ArraySlice<Unicode.Scalar>] = []
        var partStart = text.startIndex
        var p = text.startIndex
        while p + word.count <= text.endIndex {
            let boundaryBefore = p == text.startIndex || !isWordCharacter(text[p - 1])
            let boundaryAfter = p + word.count == text.endIndex || !isWordCharacter(text[p + word.count])
            guard boundaryBefore, boundaryAfter, text[p..<(p + word.count)].elementsEqual(word) else {
                p += 1
                continue
            }
            var matchStart = p
            while matchStart > partStart, PythonText.isWhitespace(text[matchStart - 1]) { matchStart -= 1 }
            var matchEnd = p + word.count
            while matchEnd < text.endIndex, PythonText.isWhitespace(text[matchEnd]) { matchEnd += 1 }
            parts.append(text[partStart..<matchStart])
            partStart = matchEnd
            p = matchEnd
        }
        parts.append(text[partStart...])
        return parts
    }

    /// Python's `\d` on text: general category Nd.
    private static func isDecimalDigit(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.generalCategory == .decimalNumber
    }

    /// Python's `\w` on text: `str.isalnum()` (letters, and anything with a numeric value) or `_`.
    private static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "_" { return true }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return scalar.properties.numericType != nil
        }
    }

    /// Python's `float()` on what the weight pattern can match: an optional sign, then digits and
    /// dots with one dot at most and one digit at least. Digits of any script count, as in Python.
    private static func pythonFloat(_ text: [Unicode.Scalar]) -> Double? {
        var ascii = ""
        for scalar in text {
            if scalar == "+" || scalar == "-" || scalar == "." {
                ascii.unicodeScalars.append(scalar)
            } else if let value = scalar.properties.numericValue, value >= 0, value <= 9, value == value.rounded() {
                ascii += String(Int(value))
            } else {
                return nil
            }
        }
        let body = ascii.drop { $0 == "+" || $0 == "-" }
        guard body.filter({ $0 == "." }).count <= 1, body.contains(where: \.isNumber) else { return nil }
        return Double(ascii)
    }
}
