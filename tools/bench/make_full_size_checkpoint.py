"""Writes a full-size Stable Diffusion 1.5 diffusers folder with random fp16 weights (about
2 GB), to measure what opening a real-size checkpoint costs (run by hand, never in CI):

    python3 tools/bench/make_full_size_checkpoint.py /tmp/sd15-random
    /usr/bin/time -v .build/release/chisel model inspect /tmp/sd15-random
"""
import json
import os
import sys

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from diffusers_bench import UNET_CONFIG, VAE_CONFIG  # noqa: E402

TEXT_CONFIG = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                   num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                   projection_dim=768)


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    os.makedirs(out, exist_ok=True)
    UNet2DConditionModel.from_config(UNET_CONFIG).to(torch.float16).save_pretrained(os.path.join(out, "unet"))
    AutoencoderKL.from_config(VAE_CONFIG).to(torch.float16).save_pretrained(os.path.join(out, "vae"))
    CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG)).to(torch.float16).save_pretrained(os.path.join(out, "text_encoder"))
    os.makedirs(os.path.join(out, "scheduler"), exist_ok=True)
    with open(os.path.join(out, "scheduler", "scheduler_config.json"), "w") as f:
        json.dump({"_class_name": "PNDMScheduler", "prediction_type": "epsilon"}, f)
    with open(os.path.join(out, "model_index.json"), "w") as f:
        json.dump({"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
                   "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"]}, f)


if __name__ == "__main__":
    main()
