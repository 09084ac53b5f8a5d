/// The few `str` methods of CPython that the reference tokenizer relies on, over Unicode scalars
/// (Python strings are sequences of code points, not of Swift's grapheme clusters).
enum PythonText {
    /// `str.isspace()`: general category Zs, or bidirectional class WS, B or S. Spelled out
    /// because Swift exposes no bidirectional class; this is every such code point.
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// `str.split()` with no argument: the runs of non-whitespace.
    static func words(_ scalars: [Unicode.Scalar]) -> [ArraySlice<Unicode.Scalar>] {
        var words: [ArraySlice<Unicode.Scalar>] = []
        var start: Int? = nil
        for (i, scalar) in scalars.enumerated() {
            if isWhitespace(scalar) {
                if let begin = start { words.append(scalars[begin..<i]) }
                start = nil
            } else if start == nil {
                start = i
            }
        }
        if let begin = start { words.append(scalars[begin...]) }
        return words
    }

    /// `str.lower()`: each code point's full lowercase mapping (so `İ` becomes `i̇`), except that
    /// a capital sigma becomes final `ς` when it ends a cased word (Unicode's Final_Sigma
    /// condition, as CPython's `handle_capital_sigma` tests it).
    static func lowercased<Scalars: RandomAccessCollection>(_ scalars: Scalars, into result: inout [Unicode.Scalar])
    where Scalars.Element == Unicode.Scalar, Scalars.Index == Int {
        for i in scalars.indices {
            let scalar = scalars[i]
            if scalar.value == 0x3A3 {
                result.append(isFinalSigma(scalars, at: i) ? "\u{3C2}" : "\u{3C3}")
            } else {
                appendFullLowercase(of: scalar, to: &result)
            }
        }
    }

    /// A code point's full lowercase mapping, without context (Rust's `char::to_lowercase`).
    static func appendFullLowercase(of scalar: Unicode.Scalar, to result: inout [Unicode.Scalar]) {
        if scalar.isASCII {
            result.append(scalar.value >= 0x41 && scalar.value <= 0x5A ? Unicode.Scalar(UInt8(scalar.value + 32)) : scalar)
        } else if scalar.properties.changesWhenLowercased {
            result.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
        } else {
            result.append(scalar)
        }
    }

    private static func isFinalSigma<Scalars: RandomAccessCollection>(_ scalars: Scalars, at index: Int) -> Bool
    where Scalars.Element == Unicode.Scalar, Scalars.Index == Int {
        var before = index - 1
        while before >= scalars.startIndex, scalars[before].properties.isCaseIgnorable { before -= 1 }
        guard before >= scalars.startIndex, scalars[before].properties.isCased else { return false }
        var after = index + 1
        while after < scalars.endIndex, scalars[after].properties.isCaseIgnorable { after += 1 }
        return after == scalars.endIndex || !scalars[after].properties.isCased
    }

    /// `str.strip()`.
    static func stripped(_ scalars: [Unicode.Scalar]) -> ArraySlice<Unicode.Scalar> {
        var slice = scalars[...]
        while let first = slice.first, isWhitespace(first) { slice.removeFirst() }
        while let last = slice.last, isWhitespace(last) { slice.removeLast() }
        return slice
    }
}
