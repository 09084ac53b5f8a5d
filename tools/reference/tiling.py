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
Run by hand, never in CI:   /work/venv-ref/bin/python tools/reference/tiling.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import safetensors
import torch
from safetensors.torch import save_file

import diffusers
import transformers
from diffusers import StableDiffusionImg2ImgPipeline

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "Tests" / "ChiselModelsTests" / "Fixtures" / "reference" / "sd1-tiny"
OUT = REPO / "Tests" / "ChiselModelStagesTests" / "Fixtures" / "tiling"
IMAGE = REPO / "Tests" / "ChiselModelStagesTests" / "Fixtures" / "pipelines" / "image.png"
PINS = {"torch": "2.15.0", "diffusers": "0.42.1", "transformers": "5.23.0", "safetensors": "0.8.0"}
PROMPT = "a red fox sitting in a snowy forest, highly detailed"
NEGATIVE = "blurry, low quality"
CASE = {"name": "img2img_sd1_tiled", "steps": 10, "strength": 0.6, "guidance": 7.5, "seed": 12}


def main():
    got = {"torch": torch.__version__.split("+")[0], "diffusers": diffusers.__version__,
           "transformers": transformers.__version__, "safetensors": safetensors.__version__}
    if any(got[k] != v for k, v in PINS.items()):
        sys.exit(f"tiling.py: version mismatch (got, pinned): {got} vs {PINS}")
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(MODEL, torch_dtype=torch.float32, safety_checker=None,
                                                          requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
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
    out = pipe(PROMPT, negative_prompt=NEGATIVE, image=source, strength=CASE["strength"], num_inference_steps=CASE["steps"],
               guidance_scale=CASE["guidance"], generator=torch.Generator().manual_seed(CASE["seed"]), output_type="np").images
    vae.disable_tiling()
    plain = pipe(PROMPT, negative_prompt=NEGATIVE, image=source, strength=CASE["strength"], num_inference_steps=CASE["steps"],
                 guidance_scale=CASE["guidance"], generator=torch.Generator().manual_seed(CASE["seed"]), output_type="np").images
    save_file({"image": torch.from_numpy(np.ascontiguousarray(out)).float()}, OUT / f"{CASE['name']}.safetensors")
    record = {"generator": "tools/reference/tiling.py", "versions": {k: getattr(sys.modules[k], "__version__") for k in PINS},
              "model": "Tests/ChiselModelsTests/Fixtures/reference/sd1-tiny", "tile_sample_min_size": vae.tile_sample_min_size,
              "tile_latent_min_size": vae.tile_latent_min_size, "image": "Tests/ChiselModelStagesTests/Fixtures/pipelines/image.png",
              "prompt": PROMPT, "negative_prompt": NEGATIVE, "scheduler": type(pipe.scheduler).__name__,
              "mean_difference_from_untiled": float(np.abs(out - plain).mean()), **CASE}
    (OUT / "cases.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"mean |tiled − untiled| of the img2img image: {record['mean_difference_from_untiled']:.4f}")


if __name__ == "__main__":
    main()
