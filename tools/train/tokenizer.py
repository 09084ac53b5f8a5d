"""A small CLIP-format tokenizer for the scene world: the real CLIP BPE restricted to its words.

CLIP's byte-level BPE merges, at each step, the lowest-ranked adjacent pair present in a word.
Keeping only the merges that the full vocabulary applies to the world's words (in their original
order) gives those words exactly their CLIP tokens, with ids renumbered: 256 byte symbols, the
same 256 with the end-of-word mark, the kept merges, then <|startoftext|> and <|endoftext|>.
Any other text still tokenizes, into smaller pieces (down to single bytes), so a prompt outside
the world is read, not refused. The files are vocab.json, merges.txt, tokenizer_config.json and
special_tokens_map.json, as transformers' CLIPTokenizer reads them (and Chisel's tokenizer).
"""

import json
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIP = os.path.join(REPO, "Sources", "ChiselModels", "Resources", "CLIP")
# CLIP's pre-tokenizer pattern (letters, digits, other symbols), applied to lower-cased text.
PATTERN = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^\sa-z0-9]+")


def bytes_to_unicode():
    """CLIP's (GPT-2's) reversible map from bytes to printable characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def bpe_merges_used(word, ranks):
    """The merges CLIP's BPE applies to one pre-token (as symbols), in the order applied."""
    symbols = list(word[:-1]) + [word[-1] + "</w>"]
    used = []
    while len(symbols) > 1:
        pairs = [(ranks.get((a, b), float("inf")), i) for i, (a, b) in enumerate(zip(symbols, symbols[1:]))]
        rank, _ = min(pairs)
        if rank == float("inf"):
            break
        first, second = next((symbols[i], symbols[i + 1]) for r, i in pairs if r == rank)
        used.append((first, second))
        merged, i = [], 0
        while i < len(symbols):
            if i < len(symbols) - 1 and symbols[i] == first and symbols[i + 1] == second:
                merged.append(first + second)
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return used


def write_tokenizer(folder, texts):
    """Writes the tokenizer files for the words of `texts`; returns the vocabulary size."""
    with open(os.path.join(CLIP, "merges.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")[1:]
    merges = [tuple(line.split()) for line in lines if line.strip()]
    ranks = {m: i for i, m in enumerate(merges)}
    byte_chars = bytes_to_unicode()
    needed = set()
    for text in texts:
        for token in PATTERN.findall(text.lower()):
            if token.startswith("<|"):
                continue
            needed.update(bpe_merges_used("".join(byte_chars[b] for b in token.encode("utf-8")), ranks))
    kept = [m for m in merges if m in needed]
    alphabet = list(byte_chars.values())
    vocab = alphabet + [c + "</w>" for c in alphabet] + ["".join(m) for m in kept]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({token: i for i, token in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in kept))
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>"}
    with open(os.path.join(folder, "special_tokens_map.json"), "w") as f:
        json.dump(special, f, indent=2)
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(dict(special, tokenizer_class="CLIPTokenizer", model_max_length=77, do_lower_case=True,
                       clean_up_tokenization_spaces=True, errors="replace"), f, indent=2)
    return len(vocab)
