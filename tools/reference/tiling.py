#!/usr/bin/env python3
"""Tiled-VAE fixtures for Chisel: diffusers' AutoencoderKL with enable_tiling() on the tiny
random-weight sd1-tiny (its vae/config.json has sample_size 32, so tiles are 32 px / 16 latents).

Writes Tests/ChiselModelStagesTests/Fixtures/tiling/
    vae.safetensors: image (1×3×56×88 in [-1, 1]), mean and std of the tiled encode, latent
        (1×4×28×44) and decoded, its tiled decode; with partial tiles at the right and bottom.
    img2img_sd1_tiled.safetensors + cases.json: StableDiffusionImg2ImgPipeline(sd1-tiny) with
        pipe.vae.enable_tiling() on the pipelines fixture's image.png (48×32: encode and decode
        both tile), as a 1×H×W×3 float image.

Pins (refused if different): torch 2.15.0, diffusers 0.42.1, transformers 5.23.0, safetensors 0.8.0.
Run by hand, never in CI:   tools/.venv/bin/python tools/reference/tiling.py
"""

from __future__ import annotations

import json

import numpy as np
import PIL.Image
import torch
from safetensors.torch import save_file

from fixture_common import IMAGE, MODELS, NEGATIVE, PROMPT, REPO, check_pins, img2img, run_img2img, save_image

MODEL = MODELS / "sd1-tiny"
OUT = REPO / "Tests" / "ChiselModelStagesTests" / "Fixtures" / "tiling"
CASE = {"name": "img2img_sd1_tiled", "steps": 10, "strength": 0.6, "guidance": 7.5, "seed": 12}


def main():
    versions = check_pins("tiling.py")
    OUT.mkdir(parents=True, exist_ok=True)
    pipe = img2img(MODEL)
    vae = pipe.vae
    vae.enable_tiling()
    generator = torch.Generator().manual_seed(3)
    image = torch.rand(1, 3, 56, 88, generator=generator) * 2 - 1
    latent = torch.randn(1, 4, 28, 44, generator=generator)
    with torch.no_grad():
        posterior = vae.encode(image).latent_dist
        decoded = vae.decode(latent).sample
    save_file({"image": image, "mean": posterior.mean.contiguous(), "std": posterior.std.contiguous(),
               "latent": latent, "decoded": decoded.contiguous()}, OUT / "vae.safetensors")

    source = PIL.Image.open(IMAGE).convert("RGB")
    out = run_img2img(pipe, source, **CASE)
    vae.disable_tiling()
    plain = run_img2img(pipe, source, **CASE)
    save_image(OUT / f"{CASE['name']}.safetensors", out)
    record = {"generator": "tools/reference/tiling.py", "versions": versions,
              "model": "Tests/ChiselModelsTests/Fixtures/reference/sd1-tiny", "tile_sample_min_size": vae.tile_sample_min_size,
              "tile_latent_min_size": vae.tile_latent_min_size, "image": "Tests/ChiselModelStagesTests/Fixtures/pipelines/image.png",
              "prompt": PROMPT, "negative_prompt": NEGATIVE, "scheduler": type(pipe.scheduler).__name__,
              "mean_difference_from_untiled": float(np.abs(out - plain).mean()), **CASE}
    (OUT / "cases.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"mean |tiled − untiled| of the img2img image: {record['mean_difference_from_untiled']:.4f}")


if __name__ == "__main__":
    main()
