#!/usr/bin/env python3
"""LoRA fixtures for Chisel: small random LoRAs in the formats people download, and diffusers'
img2img outputs with them applied.

For the tiny random-weight models of generate.py (sd1-tiny, sd2-tiny):

- kohya-sd1.safetensors: kohya / AUTOMATIC1111 names (lora_unet_…, lora_te_…, .lora_down,
  .lora_up, .alpha) for every linear and convolution layer of the UNet's blocks (the 3×3
  convolutions as LoCon layers) and every projection of the text encoder; rank 4, alpha 3,
  except one layer of rank 2 without an alpha (diffusers gives it the file's common alpha).
- peft-sd1.safetensors: made with PEFT (LoraConfig, r 4, lora_alpha 8 on the UNet; r 2,
  lora_alpha 2 on the text encoder) and saved by diffusers' save_lora_weights with its adapter
  metadata, as diffusers' training scripts save LoRAs.
- kohya-sd2.safetensors: kohya names for sd2-tiny (linear proj_in/proj_out), rank 3, alpha 6.
- inpaint-conv-in.safetensors: one LoCon layer for the 9-channel inpainting UNet's conv_in, a
  LoRA for another architecture as far as sd1-tiny is concerned.

and for each case in CASES, StableDiffusionImg2ImgPipeline's output on the pipelines fixture's
image.png with the LoRAs loaded (load_lora_weights, set_adapters with the scales) as a
1×H×W×3 float image in Tests/ChiselModelStagesTests/Fixtures/lora/<case>.safetensors.

Pins (refused if different): torch 2.15.0, diffusers 0.42.1, transformers 5.23.0, peft 0.21.2,
safetensors 0.8.0. Run by hand, never in CI, after generate.py and pipelines.py:
    tools/.venv/bin/python tools/reference/lora.py
Deterministic: two runs write the same tensors.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import PIL.Image
import safetensors
import torch
from safetensors.torch import save_file

from diffusers import StableDiffusionImg2ImgPipeline
from fixture_common import IMAGE, MODELS, NEGATIVE, PINS, PROMPT, REPO, check_pins, img2img, run_img2img, save_image

LORAS = REPO / "Tests" / "ChiselModelsTests" / "Fixtures" / "lora"
OUT = REPO / "Tests" / "ChiselModelStagesTests" / "Fixtures" / "lora"
CASES = [
    # name, model, [(lora file, scale)], steps, strength, guidance, seed
    ("img2img_sd1_kohya_0.8", "sd1-tiny", [("kohya-sd1.safetensors", 0.8)], 10, 0.6, 7.5, 7),
    ("img2img_sd1_kohya_0.8_peft_0.5", "sd1-tiny", [("kohya-sd1.safetensors", 0.8), ("peft-sd1.safetensors", 0.5)],
     10, 0.6, 7.5, 8),
    ("img2img_sd1_peft_1.0", "sd1-tiny", [("peft-sd1.safetensors", 1.0)], 10, 0.6, 7.5, 9),
    ("img2img_sd2_kohya_1.0", "sd2-tiny", [("kohya-sd2.safetensors", 1.0)], 10, 0.6, 7.5, 10),
]


def factors(generator, shape_down, shape_up, weight):
    """Random down/up factors whose product is of the order of the weight's own entries."""
    down = torch.randn(shape_down, generator=generator)
    up = torch.randn(shape_up, generator=generator)
    rank = shape_down[0]
    fan = float(np.prod(shape_down[1:]))
    target = weight.abs().mean().item() * 0.6
    down *= 1 / fan ** 0.5
    up *= target / rank ** 0.5
    return down.contiguous(), up.contiguous()


def kohya_lora(pipe, rank, alpha, generator, skip_alpha_for=None, smaller_rank_for=None):
    """kohya names for every linear/convolution layer of the UNet's blocks and the text encoder's projections."""
    tensors = {}
    modules = [("lora_unet_", name, m) for name, m in pipe.unet.named_modules()
               if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))
               and name.startswith(("down_blocks", "mid_block", "up_blocks"))]
    modules += [("lora_te_", name, m) for name, m in pipe.text_encoder.named_modules()
                if isinstance(m, torch.nn.Linear) and ("self_attn" in name or "mlp" in name)]
    for prefix, name, module in modules:
        key = prefix + name.replace(".", "_")
        r = 2 if name == smaller_rank_for else rank
        if isinstance(module, torch.nn.Linear):
            down, up = factors(generator, (r, module.in_features), (module.out_features, r), module.weight)
        else:
            kh, kw = module.kernel_size
            down, up = factors(generator, (r, module.in_channels, kh, kw), (module.out_channels, r, 1, 1), module.weight)
        tensors[key + ".lora_down.weight"] = down
        tensors[key + ".lora_up.weight"] = up
        if name != skip_alpha_for:
            tensors[key + ".alpha"] = torch.tensor(float(alpha))
    return tensors


def sorted_config(config):
    """A LoraConfig as a dict, its target module set in sorted order (so that two runs write the same file)."""
    values = config.to_dict()
    values["target_modules"] = sorted(values["target_modules"])
    return values


def peft_lora(pipe, path, generator):
    """A LoRA made with PEFT and saved by diffusers with its adapter metadata."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    unet_config = LoraConfig(r=4, lora_alpha=8, init_lora_weights=False,
                             target_modules=["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj",
                                             "ff.net.2", "conv1", "conv2"])
    text_config = LoraConfig(r=2, lora_alpha=2, init_lora_weights=False,
                             target_modules=["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"])
    pipe.unet.add_adapter(unet_config)
    pipe.text_encoder.add_adapter(text_config)
    # Deterministic factors of a useful size (PEFT's own initialisation draws from the global generator).
    with torch.no_grad():
        for model in (pipe.unet, pipe.text_encoder):
            for name, module in model.named_modules():
                if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
                    a, b = module.lora_A["default"].weight, module.lora_B["default"].weight
                    down, up = factors(generator, tuple(a.shape), tuple(b.shape), module.base_layer.weight)
                    a.copy_(down)
                    b.copy_(up)
    # PEFT's own names (lora_A / lora_B), which diffusers reads back in full; its older
    # "DIFFUSERS" spelling (convert_state_dict_to_diffusers: to_q.lora.down) loses the UNet's
    # attention layers when read back by diffusers 0.42.1 with the adapter metadata.
    unet_layers = get_peft_model_state_dict(pipe.unet)
    text_layers = get_peft_model_state_dict(pipe.text_encoder)
    folder = path.parent / "peft-tmp"
    StableDiffusionImg2ImgPipeline.save_lora_weights(
        folder, unet_lora_layers=unet_layers, text_encoder_lora_layers=text_layers,
        unet_lora_adapter_metadata=sorted_config(unet_config), text_encoder_lora_adapter_metadata=sorted_config(text_config),
        safe_serialization=True)
    (folder / "pytorch_lora_weights.safetensors").replace(path)
    folder.rmdir()
    pipe.unet.delete_adapters("default")
    pipe.text_encoder.delete_adapters("default") if hasattr(pipe.text_encoder, "delete_adapters") else None


def pipeline(model):
    return img2img(MODELS / model)


def main():
    versions = check_pins("lora.py", dict(PINS, peft="0.21.2"))
    torch.use_deterministic_algorithms(True)
    LORAS.mkdir(parents=True, exist_ok=True)
    OUT.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(20261201)

    sd1 = pipeline("sd1-tiny")
    first_attention = next(n for n, m in sd1.unet.named_modules() if n.endswith("attn1.to_q"))
    first_conv = next(n for n, m in sd1.unet.named_modules() if n.endswith("resnets.0.conv1"))
    save_file(kohya_lora(sd1, 4, 3.0, generator, skip_alpha_for=first_attention, smaller_rank_for=first_conv),
              LORAS / "kohya-sd1.safetensors")
    peft_lora(sd1, LORAS / "peft-sd1.safetensors", generator)
    sd2 = pipeline("sd2-tiny")
    save_file(kohya_lora(sd2, 3, 6.0, generator), LORAS / "kohya-sd2.safetensors")
    inpaint = pipeline("sd1-inpaint-tiny")
    conv_in = inpaint.unet.conv_in
    down, up = factors(generator, (2, conv_in.in_channels, 3, 3), (conv_in.out_channels, 2, 1, 1), conv_in.weight)
    save_file({"lora_unet_conv_in.lora_down.weight": down, "lora_unet_conv_in.lora_up.weight": up,
               "lora_unet_conv_in.alpha": torch.tensor(2.0)}, LORAS / "inpaint-conv-in.safetensors")

    image = PIL.Image.open(IMAGE).convert("RGB")
    record = {"generator": "tools/reference/lora.py", "versions": versions,
              "image": "Tests/ChiselModelStagesTests/Fixtures/pipelines/image.png", "prompt": PROMPT,
              "negative_prompt": NEGATIVE, "cases": []}
    for name, model, loras, steps, strength, guidance, seed in CASES:
        pipe = pipeline(model)
        adapters = []
        for i, (file, _) in enumerate(loras):
            pipe.load_lora_weights(LORAS / file, adapter_name=f"lora{i}")
            adapters.append(f"lora{i}")
        pipe.set_adapters(adapters, adapter_weights=[scale for _, scale in loras])
        # Every layer of every file must have been loaded (diffusers reports some misses only as warnings).
        for i, (file, _) in enumerate(loras):
            with safetensors.safe_open(LORAS / file, "pt") as f:
                expected = len({k.rsplit(".lora", 1)[0] for k in f.keys() if "lora_down" in k or "lora_A" in k})
            loaded = sum(1 for model in (pipe.unet, pipe.text_encoder) for _, m in model.named_modules()
                         if hasattr(m, "lora_A") and f"lora{i}" in m.lora_A)
            if loaded != expected:
                sys.exit(f"{name}: diffusers loaded {loaded} of the {expected} layers of {file}")
        case = dict(strength=strength, steps=steps, guidance=guidance, seed=seed)
        out = run_img2img(pipe, image, **case)
        save_image(OUT / f"{name}.safetensors", out)
        # The same edit without the LoRAs, so the tests can tell that they changed something.
        pipe.disable_lora()
        plain = run_img2img(pipe, image, **case)
        effect = float(np.abs(out - plain).mean())
        record["cases"].append({"name": name, "model": f"Tests/ChiselModelsTests/Fixtures/reference/{model}",
                                "loras": [{"file": f"Tests/ChiselModelsTests/Fixtures/lora/{f}", "scale": s} for f, s in loras],
                                "steps": steps, "strength": strength, "guidance": guidance, "seed": seed,
                                "scheduler": type(pipe.scheduler).__name__, "mean_effect_of_the_loras": effect})
        print(f"{name}: mean |with − without LoRAs| = {effect:.4f}", flush=True)
    (OUT / "cases.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
