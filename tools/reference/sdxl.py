#!/usr/bin/env python3
"""Stable Diffusion XL reference fixtures for Chisel.

Builds three tiny random-weight models with the SDXL architecture (diffusers UNet2DConditionModel
with the "text_time" added conditioning, AutoencoderKL, transformers CLIPTextModel +
CLIPTextModelWithProjection), saves them as complete diffusers folders, writes the base and the
inpainting model again as original (Stability / SGM) single files, runs fixed inputs through each
network in fp32 and bf16, runs diffusers' SDXL pipelines end to end with the intermediates, and
makes a kohya-format SDXL LoRA, an SDXL textual-inversion embedding (clip_l + clip_g) and a
TAESDXL-style AutoencoderTiny for sdxl-tiny's latent space.

Run by hand, never in CI (see tools/reference/SDXL.md):
    tools/.venv/bin/python tools/reference/sdxl.py
Writes
    Tests/ChiselModelsTests/Fixtures/reference/sdxl-tiny/, sdxl-tiny.safetensors,
        sdxl-inpaint-tiny/, sdxl-inpaint-tiny.safetensors, sdxl-refiner-tiny/,
        sdxl-tiny-lora-kohya.safetensors, sdxl-tiny-embedding.safetensors, sdxl-taesd-tiny/
    Tests/ChiselModelStagesTests/Fixtures/sdxl/  cases.json, <case>.safetensors
Deterministic: two runs write byte-identical files (1 torch thread, deterministic algorithms).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL
import PIL.Image
import safetensors
import torch
from torch import nn
from safetensors.torch import load_file, save_file

import diffusers
import transformers
from diffusers import (AutoencoderKL, AutoencoderTiny, DPMSolverMultistepScheduler, EulerDiscreteScheduler, StableDiffusionXLImg2ImgPipeline,
                       StableDiffusionXLInpaintPipeline, StableDiffusionXLPipeline, UNet2DConditionModel)
from diffusers.pipelines.stable_diffusion_xl import pipeline_stable_diffusion_xl_img2img as sdxl_img2img_module
from diffusers.pipelines.stable_diffusion_xl import pipeline_stable_diffusion_xl_inpaint as sdxl_inpaint_module
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

sys.path.insert(0, str(Path(__file__).resolve().parent))
import to_single_file as sf  # noqa: E402  (the SD 1.x/2.x UNet and VAE module tables, reused here)

REPO = Path(__file__).resolve().parents[2]
MODELS_OUT = REPO / "Tests" / "ChiselModelsTests" / "Fixtures" / "reference"
STAGES_OUT = REPO / "Tests" / "ChiselModelStagesTests" / "Fixtures" / "sdxl"
PIPELINE_INPUTS = REPO / "Tests" / "ChiselModelStagesTests" / "Fixtures" / "pipelines"  # image.png, mask.png (read only)
REAL_VOCAB = REPO / "Sources" / "ChiselModels" / "Resources" / "CLIP"
TOKENIZER_CONFIGS = REPO / "Tests" / "ChiselModelsTests" / "Fixtures" / "tokenizer"

PINS = {"torch": "2.15.0", "diffusers": "0.42.1", "transformers": "5.23.0", "safetensors": "0.8.0",
        "numpy": "2.4.6", "peft": "0.21.2"}
PILLOW_EXPECTED = "13.0.0"

WEIGHT_DTYPE = torch.float16
WIDTH, HEIGHT = 48, 32
BOS, EOS = 998, 999
N_MERGES = 486  # 256 + 256 + 486 + 2 = 1000 ids

# ======================================================================================
# Model definitions
# ======================================================================================

# text_encoder: CLIP ViT-L style (quick_gelu), ids as generate.py's SD1 encoder.
TE1 = dict(vocab_size=1000, hidden_size=16, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
           max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=16,
           bos_token_id=BOS, eos_token_id=EOS, pad_token_id=EOS)
# text_encoder_2: OpenCLIP bigG style (exact gelu, with projection). bos/eos/pad 0/2/1 are the legacy
# values that SDXL's text_encoder_2/config.json carries: eos_token_id == 2 makes transformers pool at
# argmax(input_ids) (the first position of the largest id, i.e. the first EOS) instead of at the first id == eos.
TE2 = dict(vocab_size=1000, hidden_size=24, intermediate_size=96, num_hidden_layers=2, num_attention_heads=2,
           max_position_embeddings=77, hidden_act="gelu", layer_norm_eps=1e-5, projection_dim=16,
           bos_token_id=0, eos_token_id=2, pad_token_id=1)

TIME_DIM = 8  # addition_time_embed_dim (256 in SDXL)

# SDXL base: block types, per-level transformer depth and head counts as SDXL has them, scaled down.
# layers_per_block 2 as in SDXL, so the original layout has SDXL's exact input/output block indices.
UNET_BASE = dict(sample_size=16, in_channels=4, out_channels=4,
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                 block_out_channels=(8, 16, 24), layers_per_block=2, transformer_layers_per_block=(1, 1, 2),
                 attention_head_dim=(1, 2, 4), use_linear_projection=True, norm_num_groups=4, norm_eps=1e-5,
                 cross_attention_dim=TE1["hidden_size"] + TE2["hidden_size"],
                 addition_embed_type="text_time", addition_time_embed_dim=TIME_DIM,
                 projection_class_embeddings_input_dim=TIME_DIM * 6 + TE2["projection_dim"],
                 flip_sin_to_cos=True, freq_shift=0, act_fn="silu", upcast_attention=False,
                 center_input_sample=False, downsample_padding=1)
# Refiner: like SDXL's refiner, attention only in the middle levels, one transformer depth (an int) for all,
# conditioned on text_encoder_2 alone and on 5 time ids (the aesthetic score replaces target_size).
UNET_REFINER = dict(UNET_BASE,
                    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                    transformer_layers_per_block=2, cross_attention_dim=TE2["hidden_size"],
                    projection_class_embeddings_input_dim=TIME_DIM * 5 + TE2["projection_dim"])
UNET_INPAINT = dict(UNET_BASE, in_channels=9)

VAE_CFG = dict(in_channels=3, out_channels=3,
               down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
               up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
               block_out_channels=(8, 16), layers_per_block=1, act_fn="silu",
               latent_channels=4, norm_num_groups=8, sample_size=32, scaling_factor=0.13025, force_upcast=False)

# SDXL's scheduler/scheduler_config.json (EulerDiscreteScheduler, leading spacing, steps_offset 1).
SCHEDULER_CFG = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                     trained_betas=None, prediction_type="epsilon", interpolation_type="linear",
                     use_karras_sigmas=False, timestep_spacing="leading", steps_offset=1)

SEEDS = {"sdxl-tiny": 4001, "sdxl-refiner-tiny": 4002, "sdxl-inpaint-tiny": 4003,
         "sdxl-tiny-embedding": 4004, "sdxl-taesd-tiny": 4005}

# A TAESDXL-style AutoencoderTiny for sdxl-tiny's latent space (4 channels, downscale 2). EncoderTiny has one
# stride-2 conv per stage after the first and DecoderTiny one nearest 2x upsample per stage before the last,
# so 2 stages give 2 (TAESD/TAESDXL: 4 stages of 64 channels, (1, 3, 3, 3) / (3, 3, 3, 1) blocks, 8).
# The stages' channel counts must be equal (each stage's stride-2 conv / post-upsample conv maps C -> C).
# The pipelines' vae_scale_factor is 2 ** (len(block_out_channels) - 1), and AutoencoderTiny registers
# decoder_block_out_channels as block_out_channels: 2 here too. scaling_factor 1.0 is the class default,
# as TAESD's latents are already in the diffusion model's (scaled) latent space.
TAESD_CFG = dict(in_channels=3, out_channels=3, encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8),
                 act_fn="relu", upsample_fn="nearest", latent_channels=4, upsampling_scaling_factor=2,
                 num_encoder_blocks=(1, 2), num_decoder_blocks=(2, 1), latent_magnitude=3, latent_shift=0.5,
                 scaling_factor=1.0)
TAESD_NAME = "sdxl-taesd-tiny"

# An SDXL textual-inversion embedding as people download them: clip_l (n, te1 hidden) + clip_g (n, te2 hidden).
EMBEDDING_NAME = "sdxl-tiny-embedding.safetensors"
EMBEDDING_TOKEN = "<sdxl-style>"
EMBEDDING_VECTORS = 2

PROMPT_A = "a red fox sitting in a snowy forest, highly detailed"
PROMPT_B = "an old stone lighthouse on a cliff at sunset"
PROMPT_C = "a bowl of ripe oranges on a wooden table"
NEG_A = "blurry, low quality"
NEG_B = "text, watermark"
PROMPT_TI = "a red fox in <sdxl-style>, snowy forest"


# ======================================================================================
# Small helpers
# ======================================================================================

DEFAULT_MODELS_OUT, DEFAULT_STAGES_OUT = MODELS_OUT, STAGES_OUT


def rel(p) -> str:
    """A path as recorded in the fixtures: relative to the repository, with --models-out / --stages-out
    written as the default locations (so that a run elsewhere records the same text)."""
    p = Path(p).resolve()
    for actual, default in ((MODELS_OUT, DEFAULT_MODELS_OUT), (STAGES_OUT, DEFAULT_STAGES_OUT)):
        if p == actual or actual in p.parents:
            p = default / p.relative_to(actual)
            break
    return str(p.relative_to(REPO))


def check_versions():
    import peft
    got = {"torch": torch.__version__.split("+")[0], "diffusers": diffusers.__version__,
           "transformers": transformers.__version__, "safetensors": safetensors.__version__,
           "numpy": np.__version__, "peft": peft.__version__}
    bad = {k: (got[k], v) for k, v in PINS.items() if got[k] != v}
    if bad:
        sys.exit(f"sdxl.py: version mismatch (got, pinned): {bad}")
    if PIL.__version__ != PILLOW_EXPECTED:
        print(f"warning: Pillow {PIL.__version__}, fixtures were made with {PILLOW_EXPECTED}")
    try:
        import imwatermark  # noqa: F401
        sys.exit("sdxl.py: invisible-watermark is installed; diffusers would watermark SDXL outputs by default")
    except ImportError:
        pass


def versions():
    import peft
    return {"python": sys.version.split()[0], "torch": torch.__version__, "diffusers": diffusers.__version__,
            "transformers": transformers.__version__, "numpy": np.__version__, "safetensors": safetensors.__version__,
            "peft": peft.__version__, "Pillow": PIL.__version__}


def randomize(model: nn.Module, gen: torch.Generator):
    """Norms get weight 1 + 0.2·N(0,1) and bias 0.1·N(0,1); every other bias that default init left at zero
    gets 0.05·N(0,1); then every parameter is rounded to fp16, so fp32 references use the values on disk."""
    with torch.no_grad():
        done = set()
        for mod in model.modules():
            if isinstance(mod, (nn.GroupNorm, nn.LayerNorm)):
                if mod.weight is not None:
                    mod.weight.copy_(1 + 0.2 * torch.randn(mod.weight.shape, generator=gen))
                    done.add(id(mod.weight))
                if mod.bias is not None:
                    mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=gen))
                    done.add(id(mod.bias))
        for name, p in model.named_parameters():
            if id(p) not in done and name.endswith("bias") and torch.count_nonzero(p) == 0:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
        for p in model.parameters():
            p.copy_(p.to(WEIGHT_DTYPE).to(torch.float32))


def same_tensors(a: dict, b: dict, what=""):
    assert set(a) == set(b), (what, sorted(set(a) ^ set(b))[:10])
    for k in a:
        assert a[k].shape == b[k].shape and torch.equal(a[k].float(), b[k].float()), (what, k)


def strip_text_model(sd):
    return {(k[len("text_model."):] if k.startswith("text_model.") else k): v for k, v in sd.items()}


def diff_stats(ref, other):
    ref, other = ref.float(), other.float()
    d = (ref - other).abs()
    return dict(max_abs=float(d.max()), mean_abs=float(d.mean()), ref_max_abs=float(ref.abs().max()),
                max_rel_to_ref_max=float(d.max() / ref.abs().max().clamp_min(1e-12)))


def generic(name):
    return ".".join("N" if p.isdigit() else p for p in name.split("."))


def norm_summary(model):
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.GroupNorm):
            key = f"GroupNorm(groups={m.num_groups}, eps={m.eps:g})"
        elif isinstance(m, nn.LayerNorm):
            key = f"LayerNorm(eps={m.eps:g})"
        else:
            continue
        out.setdefault(key, set()).add(generic(name))
    return {k: sorted(v) for k, v in out.items()}


def attention_summary(unet):
    out = {}
    for name, m in unet.named_modules():
        if type(m).__name__ == "Attention":
            out[name] = dict(heads=m.heads, head_dim=m.inner_dim // m.heads, scale=m.scale,
                             cross_attention_dim=m.cross_attention_dim, processor=type(m.processor).__name__)
    return out


def transformer_depths(unet):
    """{attention module: number of BasicTransformerBlocks} for every Transformer2DModel."""
    return {name: len(m.transformer_blocks) for name, m in unet.named_modules()
            if type(m).__name__ == "Transformer2DModel"}


def save_tensors(path: Path, tensors: dict, doc: dict, meta_list: list, root: Path):
    out = {}
    for k, v in tensors.items():
        v = v.detach().contiguous()
        if v.is_floating_point():
            v = v.to(torch.float32)
        out[k] = v
        meta_list.append(dict(file=str(path.relative_to(root)), key=k, shape=list(v.shape),
                              dtype=str(v.dtype).replace("torch.", ""), producer=doc[k]))
    save_file(out, str(path), metadata={"generator": "tools/reference/sdxl.py"})


def to_json(o, ind=0):
    """json with one level of indent per container; lists of scalars on one line."""
    pad, pad1 = " " * ind, " " * (ind + 1)
    if isinstance(o, dict):
        if not o:
            return "{}"
        items = [f"{pad1}{json.dumps(str(k), ensure_ascii=False)}: {to_json(v, ind + 1)}" for k, v in o.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(o, (list, tuple)):
        if all(not isinstance(x, (dict, list, tuple)) for x in o):
            return json.dumps(list(o), ensure_ascii=False)
        return "[\n" + ",\n".join(pad1 + to_json(x, ind + 1) for x in o) + "\n" + pad + "]"
    if isinstance(o, float) and not math.isfinite(o):
        # JSON has no infinities (a scheduler config's lambda_min_clipped is -inf): written as text.
        return json.dumps(str(o))
    return json.dumps(o, ensure_ascii=False)


# ======================================================================================
# Tokenizers: the real CLIP vocabulary cut to 1000 ids (same construction as pipelines.py)
# ======================================================================================

def byte_symbols():
    """CLIP's byte -> printable character table, in the vocabulary's order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in printable:
        table[b] = chr(b)
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    order = printable + [b for b in range(256) if b not in printable]
    return [table[b] for b in order]


def tiny_vocab():
    real = json.loads((REAL_VOCAB / "vocab.json").read_bytes())
    lines = (REAL_VOCAB / "merges.txt").read_text(encoding="utf-8").split("\n")
    header, merges = lines[0], [tuple(l.split(" ")) for l in lines[1:1 + N_MERGES]]
    symbols = byte_symbols()
    vocab = symbols + [s + "</w>" for s in symbols] + [a + b for a, b in merges] + ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 1000 and len(set(vocab)) == 1000
    for i, tok in enumerate(vocab[:BOS]):
        assert real[tok] == i, (i, tok)  # the same ids as in the real 49408-token vocabulary
    vocab_json = json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False, separators=(",", ":"))
    merges_txt = header + "\n" + "".join(f"{a} {b}\n" for a, b in merges)
    return vocab_json.encode("utf-8"), merges_txt.encode("utf-8")


def write_tokenizer(folder: Path, which: str):
    """tokenizer/ (CLIP ViT-L: pads with <|endoftext|>) or tokenizer_2/ (OpenCLIP bigG: pads with '!' = id 0,
    in tokenizer_config.json and special_tokens_map.json, as SDXL's tokenizer_2 does)."""
    vocab, merges = tiny_vocab()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_bytes(vocab)
    (folder / "merges.txt").write_bytes(merges)
    if which == "tokenizer":
        for f in ("tokenizer_config.json", "special_tokens_map.json"):
            shutil.copyfile(TOKENIZER_CONFIGS / "clip" / f, folder / f)
    else:
        shutil.copyfile(TOKENIZER_CONFIGS / "sd2" / "special_tokens_map.json", folder / "special_tokens_map.json")
        cfg = json.loads((TOKENIZER_CONFIGS / "sd2" / "tokenizer_config.json").read_text())
        cfg["pad_token"] = "!"
        (folder / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")


def set_model_index_entries(folder: Path, entries: dict):
    """Set model_index.json entries, written as diffusers writes the file (sorted keys, indent 2)."""
    path = folder / "model_index.json"
    before = json.loads(path.read_text())
    after = dict(before)
    after.update(entries)
    path.write_text(json.dumps(after, indent=2, sort_keys=True) + "\n")
    return before


# ======================================================================================
# Original (Stability / SGM) single-file layout
# ======================================================================================

UNET_PREFIX = sf.UNET_PREFIX            # model.diffusion_model.
VAE_PREFIX = sf.VAE_PREFIX              # first_stage_model.
TE1_PREFIX = "conditioner.embedders.0.transformer."  # + text_model.<HF CLIPTextModel name>
TE2_PREFIX = "conditioner.embedders.1.model."        # OpenCLIP text tower
TE2_LAYER_LEAVES = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "self_attn.out_proj": "attn.out_proj",
                    "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}


def unet_table(cfg):
    """sf.unet_module_table (conv_in/time_embed/input_blocks/middle_block/output_blocks/out) plus SDXL's
    added-conditioning MLP: add_embedding.linear_1/2 <-> label_emb.0.0/0.2 (label_emb.0 = Sequential(Linear,
    SiLU, Linear)). add_time_proj has no weights. Transformer depth only adds transformer_blocks.N inside an
    attention module, whose names are the same in both layouts."""
    t = sf.unet_module_table(cfg)
    if cfg.get("addition_embed_type") == "text_time":
        t += [("add_embedding.linear_1", "label_emb.0.0", "plain"), ("add_embedding.linear_2", "label_emb.0.2", "plain")]
    return t


_TE2_LAYER = re.compile(r"^text_model\.encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$")
_TE2_RESBLOCK = re.compile(r"^transformer\.resblocks\.(\d+)\.(.+)\.(weight|bias)$")
_TE2_IN_PROJ = re.compile(r"^transformer\.resblocks\.(\d+)\.attn\.in_proj_(weight|bias)$")


def te2_to_original(sd):
    """CLIPTextModelWithProjection (HF names) -> OpenCLIP names under conditioner.embedders.1.model."""
    out, qkv = {}, {}
    for k, v in sd.items():
        if k == "text_projection.weight":
            out["text_projection"] = v.t().contiguous()  # OpenCLIP: x @ P with P (width, proj); HF Linear: (proj, width)
        elif k == "text_model.embeddings.token_embedding.weight":
            out["token_embedding.weight"] = v
        elif k == "text_model.embeddings.position_embedding.weight":
            out["positional_embedding"] = v
        elif k.startswith("text_model.final_layer_norm."):
            out["ln_final." + k.rsplit(".", 1)[1]] = v
        else:
            m = _TE2_LAYER.match(k)
            if not m:
                raise KeyError(f"no OpenCLIP rule for {k!r}")
            n, module, param = int(m.group(1)), m.group(2), m.group(3)
            if module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                qkv.setdefault((n, param), {})[module[-6]] = v
            elif module in TE2_LAYER_LEAVES:
                out[f"transformer.resblocks.{n}.{TE2_LAYER_LEAVES[module]}.{param}"] = v
            else:
                raise KeyError(f"no OpenCLIP rule for {k!r}")
    for (n, param), parts in sorted(qkv.items()):
        out[f"transformer.resblocks.{n}.attn.in_proj_{param}"] = torch.cat([parts["q"], parts["k"], parts["v"]], 0)
    return {TE2_PREFIX + k: v.contiguous() for k, v in out.items()}


def te2_from_original(ckpt):
    """Inverse of te2_to_original; returns (state_dict, ignored keys). logit_scale is ignored."""
    inv = {v: k for k, v in TE2_LAYER_LEAVES.items()}
    out, ignored = {}, []
    for full, v in ckpt.items():
        if not full.startswith(TE2_PREFIX):
            continue
        k = full[len(TE2_PREFIX):]
        m_qkv = _TE2_IN_PROJ.match(k)
        m = _TE2_RESBLOCK.match(k)
        if k == "text_projection":
            out["text_projection.weight"] = v.t().contiguous()
        elif k == "token_embedding.weight":
            out["text_model.embeddings.token_embedding.weight"] = v
        elif k == "positional_embedding":
            out["text_model.embeddings.position_embedding.weight"] = v
        elif k.startswith("ln_final."):
            out["text_model.final_layer_norm." + k.rsplit(".", 1)[1]] = v
        elif k == "logit_scale":
            ignored.append(full)
        elif m_qkv:  # in_proj_weight (3D, D) / in_proj_bias (3D,): q, k, v stacked along dim 0
            n, param = m_qkv.group(1), m_qkv.group(2)
            for part_name, part in zip(("q", "k", "v"), torch.chunk(v, 3, dim=0)):
                out[f"text_model.encoder.layers.{n}.self_attn.{part_name}_proj.{param}"] = part.contiguous()
        elif m and m.group(2) in inv:
            out[f"text_model.encoder.layers.{m.group(1)}.{inv[m.group(2)]}.{m.group(3)}"] = v
        else:
            raise KeyError(f"no OpenCLIP rule for {full!r}")
    return out, ignored


def diffusers_to_original(unet_sd, vae_sd, te1_sd, te2_sd, unet_cfg, vae_cfg):
    ckpt = {}
    for k, v in sf._convert_with_table(unet_sd, unet_table(unet_cfg), True).items():
        ckpt[UNET_PREFIX + k] = v
    for k, v in sf._convert_with_table(vae_sd, sf.vae_module_table(vae_cfg), True).items():
        ckpt[VAE_PREFIX + k] = v
    for k, v in strip_text_model(te1_sd).items():
        ckpt[TE1_PREFIX + "text_model." + k] = v
    ckpt.update(te2_to_original(te2_sd))
    return ckpt


def original_to_diffusers(ckpt, unet_cfg, vae_cfg, extra_ok):
    """Returns (unet, vae, te1 (no text_model. prefix), te2, ignored keys); raises on an unknown key."""
    unet = {k[len(UNET_PREFIX):]: v for k, v in ckpt.items() if k.startswith(UNET_PREFIX)}
    vae = {k[len(VAE_PREFIX):]: v for k, v in ckpt.items() if k.startswith(VAE_PREFIX)}
    p1 = TE1_PREFIX + "text_model."
    te1 = {k[len(p1):]: v for k, v in ckpt.items() if k.startswith(p1) and k not in extra_ok}
    te2, ignored = te2_from_original(ckpt)
    known = [k for k in ckpt if k.startswith((UNET_PREFIX, VAE_PREFIX, p1, TE2_PREFIX))]
    unknown = [k for k in ckpt if k not in known]
    assert not unknown, f"keys outside the four prefixes: {unknown[:5]}"
    ignored = sorted(set(ignored) | {k for k in ckpt if k in extra_ok})
    assert set(ignored) == set(extra_ok), (ignored, sorted(extra_ok))
    return (sf._convert_with_table(unet, unet_table(unet_cfg), False),
            sf._convert_with_table(vae, sf.vae_module_table(vae_cfg), False), te1, te2, ignored)


def verify_single_file(ckpt, unet_sd, vae_sd, te1_sd, te2_sd, unet_cfg, vae_cfg, extras):
    """original -> diffusers gives every diffusers tensor bit-exactly; diffusers -> original gives every
    original tensor except the declared extras; no key is produced twice."""
    u, v, t1, t2, ignored = original_to_diffusers(ckpt, unet_cfg, vae_cfg, set(extras))
    for name, a, b in (("unet", unet_sd, u), ("vae", vae_sd, v), ("text_encoder", strip_text_model(te1_sd), t1),
                       ("text_encoder_2", te2_sd, t2)):
        assert set(a) == set(b), (name, sorted(set(a) ^ set(b))[:8])
        for k in a:
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k]), (name, k)
    mapped = diffusers_to_original(unet_sd, vae_sd, te1_sd, te2_sd, unet_cfg, vae_cfg)
    assert set(mapped) | set(extras) == set(ckpt) and not set(mapped) & set(extras)
    for k, t in mapped.items():
        assert torch.equal(t, ckpt[k]) and t.dtype == ckpt[k].dtype, k
    return {"original_tensors_mapped": len(mapped), "extras": sorted(extras),
            "diffusers_tensors": {"unet": len(unet_sd), "vae": len(vae_sd), "text_encoder": len(te1_sd),
                                  "text_encoder_2": len(te2_sd)}}


def single_file_extras():
    """Tensors that real SDXL files carry and a loader must skip: text_encoder's int64 position_ids buffer
    (saved by transformers 4.x) and OpenCLIP's logit_scale."""
    return {TE1_PREFIX + "text_model.embeddings.position_ids": torch.arange(77, dtype=torch.int64)[None],
            TE2_PREFIX + "logit_scale": torch.tensor(4.6052, dtype=WEIGHT_DTYPE)}


def config_only_copy(folder: Path) -> Path:
    """A temporary copy of a model folder with only its JSON/txt files (configs, tokenizers), so that a
    from_single_file(config=...) load can take weights only from the single file."""
    tmp = Path(tempfile.mkdtemp(prefix="chisel-sdxl-"))
    for p in folder.rglob("*"):
        if p.is_file() and p.suffix in (".json", ".txt") and not p.name.startswith(("expected_", "meta")):
            dst = tmp / p.relative_to(folder)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, dst)
    return tmp


def load_single_file_pipeline(cls, path: Path, folder: Path):
    tmp = config_only_copy(folder)
    try:
        return cls.from_single_file(str(path), config=str(tmp), local_files_only=True, torch_dtype=torch.float32,
                                    add_watermarker=False)
    finally:
        shutil.rmtree(tmp)


def cross_check_single_file(cls, path: Path, folder: Path, log):
    """Independent check of our mapping: diffusers' own single-file loader reads the file (configs from
    the folder) and every tensor of every component must equal the folder's."""
    sfp = load_single_file_pipeline(cls, path, folder)
    ref = cls.from_pretrained(folder, torch_dtype=torch.float32, add_watermarker=False)
    res = {}
    for comp in ("unet", "vae", "text_encoder", "text_encoder_2"):
        a, b = getattr(ref, comp).state_dict(), getattr(sfp, comp).state_dict()
        same_tensors(a, b, comp)
        assert all(p.dtype == torch.float32 for p in getattr(sfp, comp).parameters())
        if comp in ("unet", "vae"):
            public = [{k: v for k, v in dict(getattr(x, comp).config).items() if not k.startswith("_")} for x in (ref, sfp)]
            assert public[0] == public[1], comp
        res[comp] = f"identical ({len(a)} tensors)"
    assert dict(ref.scheduler.config) == dict(sfp.scheduler.config)
    res["call"] = (f"{cls.__name__}.from_single_file({path.name}, config=<copy of {folder.name}/ with only its JSON/txt "
                   "files>, local_files_only=True, torch_dtype=float32)")
    log(f"  diffusers from_single_file cross-check: every tensor of unet, vae, text_encoder, text_encoder_2 identical")
    return res


# ======================================================================================
# Building the folders
# ======================================================================================

def make_te1(gen, tmp: Path):
    """transformers 5 saves a fresh CLIPTextModel without the `text_model.` prefix that every real
    checkpoint has; loading a prefixed file makes it write the prefix back (see README.md)."""
    fresh = CLIPTextModel(CLIPTextConfig(**TE1)).eval()
    randomize(fresh, gen)
    d = tmp / "te1_prefixed"
    d.mkdir(parents=True, exist_ok=True)
    fresh.config.save_pretrained(d)
    save_file({"text_model." + k: v.contiguous() for k, v in fresh.state_dict().items()}, str(d / "model.safetensors"),
              metadata={"format": "pt"})
    te = CLIPTextModel.from_pretrained(d, dtype=torch.float32).eval()
    same_tensors(fresh.state_dict(), te.state_dict(), "te1")
    return te


def make_te2(gen):
    te = CLIPTextModelWithProjection(CLIPTextConfig(**TE2)).eval()
    randomize(te, gen)
    return te


def scheduler():
    return EulerDiscreteScheduler(**SCHEDULER_CFG)


def build_folders(tmp: Path, log):
    """sdxl-tiny, sdxl-inpaint-tiny and sdxl-refiner-tiny. As with the real models, all three share the
    VAE and text_encoder_2, and the base and inpainting model share text_encoder; each has its own UNet."""
    gen = torch.Generator().manual_seed(SEEDS["sdxl-tiny"])
    torch.manual_seed(SEEDS["sdxl-tiny"])
    unet = UNet2DConditionModel(**UNET_BASE).eval()
    randomize(unet, gen)
    vae = AutoencoderKL(**VAE_CFG).eval()
    randomize(vae, gen)
    te1 = make_te1(gen, tmp)
    te2 = make_te2(gen)
    units = {}
    for name, cfg in (("sdxl-refiner-tiny", UNET_REFINER), ("sdxl-inpaint-tiny", UNET_INPAINT)):
        g = torch.Generator().manual_seed(SEEDS[name])
        torch.manual_seed(SEEDS[name])
        u = UNet2DConditionModel(**cfg).eval()
        randomize(u, g)
        units[name] = u
    vae16, te1_16, te2_16 = vae.to(WEIGHT_DTYPE), te1.to(WEIGHT_DTYPE), te2.to(WEIGHT_DTYPE)
    pipes = {
        "sdxl-tiny": StableDiffusionXLPipeline(
            vae=vae16, text_encoder=te1_16, text_encoder_2=te2_16, tokenizer=None, tokenizer_2=None,
            unet=unet.to(WEIGHT_DTYPE), scheduler=scheduler(), force_zeros_for_empty_prompt=True, add_watermarker=False),
        "sdxl-inpaint-tiny": StableDiffusionXLInpaintPipeline(
            vae=vae16, text_encoder=te1_16, text_encoder_2=te2_16, tokenizer=None, tokenizer_2=None,
            unet=units["sdxl-inpaint-tiny"].to(WEIGHT_DTYPE), scheduler=scheduler(), requires_aesthetics_score=False,
            force_zeros_for_empty_prompt=True, add_watermarker=False),
        "sdxl-refiner-tiny": StableDiffusionXLImg2ImgPipeline(
            vae=vae16, text_encoder=None, text_encoder_2=te2_16, tokenizer=None, tokenizer_2=None,
            unet=units["sdxl-refiner-tiny"].to(WEIGHT_DTYPE), scheduler=scheduler(), requires_aesthetics_score=True,
            force_zeros_for_empty_prompt=False, add_watermarker=False),
    }
    tok_entry = ["transformers", "CLIPTokenizer"]
    for name, pipe in pipes.items():
        folder = MODELS_OUT / name
        if folder.exists():
            shutil.rmtree(folder)
        pipe.save_pretrained(folder, safe_serialization=True)
        entries = {"tokenizer_2": tok_entry}
        write_tokenizer(folder / "tokenizer_2", "tokenizer_2")
        if pipe.text_encoder is not None:
            write_tokenizer(folder / "tokenizer", "tokenizer")
            entries["tokenizer"] = tok_entry
        before = set_model_index_entries(folder, entries)
        assert before.get("tokenizer") == [None, None] and before.get("tokenizer_2") == [None, None], before
        if pipe.text_encoder is not None:
            assert all(k.startswith("text_model.") for k in load_file(str(folder / "text_encoder" / "model.safetensors")))
        te2_keys = load_file(str(folder / "text_encoder_2" / "model.safetensors"))
        assert all(k.startswith("text_model.") or k == "text_projection.weight" for k in te2_keys)
        log(f"  {name}: saved ({type(pipe).__name__}, model_index {json.loads((folder / 'model_index.json').read_text())['_class_name']})")
    # the shared components are byte-identical files
    for comp, fname in (("vae", "diffusion_pytorch_model.safetensors"), ("text_encoder_2", "model.safetensors")):
        blobs = {(MODELS_OUT / n / comp / fname).read_bytes() for n in pipes}
        assert len(blobs) == 1, comp
    assert ((MODELS_OUT / "sdxl-tiny" / "text_encoder" / "model.safetensors").read_bytes()
            == (MODELS_OUT / "sdxl-inpaint-tiny" / "text_encoder" / "model.safetensors").read_bytes())


def load_folder(name, cls=None, dtype=torch.float32):
    folder = MODELS_OUT / name
    cls = cls or {"sdxl-tiny": StableDiffusionXLPipeline, "sdxl-inpaint-tiny": StableDiffusionXLInpaintPipeline,
                  "sdxl-refiner-tiny": StableDiffusionXLImg2ImgPipeline}[name]
    pipe = cls.from_pretrained(folder, torch_dtype=dtype, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    for comp in ("unet", "vae", "text_encoder", "text_encoder_2"):
        m = getattr(pipe, comp)
        if m is not None:
            m.eval()
            assert all(p.dtype == dtype for p in m.parameters()), comp
    return pipe


def check_tokenizers(log):
    base = load_folder("sdxl-tiny")
    t1, t2 = base.tokenizer, base.tokenizer_2
    assert (t1.bos_token_id, t1.eos_token_id, t1.pad_token_id, t1.model_max_length, len(t1)) == (BOS, EOS, EOS, 77, 1000)
    assert (t2.bos_token_id, t2.eos_token_id, t2.pad_token_id, t2.model_max_length, len(t2)) == (BOS, EOS, 0, 77, 1000)
    ref = load_folder("sdxl-refiner-tiny")
    assert ref.tokenizer is None and ref.text_encoder is None
    assert ref.tokenizer_2.pad_token_id == 0
    for s in (PROMPT_A, NEG_A, ""):
        a, b = t1(s).input_ids, t2(s).input_ids
        assert a == b and a[0] == BOS and a[-1] == EOS
    log("  tokenizers: tokenizer pads with 999 (<|endoftext|>), tokenizer_2 with 0 ('!'); same ids otherwise")


# ======================================================================================
# Per-network fixtures
# ======================================================================================

def padded(tok, text):
    return tok(text, padding="max_length", max_length=77, truncation=True).input_ids


@torch.no_grad()
def run_te1(te, ids):
    o = te(input_ids=ids, output_hidden_states=True)
    hs = o.hidden_states
    assert len(hs) == te.config.num_hidden_layers + 1
    return {"hidden_states_m2": hs[-2], "hidden_states_m3": hs[-3], "last_hidden_state": o.last_hidden_state,
            "pooler_output": o.pooler_output}


@torch.no_grad()
def run_te2(te, ids):
    o = te(input_ids=ids, output_hidden_states=True)
    hs = o.hidden_states
    pooled = te.text_model(input_ids=ids).pooler_output
    assert torch.equal(te.text_projection(pooled), o.text_embeds)
    return {"hidden_states_m2": hs[-2], "hidden_states_m3": hs[-3], "last_hidden_state": o.last_hidden_state,
            "pooler_output": pooled, "text_embeds": o.text_embeds}


@torch.no_grad()
def run_vae(vae, inp, dtype):
    out = {}
    for tag in ("", "_ns"):
        dist = vae.encode(inp["image" + tag].to(dtype)).latent_dist
        out["mean" + tag], out["std" + tag], out["logvar" + tag] = dist.mean, dist.std, dist.logvar
        out["sample" + tag] = dist.mean + dist.std * inp["noise" + tag].to(dtype)
        out["decoded" + tag] = vae.decode(inp["latent" + tag].to(dtype)).sample
    return out


@torch.no_grad()
def run_unet(unet, inp, dtype, intermediates=False):
    ehs = inp["encoder_hidden_states"].to(dtype)
    cond = {"text_embeds": inp["text_embeds"].to(dtype), "time_ids": inp["time_ids"].to(dtype)}
    s, so = inp["sample"].to(dtype), inp["sample_odd"].to(dtype)
    tb = inp["timesteps_batch"].to(torch.int64)
    t999 = inp["timestep_999"].to(torch.int64).reshape(())
    tf = inp["timestep_fractional"].reshape(())
    seen = {}
    hooks = []
    if intermediates:
        hooks.append(unet.time_embedding.register_forward_hook(lambda m, a, o: seen.__setitem__("temb", o.clone())))
        hooks.append(unet.add_time_proj.register_forward_hook(lambda m, a, o: seen.__setitem__("time_proj", o.clone())))
        def add_embedding_hook(module, args, output):  # must return None (a value would replace the output)
            seen["add_embeds"] = args[0].clone()
            seen["aug_emb"] = output.clone()
        hooks.append(unet.add_embedding.register_forward_hook(add_embedding_hook))
    out = {"out_batch": unet(s, tb, ehs, added_cond_kwargs=cond).sample}
    for h in hooks:
        h.remove()
    out["out_scalar_999"] = unet(s, t999, ehs, added_cond_kwargs=cond).sample
    out["out_fractional"] = unet(s, tf, ehs, added_cond_kwargs=cond).sample
    out["out_odd"] = unet(so, tb, ehs, added_cond_kwargs=cond).sample
    other = {"text_embeds": cond["text_embeds"], "time_ids": inp["time_ids_other"].to(dtype)}
    out["out_other_time_ids"] = unet(s, tb, ehs, added_cond_kwargs=other).sample
    if intermediates:
        B = s.shape[0]
        out["time_embeds"] = seen["time_proj"].reshape(B, -1)
        out["add_embeds"] = seen["add_embeds"]
        out["aug_emb"] = seen["aug_emb"]
        out["temb"] = seen["temb"]
        # add_embeds = cat([text_embeds, time_embeds]): text first
        assert torch.equal(out["add_embeds"], torch.cat([cond["text_embeds"], out["time_embeds"]], dim=-1))
    return out


def time_id_features(time_ids, dim):
    """Our own sinusoidal embedding of each time id (flip_sin_to_cos, shift 0), to check the UNet's."""
    half = dim // 2
    freqs = torch.exp(-np.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    arg = time_ids.flatten()[:, None].float() * freqs[None]
    return torch.cat([torch.cos(arg), torch.sin(arg)], dim=-1).reshape(time_ids.shape[0], -1)


def per_network_fixtures(name, log, single_file_info=None):
    folder = MODELS_OUT / name
    seed = SEEDS[name]
    pipe = load_folder(name)
    pipe16 = load_folder(name, dtype=torch.bfloat16)
    unet, vae, te1, te2 = pipe.unet, pipe.vae, pipe.text_encoder, pipe.text_encoder_2
    g = torch.Generator().manual_seed(seed + 100)
    meta_tensors, bf16_stats = [], {}

    def randn(*shape):
        return torch.randn(shape, generator=g)

    files = {}
    # ---- text encoders (only the base folder: the other folders share them) ----
    if name == "sdxl-tiny":
        t1, t2 = pipe.tokenizer, pipe.tokenizer_2
        hand1 = [BOS, 320, 125, 539, 42, 7, 901, 13, EOS]
        hand2 = [BOS, 5, 700, 2, 41, 996, EOS]  # id 2 ('#') before EOS: pooling position tells the two rules apart
        ids1 = torch.tensor([padded(t1, PROMPT_A), padded(t1, ""), hand1 + [EOS] * (77 - len(hand1))], dtype=torch.int64)
        ids2 = torch.tensor([padded(t2, PROMPT_A), padded(t2, ""), hand2 + [0] * (77 - len(hand2))], dtype=torch.int64)
        o1, o2 = run_te1(te1, ids1), run_te2(te2, ids2)
        o1_16, o2_16 = run_te1(pipe16.text_encoder, ids1), run_te2(pipe16.text_encoder_2, ids2)
        argmax_pos = ids2.argmax(-1)
        first_eos = (ids2 == EOS).int().argmax(-1)
        first_2 = (ids2 == 2).int().argmax(-1)
        assert torch.equal(o2["pooler_output"], o2["last_hidden_state"][torch.arange(3), argmax_pos])
        assert torch.equal(argmax_pos, first_eos) and int(first_2[2]) == 3 and int(first_eos[2]) == 6
        assert torch.equal(o1["pooler_output"], o1["last_hidden_state"][torch.arange(3), (ids1 == EOS).int().argmax(-1)])
        P1 = {"input_ids": "input (3, 77): row 0 = tokenizer(PROMPT_A), row 1 = tokenizer(''), row 2 hand-made; padded with 999 (<|endoftext|>) as tokenizer/ pads",
              "hidden_states_m2": "text_encoder(ids, output_hidden_states=True).hidden_states[-2]: the penultimate layer's output, NO final_layer_norm = what SDXL uses",
              "hidden_states_m3": "hidden_states[-3] (here the embeddings output, as there are 2 layers) = what encode_prompt(clip_skip=1) uses for the prompt, no final_layer_norm",
              "last_hidden_state": "final_layer_norm(hidden_states[-1]); unused by SDXL",
              "pooler_output": "last_hidden_state at the first id == 999 (eos_token_id 999); unused by SDXL"}
        P2 = {"input_ids": "input (3, 77): row 0 = tokenizer_2(PROMPT_A), row 1 = tokenizer_2(''), row 2 hand-made with id 2 at position 3; padded with 0 ('!') as tokenizer_2/ pads",
              "hidden_states_m2": "text_encoder_2(ids, output_hidden_states=True).hidden_states[-2]: penultimate layer, NO final_layer_norm = what SDXL uses",
              "hidden_states_m3": "hidden_states[-3] (the embeddings output here) = encode_prompt(clip_skip=1)'s prompt features",
              "last_hidden_state": "final_layer_norm(hidden_states[-1])",
              "pooler_output": "last_hidden_state at argmax(input_ids) (config eos_token_id == 2, the legacy rule: the first position of the largest id = the first EOS 999; row 2 has id 2 at 3 and EOS at 6 -> 6)",
              "text_embeds": "text_projection(pooler_output) (Linear, no bias) = SDXL's pooled_prompt_embeds / UNet text_embeds"}
        save_tensors(folder / "expected_text_encoder.safetensors", {"input_ids": ids1, **o1}, P1, meta_tensors, folder)
        save_tensors(folder / "expected_text_encoder_bf16.safetensors", o1_16, {k: "bf16 run: " + v for k, v in P1.items()}, meta_tensors, folder)
        save_tensors(folder / "expected_text_encoder_2.safetensors", {"input_ids": ids2, **o2}, P2, meta_tensors, folder)
        save_tensors(folder / "expected_text_encoder_2_bf16.safetensors", o2_16, {k: "bf16 run: " + v for k, v in P2.items()}, meta_tensors, folder)
        for k in o1:
            bf16_stats[f"text_encoder.{k}"] = diff_stats(o1[k], o1_16[k])
        for k in o2:
            bf16_stats[f"text_encoder_2.{k}"] = diff_stats(o2[k], o2_16[k])
        files["encode_prompt_check"] = check_encode_prompt(pipe, o1, o2)

        # ---- VAE ----
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
        image = torch.stack([xx, yy, xx * yy])[None] * 0.7 + 0.3 * (torch.rand((1, 3, 32, 32), generator=g) * 2 - 1)
        vin = {"image": image.clamp(-1, 1), "noise": randn(1, 4, 16, 16), "latent": randn(1, 4, 4, 4),
               "image_ns": torch.rand((1, 3, 24, 40), generator=g) * 2 - 1, "noise_ns": randn(1, 4, 12, 20),
               "latent_ns": randn(1, 4, 3, 5)}
        vout, vout16 = run_vae(vae, vin, torch.float32), run_vae(pipe16.vae, vin, torch.bfloat16)
        with torch.no_grad():  # the stored sample is latent_dist.sample() with that noise
            d = vae.encode(vin["image"]).latent_dist
            gs = torch.Generator().manual_seed(seed + 555)
            s = d.sample(generator=gs)
            assert torch.equal(s, d.mean + d.std * torch.randn(d.mean.shape, generator=torch.Generator().manual_seed(seed + 555)))
        PV = {"image": "input: image (1,3,32,32) in [-1,1]", "noise": "input: N(0,1) noise for the latent sample of `image`",
              "latent": "input: latent (1,4,4,4) for decode", "image_ns": "input: non-square image (1,3,24,40) in [-1,1]",
              "noise_ns": "input: noise for `image_ns`", "latent_ns": "input: non-square latent (1,4,3,5) for decode"}
        for tag, what in (("", "image"), ("_ns", "image_ns")):
            PV["mean" + tag] = f"vae.encode({what}).latent_dist.mean"
            PV["std" + tag] = f"vae.encode({what}).latent_dist.std = exp(0.5 * clamp(logvar, -30, 20))"
            PV["logvar" + tag] = f"vae.encode({what}).latent_dist.logvar (clamped to [-30, 20])"
            PV["sample" + tag] = f"mean{tag} + std{tag} * noise{tag} (= latent_dist.sample() with that noise; NOT multiplied by scaling_factor 0.13025)"
            PV["decoded" + tag] = f"vae.decode(latent{tag}).sample (latent used as is, no 1/scaling_factor)"
        save_tensors(folder / "expected_vae.safetensors", {**vin, **vout}, PV, meta_tensors, folder)
        save_tensors(folder / "expected_vae_bf16.safetensors", vout16, {k: "bf16 run: " + v for k, v in PV.items()}, meta_tensors, folder)
        for k in vout:
            bf16_stats[f"vae.{k}"] = diff_stats(vout[k], vout16[k])

    # ---- UNet ----
    C = unet.config.in_channels
    cross = unet.config.cross_attention_dim
    proj = TE2["projection_dim"]
    n_ids = (unet.config.projection_class_embeddings_input_dim - proj) // TIME_DIM

    def sample(h, w):
        if C == 9:
            mask = (torch.rand((2, 1, h, w), generator=g) > 0.5).float()
            return torch.cat([randn(2, 4, h, w), mask, randn(2, 4, h, w)], dim=1)
        return randn(2, C, h, w)

    if n_ids == 6:  # (orig h, orig w, crop top, crop left, target h, target w)
        time_ids = torch.tensor([[32.0, 48.0, 0.0, 0.0, 32.0, 48.0], [1024.0, 768.0, 16.0, 8.0, 1024.0, 1024.0]])
        time_ids_other = torch.tensor([[512.0, 512.0, 0.0, 0.0, 1024.0, 1024.0], [32.0, 48.0, 4.0, 2.0, 32.0, 48.0]])
        ids_doc = "(orig_h, orig_w, crop_top, crop_left, target_h, target_w)"
    else:  # refiner: (orig h, orig w, crop top, crop left, aesthetic score)
        time_ids = torch.tensor([[32.0, 48.0, 0.0, 0.0, 6.0], [1024.0, 768.0, 16.0, 8.0, 2.5]])
        time_ids_other = torch.tensor([[512.0, 512.0, 0.0, 0.0, 2.5], [32.0, 48.0, 4.0, 2.0, 6.0]])
        ids_doc = "(orig_h, orig_w, crop_top, crop_left, aesthetic_score)"
    uin = {"sample": sample(8, 8), "sample_odd": sample(7, 5), "encoder_hidden_states": randn(2, 77, cross),
           "text_embeds": randn(2, proj), "time_ids": time_ids, "time_ids_other": time_ids_other,
           "timesteps_batch": torch.tensor([999.0, 1.0]), "timestep_999": torch.tensor([999.0]),
           "timestep_fractional": torch.tensor([637.25])}
    uout = run_unet(unet, uin, torch.float32, intermediates=True)
    uout16 = run_unet(pipe16.unet, uin, torch.bfloat16)
    assert torch.allclose(uout["time_embeds"], time_id_features(time_ids, TIME_DIM), atol=1e-6, rtol=0)
    assert torch.allclose(uout["out_batch"][0], uout["out_scalar_999"][0], atol=1e-6)
    assert uout["out_odd"].shape == (2, 4, 7, 5)
    PU = {"sample": f"input: (2,{C},8,8)" + (" = cat[noisy latents(4), binary mask(1), masked-image latents(4)]" if C == 9 else ""),
          "sample_odd": f"input: (2,{C},7,5), not a multiple of the UNet's downsampling factor 4",
          "encoder_hidden_states": f"input: (2,77,{cross}) N(0,1)",
          "text_embeds": f"input: added_cond_kwargs['text_embeds'] (2,{proj}) N(0,1) (the pooled text_encoder_2 projection in the pipelines)",
          "time_ids": f"input: added_cond_kwargs['time_ids'] (2,{n_ids}) float32 {ids_doc}",
          "time_ids_other": f"input: other time ids (2,{n_ids}) for out_other_time_ids",
          "timesteps_batch": "input: timesteps [999, 1] as an int64 tensor of shape (2,)",
          "timestep_999": "input: 999 as a 0-d int64 tensor (stored with shape (1,))",
          "timestep_fractional": "input: 637.25 as a 0-d float32 tensor (stored with shape (1,))",
          "out_batch": "unet(sample, timesteps_batch, encoder_hidden_states, added_cond_kwargs={text_embeds, time_ids}).sample",
          "out_scalar_999": "the same with timestep_999 (0-d)",
          "out_fractional": "the same with timestep_fractional (0-d float)",
          "out_odd": "unet(sample_odd, timesteps_batch, ...).sample",
          "out_other_time_ids": "unet(sample, timesteps_batch, encoder_hidden_states, {text_embeds, time_ids_other}).sample",
          "time_embeds": f"out_batch intermediate: add_time_proj(time_ids.flatten()).reshape(2, -1): each id -> [cos(id*f_i), sin(id*f_i)], f_i = exp(-ln(10000) i / {TIME_DIM // 2}), (2,{n_ids * TIME_DIM})",
          "add_embeds": "out_batch intermediate: cat([text_embeds, time_embeds], -1), the input of add_embedding (label_emb.0)",
          "aug_emb": "out_batch intermediate: add_embedding(add_embeds) = linear_2(silu(linear_1(add_embeds)))",
          "temb": "out_batch intermediate: time_embedding(time_proj(timesteps_batch)); the resnets get silu(temb + aug_emb)"}
    save_tensors(folder / "expected_unet.safetensors", {**uin, **uout}, PU, meta_tensors, folder)
    save_tensors(folder / "expected_unet_bf16.safetensors", uout16, {k: "bf16 run: " + v for k, v in PU.items()}, meta_tensors, folder)
    for k in uout16:
        bf16_stats[f"unet.{k}"] = diff_stats(uout[k], uout16[k])

    meta = {
        "family": name, "generator": "tools/reference/sdxl.py", "doc": "tools/reference/SDXL.md",
        "versions": versions(), "seed": seed, "weights_dtype_on_disk": "float16",
        "pipeline_class": json.loads((folder / "model_index.json").read_text())["_class_name"],
        "shared_components": {"sdxl-tiny": "text_encoder, text_encoder_2 and vae are the same files in sdxl-inpaint-tiny; text_encoder_2 and vae in sdxl-refiner-tiny",
                              "sdxl-inpaint-tiny": "text_encoder, text_encoder_2, vae: the same files as sdxl-tiny's (their fixtures are there)",
                              "sdxl-refiner-tiny": "text_encoder_2, vae: the same files as sdxl-tiny's (their fixtures are there); no text_encoder"}[name],
        "vae_scaling_factor": vae.config.scaling_factor, "vae_downsampling_factor": 2 ** (len(vae.config.block_out_channels) - 1),
        "unet_downsampling_factor": 2 ** (len(unet.config.block_out_channels) - 1),
        "time_ids": ids_doc, "addition_time_embed_dim": TIME_DIM,
        "transformer_depths": transformer_depths(unet), "attention": attention_summary(unet),
        "norms": {"unet": norm_summary(unet)} | ({"vae": norm_summary(vae), "text_encoder": norm_summary(te1),
                                                   "text_encoder_2": norm_summary(te2)} if name == "sdxl-tiny" else {}),
        "single_file": single_file_info,
        "tensors": meta_tensors, "bf16_vs_fp32": bf16_stats,
    }
    if "encode_prompt_check" in files:
        meta["encode_prompt_check"] = files["encode_prompt_check"]
    (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    worst = max(bf16_stats.items(), key=lambda kv: kv[1]["max_rel_to_ref_max"])
    log(f"  {name}: per-network fixtures; bf16 worst max|d|/max|ref| {worst[0]} {worst[1]['max_rel_to_ref_max']:.4f}")


@torch.no_grad()
def check_encode_prompt(pipe, o1, o2):
    """diffusers' StableDiffusionXLPipeline.encode_prompt against the encoder fixtures (row 0 = PROMPT_A,
    row 1 = ''). The fixtures ran a batch of 3 and encode_prompt a batch of 1: hidden states come out
    bit-identical, the projection (a Linear on (1, 24) vs (3, 24)) can differ in the last bit."""
    dev = torch.device("cpu")
    worst = 0.0

    def close(a, b):
        nonlocal worst
        d = float((a - b).abs().max())
        worst = max(worst, d)
        assert a.shape == b.shape and d <= 1e-6, d

    def enc(**kw):
        return pipe.encode_prompt(PROMPT_A, device=dev, num_images_per_prompt=1, do_classifier_free_guidance=True, **kw)

    pe, ne, pp, npp = enc()
    assert torch.equal(pe, torch.cat([o1["hidden_states_m2"][:1], o2["hidden_states_m2"][:1]], -1))
    close(pp, o2["text_embeds"][:1])
    assert torch.count_nonzero(ne) == 0 and torch.count_nonzero(npp) == 0 and ne.shape == pe.shape and npp.shape == pp.shape
    pe, ne, pp, npp = enc(negative_prompt="")
    assert torch.equal(ne, torch.cat([o1["hidden_states_m2"][1:2], o2["hidden_states_m2"][1:2]], -1))
    close(npp, o2["text_embeds"][1:2])
    pe, ne, pp, npp = enc(negative_prompt="", clip_skip=1)
    assert torch.equal(pe, torch.cat([o1["hidden_states_m3"][:1], o2["hidden_states_m3"][:1]], -1))
    assert torch.equal(ne, torch.cat([o1["hidden_states_m2"][1:2], o2["hidden_states_m2"][1:2]], -1))
    close(pp, o2["text_embeds"][:1])
    return {"prompt_embeds": "encode_prompt(PROMPT_A) = cat([text_encoder hidden_states[-2], text_encoder_2 hidden_states[-2]], -1): bit-identical",
            "pooled_prompt_embeds": f"= text_encoder_2 text_embeds (max |diff| {worst:.3g}: batch 1 vs batch 3 in the projection)",
            "negative_prompt=None": "force_zeros_for_empty_prompt: zeros of the same shapes: checked",
            "negative_prompt=''": "encodes '' like any prompt (no zeros): checked against the row-1 fixtures",
            "clip_skip=1": "the prompt uses hidden_states[-3] of both encoders; the NEGATIVE prompt still uses hidden_states[-2] "
                           "(diffusers 0.42.1 ignores clip_skip there); pooled unchanged: checked"}


# ======================================================================================
# Single files
# ======================================================================================

def write_single_file(name, cls, log):
    folder = MODELS_OUT / name
    path = MODELS_OUT / f"{name}.safetensors"
    if path.exists():
        path.unlink()
    unet_sd = load_file(str(folder / "unet" / "diffusion_pytorch_model.safetensors"))
    vae_sd = load_file(str(folder / "vae" / "diffusion_pytorch_model.safetensors"))
    te1_sd = load_file(str(folder / "text_encoder" / "model.safetensors"))
    te2_sd = load_file(str(folder / "text_encoder_2" / "model.safetensors"))
    unet_cfg = json.loads((folder / "unet" / "config.json").read_text())
    vae_cfg = json.loads((folder / "vae" / "config.json").read_text())
    ckpt = diffusers_to_original(unet_sd, vae_sd, te1_sd, te2_sd, unet_cfg, vae_cfg)
    extras = single_file_extras()
    assert not set(extras) & set(ckpt)
    full = dict(sorted({**ckpt, **extras}.items()))
    save_file({k: v.contiguous() for k, v in full.items()}, str(path))
    reread = load_file(str(path))
    info = verify_single_file(reread, unet_sd, vae_sd, te1_sd, te2_sd, unet_cfg, vae_cfg, extras)
    log(f"  {path.name}: {info['original_tensors_mapped']} mapped tensors + {len(extras)} extras; round trip exact")
    info["path"] = f"../{path.name}"
    info["diffusers_loader_cross_check"] = cross_check_single_file(cls, path, folder, log)
    info["prefixes"] = {"unet": UNET_PREFIX, "vae": VAE_PREFIX, "text_encoder": TE1_PREFIX + "text_model.",
                        "text_encoder_2": TE2_PREFIX}
    return info


# ======================================================================================
# Pipeline capture
# ======================================================================================

def fnv1a64(t: torch.Tensor) -> str:
    data = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


class Recorder:
    gen = None
    draws: list = []
    vae_samples: list = []


REC = Recorder()
_torch_randn = torch.randn


def call_path():
    """The diffusers functions between torch.randn and the pipeline's __call__, innermost first."""
    names, f = [], sys._getframe(2)
    while f is not None:
        fn = f.f_code.co_filename
        if "diffusers" in fn:
            if f.f_code.co_name == "__call__":
                break
            if f.f_code.co_name not in ("randn_tensor", "decorate_context"):
                names.append(f"{Path(fn).stem}.{f.f_code.co_name}")
        f = f.f_back
    return " < ".join(names)


def _randn_recording(*args, generator=None, **kwargs):
    out = _torch_randn(*args, generator=generator, **kwargs)
    if REC.gen is not None and generator is REC.gen:
        REC.draws.append((call_path(), out.detach().clone()))
    return out


def install_recorders():
    torch.randn = _randn_recording
    for module in (sdxl_img2img_module, sdxl_inpaint_module):
        original = module.retrieve_latents

        def recording(encoder_output, generator=None, sample_mode="sample", _orig=original):
            out = _orig(encoder_output, generator=generator, sample_mode=sample_mode)
            if REC.gen is not None:
                REC.vae_samples.append((call_path(), out.detach().clone()))
            return out
        module.retrieve_latents = recording


def draw_name(origin):
    if "vae.sample" in origin and "prepare_mask_latents" in origin:
        return "vae_sample_masked_image"
    if "vae.sample" in origin:
        return "vae_sample_image"
    if origin.split(" < ")[0].endswith(".prepare_latents"):
        return "noise"
    if ".step" in origin and "scheduling_" in origin:
        return "scheduler_step_noise"
    return "other"


def C(name, kind, model, seed, steps=10, strength=None, guidance=7.5, prompt=PROMPT_A, negative=NEG_A, sched="euler",
      source="folder", mask=None, extra=None, lora=None, image_from=None, output_type="np", embedding=None, vae=None):
    return dict(name=name, kind=kind, model=model, seed=seed, steps=steps, strength=strength, guidance=guidance,
                prompt=prompt, negative=negative, sched=sched, source=source, mask=mask, extra=extra or {}, lora=lora,
                image_from=image_from, output_type=output_type, embedding=embedding, vae=vae)


LORA_NAME = "sdxl-tiny-lora-kohya.safetensors"
LORA_SCALE = 0.8

CASES = [
    C("img2img_euler_s060", "img2img", "sdxl-tiny", 601, strength=0.6),
    C("img2img_dpmpp_2m_karras_s060", "img2img", "sdxl-tiny", 602, strength=0.6, sched="dpmpp_2m_karras", prompt=PROMPT_B),
    C("img2img_euler_s060_single_file", "img2img", "sdxl-tiny", 601, strength=0.6, source="single_file"),
    C("img2img_euler_s060_negative_none", "img2img", "sdxl-tiny", 604, strength=0.6, negative=None),
    C("img2img_euler_s060_negative_empty", "img2img", "sdxl-tiny", 604, strength=0.6, negative=""),
    C("img2img_euler_s060_microcond", "img2img", "sdxl-tiny", 601, strength=0.6,
      extra=dict(original_size=(1024, 768), crops_coords_top_left=(16, 8), target_size=(1024, 1024),
                 negative_original_size=(512, 512), negative_crops_coords_top_left=(4, 4), negative_target_size=(256, 256),
                 aesthetic_score=9.0, negative_aesthetic_score=1.0)),
    C("txt2img_euler", "txt2img", "sdxl-tiny", 606, steps=8, prompt=PROMPT_B, negative=NEG_B),
    C("txt2img_euler_microcond_prompt2", "txt2img", "sdxl-tiny", 607, steps=8, guidance=5.0, prompt=PROMPT_B, negative=NEG_B,
      extra=dict(prompt_2=PROMPT_C, negative_prompt_2=NEG_A, original_size=(1024, 768), crops_coords_top_left=(16, 8),
                 target_size=(1024, 1024), negative_original_size=(512, 512), negative_crops_coords_top_left=(4, 4),
                 negative_target_size=(256, 256))),
    C("inpaint9_euler_s100", "inpaint", "sdxl-inpaint-tiny", 621, strength=1.0, mask="mask.png"),
    C("inpaint9_euler_s075", "inpaint", "sdxl-inpaint-tiny", 622, strength=0.75, mask="mask.png", prompt=PROMPT_B),
    C("inpaint4_euler_s100", "inpaint", "sdxl-tiny", 623, strength=1.0, mask="mask.png", prompt=PROMPT_C),
    C("inpaint4_euler_s075", "inpaint", "sdxl-tiny", 624, strength=0.75, mask="mask.png"),
    C("refiner_img2img_euler_s030", "img2img", "sdxl-refiner-tiny", 631, strength=0.3,
      extra=dict(aesthetic_score=6.0, negative_aesthetic_score=2.5)),
    C("handoff_base_denoising_end080", "txt2img", "sdxl-tiny", 641, negative=None, output_type="latent",
      extra=dict(denoising_end=0.8)),
    C("handoff_refiner_denoising_start080", "img2img", "sdxl-refiner-tiny", 641, negative=None,
      image_from="handoff_base_denoising_end080", extra=dict(denoising_start=0.8, aesthetic_score=6.0, negative_aesthetic_score=2.5)),
    C("img2img_euler_s060_lora_kohya080", "img2img", "sdxl-tiny", 601, strength=0.6, lora=(LORA_NAME, LORA_SCALE)),
    C("img2img_euler_s060_textual_inversion", "img2img", "sdxl-tiny", 651, strength=0.6, prompt=PROMPT_TI,
      embedding=(EMBEDDING_NAME, EMBEDDING_TOKEN)),
    C("img2img_euler_s060_taesd", "img2img", "sdxl-tiny", 661, strength=0.6, vae=TAESD_NAME),
]

TENSOR_DOC = {
    "output": "the pipeline's output_type='np' image (H, W, 3) float32 in [0, 1]; for output_type='latent' the final latents (1, 4, h, w) (scaled, not divided by scaling_factor)",
    "prompt_embeds": "encode_prompt(...)[0]: cat([text_encoder hidden_states[-2], text_encoder_2 hidden_states[-2]], -1), (1, 77, 40); refiner: text_encoder_2 hidden_states[-2] only, (1, 77, 24)",
    "negative_prompt_embeds": "encode_prompt(...)[1]: the same for the negative prompt; ZEROS when negative_prompt is None and force_zeros_for_empty_prompt",
    "pooled_prompt_embeds": "encode_prompt(...)[2]: text_encoder_2's text_embeds (projection of the pooled EOS state), (1, 16)",
    "negative_pooled_prompt_embeds": "encode_prompt(...)[3]: the same for the negative prompt, or zeros (see negative_prompt_embeds)",
    "add_time_ids": "added_cond_kwargs['time_ids'] as the UNet got it at the first step, (2, 6) or (2, 5) with CFG: row 0 = negative, row 1 = positive",
    "image_latents": "scaling_factor * vae.encode(init image).latent_dist.sample(generator), (1, 4, h, w)",
    "masked_image_latents": "inpaint: prepare_mask_latents(...)[1] first row = scaling_factor * vae.encode(init * (mask < 0.5)).latent_dist.sample(generator)",
    "mask_latents": "inpaint: prepare_mask_latents(...)[0] first row: the binarized mask resized (nearest) to (h, w), (1, 1, h, w)",
    "noise": "the randn draw made in prepare_latents, (1, 4, h, w)",
    "latents_start": "what the denoising loop starts from (prepare_latents' result)",
    "timesteps": "the timesteps the loop ran, in order (float64)",
    "scheduler_timesteps": "scheduler.timesteps after set_timesteps(steps), before strength / denoising_start cut it (float64)",
    "scheduler_sigmas": "scheduler.sigmas after set_timesteps (float64 of the float32 values)",
    "model_output_step0": "the guided UNet output that scheduler.step got at loop index 0",
    "latents_step1": "latents after loop index 0 (callback_on_step_end; after the 4-channel blend for inpaint4)",
    "latents_final": "latents after the last loop index; vae.decode got latents_final / scaling_factor (checked) unless output_type='latent'",
    "image_input_latents": "handoff refiner only: the latents passed as `image` (= the base case's output)",
}


def make_scheduler(kind, base):
    if kind == "euler":
        return type(base).from_config(base.config), {}
    if kind == "dpmpp_2m_karras":
        over = {"use_karras_sigmas": True}
        return DPMSolverMultistepScheduler.from_config(base.config, **over), over
    raise ValueError(kind)


class Models:
    def __init__(self):
        self.folder = {}
        self.single = {}

    def components(self, model, source):
        if source == "folder":
            if model not in self.folder:
                self.folder[model] = load_folder(model)
            return dict(self.folder[model].components)
        if model not in self.single:
            p = load_single_file_pipeline(StableDiffusionXLPipeline, MODELS_OUT / f"{model}.safetensors", MODELS_OUT / model)
            ref = self.folder[model] if model in self.folder else load_folder(model)
            for comp in ("unet", "vae", "text_encoder", "text_encoder_2"):
                same_tensors(getattr(ref, comp).state_dict(), getattr(p, comp).state_dict(), comp)
            p.set_progress_bar_config(disable=True)
            self.single[model] = p
        return dict(self.single[model].components)


def pipeline_for(case, models):
    comps = models.components(case["model"], case["source"])
    cls = {"img2img": StableDiffusionXLImg2ImgPipeline, "inpaint": StableDiffusionXLInpaintPipeline,
           "txt2img": StableDiffusionXLPipeline}[case["kind"]]
    folder_cfg = json.loads((MODELS_OUT / case["model"] / "model_index.json").read_text())
    comps.pop("image_encoder", None)
    comps.pop("feature_extractor", None)
    sched, over = make_scheduler(case["sched"], comps["scheduler"])
    comps["scheduler"] = sched
    kwargs = dict(force_zeros_for_empty_prompt=folder_cfg["force_zeros_for_empty_prompt"], add_watermarker=False)
    if cls is not StableDiffusionXLPipeline:
        kwargs["requires_aesthetics_score"] = folder_cfg.get("requires_aesthetics_score", False)
    if case["lora"]:
        # a fresh UNet and text encoders, so that fusing does not touch the shared components
        fresh = load_folder(case["model"])
        comps.update(unet=fresh.unet, text_encoder=fresh.text_encoder, text_encoder_2=fresh.text_encoder_2)
    if case["embedding"]:
        # fresh text encoders and tokenizers: load_textual_inversion grows them in place
        fresh = load_folder(case["model"])
        comps.update(text_encoder=fresh.text_encoder, text_encoder_2=fresh.text_encoder_2,
                     tokenizer=fresh.tokenizer, tokenizer_2=fresh.tokenizer_2)
    if case["vae"]:
        comps["vae"] = load_taesd(MODELS_OUT / case["vae"])  # as users do: pipe(..., vae=AutoencoderTiny.from_pretrained(taesdxl))
    pipe = cls(**comps, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe, over


def run_case(case, models, images, previous):
    pipe, over = pipeline_for(case, models)
    lora_info = None
    if case["lora"]:
        lora_info = apply_lora(pipe, *case["lora"])
    ti_info = apply_embedding(pipe, *case["embedding"]) if case["embedding"] else None
    sf_ = pipe.vae.config.scaling_factor
    rec = {"embeds": None, "prep": [], "mask": None, "encode_vae": [], "step_inputs": [], "cb": [], "decode_in": [],
           "unet": [], "img_pre": [], "mask_pre": []}

    def wrap(obj, attr, post):
        orig = getattr(obj, attr)

        @functools.wraps(orig)
        def w(*a, **k):
            out = orig(*a, **k)
            post(out, a, k)
            return out
        setattr(obj, attr, w)

    wrap(pipe, "encode_prompt", lambda o, a, k: rec.__setitem__("embeds", o))
    wrap(pipe, "prepare_latents", lambda o, a, k: rec["prep"].append(o))
    wrap(pipe.image_processor, "preprocess", lambda o, a, k: rec["img_pre"].append(o.clone()))
    if case["kind"] == "inpaint":
        wrap(pipe, "prepare_mask_latents", lambda o, a, k: rec.__setitem__("mask", o))
        wrap(pipe, "_encode_vae_image", lambda o, a, k: rec["encode_vae"].append((call_path(), o.clone())))
        wrap(pipe.mask_processor, "preprocess", lambda o, a, k: rec["mask_pre"].append(o.clone()))
    step = pipe.scheduler.step

    def step_rec(model_output, timestep, sample, *a, **k):
        rec["step_inputs"].append(model_output.detach().clone())
        return step(model_output, timestep, sample, *a, **k)
    pipe.scheduler.step = step_rec
    decode = pipe.vae.decode

    def decode_rec(z, *a, **k):
        rec["decode_in"].append(z.detach().clone())
        return decode(z, *a, **k)
    pipe.vae.decode = decode_rec

    def unet_hook(module, args, kwargs):
        if not rec["unet"]:
            ack = kwargs["added_cond_kwargs"]
            rec["unet"].append({"batch": int(args[0].shape[0]), "ehs": kwargs["encoder_hidden_states"].clone(),
                                "text_embeds": ack["text_embeds"].clone(), "time_ids": ack["time_ids"].clone(),
                                "in_channels": int(args[0].shape[1])})
        else:
            rec["unet"].append({"batch": int(args[0].shape[0])})
    hook = pipe.unet.register_forward_pre_hook(unet_hook, with_kwargs=True)
    te_hooks = []
    if case["embedding"]:
        for cname in ("text_encoder", "text_encoder_2"):
            def te_hook(module, args, kwargs, _c=cname):
                ids = args[0] if args else kwargs["input_ids"]
                rec.setdefault("te_ids", []).append((_c, ids.clone()))
            te_hooks.append(getattr(pipe, cname).register_forward_pre_hook(te_hook, with_kwargs=True))

    def on_step_end(p, i, t, kw):
        rec["cb"].append((i, t.detach().clone() if torch.is_tensor(t) else torch.tensor(t), kw["latents"].detach().clone()))
        return {}

    kwargs = dict(prompt=case["prompt"], negative_prompt=case["negative"], num_inference_steps=case["steps"],
                  guidance_scale=case["guidance"], output_type=case["output_type"], callback_on_step_end=on_step_end,
                  callback_on_step_end_tensor_inputs=["latents"], **case["extra"])
    if case["kind"] in ("img2img", "inpaint"):
        image = previous[case["image_from"]] if case["image_from"] else images["image.png"]
        kwargs["image"] = image
        if case["strength"] is not None:
            kwargs["strength"] = case["strength"]
    if case["kind"] == "inpaint":
        kwargs.update(mask_image=images[case["mask"]], height=HEIGHT, width=WIDTH)
    if case["kind"] == "txt2img":
        kwargs.update(height=HEIGHT, width=WIDTH)
    gen = torch.Generator().manual_seed(case["seed"])
    REC.gen, REC.draws, REC.vae_samples = gen, [], []
    t0 = time.time()
    try:
        result = pipe(generator=gen, **kwargs).images
    finally:
        REC.gen = None
        hook.remove()
        for h in te_hooks:
            h.remove()
        pipe.vae.decode = decode
    elapsed = time.time() - t0
    draws, vae_samples = list(REC.draws), list(REC.vae_samples)
    replay = torch.Generator().manual_seed(case["seed"])
    for _, d in draws:
        assert torch.equal(_torch_randn(d.shape, generator=replay, dtype=d.dtype), d)
    assert torch.equal(replay.get_state(), gen.get_state()), "generator used outside torch.randn"

    # ---- collect ----
    T = {}
    if case["output_type"] == "latent":
        assert torch.is_tensor(result) and result.shape == (1, 4, HEIGHT // 2, WIDTH // 2)
        T["output"] = result.detach().clone()
    else:
        assert result.dtype == np.float32 and result.shape == (1, HEIGHT, WIDTH, 3)
        T["output"] = torch.from_numpy(result[0].copy())
    cfg = pipe.do_classifier_free_guidance
    assert cfg
    pe, ne, pp, npp = rec["embeds"]
    T.update(prompt_embeds=pe, negative_prompt_embeds=ne, pooled_prompt_embeds=pp, negative_pooled_prompt_embeds=npp)
    u0 = rec["unet"][0]
    assert torch.equal(u0["ehs"], torch.cat([ne, pe])) and torch.equal(u0["text_embeds"], torch.cat([npp, pp]))
    T["add_time_ids"] = u0["time_ids"]
    names = [draw_name(o) for o, _ in draws]
    assert "other" not in names and "scheduler_step_noise" not in names, [o for o, _ in draws]
    for n in set(names):
        assert names.count(n) == 1, names
    if "noise" in names:
        T["noise"] = draws[names.index("noise")][1]
    kind = case["kind"]
    if kind == "img2img":
        assert len(rec["prep"]) == 1
        if case["image_from"]:
            assert not vae_samples and "noise" not in names
            T["image_input_latents"] = previous[case["image_from"]]
            assert torch.equal(rec["prep"][0], previous[case["image_from"]])
        else:
            assert len(vae_samples) == 1
            T["image_latents"] = sf_ * vae_samples[0][1]
            assert torch.equal(rec["img_pre"][0], images["image_tensor"])
        T["latents_start"] = rec["prep"][0]
    elif kind == "inpaint":
        lat = rec["prep"][0]
        T["latents_start"] = lat[0]
        assert torch.equal(lat[1], T["noise"])
        img_enc = [e for o, e in rec["encode_vae"] if "prepare_mask_latents" not in o]
        msk_enc = [e for o, e in rec["encode_vae"] if "prepare_mask_latents" in o]
        assert len(msk_enc) == 1 and len(img_enc) <= 1
        if img_enc:
            T["image_latents"] = img_enc[0]
            if len(lat) == 3:
                assert torch.equal(lat[2], img_enc[0])
        mask, mil = rec["mask"]
        assert torch.equal(mask[:1], mask[1:]) and torch.equal(mil[:1], mil[1:])
        T["mask_latents"], T["masked_image_latents"] = mask[:1], mil[:1]
        assert torch.equal(msk_enc[0], mil[:1])
        assert torch.equal(rec["mask_pre"][0], images["mask_tensor"]) and torch.equal(rec["img_pre"][0], images["image_tensor"])
    else:
        T["latents_start"] = rec["prep"][0]
    cb = rec["cb"]
    T["timesteps"] = torch.stack([c[1].reshape(()) for c in cb]).to(torch.float64)
    T["scheduler_timesteps"] = pipe.scheduler.timesteps.to(torch.float64)
    T["scheduler_sigmas"] = pipe.scheduler.sigmas.to(torch.float64)
    T["model_output_step0"] = rec["step_inputs"][0]
    T["latents_step1"] = cb[0][2]
    T["latents_final"] = cb[-1][2]
    assert [c[0] for c in cb] == list(range(len(cb))) and len(rec["step_inputs"]) == len(cb)
    assert len(rec["unet"]) == len(cb) and {u["batch"] for u in rec["unet"]} == {2}
    if case["output_type"] == "latent":
        assert not rec["decode_in"] and torch.equal(T["output"], T["latents_final"])
    else:
        assert len(rec["decode_in"]) == 1 and torch.equal(rec["decode_in"][0], T["latents_final"] / sf_)
    out = {}
    for k, v in T.items():
        v = v.detach().contiguous()
        assert v.dtype in (torch.float32, torch.float64), (k, v.dtype)
        out[k] = v

    # ---- describe ----
    ids = {}
    toks = [("tokenizer", pipe.tokenizer), ("tokenizer_2", pipe.tokenizer_2)]
    prompt_2 = case["extra"].get("prompt_2") or case["prompt"]
    neg = case["negative"]
    zeroed = neg is None and pipe.config.force_zeros_for_empty_prompt
    neg_2 = case["extra"].get("negative_prompt_2") or (neg or "")
    convert = (lambda text, tok: pipe.maybe_convert_prompt(text, tok)) if case["embedding"] else (lambda text, tok: text)
    for tname, tok in toks:
        if tok is None:
            continue
        text = case["prompt"] if tname == "tokenizer" else prompt_2
        ids[tname] = {"prompt": padded(tok, convert(text, tok))}
        if not zeroed:
            ids[tname]["negative_prompt"] = padded(tok, convert((neg or "") if tname == "tokenizer" else neg_2, tok))
    if case["embedding"]:
        ti_info.update(embedding_case_details(pipe, case, ids, rec, T, out))
    time_ids = u0["time_ids"]
    sched_cfg = {k: v for k, v in dict(pipe.scheduler.config).items() if not k.startswith("_")}
    init_sigma = pipe.scheduler.init_noise_sigma
    entry = {
        "name": case["name"], "kind": kind, "model": case["model"], "folder": rel(MODELS_OUT / case["model"]),
        "loaded_from": case["source"], "pipeline": type(pipe).__name__,
        "pipeline_config": {"force_zeros_for_empty_prompt": pipe.config.force_zeros_for_empty_prompt,
                            "requires_aesthetics_score": pipe.config.get("requires_aesthetics_score")},
        "unet_in_channels": pipe.unet.config.in_channels,
        "scheduler": {"class": type(pipe.scheduler).__name__, "from_config_of": "the folder's EulerDiscreteScheduler",
                      "overrides": over, "order": pipe.scheduler.order, "config": sched_cfg},
        "num_inference_steps": case["steps"], "strength": case["strength"], "guidance_scale": case["guidance"],
        "prompt": case["prompt"], "prompt_2": case["extra"].get("prompt_2"), "negative_prompt": neg,
        "negative_prompt_2": case["extra"].get("negative_prompt_2"), "negative_embeds_zeroed": zeroed,
        "extra_call_arguments": {k: v for k, v in case["extra"].items() if k not in ("prompt_2", "negative_prompt_2")},
        "output_type": case["output_type"],
        "seed": case["seed"], "generator": "torch.Generator() (CPU).manual_seed(seed), passed as generator=",
        "height": HEIGHT, "width": WIDTH, "height_width_passed": kind in ("inpaint", "txt2img"),
        "image": ("latents: output of " + case["image_from"]) if case["image_from"] else ("image.png" if kind != "txt2img" else None),
        "mask": case["mask"], "input_ids": ids,
        "add_time_ids": {"negative": [float(x) for x in time_ids[0]], "positive": [float(x) for x in time_ids[1]],
                         "order": "(orig_h, orig_w, crop_top, crop_left, aesthetic_score)" if time_ids.shape[1] == 5
                                  else "(orig_h, orig_w, crop_top, crop_left, target_h, target_w)"},
        "init_noise_sigma": float(init_sigma),
        "loop_steps": len(cb), "timesteps": [float(x) for x in T["timesteps"].tolist()],
        "unet_calls": len(rec["unet"]), "unet_batch": 2,
        "rng_draws": [{"name": n, "origin": o, "shape": list(d.shape), "first": [float(x) for x in d.flatten()[:4]],
                       "fnv1a64_f32le": fnv1a64(d)} for (o, d), n in zip(draws, names)],
        "file": case["name"] + ".safetensors",
        "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")} for k, v in out.items()},
        "output_stats": {"min": float(T["output"].min()), "max": float(T["output"].max()),
                         "mean": float(T["output"].double().mean())},
    }
    if kind != "txt2img" and "denoising_start" not in case["extra"]:
        init_timestep = min(int(case["steps"] * case["strength"]), case["steps"])
        entry["t_start"] = max(case["steps"] - init_timestep, 0)
    if kind == "inpaint":
        entry["is_strength_max"] = case["strength"] == 1.0
        entry["blend_4ch"] = pipe.unet.config.in_channels == 4
    if case["source"] == "single_file":
        entry["single_file"] = rel(MODELS_OUT / f"{case['model']}.safetensors")
        entry["single_file_load"] = ("StableDiffusionXLPipeline.from_single_file(single_file, config=<copy of the folder with only "
                                     "its JSON/txt files>, local_files_only=True, torch_dtype=float32); the components then "
                                     "build StableDiffusionXLImg2ImgPipeline; every UNet/VAE/encoder tensor checked equal to the folder's")
    if lora_info:
        entry["lora"] = lora_info
    if ti_info:
        entry["textual_inversion"] = ti_info
    if case["vae"]:
        entry["vae"] = taesd_case_details(pipe, case, images, rec, T, vae_samples, names)
    return entry, out, result, elapsed, pipe


# ======================================================================================
# kohya SDXL LoRA
# ======================================================================================

def lora_factors(gen, shape_down, shape_up, weight):
    down = torch.randn(shape_down, generator=gen) / float(np.prod(shape_down[1:])) ** 0.5
    up = torch.randn(shape_up, generator=gen) * (weight.abs().mean().item() * 0.6 / shape_down[0] ** 0.5)
    return down.to(WEIGHT_DTYPE).contiguous(), up.to(WEIGHT_DTYPE).contiguous()


def make_kohya_lora(path: Path, log):
    """kohya sd-scripts' SDXL names: the UNet in the ORIGINAL (SGM) layout (lora_unet_input_blocks_4_1_
    transformer_blocks_0_attn1_to_q, ..._in_layers_2, ..._emb_layers_1, ..._op, ..._skip_connection), the two
    text encoders with HF names (lora_te1_text_model_encoder_layers_0_self_attn_q_proj, lora_te2_...).
    Linear and 1x1 layers rank 4 alpha 2; 3x3 convolutions (LoCon) rank 2 alpha 1; text encoders rank 2 alpha 1.
    Stored in fp16 (alphas as 0-d fp16), as kohya saves with save_precision fp16."""
    pipe = load_folder("sdxl-tiny")
    gen = torch.Generator().manual_seed(20270101)
    table = unet_table(dict(pipe.unet.config))
    tensors, names = {}, []
    for name, m in pipe.unet.named_modules():
        if not isinstance(m, (nn.Linear, nn.Conv2d)) or not name.startswith(("down_blocks", "mid_block", "up_blocks")):
            continue
        orig = next(iter(sf._convert_with_table({name + ".weight": m.weight}, table, True)))[:-len(".weight")]
        names.append(("lora_unet_" + orig.replace(".", "_"), m))
    te1_names = [("lora_te1_text_model_" + n.replace(".", "_"), m) for n, m in pipe.text_encoder.named_modules()
                 if isinstance(m, nn.Linear) and ("self_attn" in n or "mlp" in n)]
    te2_names = [("lora_te2_" + n.replace(".", "_"), m) for n, m in pipe.text_encoder_2.named_modules()
                 if isinstance(m, nn.Linear) and ("self_attn" in n or "mlp" in n)]
    assert all(k.startswith("lora_te2_text_model_") for k, _ in te2_names)
    for key, m in names + te1_names + te2_names:
        is_te = key.startswith("lora_te")
        if isinstance(m, nn.Linear):
            r, alpha = (2, 1.0) if is_te else (4, 2.0)
            down, up = lora_factors(gen, (r, m.in_features), (m.out_features, r), m.weight)
        elif m.kernel_size == (1, 1):
            r, alpha = 4, 2.0
            down, up = lora_factors(gen, (r, m.in_channels, 1, 1), (m.out_channels, r, 1, 1), m.weight)
        else:
            r, alpha = 2, 1.0
            down, up = lora_factors(gen, (r, m.in_channels, *m.kernel_size), (m.out_channels, r, 1, 1), m.weight)
        tensors[key + ".lora_down.weight"] = down
        tensors[key + ".lora_up.weight"] = up
        tensors[key + ".alpha"] = torch.tensor(alpha, dtype=WEIGHT_DTYPE)
    # one metadata key only: safetensors writes __metadata__ from a hash map, so with two keys their order
    # (and the file's bytes) changes from run to run
    save_file(dict(sorted(tensors.items())), str(path), metadata={"ss_base_model_version": "sdxl_base_v1-0"})
    n_unet = sum(1 for k in tensors if k.startswith("lora_unet_") and k.endswith(".alpha"))
    log(f"  {path.name}: {len(tensors) // 3} layers ({n_unet} UNet, {len(te1_names)} text_encoder, {len(te2_names)} text_encoder_2), "
        f"{path.stat().st_size} B")
    return {"layers": len(tensors) // 3, "unet_layers": n_unet, "te1_layers": len(te1_names), "te2_layers": len(te2_names)}


def apply_lora(pipe, file, scale):
    path = MODELS_OUT / file
    before = {c: {k: v.clone() for k, v in getattr(pipe, c).state_dict().items()} for c in ("unet", "text_encoder", "text_encoder_2")}
    pipe.load_lora_weights(str(path), adapter_name="kohya")
    with safetensors.safe_open(str(path), "pt") as f:
        expected = {k.rsplit(".lora_down", 1)[0] for k in f.keys() if k.endswith(".lora_down.weight")}
    loaded = sum(1 for c in ("unet", "text_encoder", "text_encoder_2") for _, m in getattr(pipe, c).named_modules()
                 if hasattr(m, "lora_A") and "kohya" in m.lora_A)
    if loaded != len(expected):
        sys.exit(f"diffusers loaded {loaded} of the {len(expected)} layers of {file}")
    pipe.fuse_lora(lora_scale=scale)
    pipe.unload_lora_weights()
    changed = {}
    for c in ("unet", "text_encoder", "text_encoder_2"):
        after = getattr(pipe, c).state_dict()
        assert set(after) == set(before[c]), c
        changed[c] = sum(1 for k in after if not torch.equal(after[k], before[c][k]))
    return {"file": rel(path), "scale": scale, "layers_loaded": loaded,
            "weights_changed_by_fuse": changed,
            "calls": f"pipe.load_lora_weights(file, adapter_name='kohya'); pipe.fuse_lora(lora_scale={scale}); pipe.unload_lora_weights()",
            "merge": "W' = W + lora_scale * (alpha / rank) * up @ down (3x3: up (out, r, 1, 1) applied after down (r, in, 3, 3), "
                     "i.e. W' = W + s * (alpha / r) * einsum('or,rikl->oikl', up[:, :, 0, 0], down))"}


# ======================================================================================
# SDXL textual-inversion embedding (clip_l + clip_g)
# ======================================================================================

def make_embedding(path: Path, log):
    """The format SDXL embeddings are downloaded in: one .safetensors with `clip_l` (n, text_encoder width)
    and `clip_g` (n, text_encoder_2 width), no metadata. The values are N(0, 1) times the std of that
    encoder's token-embedding matrix, so the vectors have the scale of the vocabulary's own rows."""
    pipe = load_folder("sdxl-tiny")
    gen = torch.Generator().manual_seed(SEEDS["sdxl-tiny-embedding"])
    tensors, info = {}, {}
    for key, te in (("clip_l", pipe.text_encoder), ("clip_g", pipe.text_encoder_2)):
        table = te.get_input_embeddings().weight
        std = float(table.std())
        tensors[key] = (torch.randn((EMBEDDING_VECTORS, table.shape[1]), generator=gen) * std).contiguous()
        info[key] = {"shape": list(tensors[key].shape), "dtype": "float32", "scale": f"N(0,1) * {std:.6g} "
                     f"(std of {'text_encoder' if key == 'clip_l' else 'text_encoder_2'}'s token_embedding)",
                     "std": float(tensors[key].std())}
    save_file(tensors, str(path))
    log(f"  {path.name}: clip_l {tuple(tensors['clip_l'].shape)}, clip_g {tuple(tensors['clip_g'].shape)}, {path.stat().st_size} B")
    return {"file": rel(path), "tensors": info}


def apply_embedding(pipe, file, token):
    """diffusers' documented SDXL recipe: clip_g into text_encoder_2/tokenizer_2, clip_l into text_encoder/tokenizer.
    resize_token_embeddings draws the new rows from torch's global generator (mean_resizing) before they are
    overwritten; fork_rng keeps the global state as it was."""
    state = load_file(str(MODELS_OUT / file))
    before = {c: getattr(pipe, c).get_input_embeddings().weight.detach().clone() for c in ("text_encoder", "text_encoder_2")}
    n_before = {t: len(getattr(pipe, t)) for t in ("tokenizer", "tokenizer_2")}
    with torch.random.fork_rng(devices=[]):
        pipe.load_textual_inversion(state["clip_g"], token=token, text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2)
        pipe.load_textual_inversion(state["clip_l"], token=token, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
    n = state["clip_l"].shape[0]
    names = [token] + [f"{token}_{i}" for i in range(1, n)]
    added, rows = {}, {}
    for tname, cname, key in (("tokenizer", "text_encoder", "clip_l"), ("tokenizer_2", "text_encoder_2", "clip_g")):
        tok, te = getattr(pipe, tname), getattr(pipe, cname)
        ids = {name: tok.convert_tokens_to_ids(name) for name in names}
        assert list(ids.values()) == list(range(n_before[tname], n_before[tname] + n)), ids
        assert len(tok) == n_before[tname] + n
        w = te.get_input_embeddings().weight.detach()
        assert w.shape[0] == n_before[tname] + n and te.config.vocab_size == w.shape[0]
        assert torch.equal(w[:n_before[tname]], before[cname]), cname  # the vocabulary's rows are untouched
        for i, name in enumerate(names):
            assert torch.equal(w[ids[name]], state[key][i]), (cname, name)
        added[tname] = ids
        rows[cname] = {"rows_before": n_before[tname], "rows_after": int(w.shape[0]), "config_vocab_size_after": te.config.vocab_size,
                       "new_rows": f"{key}[0..{n - 1}] at ids {list(ids.values())} (checked equal); rows 0..{n_before[tname] - 1} unchanged (checked)"}
    # how the tokenizers and maybe_convert_prompt treat the token (tokenizer and tokenizer_2 agree)
    probes = {}
    for text in (PROMPT_TI, "<SDXL-STYLE> fox", "x<sdxl-style>y", f"{token}_1 {token}", f"{token}{token}"):
        res = {}
        for tname in ("tokenizer", "tokenizer_2"):
            tok = getattr(pipe, tname)
            conv = pipe.maybe_convert_prompt(text, tok)
            res[tname] = {"maybe_convert_prompt": conv, "ids_of_converted": tok(conv).input_ids,
                          "tokens_of_converted": tok.convert_ids_to_tokens(tok(conv).input_ids), "ids_unconverted": tok(text).input_ids}
        assert res["tokenizer"] == res["tokenizer_2"], text
        probes[text] = res["tokenizer"]
    return {"file": rel(MODELS_OUT / file), "token": token, "vectors": n,
            "calls": [f"state = safetensors.torch.load_file(file)",
                      f"pipe.load_textual_inversion(state['clip_g'], token='{token}', text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2)",
                      f"pipe.load_textual_inversion(state['clip_l'], token='{token}', text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)"],
            "tokens_added": added, "text_encoder_rows": rows,
            "expansion": (f"a matrix of n > 1 rows adds the tokens {token}, {token}_1, ..., {token}_(n-1) (ids in that order after the "
                          f"vocabulary); encode_prompt calls maybe_convert_prompt(prompt, tokenizer) for each tokenizer (prompt and negative), "
                          f"which replaces each occurrence of '{token}' in the text by '{' '.join(names)}'"),
            "tokenizer_probes": probes,
            "tokenizer_probes_note": ("both tokenizers give the same results. The added tokens are matched inside words and case-insensitively "
                                      f"('x{token}y' -> x, 1000, y; '<SDXL-STYLE>' -> 1000). maybe_convert_prompt finds the token with "
                                      "tokenizer.tokenize (lower-cased) but replaces it in the ORIGINAL text with str.replace, so: '<SDXL-STYLE>' "
                                      f"is not expanded (only vector 0 is used); every occurrence is expanded ('{token}{token}' -> 1000, 1001, "
                                      f"1000, 1001); a literal '{token}_1' in a prompt is mangled to '{token} {token}_1_1' (-> 1000, 1001, '_', '1')")}


@torch.no_grad()
def embedding_case_details(pipe, case, ids, rec, T, out):
    """What the text encoders got in the textual-inversion case, and where text_encoder_2 pooled."""
    token = case["embedding"][1]
    got = {}
    for cname, t in rec.get("te_ids", []):
        got.setdefault(cname, []).append(t[0].tolist())
    for tname, cname in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2")):
        assert got[cname] == [ids[tname]["prompt"], ids[tname]["negative_prompt"]], cname  # prompt first, then negative
    first = {t: getattr(pipe, t).convert_tokens_to_ids(token) for t in ("tokenizer", "tokenizer_2")}  # the added ids follow the vocabulary
    positions = {t: {k: [i for i, x in enumerate(v) if x >= first[t]] for k, v in ids[t].items()} for t in ("tokenizer", "tokenizer_2")}
    p2 = torch.tensor([ids["tokenizer_2"]["prompt"]], dtype=torch.int64)
    o = pipe.text_encoder_2(p2, output_hidden_states=True)
    argmax_pos = int(p2[0].argmax())
    eos_pos = int((p2[0] == EOS).int().argmax())
    assert torch.equal(o.text_embeds, T["pooled_prompt_embeds"])
    assert torch.equal(o.text_embeds, pipe.text_encoder_2.text_projection(o.last_hidden_state[:, argmax_pos]))
    at_eos = pipe.text_encoder_2.text_projection(o.last_hidden_state[:, eos_pos])
    assert not torch.equal(at_eos, o.text_embeds)
    out["pooled_prompt_embeds_first_eos_rule"] = at_eos.contiguous()
    return {"converted_prompt": {t: pipe.maybe_convert_prompt(case["prompt"], getattr(pipe, t)) for t in ("tokenizer", "tokenizer_2")},
            "converted_negative_prompt": {t: pipe.maybe_convert_prompt(case["negative"], getattr(pipe, t)) for t in ("tokenizer", "tokenizer_2")},
            "added_token_positions": positions,
            "input_ids_checked": "input_ids above are what text_encoder / text_encoder_2 received (forward pre-hooks: prompt, then negative)",
            "text_encoder_2_pooling": {
                "pool_position": argmax_pos, "pool_position_id": int(p2[0, argmax_pos]), "first_eos_position": eos_pos,
                "rule": ("text_encoder_2's config has eos_token_id 2 (the legacy value), so transformers pools at argmax(input_ids): with the "
                         "added ids above the vocabulary that is the LAST added token's first position (id 1001 <sdxl-style>_1), not the "
                         "EOS. pooled_prompt_embeds = text_projection(final_layer_norm(last layer)[pool_position]) (checked bit-exact); "
                         "pooled_prompt_embeds_first_eos_rule holds what pooling at the first EOS would give (differs)"),
                "negative": "the negative prompt has no added token: pooled at its EOS as usual"},
            "text_encoder_pooling": "unused by SDXL (text_encoder's eos_token_id 999 pools at the first 999)"}


@torch.no_grad()
def taesd_case_details(pipe, case, images, rec, T, vae_samples, names):
    vae = pipe.vae
    assert isinstance(vae, AutoencoderTiny) and vae.config.scaling_factor == 1.0 and pipe.vae_scale_factor == 2
    assert names == ["noise"], names
    # encode exactly the tensor the pipeline encoded: VaeImageProcessor.preprocess returns a channels-last strided
    # (1, 3, 32, 48) tensor, and encoding a contiguous copy of the same values differs by ~3e-6 (another conv path)
    pre = rec["img_pre"][0]
    assert torch.equal(pre, images["image_tensor"])
    assert len(vae_samples) == 1 and torch.equal(T["image_latents"], vae.encode(pre).latents)
    return {"folder": rel(MODELS_OUT / case["vae"]), "class": "AutoencoderTiny",
            "load": f"AutoencoderTiny.from_pretrained({case['vae']}, torch_dtype=float32); StableDiffusionXLImg2ImgPipeline(**sdxl-tiny components, vae=it)",
            "scaling_factor_used": vae.config.scaling_factor,
            "scaling_factor_source": "AutoencoderTiny's config scaling_factor (1.0, the class default, as TAESD/TAESDXL use); "
                                     "image_latents = 1.0 * latents, and vae.decode got latents_final / 1.0 (checked)",
            "vae_scale_factor": pipe.vae_scale_factor,
            "vae_scale_factor_source": "2 ** (len(vae.config.block_out_channels) - 1); AutoencoderTiny registers decoder_block_out_channels as block_out_channels",
            "latents_mean_std": "none (AutoencoderTiny's config has no latents_mean / latents_std), force_upcast false",
            "encode": ("retrieve_latents(vae.encode(image), generator) returns encoder_output.latents: AutoencoderTinyOutput has no latent_dist, "
                       "so no sample is drawn and the generator is not touched; image_latents equals vae.encode(image).latents (checked)"),
            "draws": "only the prepare_latents noise (recorded draws and a replay of the generator agree)",
            "decode": "vae.decode(latents).sample = DecoderTiny: layers(tanh(z / 3) * 3) * 2 - 1; latent_magnitude / latent_shift are used only by "
                      "AutoencoderTiny.forward's uint8 quantization, never by the pipeline",
            "image_latents_note": "image_latents here = 1.0 * vae.encode(image).latents (no distribution), not latent_dist.sample"}


# ======================================================================================
# TAESDXL-style AutoencoderTiny
# ======================================================================================

def make_taesd(folder: Path, image_tensor: torch.Tensor, log):
    """A random AutoencoderTiny with sdxl-tiny's latent grid (4 channels, downscale 2), saved with save_pretrained
    (fp16 weights). Every conv weight is N(0, 2 / fan_in) * 0.8 and every bias 0.05 * N(0, 1), from our generator.
    Then the two output convolutions are rescaled so that the model is usable in the img2img pipeline: the
    encoder's last conv so that encode(image.png) has mean 0 and std 1 per latent channel (TAESDXL's latents are
    in the UNet's scaled latent space), the decoder's last conv so that decode(2 * N(0,1) latents; sdxl-tiny's img2img
    ends with latents of std ~1.9) has mean 0.5 and std 0.2 per channel before DecoderTiny's x * 2 - 1. Finally every
    parameter is rounded to fp16."""
    gen = torch.Generator().manual_seed(SEEDS[TAESD_NAME])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEEDS[TAESD_NAME])  # the default init is overwritten below
        vae = AutoencoderTiny(**TAESD_CFG).eval()
    with torch.no_grad():
        for name, p in vae.named_parameters():
            if p.ndim == 4:
                p.copy_(torch.randn(p.shape, generator=gen) * (0.8 * (2.0 / float(np.prod(p.shape[1:]))) ** 0.5))
            else:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
        enc_out, dec_out = vae.encoder.layers[-1], vae.decoder.layers[-1]
        assert isinstance(enc_out, nn.Conv2d) and isinstance(dec_out, nn.Conv2d) and dec_out.bias is not None
        z = vae.encode(image_tensor).latents
        mean, std = z.mean((0, 2, 3)), z.std((0, 2, 3))
        enc_out.weight.div_(std[:, None, None, None])
        enc_out.bias.copy_((enc_out.bias - mean) / std)
        hidden = {}
        hook = dec_out.register_forward_hook(lambda m, a, o: hidden.__setitem__("out", o.clone()))
        vae.decode(2 * torch.randn((1, 4, 16, 24), generator=gen))
        hook.remove()
        mean, std = hidden["out"].mean((0, 2, 3)), hidden["out"].std((0, 2, 3))
        dec_out.weight.mul_((0.2 / std)[:, None, None, None])
        dec_out.bias.copy_(0.5 + (dec_out.bias - mean) * 0.2 / std)
        for p in vae.parameters():
            p.copy_(p.to(WEIGHT_DTYPE).to(torch.float32))
    if folder.exists():
        shutil.rmtree(folder)
    vae.to(WEIGHT_DTYPE).save_pretrained(folder, safe_serialization=True)
    vae.to(torch.float32)
    loaded = load_taesd(folder)
    same_tensors(vae.state_dict(), loaded.state_dict(), TAESD_NAME)
    cfg = {k: v for k, v in dict(loaded.config).items() if not k.startswith("_")}
    down = 2 ** (len(cfg["num_encoder_blocks"]) - 1)
    up = cfg["upsampling_scaling_factor"] ** (len(cfg["num_decoder_blocks"]) - 1)
    assert down == up == 2 == 2 ** (len(cfg["block_out_channels"]) - 1)

    # per-network fixture: encode / decode on fixed inputs (fp32)
    g = torch.Generator().manual_seed(SEEDS[TAESD_NAME] + 100)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 48), indexing="ij")
    inp = {"image": (torch.stack([xx, yy, xx * yy])[None] * 0.7 + 0.3 * (torch.rand((1, 3, 32, 48), generator=g) * 2 - 1)).clamp(-1, 1),
           "image_odd": torch.rand((1, 3, 13, 21), generator=g) * 2 - 1,
           "latent": torch.randn((1, 4, 16, 24), generator=g), "latent_ns": torch.randn((1, 4, 3, 5), generator=g) * 2}
    with torch.no_grad():
        out = {"latents": loaded.encode(inp["image"]).latents, "latents_odd": loaded.encode(inp["image_odd"]).latents,
               "decoded": loaded.decode(inp["latent"]).sample, "decoded_ns": loaded.decode(inp["latent_ns"]).sample}
        out["decoded_of_latents"] = loaded.decode(out["latents"]).sample
        z_png = loaded.encode(image_tensor.contiguous()).latents
    assert out["latents"].shape == (1, 4, 16, 24) and out["latents_odd"].shape == (1, 4, 7, 11)
    assert out["decoded"].shape == (1, 3, 32, 48) and out["decoded_ns"].shape == (1, 3, 6, 10)
    doc = {"image": "input: (1,3,32,48) in [-1,1]", "image_odd": "input: (1,3,13,21) in [-1,1], odd sizes (stride-2 conv, padding 1: 13 -> 7, 21 -> 11)",
           "latent": "input: N(0,1) latent (1,4,16,24)", "latent_ns": "input: 2 * N(0,1) latent (1,4,3,5) (beyond DecoderTiny's tanh(x/3)*3 clamp's linear range)",
           "latents": "vae.encode(image).latents: EncoderTiny(image) = layers((image + 1) / 2); no distribution, no scaling",
           "latents_odd": "vae.encode(image_odd).latents",
           "decoded": "vae.decode(latent).sample = layers(tanh(latent / 3) * 3) * 2 - 1 (not clamped)",
           "decoded_ns": "vae.decode(latent_ns).sample",
           "decoded_of_latents": "vae.decode(latents).sample (the encode -> decode round trip, without forward()'s uint8 quantization)"}
    meta_tensors = []
    save_tensors(folder / "expected_vae.safetensors", {**inp, **out}, doc, meta_tensors, folder)
    meta = {"family": TAESD_NAME, "generator": "tools/reference/sdxl.py", "doc": "tools/reference/SDXL.md", "versions": versions(),
            "seed": SEEDS[TAESD_NAME], "weights_dtype_on_disk": "float16", "class": "AutoencoderTiny",
            "for": "sdxl-tiny (its AutoencoderKL: 4 latent channels, downscale 2, scaling_factor 0.13025)",
            "config": cfg, "downscale": down,
            "downscale_rule": "EncoderTiny: one stride-2 conv per stage after the first -> 2 ** (len(num_encoder_blocks) - 1); "
                              "DecoderTiny: one nearest upsample by upsampling_scaling_factor per stage before the last",
            "pipeline_vae_scale_factor": 2 ** (len(cfg["block_out_channels"]) - 1),
            "pipeline_scaling_factor": cfg["scaling_factor"],
            "init": "conv weights N(0, 2/fan_in) * 0.8, biases 0.05 N(0,1); encoder.layers[-1] rescaled so encode(image.png) has per-channel "
                    "mean 0 / std 1; decoder.layers[-1] so that its output on 2 * N(0,1) latents has per-channel mean 0.5 / std 0.2; rounded to fp16",
            "latent_stats_image_png": {"mean": float(z_png.mean()), "std": float(z_png.std()),
                                       "note": "encode(image.png as a contiguous (1,3,32,48) tensor), after fp16 rounding"},
            "tensors": meta_tensors}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    n_params = sum(p.numel() for p in loaded.parameters())
    log(f"  {TAESD_NAME}/: AutoencoderTiny, {n_params} parameters, downscale {down}, scaling_factor {cfg['scaling_factor']}")
    return {"folder": rel(folder), "config": cfg, "downscale": down}


def load_taesd(folder: Path):
    vae = AutoencoderTiny.from_pretrained(folder, torch_dtype=torch.float32).eval()
    assert all(p.dtype == torch.float32 for p in vae.parameters())
    return vae


# ======================================================================================
# main
# ======================================================================================

def load_inputs():
    img = PIL.Image.open(PIPELINE_INPUTS / "image.png")
    img.load()
    mask = PIL.Image.open(PIPELINE_INPUTS / "mask.png")
    mask.load()
    assert img.mode == "RGB" and img.size == (WIDTH, HEIGHT) and mask.mode == "L" and mask.size == (WIDTH, HEIGHT)
    a = np.asarray(img).astype(np.float32) / 255.0
    m = np.asarray(mask).astype(np.float32) / 255.0
    return {"image.png": img, "mask.png": mask,
            "image_tensor": torch.from_numpy(a).permute(2, 0, 1)[None] * 2.0 - 1.0,
            "mask_tensor": torch.from_numpy((m >= 0.5).astype(np.float32))[None, None]}


def main():
    global MODELS_OUT, STAGES_OUT
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-out", type=Path, default=MODELS_OUT, help="instead of Tests/ChiselModelsTests/Fixtures/reference")
    ap.add_argument("--stages-out", type=Path, default=STAGES_OUT, help="instead of Tests/ChiselModelStagesTests/Fixtures/sdxl")
    args = ap.parse_args()
    MODELS_OUT, STAGES_OUT = args.models_out.resolve(), args.stages_out.resolve()
    check_versions()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    for lib in (diffusers, transformers):
        lib.utils.logging.disable_progress_bar()
        lib.utils.logging.set_verbosity_error()
    t0 = time.time()
    log = print
    log(f"torch {torch.__version__}, diffusers {diffusers.__version__}, transformers {transformers.__version__}")
    MODELS_OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        log("folders:")
        build_folders(Path(tmp), log)
        check_tokenizers(log)
        log("single files:")
        sf_info = {"sdxl-tiny": write_single_file("sdxl-tiny", StableDiffusionXLPipeline, log),
                   "sdxl-inpaint-tiny": write_single_file("sdxl-inpaint-tiny", StableDiffusionXLInpaintPipeline, log)}
        log("per-network fixtures:")
        for name in ("sdxl-tiny", "sdxl-inpaint-tiny", "sdxl-refiner-tiny"):
            per_network_fixtures(name, log, sf_info.get(name))
    log("LoRA:")
    lora_summary = make_kohya_lora(MODELS_OUT / LORA_NAME, log)
    images = load_inputs()
    log("textual inversion, tiny autoencoder:")
    make_embedding(MODELS_OUT / EMBEDDING_NAME, log)
    make_taesd(MODELS_OUT / TAESD_NAME, images["image_tensor"], log)

    log("pipelines:")
    install_recorders()
    if STAGES_OUT.exists():
        shutil.rmtree(STAGES_OUT)
    STAGES_OUT.mkdir(parents=True)
    models = Models()
    entries, stored, previous = [], {}, {}
    for case in CASES:
        entry, tensors, result, elapsed, pipe = run_case(case, models, images, previous)
        if case["output_type"] == "latent":
            previous[case["name"]] = tensors["output"]
        if case["source"] == "single_file":
            twin = case["name"].replace("_single_file", "")
            for k, v in tensors.items():
                assert torch.equal(v, stored[twin][k]), (case["name"], k)
            entry["file"] = twin + ".safetensors"
            entry["same_call_as"] = twin
            entry["output_identical_to_folder_case"] = True
        else:
            save_file(tensors, str(STAGES_OUT / entry["file"]), metadata={"generator": "tools/reference/sdxl.py"})
        if case["lora"]:
            base_twin = stored["img2img_euler_s060"]["output"]
            entry["lora"]["mean_abs_difference_to_img2img_euler_s060"] = float((tensors["output"] - base_twin).abs().mean())
        stored[case["name"]] = tensors
        entries.append(entry)
        draws = ", ".join(d["name"] for d in entry["rng_draws"]) or "none"
        log(f"  {case['name']}: {entry['scheduler']['class']}, {entry['loop_steps']} steps, time ids "
            f"{entry['add_time_ids']['negative']} / {entry['add_time_ids']['positive']}, draws: {draws} ({elapsed:.2f} s)")
    # repeat the first case: a second call gives the same output
    again, tensors2, *_ = run_case(CASES[0], models, images, previous)
    assert all(torch.equal(tensors2[k], stored[CASES[0]["name"]][k]) for k in tensors2)
    entries[0]["repeat_call_identical"] = True

    meta = {
        "generator": "tools/reference/sdxl.py", "doc": "tools/reference/SDXL.md", "versions": versions(), "torch_threads": 1,
        "image_size": {"width": WIDTH, "height": HEIGHT, "latent_width": WIDTH // 2, "latent_height": HEIGHT // 2},
        "inputs": {"image.png": rel(PIPELINE_INPUTS / "image.png"), "mask.png": rel(PIPELINE_INPUTS / "mask.png"),
                   "note": "PIL.Image.open of these files is passed as image= / mask_image=; their preprocessed tensors are "
                           "pipelines/inputs.safetensors' image and mask_condition (checked here against pixels/255*2-1 and >= 0.5)"},
        "lora": {"file": rel(MODELS_OUT / LORA_NAME), **lora_summary},
        "tensor_keys": TENSOR_DOC,
        "cases": entries,
    }
    (STAGES_OUT / "cases.json").write_text(to_json(meta) + "\n", encoding="utf-8")

    total = 0
    paths = [p for n in ("sdxl-tiny", "sdxl-inpaint-tiny", "sdxl-refiner-tiny", TAESD_NAME) for p in (MODELS_OUT / n).rglob("*") if p.is_file()]
    paths += [MODELS_OUT / "sdxl-tiny.safetensors", MODELS_OUT / "sdxl-inpaint-tiny.safetensors", MODELS_OUT / LORA_NAME,
              MODELS_OUT / EMBEDDING_NAME]
    paths += [p for p in STAGES_OUT.iterdir() if p.is_file()]
    for p in sorted(paths):
        total += p.stat().st_size
    log(f"{len(entries)} cases; {len(paths)} files, {total} B in all ({time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main()
