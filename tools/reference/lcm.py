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
          config, 4 steps, strength 0.75, guidance 1 (unguided), as LCM-LoRA recipes run;
        - img2img_turbo_*: sd2-tiny with SD-Turbo's scheduler (Euler, trailing spacing; written to
          turbo_scheduler_config.json for the tests to put beside sd2-tiny's networks), guidance 0:
          2 steps × 0.5, 4 steps × 0.25 (one step each) and 1 step × 1.0.

Pins (refused if different): torch 2.15.0, diffusers 0.42.1, transformers 5.23.0, peft 0.21.2, safetensors 0.8.0.
Run by hand, never in CI, after lora.py:   tools/.venv/bin/python tools/reference/lcm.py
"""

from __future__ import annotations

import json
import shutil

import PIL.Image
import torch

from diffusers import EulerDiscreteScheduler, LCMScheduler, StableDiffusionImg2ImgPipeline, UNet2DConditionModel
from fixture_common import IMAGE, MODELS, NEGATIVE, PINS, PROMPT, REPO, check_pins, img2img, run_img2img, save_image

LORAS = REPO / "Tests" / "ChiselModelsTests" / "Fixtures" / "lora"
OUT = REPO / "Tests" / "ChiselModelStagesTests" / "Fixtures" / "lcm"


def main():
    versions = check_pins("lcm.py", dict(PINS, peft="0.21.2"))
    OUT.mkdir(parents=True, exist_ok=True)
    base = img2img(MODELS / "sd1-tiny")
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
        out = run_img2img(pipe, source, strength=strength, steps=steps, guidance=guidance, seed=seed)
        save_image(OUT / f"{name}.safetensors", out)
        cases.append({"name": name, "model": model, "loras": loras, "scheduler": type(pipe.scheduler).__name__,
                      "timesteps": [int(t) for t in pipe.scheduler.timesteps], "steps": steps, "strength": strength,
                      "guidance": guidance, "seed": seed})
        print(name, cases[-1]["timesteps"], float(out.mean()))

    lcm = img2img(folder)
    run("img2img_lcm_unet", lcm, 4, 0.5, 2.0, 14, "Tests/ChiselModelsTests/Fixtures/reference/sd1-lcm-tiny", [])
    lora = img2img(MODELS / "sd1-tiny")
    lora.scheduler = LCMScheduler.from_config(lora.scheduler.config)
    lora.load_lora_weights(LORAS / "kohya-sd1.safetensors", adapter_name="lcm")
    run("img2img_lcm_lora", lora, 4, 0.75, 1.0, 15, "Tests/ChiselModelsTests/Fixtures/reference/sd1-tiny",
        [{"file": "Tests/ChiselModelsTests/Fixtures/lora/kohya-sd1.safetensors", "scale": 1.0}])
    # SD-Turbo's published scheduler: Euler, scaled-linear betas, trailing spacing, epsilon.
    turbo = img2img(MODELS / "sd2-tiny")
    turbo.scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                             num_train_timesteps=1000, prediction_type="epsilon", steps_offset=1,
                                             timestep_spacing="trailing", interpolation_type="linear",
                                             use_karras_sigmas=False)
    turbo.scheduler.save_config(OUT / "turbo_scheduler")
    for steps, strength, seed in ((2, 0.5, 16), (4, 0.25, 17), (1, 1.0, 18)):
        run(f"img2img_turbo_{steps}x{strength}", turbo, steps, strength, 0.0, seed,
            "Tests/ChiselModelsTests/Fixtures/reference/sd2-tiny", [])
    record = {"generator": "tools/reference/lcm.py", "versions": versions,
              "image": "Tests/ChiselModelStagesTests/Fixtures/pipelines/image.png", "prompt": PROMPT,
              "negative_prompt": NEGATIVE, "cases": cases}
    (OUT / "cases.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
