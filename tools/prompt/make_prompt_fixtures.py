#!/usr/bin/env python3
"""Writes the prompt-encoding fixtures under Tests/ChiselModelsTests/Fixtures/prompt/.

Run by hand, never in CI, in the reference environment of tools/reference:

    tools/.venv/bin/python tools/prompt/make_prompt_fixtures.py

Pins: Python 3.11, torch 2.15.0 (CPU, float32), transformers 5.23.0, diffusers 0.42.1,
safetensors 0.8.0 (tools/reference/requirements.txt).

AUTOMATIC1111 cannot be imported here (it needs its whole web UI), so the two functions it
runs on a prompt are ported by hand below, statement by statement, from
stable-diffusion-webui (master, 2024: modules/prompt_parser.py `parse_prompt_attention`,
modules/sd_hijack_clip.py `FrozenCLIPEmbedderWithCustomWordsBase.tokenize_line` and
`process_tokens`, modules/sd_emphasis.py `EmphasisOriginal` / `EmphasisOriginalNoNorm`), and
ComfyUI's weighting from comfy/sd1_clip.py `ClipTokenWeightEncoder.encode_token_weights`.
The port of `parse_prompt_attention` is checked against every example of A1111's docstring.

Writes:
  parse.json        the parser's runs for a corpus of tricky prompts (or the error A1111 raises)
  chunks.json       chunk tokens and per-token multipliers (tokenize_line) on the real CLIP
                    vocabulary (Sources/ChiselModels/Resources/CLIP) through transformers'
                    CLIPTokenizer, SD1 and SD2 padding
  tiny-tokenizer/   a CLIP tokenizer with ids < 1000 for the tiny text encoders: the first 998
                    entries of the real vocabulary (the byte symbols and the first 486 merges,
                    whose results are exactly ids 512..997) and <|startoftext|> 998,
                    <|endoftext|> 999; sd1/ and sd2/ configurations (SD2 pads with "!" = 0)
  numeric.json +    hidden states of the tiny SD1 and SD2 text encoders
  numeric.safetensors  (Tests/ChiselModelsTests/Fixtures/reference/sd{1,2}-tiny/text_encoder)
                    after A1111's weighting ("Original", "No norm"), ComfyUI's weighting, and
                    diffusers' StableDiffusionPipeline.encode_prompt (truncation to 77 tokens),
                    clip_skip 0 and 1
"""
import json
import math
import re
import shutil
import tempfile
import types
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import CLIPTextModel, CLIPTokenizer
from diffusers import StableDiffusionPipeline

ROOT = Path(__file__).resolve().parents[2]
VOCAB_DIR = ROOT / "Sources/ChiselModels/Resources/CLIP"
OUT = ROOT / "Tests/ChiselModelsTests/Fixtures/prompt"
REFERENCE = ROOT / "Tests/ChiselModelsTests/Fixtures/reference"

# --------------------------------------------------------------------------------------
# modules/prompt_parser.py: parse_prompt_attention, ported statement by statement
# --------------------------------------------------------------------------------------

re_attention = re.compile(r"""
\\\(|
\\\)|
\\\[|
\\]|
\\\\|
\\|
\(|
\[|
:([+-]?[.\d]+)\)|
\)|
]|
[^\\()\[\]:]+|
:
""", re.X)

re_break = re.compile(r"\s*\bBREAK\b\s*", re.S)


def parse_prompt_attention(text):
    res = []
    round_brackets = []
    square_brackets = []

    round_bracket_multiplier = 1.1
    square_bracket_multiplier = 1 / 1.1

    def multiply_range(start_position, multiplier):
        for p in range(start_position, len(res)):
            res[p][1] *= multiplier

    for m in re_attention.finditer(text):
        text = m.group(0)
        weight = m.group(1)

        if text.startswith('\\'):
            res.append([text[1:], 1.0])
        elif text == '(':
            round_brackets.append(len(res))
        elif text == '[':
            square_brackets.append(len(res))
        elif weight is not None and round_brackets:
            multiply_range(round_brackets.pop(), float(weight))
        elif text == ')' and round_brackets:
            multiply_range(round_brackets.pop(), round_bracket_multiplier)
        elif text == ']' and square_brackets:
            multiply_range(square_brackets.pop(), square_bracket_multiplier)
        else:
            parts = re.split(re_break, text)
            for i, part in enumerate(parts):
                if i > 0:
                    res.append(["BREAK", -1])
                res.append([part, 1.0])

    for pos in round_brackets:
        multiply_range(pos, round_bracket_multiplier)

    for pos in square_brackets:
        multiply_range(pos, square_bracket_multiplier)

    if len(res) == 0:
        res = [["", 1.0]]

    i = 0
    while i + 1 < len(res):
        if res[i][1] == res[i + 1][1]:
            res[i][0] += res[i + 1][0]
            res.pop(i + 1)
        else:
            i += 1

    return res


# A1111's docstring examples, verbatim.
DOCSTRING_EXAMPLES = [
    ('normal text', [['normal text', 1.0]]),
    ('an (important) word', [['an ', 1.0], ['important', 1.1], [' word', 1.0]]),
    ('(unbalanced', [['unbalanced', 1.1]]),
    ('\\(literal\\]', [['(literal]', 1.0]]),
    ('(unnecessary)(parens)', [['unnecessaryparens', 1.1]]),
    ('a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).',
     [['a ', 1.0], ['house', 1.5730000000000004], [' ', 1.1], ['on', 1.0], [' a ', 1.1], ['hill', 0.55],
      [', sun, ', 1.1], ['sky', 1.4641000000000006], ['.', 1.1]]),
]

PARSE_CORPUS = [
    # the docstring's own
    *[p for p, _ in DOCSTRING_EXAMPLES],
    "",
    "   ",
    "[a] [[b]] [[[c]]]",
    "((a)) (((b))) ((((c))))",
    "(a:1.5) (b:0.5) (c:-1)",
    "(a:+2) (b:-.5)",
    "(a:.5) (b:5.)",
    "(a:0)(b:0)",
    "(a:0)(b:-0)",
    "(a:1.10)(b)",
    "(a: 1.5)",
    "(a:1e3)",
    "((a:1.2):1.5)",
    "[(a:1.2)]",
    "(a [b] c)",
    "[(a) b]",
    "[a)b]",
    "((a] mixed",
    "a:1.2) no open bracket",
    "a ) ] stray closers",
    "[unbalanced square",
    "(outer [inner",
    "\\\\ backslash",
    "\\a lone backslash",
    "\\(a\\) \\[b\\]",
    "C:\\path\\to\\file",
    "trailing backslash \\",
    "a BREAK b",
    "aBREAK b",
    "BREAK",
    "BREAK BREAK",
    "a BREAK",
    " BREAK b",
    "a\nBREAK\nb",
    "a\tBREAK,b",
    "(a BREAK b)",
    "(a BREAK b:0)",
    "a break b",
    "BREAKfast at BREAK_time",
    "(BRE:-1)(AK:-1)",
    ":::",
    "(:1.5)",
    "(a:1.5:2)",
    "[a:b:0.5]",
    "[a|b]",
    "(a:\u0663)",
    "emoji \U0001F3A8 (art:1.2)",
    "\u4E2D\u6587 (\u732B:1.3)",
    "masterpiece, best quality, (detailed:1.2), [lowres], ((sharp)), (bokeh:0.8)",
    "[[[[[[[[x]]]]]]]]",
    "(((((((((x)))))))))",
    "(a:1.2.3)",
    "(a:.)",
    "(a:..5)",
]

# --------------------------------------------------------------------------------------
# modules/sd_hijack_clip.py: tokenize_line and the padding of process_tokens, ported
# --------------------------------------------------------------------------------------


class PromptChunk:
    def __init__(self):
        self.tokens = []
        self.multipliers = []


class A1111Chunker:
    """FrozenCLIPEmbedderWithCustomWordsBase.tokenize_line with no textual-inversion
    embeddings (find_embedding_at_position always None), opts.emphasis "Original"."""

    def __init__(self, tokenizer, comma_padding_backtrack=20):
        self.tokenizer = tokenizer
        self.chunk_length = 75
        self.comma_padding_backtrack = comma_padding_backtrack
        self.comma_token = tokenizer.get_vocab().get(',</w>', None)
        self.id_start = tokenizer.bos_token_id
        self.id_end = tokenizer.eos_token_id
        self.id_pad = tokenizer.pad_token_id

    def tokenize(self, texts):
        return self.tokenizer(texts, truncation=False, add_special_tokens=False)["input_ids"]

    def empty_chunk(self):
        chunk = PromptChunk()
        chunk.tokens = [self.id_start] + [self.id_end] * (self.chunk_length + 1)
        chunk.multipliers = [1.0] * (self.chunk_length + 2)
        return chunk

    def tokenize_line(self, line):
        parsed = parse_prompt_attention(line)
        tokenized = self.tokenize([text for text, _ in parsed])

        chunks = []
        chunk = PromptChunk()
        token_count = 0
        last_comma = -1

        def next_chunk(is_last=False):
            nonlocal token_count
            nonlocal last_comma
            nonlocal chunk

            if is_last:
                token_count += len(chunk.tokens)
            else:
                token_count += self.chunk_length

            to_add = self.chunk_length - len(chunk.tokens)
            if to_add > 0:
                chunk.tokens += [self.id_end] * to_add
                chunk.multipliers += [1.0] * to_add

            chunk.tokens = [self.id_start] + chunk.tokens + [self.id_end]
            chunk.multipliers = [1.0] + chunk.multipliers + [1.0]

            last_comma = -1
            chunks.append(chunk)
            chunk = PromptChunk()

        for tokens, (text, weight) in zip(tokenized, parsed):
            if text == 'BREAK' and weight == -1:
                next_chunk()
                continue

            position = 0
            while position < len(tokens):
                token = tokens[position]

                if token == self.comma_token:
                    last_comma = len(chunk.tokens)
                elif self.comma_padding_backtrack != 0 and len(chunk.tokens) == self.chunk_length and last_comma != -1 \
                        and len(chunk.tokens) - last_comma <= self.comma_padding_backtrack:
                    break_location = last_comma + 1

                    reloc_tokens = chunk.tokens[break_location:]
                    reloc_mults = chunk.multipliers[break_location:]

                    chunk.tokens = chunk.tokens[:break_location]
                    chunk.multipliers = chunk.multipliers[:break_location]

                    next_chunk()
                    chunk.tokens = reloc_tokens
                    chunk.multipliers = reloc_mults

                if len(chunk.tokens) == self.chunk_length:
                    next_chunk()

                chunk.tokens.append(token)
                chunk.multipliers.append(weight)
                position += 1

        if chunk.tokens or not chunks:
            next_chunk(is_last=True)

        return chunks, token_count

    def model_tokens(self, chunk_tokens):
        """process_tokens: for SD2 (end != pad) every id after the first end token is the pad id."""
        tokens = list(chunk_tokens)
        if self.id_end != self.id_pad:
            index = tokens.index(self.id_end)
            tokens[index + 1:] = [self.id_pad] * (len(tokens) - index - 1)
        return tokens


def float32_list(values):
    """The multipliers as torch.asarray stores them: float32."""
    return torch.tensor(values, dtype=torch.float32).tolist()


# --------------------------------------------------------------------------------------
# Weightings
# --------------------------------------------------------------------------------------


def emphasis_original(z, multipliers):
    """sd_emphasis.EmphasisOriginal.after_transformers on one chunk (z: [1, 77, C])."""
    original_mean = z.mean()
    z = z * multipliers.reshape(multipliers.shape + (1,)).expand(z.shape)
    new_mean = z.mean()
    return z * (original_mean / new_mean)


def emphasis_no_norm(z, multipliers):
    """sd_emphasis.EmphasisOriginalNoNorm.after_transformers."""
    return z * multipliers.reshape(multipliers.shape + (1,)).expand(z.shape)


def comfy_weighting(z, weights, z_empty):
    """The loop of ClipTokenWeightEncoder.encode_token_weights for one section (z: [1, 77, C])."""
    z = z.clone()
    for i in range(len(z)):
        for j in range(len(z[i])):
            weight = weights[j]
            if weight != 1.0:
                z[i][j] = (z[i][j] - z_empty[j]) * weight + z_empty[j]
    return z


@torch.no_grad()
def encode_ids(te, ids, clip_skip):
    """The text encoder as A1111 (CLIP_stop_at_last_layers = clip_skip + 1) and diffusers run it."""
    out = te(input_ids=torch.tensor(ids), output_hidden_states=True)
    if clip_skip == 0:
        return out.last_hidden_state
    return te.final_layer_norm(out.hidden_states[-(clip_skip + 1)])


@torch.no_grad()
def diffusers_encode_prompt(tokenizer, te, prompt, clip_skip):
    """diffusers' own StableDiffusionPipeline.encode_prompt on a stub pipeline.  With
    transformers 5 it reads `text_encoder.text_model.final_layer_norm` (transformers 4's
    layout), so the encoder goes in a thin wrapper that has it (as tools/reference does)."""
    class Wrapped:
        def __init__(self, m):
            self.m, self.config, self.dtype = m, m.config, m.dtype
            self.text_model = types.SimpleNamespace(final_layer_norm=m.final_layer_norm)

        def __call__(self, *a, **k):
            return self.m(*a, **k)

    stub = types.SimpleNamespace(tokenizer=tokenizer, text_encoder=Wrapped(te), unet=None)
    embeds, _ = StableDiffusionPipeline.encode_prompt(
        stub, prompt, torch.device("cpu"), 1, False, clip_skip=clip_skip if clip_skip > 0 else None)
    ids = tokenizer(prompt, padding="max_length", max_length=77, truncation=True).input_ids
    return embeds, ids


# --------------------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------------------


def tokenizer_folder(dest: Path, vocab: dict, merges_text: str, config: str):
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    (dest / "merges.txt").write_text(merges_text, encoding="utf-8")
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(VOCAB_DIR / config / name, dest / name)


def real_tokenizer(tmp: Path, config: str):
    vocab = json.loads((VOCAB_DIR / "vocab.json").read_text(encoding="utf-8"))
    folder = tmp / f"real-{config}"
    tokenizer_folder(folder, vocab, (VOCAB_DIR / "merges.txt").read_text(encoding="utf-8"), config)
    return CLIPTokenizer.from_pretrained(folder)


def write_tiny_tokenizer():
    """The real vocabulary cut to ids < 998, plus the special tokens at 998 and 999."""
    vocab = json.loads((VOCAB_DIR / "vocab.json").read_text(encoding="utf-8"))
    lines = (VOCAB_DIR / "merges.txt").read_text(encoding="utf-8").split("\n")
    merges = lines[1:1 + 998 - 512]
    for rank, line in enumerate(merges):
        left, right = line.split()
        assert vocab[left] < 998 and vocab[right] < 998 and vocab[left + right] == 512 + rank, line
    tiny = {k: v for k, v in vocab.items() if v < 998}
    assert len(tiny) == 998
    tiny["<|startoftext|>"] = 998
    tiny["<|endoftext|>"] = 999
    merges_text = lines[0] + "\n" + "\n".join(merges) + "\n"
    folders = {}
    for config in ("sd1", "sd2"):
        folder = OUT / "tiny-tokenizer" / config
        if folder.exists():
            shutil.rmtree(folder)
        tokenizer_folder(folder, tiny, merges_text, config)
        folders[config] = folder
    return folders


# --------------------------------------------------------------------------------------
# Corpora
# --------------------------------------------------------------------------------------

LONG = ("a highly detailed oil painting of a lighthouse on a rocky cliff above a stormy sea at dusk, "
        "dramatic clouds, crashing waves, seagulls, warm light from the lantern room, wet rocks, "
        "moss, a winding path with a wooden fence, a small cottage with a red roof, smoke from the "
        "chimney, (cinematic lighting:1.2), [blurry], masterpiece, best quality, intricate, sharp focus, "
        "trending on artstation, by a famous painter, golden hour, volumetric fog, 8k")

COMMA_BORDER = ", ".join(["word"] * 36) + ", tail end of the prompt that moves"  # a comma near token 75
NO_COMMA = " ".join(["word"] * 80)

CHUNK_CORPUS = [
    ("", "sd1", 20),
    ("", "sd2", 20),
    ("a photo of a cat", "sd1", 20),
    ("a photo of a cat", "sd2", 20),
    ("an (important) word, [unimportant], (very:1.5) ((nested)) [[less]]", "sd1", 20),
    ("a (red:1.3) cat, [blurry] background", "sd2", 20),
    (LONG, "sd1", 20),
    (LONG, "sd2", 20),
    (LONG, "sd1", 0),
    (COMMA_BORDER, "sd1", 20),
    (COMMA_BORDER, "sd1", 0),
    (COMMA_BORDER, "sd1", 5),
    (", ".join(["a b c d e f g h i j k l m n o p q r s"] * 5), "sd1", 20),
    ("x " * 74 + ", y z", "sd1", 20),
    ("x " * 75 + ", y z", "sd1", 20),
    ("x " * 60 + ", " + "y " * 30, "sd1", 20),
    ("x " * 50 + ", " + "y " * 30, "sd1", 20),
    ("x " * 55 + ", " + "y " * 30, "sd1", 20),  # the comma exactly 20 tokens back: moves
    ("x " * 54 + ", " + "y " * 30, "sd1", 20),  # 21 tokens back: stays
    ("x " * 55 + ", " + "y " * 30, "sd1", 19),
    ("x " * 74 + ", " + "y " * 3, "sd1", 20),  # the comma is the 75th token
    (NO_COMMA, "sd1", 20),
    ("a castle BREAK a dragon BREAK (sunset:0.8)", "sd1", 20),
    ("a castle BREAK a dragon BREAK (sunset:0.8)", "sd2", 20),
    ("BREAK", "sd1", 20),
    ("a BREAK", "sd1", 20),
    ("BREAK a", "sd1", 20),
    ("(a BREAK b)", "sd1", 20),
    ("x " * 75 + "BREAK y", "sd1", 20),
    ("one <|endoftext|> two", "sd2", 20),
    ("(masterpiece:1.2), best quality, " * 6, "sd1", 20),
    ("\u4E2D\u6587 (\u732B:1.3), emoji \U0001F3A8, caf\u00E9", "sd1", 20),
]

NUMERIC_PROMPTS = [
    "a (red:1.3) cat, [blurry] background",
    LONG,
    "a castle BREAK a dragon, ((sunset)), [[fog]] BREAK (stars:0.5)",
    "",
]


def main():
    for prompt, expected in DOCSTRING_EXAMPLES:
        got = parse_prompt_attention(prompt)
        assert got == expected, (prompt, got, expected)

    OUT.mkdir(parents=True, exist_ok=True)

    # (a) parser
    cases = []
    for prompt in PARSE_CORPUS:
        try:
            runs = parse_prompt_attention(prompt)
            cases.append({"prompt": prompt, "runs": [[t, w] for t, w in runs]})
        except ValueError as e:
            cases.append({"prompt": prompt, "error": str(e)})
    assert len(cases) >= 40
    (OUT / "parse.json").write_text(json.dumps({
        "source": "port of AUTOMATIC1111 modules/prompt_parser.py parse_prompt_attention; "
                  "runs are [text, weight]; a BREAK marker is [\"BREAK\", -1]",
        "cases": cases}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        real = {config: real_tokenizer(tmp, config) for config in ("sd1", "sd2")}
        assert real["sd1"].pad_token_id == 49407 and real["sd2"].pad_token_id == 0

        # (b) chunks on the real vocabulary
        chunk_cases = []
        for prompt, config, backtrack in CHUNK_CORPUS:
            chunker = A1111Chunker(real[config], backtrack)
            chunks, token_count = chunker.tokenize_line(prompt)
            assert all(len(c.tokens) == 77 and len(c.multipliers) == 77 for c in chunks)
            chunk_cases.append({
                "prompt": prompt, "tokenizer": config, "comma_padding_backtrack": backtrack,
                "token_count": token_count,
                "tokens": [chunker.model_tokens(c.tokens) for c in chunks],
                "weights": [float32_list(c.multipliers) for c in chunks]})
        (OUT / "chunks.json").write_text(json.dumps({
            "source": "port of AUTOMATIC1111 tokenize_line + process_tokens padding, transformers "
                      f"{__import__('transformers').__version__} CLIPTokenizer on the bundled vocabulary; "
                      "tokens are the ids the text encoder sees, weights float32",
            "cases": chunk_cases}, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")

    # (c) numeric, on the tiny encoders
    folders = write_tiny_tokenizer()
    tensors = {}
    numeric = []
    for family, config in (("sd1-tiny", "sd1"), ("sd2-tiny", "sd2")):
        tokenizer = CLIPTokenizer.from_pretrained(folders[config])
        assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (998, 999)
        assert tokenizer.pad_token_id == (999 if config == "sd1" else 0)
        te = CLIPTextModel.from_pretrained(REFERENCE / family / "text_encoder", dtype=torch.float32).eval()
        chunker = A1111Chunker(tokenizer)
        empty_ids = chunker.model_tokens(chunker.empty_chunk().tokens)
        plan = []
        # Every weighting and clip skip on SD1, fewer on SD2 (twice as wide), to stay near 500 KB.
        sd1 = family == "sd1-tiny"
        for p, prompt in enumerate(NUMERIC_PROMPTS):
            for skip in ((0, 1) if (sd1 and p != 2) or p == 0 else (0,)):
                plan.append((p, prompt, "a1111", skip))
            if sd1 and p == 0:
                plan.append((p, prompt, "a1111-no-norm", 0))
            if sd1 and p < 2:
                plan.append((p, prompt, "comfy", 0))
            if p < 2:
                plan += [(p, prompt, "truncate", skip) for skip in ((0, 1) if sd1 or p == 0 else (0,))]
        for p, prompt, weighting, skip in plan:
            name = f"{config}/{weighting}/skip{skip}/p{p}"
            if weighting == "truncate":
                embeds, ids = diffusers_encode_prompt(tokenizer, te, prompt, skip)
                tokens, weights = [ids], [[1.0] * 77]
                assert list(embeds.shape) == [1, 77, te.config.hidden_size]
                z = embeds
            else:
                chunks, _ = chunker.tokenize_line(prompt)
                tokens = [chunker.model_tokens(c.tokens) for c in chunks]
                weights = [float32_list(c.multipliers) for c in chunks]
                z_empty = encode_ids(te, [empty_ids], skip)[0]
                outs = []
                for ids, mults in zip(tokens, weights):
                    z = encode_ids(te, [ids], skip)
                    m = torch.asarray([mults])
                    if weighting == "a1111":
                        z = emphasis_original(z, m)
                    elif weighting == "a1111-no-norm":
                        z = emphasis_no_norm(z, m)
                    else:
                        z = comfy_weighting(z, mults, z_empty)
                    outs.append(z)
                z = torch.hstack(outs)
            tensors[name] = z.contiguous()
            numeric.append({"family": family, "tokenizer": config, "prompt": prompt, "weighting": weighting,
                            "clip_skip": skip, "tensor": name, "tokens": tokens, "weights": weights,
                            "max_abs": float(z.abs().max())})
    save_file(tensors, str(OUT / "numeric.safetensors"))
    (OUT / "numeric.json").write_text(json.dumps({
        "source": "tiny text encoders of Fixtures/reference, float32 on the CPU, torch "
                  f"{torch.__version__}; a1111 = EmphasisOriginal per chunk, a1111-no-norm = "
                  "EmphasisOriginalNoNorm, comfy = encode_token_weights, truncate = diffusers "
                  "StableDiffusionPipeline.encode_prompt",
        "cases": numeric}, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")

    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"{len(cases)} parse cases, {len(chunk_cases)} chunk cases, {len(numeric)} numeric cases, "
          f"{total / 1024:.0f} KiB in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
