#!/usr/bin/env python3
"""Writes the CLIP tokenizer fixtures under Tests/ChiselModelsTests/Fixtures/tokenizer/.

Run by hand, never in CI, in a virtual environment outside the repository:

    python3 -m venv tools/.venv-tok4
    tools/.venv-tok4/bin/pip install -r tools/tokenizer/requirements.txt
    tools/.venv-tok4/bin/python tools/tokenizer/generate.py

What it does:
1. Derives vocab.json and merges.txt from open_clip's bpe_simple_vocab_16e6.txt.gz the way
   CLIP's SimpleTokenizer builds its vocabulary: the 256 byte characters, the same with
   "</w>", the first 49152-256-2 merges joined, then <|startoftext|> and <|endoftext|>.
2. Writes three configurations beside it: clip/ (SD1's tokenizer_config.json and
   special_tokens_map.json, padding with <|endoftext|>), sd2/ (SD2's legacy files, where
   special_tokens_map.json sets the pad token to "!") and sd2-added-tokens/ (the newer format
   transformers saves, with added_tokens_decoder, as SDXL's tokenizer_2 ships it).
3. Writes small.json, a tokenizer.json of the first 2000 merges built by transformers'
   CLIPTokenizerFast, so that the tokenizer.json reader has a fixture of its own.
4. Checks the vocabulary against open_clip's tokenizer, then writes corpus.json: every prompt
   of prompts.py with the ids of transformers' slow CLIPTokenizer *without ftfy* (the
   BasicTokenizer clean-up that users get unless they install ftfy), of CLIPTokenizerFast,
   and of the small tokenizer.json.
5. Writes sweep.json: one short text per code point of Unicode 14.0 through the slow and fast
   tokenizers, hashed per block of 256 code points (see sweep.py).

transformers is pinned to 4.57.x because the slow, pure-Python CLIPTokenizer and its
BasicTokenizer fallback exist only in 4.x; transformers 5 replaced CLIPTokenizer by the
tokenizers-backed one. check_transformers5.py checks that 5.x matches the "fast" ids.
"""
import gzip
import html
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(ROOT, "Tests", "ChiselModelsTests", "Fixtures", "tokenizer")
VOCABULARY = os.path.join(ROOT, "Sources", "ChiselModels", "Resources", "CLIP")
sys.path.insert(0, HERE)

import prompts  # noqa: E402
import sweep  # noqa: E402

import ftfy  # noqa: E402  (open_clip needs it; it is hidden from transformers below)
import open_clip  # noqa: E402
import tokenizers  # noqa: E402
import transformers  # noqa: E402
from open_clip import tokenizer as open_clip_tokenizer  # noqa: E402
from transformers import CLIPTokenizer, CLIPTokenizerFast  # noqa: E402

MAX_LENGTH = 77
SMALL_MERGES = 2000
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def derive_vocabulary():
    """CLIP's SimpleTokenizer.__init__, with transformers' names for the two special tokens."""
    lines = gzip.open(open_clip_tokenizer.default_bpe()).read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    pairs = [tuple(merge.split()) for merge in merges]
    assert all(len(pair) == 2 for pair in pairs)
    byte_chars = list(open_clip_tokenizer.bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(pair) for pair in pairs] + [BOS, EOS]
    assert len(tokens) == 49408 and len(set(tokens)) == 49408
    return {token: i for i, token in enumerate(tokens)}, [" ".join(pair) for pair in pairs]


def write_vocabulary(folder, vocab, merges):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")


def added_token(content, legacy):
    token = {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}
    return {"__type": "AddedToken", **token} if legacy else token


def sd_config(pad_token):
    """tokenizer_config.json as SD 1.x and 2.x ship it (written by transformers 4.2x)."""
    return {
        "add_prefix_space": False,
        "bos_token": added_token(BOS, True),
        "do_lower_case": True,
        "eos_token": added_token(EOS, True),
        "errors": "replace",
        "model_max_length": MAX_LENGTH,
        "name_or_path": "openai/clip-vit-large-patch14",
        "pad_token": pad_token,
        "special_tokens_map_file": "./special_tokens_map.json",
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": added_token(EOS, True),
    }


def special_tokens_map(pad_token):
    return {
        "bos_token": added_token(BOS, False),
        "eos_token": added_token(EOS, False),
        "pad_token": pad_token,
        "unk_token": added_token(EOS, False),
    }


def added_tokens_config():
    """The newer tokenizer_config.json (transformers >= 4.34), as SDXL's tokenizer_2 ships it."""
    def entry(content, normalized):
        return {"content": content, "lstrip": False, "normalized": normalized, "rstrip": False,
                "single_word": False, "special": True}
    return {
        "add_prefix_space": False,
        "added_tokens_decoder": {"0": entry("!", False), "49406": entry(BOS, True), "49407": entry(EOS, False)},
        "additional_special_tokens": [],
        "bos_token": BOS,
        "clean_up_tokenization_spaces": True,
        "do_lower_case": True,
        "eos_token": EOS,
        "errors": "replace",
        "model_max_length": MAX_LENGTH,
        "pad_token": "!",
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": EOS,
    }


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, ensure_ascii=False)
        f.write("\n")


def slow_without_ftfy(folder):
    """transformers' slow CLIPTokenizer as it behaves when ftfy is not installed."""
    saved = sys.modules.get("ftfy")
    sys.modules["ftfy"] = None  # makes `import ftfy` raise ImportError
    try:
        tokenizer = CLIPTokenizer.from_pretrained(folder)
    finally:
        sys.modules["ftfy"] = saved
    assert tokenizer.fix_text is None, "ftfy was not hidden"
    return tokenizer


def check_against_open_clip(vocab, slow_with_ftfy, corpus):
    """The derived vocabulary is open_clip's, and transformers (with ftfy, like open_clip) agrees
    with open_clip's SimpleTokenizer on every prompt whose clean-up both do the same way."""
    reference = open_clip_tokenizer.SimpleTokenizer()
    renamed = {"<start_of_text>": BOS, "<end_of_text>": EOS}
    assert {renamed.get(k, k): v for k, v in reference.encoder.items()} == vocab
    compared = 0
    for text in corpus:
        fixed = ftfy.fix_text(text)
        # open_clip also unescapes HTML twice and splits on str.split()'s whitespace, which
        # includes U+001C..U+001F; transformers does neither.
        if html.unescape(html.unescape(fixed)) != fixed or any("\x1c" <= c <= "\x1f" for c in text):
            continue
        if "<|" in text:  # open_clip's special tokens have other names
            continue
        expected = reference.encode(text)
        got = slow_with_ftfy.encode(text, add_special_tokens=False)
        assert got == expected, (text, got, expected)
        compared += 1
    return compared


def build_small(vocab, merges, folder):
    """A tokenizer.json of the first SMALL_MERGES merges, built by CLIPTokenizerFast."""
    tokens = [t for t, i in sorted(vocab.items(), key=lambda kv: kv[1])][:512]
    tokens += ["".join(m.split()) for m in merges[:SMALL_MERGES]] + [BOS, EOS]
    small_vocab = {t: i for i, t in enumerate(tokens)}
    with tempfile.TemporaryDirectory() as tmp:
        write_vocabulary(tmp, small_vocab, merges[:SMALL_MERGES])
        fast = CLIPTokenizerFast(os.path.join(tmp, "vocab.json"), os.path.join(tmp, "merges.txt"))
    path = os.path.join(folder, "small.json")
    fast.backend_tokenizer.save(path, pretty=False)
    return path


def padded(tokenizer, text):
    return tokenizer(text, padding="max_length", max_length=MAX_LENGTH, truncation=True)["input_ids"]


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    clip = os.path.join(OUT, "clip")
    vocab, merges = derive_vocabulary()
    # The vocabulary ships with Chisel as a resource of ChiselModels; clip/ keeps SD1's configuration.
    write_vocabulary(VOCABULARY, vocab, merges)
    os.makedirs(clip)
    write_json(os.path.join(clip, "tokenizer_config.json"), sd_config(EOS))
    write_json(os.path.join(clip, "special_tokens_map.json"), special_tokens_map(EOS))
    # The two SD2 variants hold only their configuration; the tests copy vocab.json and
    # merges.txt next to them.
    sd2 = os.path.join(OUT, "sd2")
    os.makedirs(sd2)
    write_json(os.path.join(sd2, "tokenizer_config.json"), sd_config(EOS))
    write_json(os.path.join(sd2, "special_tokens_map.json"), special_tokens_map("!"))
    sd2_added = os.path.join(OUT, "sd2-added-tokens")
    os.makedirs(sd2_added)
    write_json(os.path.join(sd2_added, "tokenizer_config.json"), added_tokens_config())
    write_json(os.path.join(sd2_added, "special_tokens_map.json"), {"bos_token": BOS, "eos_token": EOS, "pad_token": "!", "unk_token": EOS})

    corpus = prompts.corpus()
    with tempfile.TemporaryDirectory() as tmp:
        loaders = {}
        for name, config in [("sd1", clip), ("sd2", sd2), ("sd2-added-tokens", sd2_added)]:
            folder = os.path.join(tmp, name)
            shutil.copytree(config, folder)
            for f in ["vocab.json", "merges.txt"]:
                shutil.copy(os.path.join(VOCABULARY, f), folder)
            loaders[name] = folder
        slow1 = slow_without_ftfy(loaders["sd1"])
        slow2 = slow_without_ftfy(loaders["sd2"])
        slow2_added = slow_without_ftfy(loaders["sd2-added-tokens"])
        slow1_ftfy = CLIPTokenizer.from_pretrained(loaders["sd1"])
        assert slow1_ftfy.fix_text is not None
        fast1 = CLIPTokenizerFast.from_pretrained(loaders["sd1"])
        fast2 = CLIPTokenizerFast.from_pretrained(loaders["sd2"])
    assert slow1.pad_token_id == 49407 and slow2.pad_token_id == 0 and slow2_added.pad_token_id == 0
    assert slow1.model_max_length == MAX_LENGTH and fast2.pad_token_id == 0

    compared = check_against_open_clip(vocab, slow1_ftfy, corpus)
    print(f"open_clip agrees with transformers+ftfy on {compared} prompts")

    small_path = build_small(vocab, merges, OUT)
    small = tokenizers.Tokenizer.from_file(small_path)
    small_fast = CLIPTokenizerFast(tokenizer_file=small_path)

    entries = []
    differences = []
    for text in corpus:
        encoded = slow1.encode(text, add_special_tokens=False)
        entry = {
            "text": text,
            "encode": encoded,
            "decoded": slow1.decode(encoded, clean_up_tokenization_spaces=False),
            "sd1": padded(slow1, text),
            "sd2": padded(slow2, text),
            "fast": fast1.encode(text, add_special_tokens=False),
            "fast_sd2": padded(fast2, text),
            "small": small.encode(text, add_special_tokens=False).ids,
            "small_padded": padded(small_fast, text),
        }
        assert padded(slow2_added, text) == entry["sd2"], text
        assert small_fast.encode(text, add_special_tokens=False) == entry["small"], text
        assert all(len(entry[k]) == MAX_LENGTH for k in ["sd1", "sd2", "fast_sd2", "small_padded"])
        if entry["fast"] != encoded:
            differences.append(text)
        entries.append(entry)

    versions = {
        "python": sys.version.split()[0],
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "open_clip_torch": open_clip.__version__,
        "ftfy (hidden from transformers)": ftfy.__version__,
    }
    with open(os.path.join(OUT, "corpus.json"), "w", encoding="utf-8") as f:
        f.write("{\n")
        f.write('"about": "Written by tools/tokenizer/generate.py. encode/decoded/sd1/sd2: transformers\' slow '
                'CLIPTokenizer without ftfy (SD1 and SD2 configurations, padded to 77 with truncation); '
                'fast/fast_sd2: CLIPTokenizerFast; small/small_padded: small.json.",\n')
        f.write(f'"versions": {json.dumps(versions)},\n')
        f.write('"prompts": [\n')
        f.write(",\n".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in entries))
        f.write("\n]\n}\n")

    slow_sweep = sweep.sweep(lambda texts: [slow1.encode(t, add_special_tokens=False) for t in texts])
    fast_sweep = sweep.sweep(
        lambda texts: [e.ids for e in fast1.backend_tokenizer.encode_batch(texts, add_special_tokens=False)])
    with open(os.path.join(OUT, "sweep.json"), "w", encoding="utf-8") as f:
        f.write("{\n")
        f.write('"about": "Written by tools/tokenizer/generate.py (sweep.py): per block of 256 code points assigned in '
                'Unicode 14.0, the count and a hash of the ids of the template, slow and fast SD1 tokenizers.",\n')
        f.write(f'"template": {json.dumps(sweep.TEMPLATE)},\n')
        f.write(f'"slow": {json.dumps(slow_sweep, separators=(",", ":"))},\n')
        f.write(f'"fast": {json.dumps(fast_sweep, separators=(",", ":"))}\n')
        f.write("}\n")

    print(f"{len(entries)} prompts; slow and fast differ on {len(differences)}:")
    for text in differences:
        print("  ", ascii(text))
    total = 0
    for dirpath, _, files in os.walk(OUT):
        for name in files:
            size = os.path.getsize(os.path.join(dirpath, name))
            total += size
            print(f"{os.path.relpath(os.path.join(dirpath, name), OUT):40} {size:>9}")
    print(f"{'total':40} {total:>9}")


if __name__ == "__main__":
    main()
