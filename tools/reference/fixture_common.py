"""What the adapter and recipe fixture scripts (lora.py, taesd.py, tiling.py, embedding.py,
lcm.py) share: paths, the pinned versions, the pipelines fixture's image and prompt, and how
they load and run diffusers' img2img pipeline."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "Tests" / "ChiselModelsTests" / "Fixtures" / "reference"
IMAGE = REPO / "Tests" / "ChiselModelStagesTests" / "Fixtures" / "pipelines" / "image.png"
PROMPT = "a red fox sitting in a snowy forest, highly detailed"
NEGATIVE = "blurry, low quality"
PINS = {"torch": "2.15.0", "diffusers": "0.42.1", "transformers": "5.23.0", "safetensors": "0.8.0"}


def check_pins(script, pins=PINS):
    """Refuses to run under other versions than the pinned ones; returns the versions for the record."""
    got = {name: getattr(__import__(name), "__version__") for name in pins}
    got["torch"] = got["torch"].split("+")[0]
    bad = {k: (got[k], v) for k, v in pins.items() if got[k] != v}
    if bad:
        sys.exit(f"{script}: version mismatch (got, pinned): {bad}")
    torch.set_num_threads(1)
    return got


def rel(path):
    return str(Path(path).resolve().relative_to(REPO))


def img2img(folder, **components):
    """diffusers' StableDiffusionImg2ImgPipeline from a fixture folder, FP32, no safety checker."""
    from diffusers import StableDiffusionImg2ImgPipeline
    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(folder, torch_dtype=torch.float32, safety_checker=None,
                                                          requires_safety_checker=False, **components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_img2img(pipe, source, prompt=PROMPT, negative=NEGATIVE, **case):
    """One edit as the fixtures record it: numpy 1×H×W×3 in [0, 1]."""
    return pipe(prompt, negative_prompt=negative, image=source, strength=case["strength"],
                num_inference_steps=case["steps"], guidance_scale=case["guidance"],
                generator=torch.Generator().manual_seed(case["seed"]), output_type="np").images


def save_image(path, image):
    save_file({"image": torch.from_numpy(np.ascontiguousarray(image)).float()}, path)
