#!/usr/bin/env python3
"""TAESD fixtures for Chisel: a small random-weight AutoencoderTiny, and diffusers' outputs with it.

Writes
    Tests/ChiselModelsTests/Fixtures/taesd/tiny/        config.json + diffusion_pytorch_model.safetensors
        (diffusers' AutoencoderTiny, 2 levels of 16 channels for the 2×-downscaling sd1-tiny)
    Tests/ChiselModelsTests/Fixtures/taesd/pair/        taesd_encoder.safetensors + taesd_decoder.safetensors
        (the same weights in TAESD's original layout: nn.Sequential indices, the decoder's shifted
        by its leading clamp)
    Tests/ChiselModelsTests/Fixtures/taesd/expected.safetensors
        image (1×3×H×W in [-1, 1]), latents = encode(image).latents, decoded = decode(latents)
    Tests/ChiselModelStagesTests/Fixtures/taesd/img2img_sd1_taesd.safetensors + cases.json
        StableDiffusionImg2ImgPipeline(sd1-tiny, vae=the tiny AutoencoderTiny) on the pipelines
        fixture's image.png, as a 1×H×W×3 float image

Pins (refused if different): torch 2.15.0, diffusers 0.42.1, transformers 5.23.0, safetensors 0.8.0.
Run by hand, never in CI, after generate.py and pipelines.py:
    tools/.venv/bin/python tools/reference/taesd.py
"""

from __future__ import annotations

import json

import PIL.Image
import torch
from safetensors.torch import save_file

from diffusers import AutoencoderTiny
from fixture_common import IMAGE, MODELS, NEGATIVE, PROMPT, REPO, check_pins, img2img, run_img2img, save_image

TAESD = REPO / "Tests" / "ChiselModelsTests" / "Fixtures" / "taesd"
OUT = REPO / "Tests" / "ChiselModelStagesTests" / "Fixtures" / "taesd"
CASE = {"name": "img2img_sd1_taesd", "steps": 10, "strength": 0.6, "guidance": 7.5, "seed": 11}


def main():
    versions = check_pins("taesd.py")
    torch.manual_seed(20261201)
    vae = AutoencoderTiny(encoder_block_out_channels=(16, 16), decoder_block_out_channels=(16, 16),
                          num_encoder_blocks=(1, 2), num_decoder_blocks=(2, 1), latent_channels=4).eval()
    with torch.no_grad():
        for p in vae.parameters():  # larger than the default initialisation, so that every layer matters
            p.mul_(1.5)
    (TAESD / "tiny").mkdir(parents=True, exist_ok=True)
    (TAESD / "pair").mkdir(parents=True, exist_ok=True)
    OUT.mkdir(parents=True, exist_ok=True)
    vae.save_pretrained(TAESD / "tiny", safe_serialization=True)
    state = {k: v.contiguous() for k, v in vae.state_dict().items()}
    save_file({k.removeprefix("encoder.layers."): v for k, v in state.items() if k.startswith("encoder.layers.")},
              TAESD / "pair" / "taesd_encoder.safetensors")
    decoder = {}
    for k, v in state.items():
        if k.startswith("decoder.layers."):
            index, rest = k.removeprefix("decoder.layers.").split(".", 1)
            decoder[f"{int(index) + 1}.{rest}"] = v
    save_file(decoder, TAESD / "pair" / "taesd_decoder.safetensors")

    generator = torch.Generator().manual_seed(5)
    image = torch.rand(1, 3, 16, 24, generator=generator) * 2 - 1
    with torch.no_grad():
        latents = vae.encode(image).latents
        decoded = vae.decode(latents).sample
    save_file({"image": image, "latents": latents.contiguous(), "decoded": decoded.contiguous()}, TAESD / "expected.safetensors")

    pipe = img2img(MODELS / "sd1-tiny", vae=vae)
    source = PIL.Image.open(IMAGE).convert("RGB")
    out = run_img2img(pipe, source, **CASE)
    save_image(OUT / f"{CASE['name']}.safetensors", out)
    record = {"generator": "tools/reference/taesd.py", "versions": versions,
              "model": "Tests/ChiselModelsTests/Fixtures/reference/sd1-tiny", "vae": "Tests/ChiselModelsTests/Fixtures/taesd/tiny",
              "image": "Tests/ChiselModelStagesTests/Fixtures/pipelines/image.png", "prompt": PROMPT,
              "negative_prompt": NEGATIVE, "scheduler": type(pipe.scheduler).__name__, **CASE}
    (OUT / "cases.json").write_text(json.dumps(record, indent=1) + "\n")
    print("latents", latents.shape, float(latents.abs().mean()), "decoded", float(decoded.abs().mean()),
          "image", out.shape, float(out.mean()))


if __name__ == "__main__":
    main()
