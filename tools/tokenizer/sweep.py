"""A sweep over every code point assigned in Unicode 14.0, hashed block by block.

The corpus cannot list every character, but the tokenizer's per-character decisions (what
the clean-up deletes or turns into a space, CJK splitting, NFC, lowercasing, final sigma, the
regular expression's letter/number/other classes) can all be checked by tokenizing one short
text per code point. The ids of each block of 256 code points are folded into a 64-bit FNV-1a
style hash, which the Swift test recomputes.

Unicode 14.0 is the version of Python 3.11's unicodedata; characters assigned later are
unassigned to the slow tokenizer (so deleted) and are left out.
"""
import unicodedata

# Characters whose properties changed between Unicode 14.0 and the Unicode version of Swift's
# standard library (16.0 in Swift 6.3), in a way the template shows.
EXCLUDED = {
    0x0295: "Ll in Unicode 14.0 (Python 3.11), Lo in Swift 6.3: cased for final sigma in one, not the other",
}

TEMPLATE = "a{c}b {c}{c} 1{c}'{c} \u0391\u03a3{c} {c}\u03a3"
BLOCK = 256
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK = (1 << 64) - 1


def included(cp):
    """Assigned in Python's Unicode 14.0 (noncharacters are not), surrogates aside."""
    return not (0xD800 <= cp <= 0xDFFF) and cp not in EXCLUDED and unicodedata.category(chr(cp)) != "Cn"


def fold(h, word):
    return ((h ^ (word & 0xFFFFFFFF)) * FNV_PRIME) & MASK


def sweep(encode_batch):
    """[(block, count, hash)] for blocks with at least one included code point.
    `encode_batch` maps a list of texts to a list of id lists."""
    result = []
    for block in range(0x110000 // BLOCK):
        cps = [cp for cp in range(block * BLOCK, (block + 1) * BLOCK) if included(cp)]
        if not cps:
            continue
        texts = [TEMPLATE.format(c=chr(cp)) for cp in cps]
        h = FNV_OFFSET
        for cp, ids in zip(cps, encode_batch(texts)):
            h = fold(h, cp)
            for i in ids:
                h = fold(h, i)
            h = fold(h, 0xFFFFFFFF)
        result.append([block, len(cps), f"{h:016x}"])
    return result
