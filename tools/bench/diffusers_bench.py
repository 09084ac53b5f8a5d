"""Times diffusers' SD 1.5 UNet and VAE, built from the public configs with random weights,
exactly as `chisel bench` times Chisel's: the fastest of N runs after a warm-up, each precision
in its own process so its peak resident memory is its own. Prints one JSON object in the same
shape as `chisel bench --json`.

`--part edit` (or img2img, inpaint; asked for, as in `chisel bench`) times whole edits with
StableDiffusionImg2ImgPipeline and StableDiffusionInpaintPipeline: SD 1.5 built from the public
configs with random weights (UNet, VAE, CLIP ViT-L text encoder, PNDM scheduler; a 9-channel
UNet for inpainting), the CLIP tokenizer from the repository's test fixture, a 512² image,
20 steps × strength 0.75, guidance 7.5, a torch.Generator seeded 0. One short pipeline call
(strength 0.05: two CFG pairs, every network once) warms up, then --edit-repeats whole pipeline
calls are timed (model building is not).

`--part amused` (or amused-256, amused-512) times whole aMUSEd calls with AmusedPipeline and
AmusedImg2ImgPipeline, built in memory from the public amused-256 / amused-512 configs with random
weights (VQModel 8192 codes × 64, UVit2DModel hidden 1024 × 22 layers, CLIP ViT-L text encoder with
projection 768, AmusedScheduler; the CLIP tokenizer as above): text to image, 12 steps, guidance 10,
and img2img of the smooth test image, strength 0.5 × 12 steps, guidance 10, at 256² and 512²
(`--size` does not apply), seed 0, output_type "np". The multinomial over 8192 codes per token is
part of the pipeline and is timed. One one-step call of each warms up (txt2img with 1 step, img2img
at strength 0.1 = 1 step of 12, so every network runs once), then --edit-repeats calls are timed.
Rows also carry `scheduler_seconds`, the time spent in AmusedScheduler.step in the fastest run.

    python3 tools/bench/diffusers_bench.py [--repeats 3] [--size 512] [--threads 2] [--part edit]
    python3 tools/bench/diffusers_bench.py --part amused [--edit-repeats 1]
    python3 tools/bench/diffusers_bench.py --part recipes [--edit-repeats 1]

`--part recipes` (or turbo-taesd, turbo, lcm) times the fast recipes as RecipeBenchmark.swift
does: SD-Turbo (SD 2.1 UNet and text encoder, Euler trailing) img2img 512², 2 steps × 0.5,
guidance 0, with AutoencoderTiny (TAESD) and with the full VAE; SD 1.5 with LCMScheduler, 4 steps
× 0.5, guidance 1. One warm-up call each, then --edit-repeats timed calls.

`--part controlnet` times SD 1.5's ControlNet (control_v11p_sd15_canny's public config) and the
UNet with its residuals, a CFG pair; `--part adapter` the T2I-Adapter (t2iadapter_canny_sd15v2's
config: full, grey input) once, and the UNet pair with its features — as `chisel bench` does.

`--part tiled-2048 --only bf16` times the LCM recipe on a 2048² image with vae.enable_tiling(),
--edit-repeats times (1 by default) with no warm-up call; run alone, the peak resident memory
reported is that edit's.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

UNET_CONFIG = {
    "act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False, "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
    "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}
# The public unet/config.json of stabilityai/stable-diffusion-xl-base-1.0.
SDXL_UNET_CONFIG = {
    "act_fn": "silu", "addition_embed_type": "text_time", "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256, "attention_head_dim": [5, 10, 20], "block_out_channels": [320, 640, 1280],
    "center_input_sample": False, "cross_attention_dim": 2048,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"], "downsample_padding": 1,
    "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1,
    "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "projection_class_embeddings_input_dim": 2816,
    "sample_size": 128, "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"], "use_linear_projection": True,
}

VAE_CONFIG = {
    "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4, "in_channels": 3, "latent_channels": 4, "layers_per_block": 2,
    "norm_num_groups": 32, "out_channels": 3, "sample_size": 512, "scaling_factor": 0.18215,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}
# SD 1.5's text_encoder/config.json (OpenAI CLIP ViT-L/14's text tower).
TEXT_ENCODER_CONFIG = {
    "hidden_act": "quick_gelu", "hidden_size": 768, "intermediate_size": 3072, "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77, "num_attention_heads": 12, "num_hidden_layers": 12, "projection_dim": 768,
    "vocab_size": 49408, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
}
# SD 1.5's scheduler/scheduler_config.json.
SCHEDULER_CONFIG = {
    "_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
    "clip_sample": False, "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True,
    "steps_offset": 1, "trained_betas": None,
}
# The CLIP vocabulary that ships with Chisel, with SD 1.x's tokenizer settings.
VOCABULARY = os.path.join(HERE, "..", "..", "Sources", "ChiselModels", "Resources", "CLIP")
# As Sources/ChiselModelStages/EditBenchmark.swift.
STEPS, STRENGTH, GUIDANCE, SEED, WARM_UP_STRENGTH = 20, 0.75, 7.5, 0, 0.05
PROMPT, NEGATIVE_PROMPT = "a photograph of an astronaut riding a horse", ""
EDITS = ["img2img", "inpaint"]


def timed(name, repeats, body, warm_up=True):
    if warm_up:
        body()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        body()
        runs.append(time.perf_counter() - start)
        print(f"{name}: {runs[-1]:.2f} s", file=sys.stderr)
    return {"name": name, "seconds": min(runs), "runs": runs}


def edit_row_name(edit, size, pairs):
    if edit == "img2img":
        return f"img2img {size}² {STEPS} steps × {STRENGTH} ({pairs} CFG pairs)"
    return f"inpaint {size}² 9-channel {STEPS} steps × {STRENGTH} ({pairs} CFG pairs)"


def test_image(size):
    """The smooth colour image EditBenchmark.swift edits, as 8-bit RGB."""
    import numpy as np
    from PIL import Image
    x = np.arange(size)[None, :].repeat(size, 0)
    y = np.arange(size)[:, None].repeat(size, 1)
    rgb = np.stack([x, y, (x + y) % size], axis=-1) / (size - 1)
    return Image.fromarray((rgb * 255).round().astype(np.uint8), "RGB")


def test_mask(size):
    """White (repaint) in the centre square of half the side."""
    from PIL import Image
    mask = Image.new("L", (size, size), 0)
    mask.paste(255, (size // 4, size // 4, size - size // 4, size - size // 4))
    return mask


def time_edit(edit, dtype, size, repeats, accelerate=None):
    """One whole-edit row. `accelerate(pipe)`, when given, swaps the pipeline's networks for
    another runtime's (openvino_bench.py) before anything runs."""
    import torch
    from diffusers import (AutoencoderKL, PNDMScheduler, StableDiffusionImg2ImgPipeline,
                           StableDiffusionInpaintPipeline, UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    inpaint = edit == "inpaint"
    unet = UNet2DConditionModel.from_config({**UNET_CONFIG, "in_channels": 9 if inpaint else 4})
    vae = AutoencoderKL.from_config(VAE_CONFIG)
    text_encoder = CLIPTextModel(CLIPTextConfig(**TEXT_ENCODER_CONFIG))
    tokenizer = CLIPTokenizer(os.path.join(VOCABULARY, "vocab.json"), os.path.join(VOCABULARY, "merges.txt"),
                              pad_token="<|endoftext|>", model_max_length=77)
    scheduler = PNDMScheduler.from_config(SCHEDULER_CONFIG)
    cls = StableDiffusionInpaintPipeline if inpaint else StableDiffusionImg2ImgPipeline
    pipe = cls(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
               safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe = pipe.to(dtype)
    pipe.set_progress_bar_config(disable=True)
    for module in (unet, vae, text_encoder):
        module.eval()
    if accelerate:
        accelerate(pipe)
    pairs = [0]
    unet.register_forward_pre_hook(lambda module, args: pairs.__setitem__(0, pairs[0] + 1))
    image, mask = test_image(size), test_mask(size)

    def body(strength=STRENGTH):
        pairs[0] = 0
        extra = {"mask_image": mask, "height": size, "width": size} if inpaint else {}
        out = pipe(prompt=PROMPT, negative_prompt=NEGATIVE_PROMPT, image=image, strength=strength,
                   num_inference_steps=STEPS, guidance_scale=GUIDANCE,
                   generator=torch.Generator("cpu").manual_seed(SEED), output_type="np", **extra)
        assert out.images.shape == (1, size, size, 3), out.images.shape

    body(WARM_UP_STRENGTH)  # warm-up: the same path, as EditBenchmark.swift does
    print(f"{edit}: warm-up ran {pairs[0]} CFG pairs", file=sys.stderr)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        body()
        runs.append(time.perf_counter() - start)
        print(f"{edit}: {runs[-1]:.2f} s ({pairs[0]} CFG pairs)", file=sys.stderr)
    return {"name": edit_row_name(edit, size, pairs[0]), "seconds": min(runs), "runs": runs}


# The fast recipes, as Sources/ChiselModelStages/RecipeBenchmark.swift: SD-Turbo (SD 2.1's UNet and
# text encoder, Euler with trailing spacing) 2 steps × 0.5, guidance 0, with TAESD and with the full
# VAE; SD 1.5 with the LCM scheduler (LCM-LoRA merged at load), 4 steps × 0.5, guidance 1.
RECIPES = ["turbo-taesd", "turbo", "lcm"]
# The LCM recipe on a 2048² image with vae.enable_tiling(); its size is fixed, and it has no warm-up
# call (an edit takes minutes). Not part of "recipes".
TILED = "tiled-2048"
SD21_TEXT_ENCODER_CONFIG = {
    "hidden_act": "gelu", "hidden_size": 1024, "intermediate_size": 4096, "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77, "num_attention_heads": 16, "num_hidden_layers": 23, "projection_dim": 512,
    "vocab_size": 49408, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
}
SD21_UNET_CONFIG = {**UNET_CONFIG, "attention_head_dim": [5, 10, 20, 20], "cross_attention_dim": 1024,
                    "use_linear_projection": True}
TURBO_SCHEDULER_CONFIG = {
    "_class_name": "EulerDiscreteScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
    "num_train_timesteps": 1000, "prediction_type": "epsilon", "steps_offset": 1, "timestep_spacing": "trailing",
    "interpolation_type": "linear", "use_karras_sigmas": False,
}


def recipe_row_name(recipe, size):
    return {"turbo-taesd": f"SD-Turbo img2img {size}² 2 steps × 0.5, TAESD",
            "turbo": f"SD-Turbo img2img {size}² 2 steps × 0.5, full VAE",
            "lcm": f"SD 1.5 + LCM-LoRA img2img {size}² 4 steps × 0.5",
            TILED: f"SD 1.5 + LCM-LoRA img2img {size}² 4 steps × 0.5, tiled VAE"}[recipe]


def time_recipe(recipe, dtype, size, repeats, accelerate=None):
    import torch
    from diffusers import (AutoencoderKL, AutoencoderTiny, EulerDiscreteScheduler, LCMScheduler,
                           StableDiffusionImg2ImgPipeline, UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    turbo = recipe.startswith("turbo")
    size = 2048 if recipe == TILED else size
    unet = UNet2DConditionModel.from_config(SD21_UNET_CONFIG if turbo else UNET_CONFIG)
    vae = AutoencoderTiny() if recipe == "turbo-taesd" else AutoencoderKL.from_config(VAE_CONFIG)
    text_encoder = CLIPTextModel(CLIPTextConfig(**(SD21_TEXT_ENCODER_CONFIG if turbo else TEXT_ENCODER_CONFIG)))
    tokenizer = CLIPTokenizer(os.path.join(VOCABULARY, "vocab.json"), os.path.join(VOCABULARY, "merges.txt"),
                              pad_token="!" if turbo else "<|endoftext|>", model_max_length=77)
    scheduler = (EulerDiscreteScheduler.from_config(TURBO_SCHEDULER_CONFIG) if turbo
                 else LCMScheduler.from_config({**SCHEDULER_CONFIG, "_class_name": "LCMScheduler"}))
    pipe = StableDiffusionImg2ImgPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                          scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                          requires_safety_checker=False).to(dtype)
    pipe.set_progress_bar_config(disable=True)
    for module in (unet, vae, text_encoder):
        module.eval()
    if recipe == TILED:
        vae.enable_tiling()
    if accelerate:
        accelerate(pipe)
    steps, guidance = (2, 0.0) if turbo else (4, 1.0)
    image = test_image(size)

    def body():
        out = pipe(prompt=PROMPT, image=image, strength=0.5, num_inference_steps=steps, guidance_scale=guidance,
                   generator=torch.Generator("cpu").manual_seed(SEED), output_type="np")
        assert out.images.shape == (1, size, size, 3), out.images.shape

    return timed(recipe_row_name(recipe, size), repeats, body, warm_up=recipe != TILED)


# aMUSEd: the public amused/amused-256 and amused-512 configs (tools/reference/AMUSED.md §1.1, §2.1, §5).
AMUSED_VQ_CONFIG = {
    "act_fn": "silu", "block_out_channels": [128, 256, 256, 512, 768], "down_block_types": ["DownEncoderBlock2D"] * 5,
    "up_block_types": ["UpDecoderBlock2D"] * 5, "in_channels": 3, "out_channels": 3, "latent_channels": 64,
    "layers_per_block": 2, "lookup_from_codebook": True, "mid_block_add_attention": False, "norm_num_groups": 32,
    "norm_type": "group", "num_vq_embeddings": 8192, "sample_size": 32, "scaling_factor": 0.18215,
    "vq_embed_dim": None, "force_upcast": True,
}
AMUSED_UVIT_CONFIG = {
    "hidden_size": 1024, "use_bias": False, "hidden_dropout": 0.0, "cond_embed_dim": 768, "micro_cond_encode_dim": 256,
    "micro_cond_embed_dim": 1280, "encoder_hidden_size": 768, "vocab_size": 8256, "codebook_size": 8192,
    "in_channels": 768, "block_out_channels": 768, "num_res_blocks": 3, "block_num_heads": 12,
    "num_hidden_layers": 22, "num_attention_heads": 16, "attention_dropout": 0.0, "intermediate_size": 2816,
    "layer_norm_eps": 1e-06, "ln_elementwise_affine": True,
}
AMUSED_SIZES = {  # pixel size: transformer config differences
    256: {"downsample": False, "upsample": False, "sample_size": 16},
    512: {"downsample": True, "upsample": True, "sample_size": 32},
}
AMUSED_SCHEDULER_CONFIG = {"mask_token_id": 8255, "masking_schedule": "cosine"}
AMUSED_STEPS, AMUSED_GUIDANCE, AMUSED_STRENGTH, AMUSED_WARM_UP_STRENGTH = 12, 10.0, 0.5, 0.1
AMUSED_PROMPT = PROMPT
AMUSED = ["amused-256", "amused-512"]


def amused_row_name(kind, size):
    if kind == "txt2img":
        return f"amused-{size} txt2img {AMUSED_STEPS} steps"
    return f"amused-{size} img2img {AMUSED_STRENGTH} × {AMUSED_STEPS}"


def time_amused(size, dtype, repeats):
    """The amused-<size> rows: text to image and img2img, whole pipeline calls."""
    import torch
    from diffusers import AmusedImg2ImgPipeline, AmusedPipeline, AmusedScheduler, UVit2DModel, VQModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

    vqvae = VQModel.from_config(AMUSED_VQ_CONFIG)
    transformer = UVit2DModel.from_config({**AMUSED_UVIT_CONFIG, **AMUSED_SIZES[size]})
    text_encoder = CLIPTextModelWithProjection(CLIPTextConfig(**TEXT_ENCODER_CONFIG))
    tokenizer = CLIPTokenizer(os.path.join(VOCABULARY, "vocab.json"), os.path.join(VOCABULARY, "merges.txt"),
                              pad_token="<|endoftext|>", model_max_length=77)
    scheduler = AmusedScheduler.from_config(AMUSED_SCHEDULER_CONFIG)
    txt2img = AmusedPipeline(vqvae=vqvae, tokenizer=tokenizer, text_encoder=text_encoder, transformer=transformer,
                             scheduler=scheduler).to(dtype)
    img2img = AmusedImg2ImgPipeline(**txt2img.components)
    for pipe in (txt2img, img2img):
        pipe.set_progress_bar_config(disable=True)
    for module in (vqvae, transformer, text_encoder):
        module.eval()
    assert txt2img.vae_scale_factor == 16 and size // 16 == AMUSED_SIZES[size]["sample_size"]
    steps_run, step_seconds = [0], [0.0]
    step = scheduler.step

    def timed_step(*args, **kwargs):
        start = time.perf_counter()
        out = step(*args, **kwargs)
        step_seconds[0] += time.perf_counter() - start
        steps_run[0] += 1
        return out
    scheduler.step = timed_step
    image = test_image(size)

    def call(kind, steps=AMUSED_STEPS, strength=AMUSED_STRENGTH):
        steps_run[0], step_seconds[0] = 0, 0.0
        common = dict(prompt=AMUSED_PROMPT, num_inference_steps=steps, guidance_scale=AMUSED_GUIDANCE,
                      generator=torch.Generator("cpu").manual_seed(SEED), output_type="np")
        if kind == "txt2img":
            out = txt2img(height=size, width=size, **common)
        else:
            out = img2img(image=image, strength=strength, **common)
        assert out.images.shape == (1, size, size, 3), out.images.shape

    rows = []
    for kind in ("txt2img", "img2img"):
        name = amused_row_name(kind, size)
        if kind == "txt2img":
            call(kind, steps=1)
        else:
            call(kind, strength=AMUSED_WARM_UP_STRENGTH)
        print(f"{name}: warm-up ran {steps_run[0]} step(s)", file=sys.stderr)
        runs, sched = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            call(kind)
            runs.append(time.perf_counter() - start)
            sched.append(step_seconds[0])
            print(f"{name}: {runs[-1]:.2f} s ({steps_run[0]} steps, scheduler {step_seconds[0]:.2f} s)",
                  file=sys.stderr)
        best = min(range(repeats), key=runs.__getitem__)
        rows.append({"name": name, "seconds": runs[best], "runs": runs, "steps": steps_run[0],
                     "scheduler_seconds": sched[best]})
    return rows


# The public configs of lllyasviel/control_v11p_sd15_canny and TencentARC/t2iadapter_canny_sd15v2.
CONTROLNET_CONFIG = {
    "act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
    "conditioning_embedding_out_channels": [16, 32, 96, 256], "controlnet_conditioning_channel_order": "rgb",
    "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
    "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
}
ADAPTER_CONFIG = {"adapter_type": "full_adapter", "channels": [320, 640, 1280, 1280], "downscale_factor": 8,
                  "in_channels": 1, "num_res_blocks": 2}


def run_precision(precision, repeats, size, parts, edit_repeats=1):
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel

    torch.manual_seed(0)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    latent = size // 8
    rows = []
    with torch.inference_mode():
        if "unet" in parts:
            unet = UNet2DConditionModel.from_config(UNET_CONFIG).eval().to(dtype)
            sample = torch.randn(2, 4, latent, latent, dtype=dtype)
            context = torch.randn(2, 77, 768, dtype=dtype)
            steps = torch.tensor([500, 500])
            rows.append(timed(f"UNet, CFG pair (batch 2) {size}²", repeats,
                              lambda: unet(sample, steps, encoder_hidden_states=context)))
            del unet
        if "controlnet" in parts or "adapter" in parts:
            from diffusers import ControlNetModel, T2IAdapter
            unet = UNet2DConditionModel.from_config(UNET_CONFIG).eval().to(dtype)
            sample = torch.randn(2, 4, latent, latent, dtype=dtype)
            context = torch.randn(2, 77, 768, dtype=dtype)
            steps = torch.tensor([500, 500])
            if "controlnet" in parts:
                controlnet = ControlNetModel.from_config(CONTROLNET_CONFIG).eval().to(dtype)
                image = torch.rand(2, 3, size, size, dtype=dtype)

                def controlled():
                    down, mid = controlnet(sample, steps, encoder_hidden_states=context, controlnet_cond=image,
                                           conditioning_scale=1.0, return_dict=False)
                    return unet(sample, steps, encoder_hidden_states=context, down_block_additional_residuals=down,
                                mid_block_additional_residual=mid)
                rows.append(timed(f"ControlNet + UNet, CFG pair (batch 2) {size}²", repeats, controlled))
                del controlnet
            if "adapter" in parts:
                adapter = T2IAdapter(**ADAPTER_CONFIG).eval().to(dtype)
                image = torch.rand(1, 1, size, size, dtype=dtype)
                rows.append(timed(f"T2I-Adapter features {size}²", repeats, lambda: adapter(image)))
                features = [torch.cat([f, f]) for f in adapter(image)]
                rows.append(timed(f"UNet + adapter features, CFG pair (batch 2) {size}²", repeats,
                                  lambda: unet(sample, steps, encoder_hidden_states=context,
                                               down_intrablock_additional_residuals=[f.clone() for f in features])))
                del adapter
            del unet
        if "unet-xl" in parts:
            unet = UNet2DConditionModel.from_config(SDXL_UNET_CONFIG).eval().to(dtype)
            sample = torch.randn(2, 4, latent, latent, dtype=dtype)
            context = torch.randn(2, 77, 2048, dtype=dtype)
            added = {"text_embeds": torch.randn(2, 1280, dtype=dtype),
                     "time_ids": torch.tensor([[size, size, 0, 0, size, size]] * 2, dtype=dtype)}
            steps = torch.tensor([500, 500])
            rows.append(timed(f"SDXL UNet, CFG pair (batch 2) {size}²", repeats,
                              lambda: unet(sample, steps, encoder_hidden_states=context, added_cond_kwargs=added)))
            del unet
        if "vae-xl" in parts:
            # SDXL's VAE has SD's architecture; only its scaling factor differs.
            vae = AutoencoderKL.from_config(dict(VAE_CONFIG, scaling_factor=0.13025, sample_size=1024)).eval().to(dtype)
            code = torch.randn(1, 4, latent, latent, dtype=dtype)
            rows.append(timed(f"SDXL VAE decode {size}²", repeats, lambda: vae.decode(code).sample))
            del vae
        if "vae" in parts:
            vae = AutoencoderKL.from_config(VAE_CONFIG).eval().to(dtype)
            image = torch.rand(1, 3, size, size, dtype=dtype) * 2 - 1
            code = torch.randn(1, 4, latent, latent, dtype=dtype)
            rows.append(timed(f"VAE encode {size}²", repeats, lambda: vae.encode(image).latent_dist.mean))
            rows.append(timed(f"VAE decode {size}²", repeats, lambda: vae.decode(code).sample))
            del vae
        for edit in EDITS:
            if edit in parts:
                rows.append(time_edit(edit, dtype, size, edit_repeats))
        for recipe in RECIPES + [TILED]:
            if recipe in parts:
                rows.append(time_recipe(recipe, dtype, size, edit_repeats))
        for model in AMUSED:
            if model in parts:
                rows += time_amused(int(model.split("-")[1]), dtype, edit_repeats)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"precision": precision, "peak_resident_bytes": peak, "rows": rows}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--precision", choices=["f32", "bf16"], help="run this precision here (the child process)")
    parser.add_argument("--only", choices=["f32", "bf16"], help="run only this precision (in a child process)")
    parser.add_argument("--part", action="append",
                        choices=["unet", "vae", "unet-xl", "vae-xl", "controlnet", "adapter", "img2img", "inpaint", "edit", "amused", "amused-256",
                                 "amused-512", "turbo-taesd", "turbo", "lcm", "recipes", TILED],
                        help="by default unet and vae; edit is img2img and inpaint; amused is amused-256 and amused-512; "
                             "recipes is turbo-taesd, turbo and lcm")
    parser.add_argument("--edit-repeats", type=int, default=1, help="timed runs of each whole edit")
    args = parser.parse_args()
    groups = {"edit": EDITS, "amused": AMUSED, "recipes": RECIPES}
    parts = [p for part in (args.part or ["unet", "vae"]) for p in groups.get(part, [part])]
    if args.precision:
        import torch
        torch.set_num_threads(args.threads)
        print(json.dumps(run_precision(args.precision, args.repeats, args.size, parts, args.edit_repeats)))
        return
    import diffusers
    import torch
    results = []
    for precision in [args.only] if args.only else ["f32", "bf16"]:
        command = [sys.executable, __file__, "--precision", precision, "--repeats", str(args.repeats),
                   "--size", str(args.size), "--threads", str(args.threads), "--edit-repeats", str(args.edit_repeats)]
        for part in parts:
            command += ["--part", part]
        output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
        results.append(json.loads(output))
    models = (["stable-diffusion-1.5"] if set(parts) - set(AMUSED) - set(RECIPES) - {"unet-xl", "vae-xl"} else [])
    models += ["stable-diffusion-xl-base-1.0"] if set(parts) & {"unet-xl", "vae-xl"} else [] + [p for p in AMUSED if p in parts]
    models += ["SD-Turbo / SD 1.5 recipes"] if set(parts) & set(RECIPES + [TILED]) else []
    print(json.dumps({"model": " + ".join(models) + " (random weights)", "size": args.size,
                      "threads": args.threads, "torch": torch.__version__, "diffusers": diffusers.__version__,
                      "results": results}))


if __name__ == "__main__":
    main()
