#!/usr/bin/env python3
"""Few-step fixtures for Chisel: a guidance-distilled (LCM-style) UNet and LCM-LoRA-style use.

Writes
    Tests/ChiselModelsTests/Fixtures/reference/sd1-lcm-tiny/
        sd1-tiny with a UNet that has a guidance embedding (time_cond_proj_dim 16: a random
        time_embedding.cond_proj, the rest sd1-tiny's weights) and LCMScheduler as its scheduler
    Tests/ChiselModelStagesTests/Fixtures/lcm/<case>.safetensors + cases.json
        StableDiffusionImg2ImgPipeline outputs (1×H×W×3 float images):
        - img2img_lcm_unet: sd1-lcm-tiny, LCMScheduler, 4 steps, strength 0.5, guidance 2 (the UNet
          gets the embedding of guidance − 1 and runs once per step, no CFG);
        - img2img_lcm_lora: sd1-tiny + the kohya LoRA fixture, LCMScheduler from sd1-tiny's
          config, 4 steps, strength 0.75, guidance 1 (unguided), as LCM-LoRA recipes run.

Pins (refused if different): torch 2.15.0, diffusers 0.42.1, transformers 5.23.0, peft 0.21.2, safetensors 0.8.0.
Run by hand, never in CI, after lora.py:   /work/venv-ref/bin/python tools/reference/lcm.py
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import peft
import PIL.Image
import safetensors
import torch
from safetensors.torch import save_file

import diffusers
import transformers
from diffusers import LCMScheduler, StableDiffusionImg2ImgPipeline, UNet2DConditionModel

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "Tests" / "ChiselModelsTests" / "Fixtures" / "reference"
LORAS = REPO / "Tests" / "ChiselModelsTests" / "Fixtures" / "lora"
OUT = REPO / "Tests" / "ChiselModelStagesTests" / "Fixtures" / "lcm"
IMAGE = REPO / "Tests" / "ChiselModelStagesTests" / "Fixtures" / "pipelines" / "image.png"
PINS = {"torch": "2.15.0", "diffusers": "0.42.1", "transformers": "5.23.0", "peft": "0.21.2", "safetensors": "0.8.0"}
PROMPT = "a red fox sitting in a snowy forest, highly detailed"
NEGATIVE = "blurry, low quality"


def main():
    got = {"torch": torch.__version__.split("+")[0], "diffusers": diffusers.__version__, "peft": peft.__version__,
           "transformers": transformers.__version__, "safetensors": safetensors.__version__}
    if any(got[k] != v for k, v in PINS.items()):
        sys.exit(f"lcm.py: version mismatch (got, pinned): {got} vs {PINS}")
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    base = StableDiffusionImg2ImgPipeline.from_pretrained(MODELS / "sd1-tiny", torch_dtype=torch.float32, safety_checker=None,
                                                          requires_safety_checker=False)
    config = dict(base.unet.config)
    config["time_cond_proj_dim"] = 16
    torch.manual_seed(20261201)
    unet = UNet2DConditionModel.from_config(config)
    missing, unexpected = unet.load_state_dict(base.unet.state_dict(), strict=False)
    assert missing == ["time_embedding.cond_proj.weight"] and not unexpected, (missing, unexpected)
    with torch.no_grad():
        unet.time_embedding.cond_proj.weight.normal_(0, 0.5)
    lcm = StableDiffusionImg2ImgPipeline(vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer, unet=unet,
                                         scheduler=LCMScheduler.from_config(base.scheduler.config), safety_checker=None,
                                         feature_extractor=None, requires_safety_checker=False)
    folder = MODELS / "sd1-lcm-tiny"
    if folder.exists():
        shutil.rmtree(folder)
    lcm.save_pretrained(folder, safe_serialization=True)
    for extra in ("feature_extractor", "safety_checker"):
        shutil.rmtree(folder / extra, ignore_errors=True)

    source = PIL.Image.open(IMAGE).convert("RGB")
    cases = []

    def run(name, pipe, steps, strength, guidance, seed, model, loras):
        pipe.set_progress_bar_config(disable=True)
        out = pipe(PROMPT, negative_prompt=NEGATIVE, image=source, strength=strength, num_inference_steps=steps,
                   guidance_scale=guidance, generator=torch.Generator().manual_seed(seed), output_type="np").images
        save_file({"image": torch.from_numpy(np.ascontiguousarray(out)).float()}, OUT / f"{name}.safetensors")
        cases.append({"name": name, "model": model, "loras": loras, "scheduler": type(pipe.scheduler).__name__,
                      "timesteps": [int(t) for t in pipe.scheduler.timesteps], "steps": steps, "strength": strength,
                      "guidance": guidance, "seed": seed})
        print(name, cases[-1]["timesteps"], float(out.mean()))

    lcm = StableDiffusionImg2ImgPipeline.from_pretrained(folder, torch_dtype=torch.float32, safety_checker=None,
                                                         requires_safety_checker=False)
    run("img2img_lcm_unet", lcm, 4, 0.5, 2.0, 14, "Tests/ChiselModelsTests/Fixtures/reference/sd1-lcm-tiny", [])
    lora = StableDiffusionImg2ImgPipeline.from_pretrained(MODELS / "sd1-tiny", torch_dtype=torch.float32, safety_checker=None,
                                                          requires_safety_checker=False)
    lora.scheduler = LCMScheduler.from_config(lora.scheduler.config)
    lora.load_lora_weights(LORAS / "kohya-sd1.safetensors", adapter_name="lcm")
    run("img2img_lcm_lora", lora, 4, 0.75, 1.0, 15, "Tests/ChiselModelsTests/Fixtures/reference/sd1-tiny",
        [{"file": "Tests/ChiselModelsTests/Fixtures/lora/kohya-sd1.safetensors", "scale": 1.0}])
    record = {"generator": "tools/reference/lcm.py", "versions": {k: getattr(sys.modules[k], "__version__") for k in PINS},
              "image": "Tests/ChiselModelStagesTests/Fixtures/pipelines/image.png", "prompt": PROMPT,
              "negative_prompt": NEGATIVE, "cases": cases}
    (OUT / "cases.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
