#!/usr/bin/env python3
"""Textual-inversion fixtures for Chisel: small random embeddings for sd1-tiny in diffusers' and
AUTOMATIC1111's formats, and diffusers' img2img with them loaded (load_textual_inversion).

Writes
    Tests/ChiselModelsTests/Fixtures/embeddings/learned_embeds.safetensors
        diffusers' format: one tensor named by its token, <fox-style>, of 2 vectors (so the
        pipeline adds <fox-style> and <fox-style>_1 and expands the token in prompts)
    Tests/ChiselModelsTests/Fixtures/embeddings/tiny-style.safetensors
        AUTOMATIC1111's safetensors format: emb_params, 1 vector. AUTOMATIC1111 names the token
        after the file (tiny-style); diffusers would call it "emb_params" unless told, so the
        reference passes token="tiny-style", the name Chisel gives it.
    Tests/ChiselModelsTests/Fixtures/embeddings/pt-style.pt, learned_embeds.bin, pickled-values.safetensors
        the pickled formats (AUTOMATIC1111's string_to_param .pt, diffusers' .bin), their values in plain
        safetensors; hostile.pt, a pickle that would run a command
    Tests/ChiselModelStagesTests/Fixtures/embeddings/img2img_sd1_embeddings.safetensors + cases.json

Pins (refused if different): torch 2.15.0, diffusers 0.42.1, transformers 5.23.0, safetensors 0.8.0.
Run by hand, never in CI:   tools/.venv/bin/python tools/reference/embedding.py
"""

from __future__ import annotations

import json

import numpy as np
import PIL.Image
import torch
from safetensors.torch import save_file

from fixture_common import IMAGE, MODELS, REPO, check_pins, img2img, run_img2img, save_image

MODEL = MODELS / "sd1-tiny"
FILES = REPO / "Tests" / "ChiselModelsTests" / "Fixtures" / "embeddings"
OUT = REPO / "Tests" / "ChiselModelStagesTests" / "Fixtures" / "embeddings"
PROMPT = "a photo of <fox-style> in the style of tiny-style"
NEGATIVE = "blurry, tiny-style"
CASE = {"name": "img2img_sd1_embeddings", "steps": 10, "strength": 0.6, "guidance": 7.5, "seed": 13}


def main():
    versions = check_pins("embedding.py")
    FILES.mkdir(parents=True, exist_ok=True)
    OUT.mkdir(parents=True, exist_ok=True)
    pipe = img2img(MODEL)
    width = pipe.text_encoder.config.hidden_size
    scale = float(pipe.text_encoder.get_input_embeddings().weight.std()) * 3
    generator = torch.Generator().manual_seed(20261201)
    save_file({"<fox-style>": torch.randn(2, width, generator=generator) * scale}, FILES / "learned_embeds.safetensors")
    save_file({"emb_params": torch.randn(1, width, generator=generator) * scale}, FILES / "tiny-style.safetensors")
    # AUTOMATIC1111's pickled format (a Parameter inside string_to_param, as its trainer saves it) and
    # diffusers' learned_embeds.bin, with their values also in plain safetensors for the tests.
    pt = torch.randn(3, width, generator=generator) * scale
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": torch.nn.Parameter(pt.clone())},
                "name": "pt-style", "step": 500, "sd_checkpoint": "0123456789", "sd_checkpoint_name": "sd1-tiny"},
               FILES / "pt-style.pt")
    bin_vector = (torch.randn(width, generator=generator) * scale).half()
    torch.save({"<bin-style>": bin_vector}, FILES / "learned_embeds.bin")
    save_file({"pt-style": pt, "bin-style": bin_vector.float()}, FILES / "pickled-values.safetensors")

    class Hostile:  # a pickle that would run a command if a reader trusted it
        def __reduce__(self):
            import os
            return (os.system, ("echo this must never run",))
    torch.save({"string_to_param": {"*": Hostile()}, "name": "hostile"}, FILES / "hostile.pt")

    source = PIL.Image.open(IMAGE).convert("RGB")
    plain = run_img2img(pipe, source, PROMPT, NEGATIVE, **CASE)
    pipe.load_textual_inversion(FILES / "learned_embeds.safetensors")
    pipe.load_textual_inversion(FILES / "tiny-style.safetensors", token="tiny-style")
    ids = pipe.tokenizer(pipe.maybe_convert_prompt(PROMPT, pipe.tokenizer)).input_ids
    out = run_img2img(pipe, source, PROMPT, NEGATIVE, **CASE)
    save_image(OUT / f"{CASE['name']}.safetensors", out)
    record = {"generator": "tools/reference/embedding.py", "versions": versions,
              "model": "Tests/ChiselModelsTests/Fixtures/reference/sd1-tiny",
              "embeddings": ["Tests/ChiselModelsTests/Fixtures/embeddings/learned_embeds.safetensors",
                             "Tests/ChiselModelsTests/Fixtures/embeddings/tiny-style.safetensors"],
              "image": "Tests/ChiselModelStagesTests/Fixtures/pipelines/image.png", "prompt": PROMPT,
              "negative_prompt": NEGATIVE, "prompt_ids": ids, "scheduler": type(pipe.scheduler).__name__,
              "mean_effect_of_the_embeddings": float(np.abs(out - plain).mean()), **CASE}
    (OUT / "cases.json").write_text(json.dumps(record, indent=1) + "\n")
    print("ids", ids, "effect", record["mean_effect_of_the_embeddings"])


if __name__ == "__main__":
    main()
