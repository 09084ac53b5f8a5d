import Foundation

/// Unicode NFC, as Python's `unicodedata.normalize("NFC", ...)` and the tokenizers library
/// compute it.
///
/// Foundation's `precomposedStringWithCanonicalMapping` (like the standard library's own NFC)
/// skips the canonical reordering of marks that come from decomposing a character into
/// several marks: NFC of U+0F73 U+0F73 must be U+0F71 U+0F71 U+0F72 U+0F72 (classes 129, 129,
/// 130, 130) but comes back as U+0F71 U+0F72 U+0F71 U+0F72. A stable sort of each run of
/// marks by combining class repairs that; on correct output it changes nothing. The
/// characters concerned (U+0344, U+0F73, U+0F75, U+0F81) compose with nothing once
/// reordered, so no composition is missed.
enum CanonicalComposition {
    static func nfc(_ text: String) -> [Unicode.Scalar] {
        // Below U+0300 every character is its own NFC and none composes with the next one.
        if text.unicodeScalars.allSatisfy({ $0.value < 0x300 }) { return Array(text.unicodeScalars) }
        var scalars = Array(text.precomposedStringWithCanonicalMapping.unicodeScalars)
        var runStart = 0
        for i in 0...scalars.count {
            let isMark = i < scalars.count && scalars[i].properties.canonicalCombiningClass.rawValue != 0
            if isMark { continue }
            if i - runStart > 1 { sortByCombiningClass(&scalars, runStart..<i) }
            runStart = i + 1
        }
        return scalars
    }

    /// Insertion sort: stable, and runs of marks are short.
    private static func sortByCombiningClass(_ scalars: inout [Unicode.Scalar], _ range: Range<Int>) {
        for i in (range.lowerBound + 1)..<range.upperBound {
            let scalar = scalars[i]
            let rank = scalar.properties.canonicalCombiningClass.rawValue
            var j = i
            while j > range.lowerBound, scalars[j - 1].properties.canonicalCombiningClass.rawValue > rank {
                scalars[j] = scalars[j - 1]
                j -= 1
            }
            scalars[j] = scalar
        }
    }
}
