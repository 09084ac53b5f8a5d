#!/usr/bin/env python3
"""Compares transformers 5's CLIPTokenizer with the ids generate.py recorded from 4.57.

transformers 5 dropped the slow CLIPTokenizer: its CLIPTokenizer is the tokenizers-backed one,
so it should give the corpus's "fast" ids, not the slow "encode" ones. Run by hand in its own
virtual environment (requirements-transformers5.txt), after generate.py:

    tools/.venv-tok/bin/python tools/tokenizer/check_transformers5.py
"""
import json
import os
import shutil
import tempfile

import transformers
from transformers import CLIPTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.normpath(os.path.join(HERE, "..", "..", "Tests", "ChiselModelsTests", "Fixtures", "tokenizer"))
VOCABULARY = os.path.normpath(os.path.join(HERE, "..", "..", "Sources", "ChiselModels", "Resources", "CLIP"))


def load(tmp, config):
    folder = os.path.join(tmp, config)
    shutil.copytree(os.path.join(FIXTURES, config), folder)
    for name in ["vocab.json", "merges.txt"]:
        shutil.copy(os.path.join(VOCABULARY, name), folder)
    return CLIPTokenizer.from_pretrained(folder)


def main():
    with open(os.path.join(FIXTURES, "corpus.json"), encoding="utf-8") as f:
        corpus = json.load(f)["prompts"]
    with tempfile.TemporaryDirectory() as tmp:
        sd1 = load(tmp, "clip")
        sd2 = load(tmp, "sd2")
    small = CLIPTokenizer(tokenizer_file=os.path.join(FIXTURES, "small.json"))
    checks = {
        "fast (SD1 encode)": lambda t: sd1.encode(t, add_special_tokens=False),
        "fast_sd2 (SD2 padded)": lambda t: sd2(t, padding="max_length", max_length=77, truncation=True)["input_ids"],
        "small": lambda t: small.encode(t, add_special_tokens=False),
    }
    keys = {"fast (SD1 encode)": "fast", "fast_sd2 (SD2 padded)": "fast_sd2", "small": "small"}
    print(f"transformers {transformers.__version__}: {type(sd1).__name__} is {type(sd1).__mro__[1].__name__}")
    for label, run in checks.items():
        differing = [p["text"] for p in corpus if run(p["text"]) != p[keys[label]]]
        print(f"{label}: {len(corpus) - len(differing)}/{len(corpus)} equal")
        for text in differing:
            print("   differs:", ascii(text))


if __name__ == "__main__":
    main()
