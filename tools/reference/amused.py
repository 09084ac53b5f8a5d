#!/usr/bin/env python3
"""aMUSEd (masked visual token model) reference fixtures for Chisel.

Builds two tiny random-weight aMUSEd models (VQModel + UVit2DModel + CLIPTextModelWithProjection +
AmusedScheduler + the tiny 1000-id CLIP tokenizer of pipelines.py), saves them as complete diffusers
folders, records network-level outputs in fp32 and bf16, and runs diffusers' AmusedPipeline /
AmusedImg2ImgPipeline / AmusedInpaintPipeline on them, recording every step.

Pins (refused if different, except Pillow which is only recorded):
    Python 3.11, torch 2.15.0 (CPU), diffusers 0.42.1, transformers 5.23.0, numpy 2.4.6,
    safetensors 0.8.0, Pillow 13.0.0.

Run by hand, never in CI:
    tools/.venv/bin/python tools/reference/amused.py
It writes
    Tests/ChiselModelsTests/Fixtures/amused/{tiny,small}/        (diffusers folders, expected*.safetensors, meta.json)
    Tests/ChiselModelStagesTests/Fixtures/amused/                (cases.json, meta.json, <case>.safetensors, PNGs)
See tools/reference/AMUSED_FIXTURES.md. Deterministic: two runs write byte-identical files.
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import json
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
from diffusers import (AmusedImg2ImgPipeline, AmusedInpaintPipeline, AmusedPipeline, AmusedScheduler,
                       UVit2DModel, VQModel)
from diffusers.models.normalization import GlobalResponseNorm, RMSNorm
from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
_randn_before = torch.randn
import pipelines as sd_pipelines  # noqa: E402  (the tiny tokenizer; its import patches torch.randn)
torch.randn = _randn_before       # undo pipelines.py's recording wrapper: nothing here needs it

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "Tests" / "ChiselModelsTests" / "Fixtures" / "amused"
CASES_OUT = REPO / "Tests" / "ChiselModelStagesTests" / "Fixtures" / "amused"
GENERATOR = "tools/reference/amused.py"

PINS = {"torch": "2.15.0", "diffusers": "0.42.1", "transformers": "5.23.0", "numpy": "2.4.6",
        "safetensors": "0.8.0"}
PILLOW_EXPECTED = "13.0.0"
WEIGHT_DTYPE = torch.float16   # storage dtype of the weight files; the fp32 models hold exactly these values
BOS, EOS = sd_pipelines.BOS, sd_pipelines.EOS  # 998, 999 (pad = EOS)
TEXTS = ["a photo of a cat", ""]

# --------------------------------------------------------------------------------------
# Model definitions
# --------------------------------------------------------------------------------------

MODEL_SPECS = {
    # diffusers' own fast-test architecture (AMUSED.md §5), amused-256 style: no down/upsample, biases on.
    "tiny": dict(
        seed=4004,
        transformer=dict(hidden_size=8, use_bias=True, hidden_dropout=0.0, cond_embed_dim=8, micro_cond_encode_dim=2,
                         micro_cond_embed_dim=10, encoder_hidden_size=8, vocab_size=33, codebook_size=32,
                         in_channels=8, block_out_channels=8, num_res_blocks=1, downsample=False, upsample=False,
                         block_num_heads=1, num_hidden_layers=1, num_attention_heads=1, attention_dropout=0.0,
                         intermediate_size=8, layer_norm_eps=1e-6, ln_elementwise_affine=True, sample_size=8),
        vqvae=dict(act_fn="silu", block_out_channels=[8], down_block_types=["DownEncoderBlock2D"], in_channels=3,
                   latent_channels=8, layers_per_block=1, norm_num_groups=8, num_vq_embeddings=32, out_channels=3,
                   sample_size=8, up_block_types=["UpDecoderBlock2D"], mid_block_add_attention=False,
                   lookup_from_codebook=True),
        text=dict(bos_token_id=0, eos_token_id=2, hidden_size=8, intermediate_size=8, layer_norm_eps=1e-05,
                  num_attention_heads=1, num_hidden_layers=1, pad_token_id=1, vocab_size=1000, projection_dim=8),
        scheduler=dict(mask_token_id=32),
    ),
    # richer, amused-512 style: no biases, down/upsample, kv_mapper (hidden 32 != block_out 16), 2 heads everywhere.
    "small": dict(
        seed=5005,
        transformer=dict(hidden_size=32, use_bias=False, hidden_dropout=0.0, cond_embed_dim=16, micro_cond_encode_dim=4,
                         micro_cond_embed_dim=20, encoder_hidden_size=24, vocab_size=65, codebook_size=64,
                         in_channels=16, block_out_channels=16, num_res_blocks=2, downsample=True, upsample=True,
                         block_num_heads=2, num_hidden_layers=2, num_attention_heads=2, attention_dropout=0.0,
                         intermediate_size=48, layer_norm_eps=1e-6, ln_elementwise_affine=True, sample_size=8),
        vqvae=dict(act_fn="silu", block_out_channels=[16, 32], down_block_types=["DownEncoderBlock2D"] * 2,
                   in_channels=3, latent_channels=8, layers_per_block=1, norm_num_groups=8, num_vq_embeddings=64,
                   vq_embed_dim=None, out_channels=3, sample_size=16, up_block_types=["UpDecoderBlock2D"] * 2,
                   mid_block_add_attention=False, lookup_from_codebook=True, force_upcast=True),
        text=dict(bos_token_id=0, eos_token_id=2, hidden_size=24, intermediate_size=48, layer_norm_eps=1e-05,
                  num_attention_heads=2, num_hidden_layers=2, pad_token_id=1, vocab_size=1000, projection_dim=16),
        scheduler=dict(mask_token_id=64),
    ),
}
# Scale of mlm_layer.conv2 (the logits projection) on top of its default init, so that the codebook
# distributions are neither flat nor one-hot (default init gives logits of std ~0.5).
LOGIT_GAIN = 4.0


def rel(p: Path) -> str:
    return str(Path(p).resolve().relative_to(REPO))


def check_versions():
    got = {"torch": torch.__version__.split("+")[0], "diffusers": diffusers.__version__,
           "transformers": transformers.__version__, "numpy": np.__version__, "safetensors": safetensors.__version__}
    bad = {k: (got[k], v) for k, v in PINS.items() if got[k] != v}
    if bad:
        sys.exit(f"amused.py: version mismatch (got, pinned): {bad}")
    if PIL.__version__ != PILLOW_EXPECTED:
        print(f"warning: Pillow {PIL.__version__}, fixtures were made with {PILLOW_EXPECTED}")


def versions():
    return {"python": sys.version.split()[0], "torch": torch.__version__, "diffusers": diffusers.__version__,
            "transformers": transformers.__version__, "numpy": np.__version__,
            "safetensors": safetensors.__version__, "Pillow": PIL.__version__}


def to_json(o, ind=0):
    return sd_pipelines.to_json(o, ind)


# --------------------------------------------------------------------------------------
# Random weights
# --------------------------------------------------------------------------------------

def randomize_(model: nn.Module, gen: torch.Generator):
    """Norm weights 1 + 0.1·randn and norm biases 0.1·randn (they init to 1 / 0), GRN gamma/beta 0.1·randn
    (they init to 0, which makes GRN the identity), all-zero biases 0.05·randn (CLIP inits its biases to 0)."""
    done = set()
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (RMSNorm, nn.LayerNorm, nn.GroupNorm)) or type(mod).__name__ == "LayerNorm":
                w = getattr(mod, "weight", None)
                b = getattr(mod, "bias", None)
                if w is not None:
                    w.copy_(1 + 0.1 * torch.randn(w.shape, generator=gen))
                    done.add(id(w))
                if b is not None:
                    b.copy_(0.1 * torch.randn(b.shape, generator=gen))
                    done.add(id(b))
            elif isinstance(mod, GlobalResponseNorm):
                mod.gamma.copy_(0.1 * torch.randn(mod.gamma.shape, generator=gen))
                mod.beta.copy_(0.1 * torch.randn(mod.beta.shape, generator=gen))
                done.update((id(mod.gamma), id(mod.beta)))
        for name, p in model.named_parameters():
            if id(p) not in done and name.endswith("bias") and torch.count_nonzero(p) == 0:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))


def round_to_storage_(model: nn.Module):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(WEIGHT_DTYPE).to(torch.float32))


def make_image(h, w, phase):
    """8-bit RGB: smooth gradients, a disc and a little noise (deterministic)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = x / max(w - 1, 1), y / max(h - 1, 1)
    img = np.stack([0.15 + 0.7 * u, 0.2 + 0.6 * v, 0.5 + 0.35 * np.sin(2 * np.pi * (0.75 * (u + v) + phase))], -1)
    d = np.sqrt((x - w * (0.3 + 0.3 * phase)) ** 2 + (y - h * 0.4) ** 2)
    a = np.clip(h * 0.22 - d + 0.5, 0, 1)[..., None]
    img = img * (1 - a) + a * np.array([0.95, 0.85, 0.2])
    rng = np.random.default_rng(1234 + int(phase * 100))
    img = img + 0.04 * rng.standard_normal(img.shape)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def vq_test_images(h, w):
    """vq.image: two (3, H, W) float32 images in [0, 1], smooth-ish (gradients + noise), not 8-bit."""
    out = []
    for k in range(2):
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        u, v = x / max(w - 1, 1), y / max(h - 1, 1)
        base = np.stack([0.2 + 0.6 * u * (1 - 0.5 * k), 0.3 + 0.5 * v, 0.5 + 0.4 * np.cos(np.pi * (u - v + 0.3 * k))])
        base = base + 0.05 * np.random.default_rng(77 + k).standard_normal(base.shape)
        out.append(np.clip(base, 0, 1))
    return torch.from_numpy(np.stack(out).astype(np.float32))


def build_tokenizer(tmp: Path) -> CLIPTokenizer:
    vocab_json, merges_txt = sd_pipelines.build_tiny_vocab()
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "vocab.json").write_bytes(vocab_json.encode("utf-8"))
    (tmp / "merges.txt").write_bytes(merges_txt.encode("utf-8"))
    for f in ("tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(sd_pipelines.REAL_TOKENIZER / "clip" / f, tmp / f)
    tok = CLIPTokenizer.from_pretrained(tmp)
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, tok.model_max_length, len(tok)) == \
        (BOS, EOS, EOS, 77, 1000), (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, tok.model_max_length)
    return tok


def tokenizer_files(tmp: Path):
    return {p.name: p.read_bytes() for p in sorted(tmp.iterdir())}


def set_codebook_(vq: VQModel, gen: torch.Generator, images: torch.Tensor):
    """Codebook ~ per-channel mean + std · randn of the encoder's output on `images`, so that quantisation spreads
    over many ids (the default uniform(±1/n_e) codebook sits at the origin, far from every latent)."""
    with torch.no_grad():
        lat = vq.encode(images).latents
        z = lat.permute(0, 2, 3, 1).reshape(-1, lat.shape[1])
        mean, std = z.mean(0), z.std(0)
        n_e = vq.quantize.embedding.weight.shape[0]
        vq.quantize.embedding.weight.copy_(mean + std * torch.randn(n_e, z.shape[1], generator=gen))


def build_model(name: str, spec: dict, tmp: Path, log):
    folder = MODELS / name
    if folder.exists():
        shutil.rmtree(folder)
    seed = spec["seed"]
    torch.manual_seed(seed)
    transformer = UVit2DModel(**spec["transformer"]).eval()
    torch.manual_seed(seed + 1)
    vqvae = VQModel(**spec["vqvae"]).eval()
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModelWithProjection(CLIPTextConfig(**spec["text"])).eval()
    gen = torch.Generator().manual_seed(seed + 3)
    randomize_(transformer, gen)
    with torch.no_grad():
        transformer.mlm_layer.conv2.weight.mul_(LOGIT_GAIN)
    randomize_(vqvae, gen)
    randomize_(text_encoder, gen)
    vsf = 2 ** (len(spec["vqvae"]["block_out_channels"]) - 1)
    grid = spec["transformer"]["sample_size"]
    px = grid * vsf
    calib = torch.cat([vq_test_images(px, px),
                       torch.from_numpy(np.stack([make_image(px, px, 0.0), make_image(px, px, 0.5)]).astype(np.float32)
                                        / 255.0).permute(0, 3, 1, 2)])
    round_to_storage_(vqvae)  # the encoder as stored, then the codebook from its outputs
    set_codebook_(vqvae, gen, calib)
    for m in (transformer, vqvae, text_encoder):
        round_to_storage_(m)
    tokenizer = build_tokenizer(tmp / name / "tokenizer")
    scheduler = AmusedScheduler(**spec["scheduler"])

    pipe = AmusedPipeline(vqvae=copy.deepcopy(vqvae).to(WEIGHT_DTYPE), tokenizer=tokenizer,
                          text_encoder=copy.deepcopy(text_encoder).to(WEIGHT_DTYPE),
                          transformer=copy.deepcopy(transformer).to(WEIGHT_DTYPE), scheduler=scheduler)
    pipe.save_pretrained(folder, safe_serialization=True)
    # The tokenizer folder: the same four files as the SD fixtures' (pipelines.py), not whatever
    # transformers' save_pretrained adds (tokenizer.json); checked below that the pipeline loads it.
    shutil.rmtree(folder / "tokenizer")
    (folder / "tokenizer").mkdir()
    for fname, data in tokenizer_files(tmp / name / "tokenizer").items():
        (folder / "tokenizer" / fname).write_bytes(data)

    # ---- reload in fp32; every reference uses exactly the stored weights ----
    loaded = AmusedPipeline.from_pretrained(folder, torch_dtype=torch.float32)
    for comp, ref in (("vqvae", vqvae), ("transformer", transformer), ("text_encoder", text_encoder)):
        m = getattr(loaded, comp)
        a, b = ref.state_dict(), m.state_dict()
        assert set(a) == set(b), (comp, sorted(set(a) ^ set(b))[:5])
        assert all(torch.equal(a[k], b[k]) for k in a), comp
        assert all(p.dtype == torch.float32 for p in m.parameters()), comp
    te_file = load_file(str(folder / "text_encoder" / "model.safetensors"))
    assert all(k.startswith(("text_model.", "text_projection.")) for k in te_file), sorted(te_file)[:3]
    assert all(v.dtype == WEIGHT_DTYPE for v in te_file.values())
    lt = loaded.tokenizer
    assert (lt.bos_token_id, lt.eos_token_id, lt.pad_token_id, lt.model_max_length) == (BOS, EOS, EOS, 77)
    for t in ["a photograph of an astronaut riding a horse", "", "a photo of a cat"]:
        assert lt(t).input_ids == tokenizer(t).input_ids
    assert dict(loaded.scheduler.config)["masking_schedule"] == "cosine"
    log(f"  {rel(folder)}: vsf {vsf}, {px}x{px} px -> {px // vsf}x{px // vsf} tokens, "
        f"params uvit {sum(p.numel() for p in transformer.parameters())}, vq {sum(p.numel() for p in vqvae.parameters())}, "
        f"text {sum(p.numel() for p in text_encoder.parameters())}")
    return dict(folder=folder, transformer=loaded.transformer.eval(), vqvae=loaded.vqvae.eval(),
                text_encoder=loaded.text_encoder.eval(), tokenizer=loaded.tokenizer, vsf=vsf, grid=px // vsf, px=px,
                spec=spec)


# --------------------------------------------------------------------------------------
# B. Network-level expected outputs
# --------------------------------------------------------------------------------------

@torch.no_grad()
def network_outputs(m, inputs, dtype):
    vq, te, uvit = m["vqvae"], m["text_encoder"], m["transformer"]
    if dtype != torch.float32:
        vq, te, uvit = (copy.deepcopy(x).to(dtype) for x in (vq, te, uvit))
    out = {}
    img = inputs["vq.image"].to(dtype)
    lat = vq.encode(img).latents
    out["vq.latents"] = lat
    B, D, h, w = lat.shape
    if dtype == torch.float32:
        _, _, (_, _, idx) = vq.quantize(lat)
        out["vq.ids"] = idx.reshape(B, h, w)
        zf = lat.permute(0, 2, 3, 1).reshape(-1, D)
        dist = torch.cdist(zf, vq.quantize.embedding.weight)  # the call VectorQuantizer.forward makes
        assert torch.equal(dist.argmin(1), idx)
        s = dist.sort(dim=1).values
        out["vq.margin"] = (s[:, 1] - s[:, 0]).reshape(B, h, w)
        ids = out["vq.ids"]
    else:
        ids = inputs["vq.ids"]
    out["vq.decoded"] = vq.decode(ids, force_not_quantize=True, shape=(B, h, w, vq.config.latent_channels)).sample
    o = te(inputs["text.input_ids"], return_dict=True, output_hidden_states=True)
    out["text.text_embeds"] = o.text_embeds
    out["text.penultimate"] = o.hidden_states[-2]
    out["text.last_hidden_state"] = o.last_hidden_state
    out["uvit.logits"] = uvit(inputs["uvit.input_ids"], encoder_hidden_states=inputs["uvit.encoder_hidden_states"].to(dtype),
                              pooled_text_emb=inputs["uvit.pooled"].to(dtype), micro_conds=inputs["uvit.micro_conds"].to(dtype))
    return out


PRODUCERS = {
    "vq.image": "fixed pseudo-random float32 image in [0,1] (gradients + cosine + 0.05 Gaussian noise, clipped; numpy seeds 77, 78)",
    "vq.latents": "vqvae.encode(vq.image).latents",
    "vq.ids": "vqvae.quantize(vq.latents)[2][2].reshape(B, h, w) (argmin of torch.cdist(z, codebook))",
    "vq.margin": "per token: second-smallest minus smallest torch.cdist(z, codebook) distance (near-ties are small)",
    "vq.decoded": "vqvae.decode(vq.ids, force_not_quantize=True, shape=(B, h, w, latent_channels)).sample (not clipped)",
    "text.input_ids": "tokenizer(['a photo of a cat', ''], padding='max_length', max_length=77, truncation=True).input_ids",
    "text.text_embeds": "text_encoder(text.input_ids, output_hidden_states=True).text_embeds",
    "text.penultimate": "text_encoder(...).hidden_states[-2] (what the pipelines pass as encoder_hidden_states)",
    "text.last_hidden_state": "text_encoder(...).last_hidden_state (after final_layer_norm)",
    "uvit.input_ids": "random ids in [0, codebook_size) with ~40% set to the mask id (torch.Generator seed model_seed+10)",
    "uvit.encoder_hidden_states": "torch.randn (same generator)",
    "uvit.pooled": "torch.randn (same generator)",
    "uvit.micro_conds": "[[W, H, 0, 0, 6], [W, H, 1, 2, 5.5]] float32, W = H = the image pixel size",
    "uvit.logits": "transformer(uvit.input_ids, encoder_hidden_states=..., pooled_text_emb=uvit.pooled, micro_conds=...)",
}


def diff_stats(ref, other):
    ref, other = ref.float(), other.float()
    d = (ref - other).abs()
    return dict(max_abs=float(d.max()), ref_max_abs=float(ref.abs().max()),
                max_abs_rel_to_ref_max=float(d.max() / ref.abs().max().clamp_min(1e-12)),
                mean_abs=float(d.mean()))


def write_network_fixtures(m, log):
    spec, folder = m["spec"], m["folder"]
    px, grid = m["px"], m["grid"]
    tcfg = spec["transformer"]
    inputs = {"vq.image": vq_test_images(px, px)}
    tok = m["tokenizer"]
    inputs["text.input_ids"] = tok(TEXTS, padding="max_length", max_length=77, truncation=True,
                                   return_tensors="pt").input_ids
    g = torch.Generator().manual_seed(spec["seed"] + 10)
    ids = torch.randint(0, tcfg["codebook_size"], (2, grid, grid), generator=g)
    masked = torch.rand((2, grid, grid), generator=g) < 0.4
    ids[masked] = spec["scheduler"]["mask_token_id"]
    inputs["uvit.input_ids"] = ids
    inputs["uvit.encoder_hidden_states"] = torch.randn(2, 77, tcfg["encoder_hidden_size"], generator=g)
    inputs["uvit.pooled"] = torch.randn(2, tcfg["cond_embed_dim"], generator=g)
    inputs["uvit.micro_conds"] = torch.tensor([[px, px, 0, 0, 6], [px, px, 1, 2, 5.5]], dtype=torch.float32)

    out32 = network_outputs(m, inputs, torch.float32)
    again = network_outputs(m, inputs, torch.float32)
    assert all(torch.equal(out32[k], again[k]) for k in out32), "fp32 network outputs not deterministic"
    inputs["vq.ids"] = out32["vq.ids"]
    out16 = network_outputs(m, inputs, torch.bfloat16)

    n_ids = int(out32["vq.ids"].unique().numel())
    n_codes = spec["vqvae"]["num_vq_embeddings"]
    assert n_ids >= min(8, n_codes // 4), f"quantisation too degenerate: {n_ids} distinct ids"
    lg = out32["uvit.logits"]
    assert lg.shape == (2, tcfg["codebook_size"], grid, grid)

    order = ["vq.image", "vq.latents", "vq.ids", "vq.margin", "vq.decoded", "text.input_ids", "text.text_embeds",
             "text.penultimate", "text.last_hidden_state", "uvit.input_ids", "uvit.encoder_hidden_states",
             "uvit.pooled", "uvit.micro_conds", "uvit.logits"]
    allt = {**inputs, **out32}
    fp32 = {k: allt[k].detach().contiguous() for k in order}
    for k, v in fp32.items():
        assert v.dtype in (torch.float32, torch.int64), (k, v.dtype)
    save_file(fp32, str(folder / "expected.safetensors"), metadata={"generator": GENERATOR})
    bf16_keys = ["vq.latents", "vq.decoded", "text.text_embeds", "text.penultimate", "uvit.logits"]
    bf = {k: out16[k].detach().to(torch.float32).contiguous() for k in bf16_keys}
    save_file(bf, str(folder / "expected_bf16.safetensors"), metadata={"generator": GENERATOR})

    keys = [dict(file="expected.safetensors", key=k, shape=list(v.shape), dtype=str(v.dtype).replace("torch.", ""),
                 producer=PRODUCERS[k]) for k, v in fp32.items()]
    keys += [dict(file="expected_bf16.safetensors", key=k, shape=list(v.shape), dtype="float32 (values from bfloat16)",
                  producer=PRODUCERS[k] + "; with the module .to(torch.bfloat16) and bfloat16 float inputs "
                  "(vq.image, uvit.encoder_hidden_states, uvit.pooled, uvit.micro_conds); vq.decoded decodes the fp32 vq.ids")
             for k, v in bf.items()]
    margins = out32["vq.margin"]
    stats = {k: diff_stats(out32[k], out16[k]) for k in bf16_keys}
    meta = {
        "generator": GENERATOR, "doc": "tools/reference/AMUSED_FIXTURES.md", "versions": versions(),
        "torch_threads": torch.get_num_threads(),
        "model": m["folder"].name, "seed": spec["seed"],
        "weights": f"random, stored as {str(WEIGHT_DTYPE).replace('torch.', '')} (the fp32 reference models hold exactly "
                   "the stored values); norms 1+0.1·randn / 0.1·randn, GRN gamma/beta 0.1·randn, zero biases "
                   f"0.05·randn, mlm_layer.conv2 ×{LOGIT_GAIN}, codebook = encoder-output mean + std·randn",
        "pixel_size": px, "token_grid": grid, "vae_scale_factor": m["vsf"],
        "mask_token_id": spec["scheduler"]["mask_token_id"],
        "transformer_token_grid": grid // 2 if tcfg["downsample"] else grid,
        "configs": {"transformer": spec["transformer"], "vqvae": spec["vqvae"], "text_encoder": spec["text"],
                    "scheduler": spec["scheduler"],
                    "tokenizer": {"vocab_size": 1000, "bos": BOS, "eos": EOS, "pad": EOS, "model_max_length": 77,
                                  "files": "vocab.json, merges.txt (pipelines.build_tiny_vocab), tokenizer_config.json and "
                                           "special_tokens_map.json copied from Tests/ChiselModelsTests/Fixtures/tokenizer/clip"}},
        "text_encoder_attn_implementation": m["text_encoder"].config._attn_implementation,
        "transformer_attn_processors": sorted({type(p).__name__ for p in m["transformer"].attn_processors.values()}),
        "pooled_position": "CLIP config eos_token_id == 2, so transformers pools at input_ids.argmax(-1): the first EOS (999, the largest id)",
        "vq_ids_distinct": n_ids,
        "vq_margin": {"min": float(margins.min()), "median": float(margins.median()),
                      "below_1e-3": int((margins < 1e-3).sum())},
        "uvit_logits_std": float(lg.std()),
        "bf16_vs_fp32": stats,
        "keys": keys,
    }
    (folder / "meta.json").write_text(to_json(meta) + "\n", encoding="utf-8")
    log(f"  {folder.name}: {n_ids}/{n_codes} distinct VQ ids, min margin {float(margins.min()):.3g}, logits std "
        f"{float(lg.std()):.3g}; bf16 max rel err " +
        ", ".join(f"{k} {v['max_abs_rel_to_ref_max']:.3g}" for k, v in stats.items()))


# --------------------------------------------------------------------------------------
# C. Pipeline cases
# --------------------------------------------------------------------------------------

PROMPT = "a photo of a cat"


def K(name, kind, model, steps, guidance, seed, temperature=(2, 0), strength=None, negative=None):
    return dict(name=name, kind=kind, model=model, steps=steps, guidance=guidance, seed=seed,
                temperature=temperature, strength=strength, negative=negative)


def case_list():
    out = []
    for mn in ("tiny", "small"):
        out += [
            K(f"txt2img_{mn}_cfg10_4steps", "txt2img", mn, 4, 10.0, 0),
            K(f"txt2img_{mn}_nocfg_12steps", "txt2img", mn, 12, 1.0, 7, temperature=(2, 0)),
            K(f"txt2img_{mn}_neg_temp1.5_3steps", "txt2img", mn, 3, 4.0, 3, temperature=1.5, negative="blurry"),
            K(f"img2img_{mn}_s0.5_12steps_cfg10", "img2img", mn, 12, 10.0, 0, strength=0.5),
            K(f"img2img_{mn}_s0.8_6steps_nocfg", "img2img", mn, 6, 1.0, 11, strength=0.8),
            K(f"img2img_{mn}_s1.0_4steps_cfg10", "img2img", mn, 4, 10.0, 5, strength=1.0),
            K(f"inpaint_{mn}_s1.0_6steps_cfg10", "inpaint", mn, 6, 10.0, 0, strength=1.0),
            K(f"inpaint_{mn}_s0.7_8steps_cfg3", "inpaint", mn, 8, 3.0, 2, strength=0.7),
        ]
    return out


# the white (repaint) rectangle of each model's mask, in token units: rows [r0, r1), cols [c0, c1)
MASK_RECT_TOKENS = {"tiny": (2, 6, 1, 6), "small": (2, 6, 1, 6)}


def make_mask(m):
    vsf, px = m["vsf"], m["px"]
    r0, r1, c0, c1 = MASK_RECT_TOKENS[m["folder"].name]
    a = np.zeros((px, px), np.uint8)
    a[r0 * vsf:r1 * vsf, c0 * vsf:c1 * vsf] = 255
    tok = np.zeros((m["grid"], m["grid"]), np.int64)
    tok[r0:r1, c0:c1] = 1
    return a, tok


def save_png(arr, path, mode):
    PIL.Image.fromarray(arr, mode=mode).save(path, format="PNG", optimize=False, compress_level=9)


def load_png(path, mode, expected):
    im = PIL.Image.open(path)
    im.load()
    assert im.mode == mode and im.size == (expected.shape[1], expected.shape[0]), (path, im.mode, im.size)
    assert np.array_equal(np.asarray(im), expected), path
    return im


def run_pipeline(case, m, inputs, output_type):
    cls = {"txt2img": AmusedPipeline, "img2img": AmusedImg2ImgPipeline, "inpaint": AmusedInpaintPipeline}[case["kind"]]
    pipe = cls.from_pretrained(m["folder"], torch_dtype=torch.float32)  # fresh (inpaint mutates its scheduler config)
    pipe.set_progress_bar_config(disable=True)
    rec = {"steps": [], "quantize": [], "mask_pre": [], "transformer_batches": [], "micro_conds": [], "add_noise": []}
    step_orig = pipe.scheduler.step

    @functools.wraps(step_orig)
    def step_rec(model_output, timestep, sample, *a, **k):
        out = step_orig(model_output, timestep, sample, *a, **k)
        smr = k.get("starting_mask_ratio", None)
        rec["steps"].append(dict(logits=model_output.detach().clone(), timestep=int(timestep), sample=sample.clone(),
                                 prev=out.prev_sample.clone(), pred=out.pred_original_sample.clone(),
                                 starting_mask_ratio=None if smr is None else float(smr)))
        return out
    pipe.scheduler.step = step_rec
    noise_orig = pipe.scheduler.add_noise

    def noise_rec(sample, timesteps, generator=None):
        out = noise_orig(sample, timesteps, generator=generator)
        rec["add_noise"].append(dict(timestep=int(timesteps), out=out.clone()))
        return out
    pipe.scheduler.add_noise = noise_rec
    h1 = pipe.vqvae.quantize.register_forward_hook(lambda mod, a, o: rec["quantize"].append(o[2][2].clone()))

    def tr_hook(mod, args, kwargs):
        rec["transformer_batches"].append(int(args[0].shape[0]))
        rec["micro_conds"].append(kwargs["micro_conds"].clone())
    h2 = pipe.transformer.register_forward_pre_hook(tr_hook, with_kwargs=True)
    if case["kind"] == "inpaint":
        pre = pipe.mask_processor.preprocess

        @functools.wraps(pre)
        def pre_rec(*a, **k):
            o = pre(*a, **k)
            rec["mask_pre"].append(o.clone())
            return o
        pipe.mask_processor.preprocess = pre_rec
    kw = dict(prompt=PROMPT, num_inference_steps=case["steps"], guidance_scale=case["guidance"],
              temperature=case["temperature"], generator=torch.Generator().manual_seed(case["seed"]),
              output_type=output_type)
    if case["negative"] is not None:
        kw["negative_prompt"] = case["negative"]
    if case["kind"] == "txt2img":
        kw.update(height=m["px"], width=m["px"])
    else:
        kw.update(image=inputs["image"], strength=case["strength"])
    if case["kind"] == "inpaint":
        kw["mask_image"] = inputs["mask"]
    try:
        res = pipe(**kw).images
    finally:
        h1.remove()
        h2.remove()
    rec["scheduler_config"] = {k: v for k, v in dict(pipe.scheduler.config).items() if not k.startswith("_")}
    rec["timesteps_all"] = [int(t) for t in pipe.scheduler.timesteps]
    rec["temperatures"] = [float(t) for t in pipe.scheduler.temperatures]
    rec["input_ids"] = {"prompt": pipe.tokenizer(PROMPT, padding="max_length", max_length=77, truncation=True).input_ids}
    if case["guidance"] > 1.0:
        neg = case["negative"] if case["negative"] is not None else ""
        rec["input_ids"]["negative_prompt"] = pipe.tokenizer(neg, padding="max_length", max_length=77,
                                                             truncation=True).input_ids
    return res, rec


def same_records(a, b):
    if len(a["steps"]) != len(b["steps"]):
        return False
    for x, y in zip(a["steps"], b["steps"]):
        for k in ("logits", "sample", "prev", "pred"):
            if not torch.equal(x[k], y[k]):
                return False
    return all(torch.equal(p, q) for p, q in zip(a["quantize"], b["quantize"]))


def run_case(case, m, inputs, exp_token_mask):
    t0 = time.time()
    tokens, rec = run_pipeline(case, m, inputs, "latent")
    image, rec2 = run_pipeline(case, m, inputs, "np")
    assert same_records(rec, rec2), f"{case['name']}: the np run differs from the latent run"
    tokens3, rec3 = run_pipeline(case, m, inputs, "latent")
    assert torch.equal(tokens, tokens3) and same_records(rec, rec3), f"{case['name']}: not deterministic"
    elapsed = time.time() - t0
    g, V = m["grid"], m["spec"]["transformer"]["codebook_size"]
    mask_id = m["spec"]["scheduler"]["mask_token_id"]
    cfg = case["guidance"] > 1.0
    steps = rec["steps"]
    S = len(steps)
    assert tokens.shape == (1, g, g) and tokens.dtype == torch.int64
    assert torch.equal(tokens, steps[-1]["prev"]) and not (tokens == mask_id).any()
    assert image.shape == (1, m["px"], m["px"], 3) and image.dtype == np.float32
    assert set(rec["transformer_batches"]) == {2 if cfg else 1} and len(rec["transformer_batches"]) == S
    for i in range(1, S):
        assert torch.equal(steps[i]["sample"], steps[i - 1]["prev"])
    T = {"tokens": tokens,
         "image": torch.from_numpy(np.ascontiguousarray(image)),
         "initial_tokens": steps[0]["sample"],
         "step_tokens": torch.stack([s["prev"] for s in steps]),
         "step_pred_original": torch.stack([s["pred"] for s in steps]),
         "step_logits": torch.stack([s["logits"].reshape(1, V, g * g).permute(0, 2, 1) for s in steps]).contiguous()}
    entry = {
        "name": case["name"], "model": rel(m["folder"]), "pipeline": {"txt2img": "AmusedPipeline",
                                                                      "img2img": "AmusedImg2ImgPipeline",
                                                                      "inpaint": "AmusedInpaintPipeline"}[case["kind"]],
        "kind": case["kind"], "prompt": PROMPT, "negative_prompt": case["negative"],
        "steps": case["steps"], "guidance": case["guidance"], "do_classifier_free_guidance": cfg,
        "temperature": list(case["temperature"]) if isinstance(case["temperature"], tuple) else case["temperature"],
        "temperatures": rec["temperatures"],
        "strength": case["strength"], "seed": case["seed"],
        "generator": "torch.Generator() (CPU).manual_seed(seed)",
        "height": m["px"], "width": m["px"], "height_width_passed": case["kind"] == "txt2img",
        "token_grid": [g, g], "mask_token_id": mask_id, "codebook_size": V,
        "image": None, "mask": None, "token_mask": None, "starting_mask_ratio": None,
        "scheduler_config": rec["scheduler_config"],
        "scheduler_timesteps": rec["timesteps_all"],
        "timesteps": [s["timestep"] for s in steps],
        "loop_steps": S,
        "transformer_batch": 2 if cfg else 1,
        "micro_conds": [float(x) for x in rec["micro_conds"][0][0].tolist()],
        "input_ids": rec["input_ids"],
        "initial_masked": int((steps[0]["sample"] == mask_id).sum()),
    }
    if case["kind"] != "txt2img":
        entry["image"] = inputs["image_file"]
        assert len(rec["quantize"]) == 1
        T["encoded_tokens"] = rec["quantize"][0].reshape(1, g, g)
        k = int(case["steps"] * case["strength"])
        entry["start_step_index"] = case["steps"] - k
        assert S == k
    if case["kind"] == "img2img":
        assert len(rec["add_noise"]) == 1 and torch.equal(rec["add_noise"][0]["out"], steps[0]["sample"])
        entry["add_noise_timestep"] = rec["add_noise"][0]["timestep"]
    if case["kind"] == "inpaint":
        entry["mask"] = inputs["mask_file"]
        assert len(rec["mask_pre"]) == 1
        tm = rec["mask_pre"][0]
        assert tm.shape == (1, 1, g, g)
        tm_int = tm.reshape(-1).to(torch.int64)
        assert torch.equal(tm_int, torch.from_numpy(exp_token_mask.reshape(-1))), "mask is not the block vote"
        entry["token_mask"] = tm_int.tolist()
        smr = {s["starting_mask_ratio"] for s in steps}
        assert len(smr) == 1
        entry["starting_mask_ratio"] = smr.pop()
        expected_init = T["encoded_tokens"].clone()
        expected_init[tm.reshape(1, g, g).bool()] = mask_id
        assert torch.equal(expected_init, steps[0]["sample"])
        assert entry["scheduler_config"]["masking_schedule"] == "linear"
    else:
        assert entry["scheduler_config"]["masking_schedule"] == "cosine"
    if case["kind"] == "txt2img":
        assert (steps[0]["sample"] == mask_id).all()
    out = {}
    for k, v in T.items():
        v = v.detach().contiguous()
        assert v.dtype in (torch.float32, torch.int64), (k, v.dtype)
        out[k] = v
    entry["file"] = case["name"] + ".safetensors"
    entry["tensors"] = {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")} for k, v in out.items()}
    entry["repeat_identical"] = True
    return entry, out, elapsed


CASE_TENSORS = {
    "tokens": "(1, h, w) int64: the final token ids (output_type='latent')",
    "image": "(1, H, W, 3) float32: output_type='np' of a second call with the same seed (decode(...).sample.clip(0, 1))",
    "initial_tokens": "(1, h, w) int64: the grid the first scheduler.step got (all mask ids for txt2img; after "
                      "add_noise for img2img; encoded ids with the token mask set to the mask id for inpaint)",
    "step_tokens": "(S, 1, h, w) int64: prev_sample after each scheduler.step",
    "step_pred_original": "(S, 1, h, w) int64: pred_original_sample of each scheduler.step",
    "step_logits": "(S, 1, h*w, codebook_size) float32: the (CFG-combined) logits passed to scheduler.step, "
                   "token-major (the scheduler's own (B, L, V) view of the (B, V, h, w) model output)",
    "encoded_tokens": "(1, h, w) int64 (img2img, inpaint): vqvae.quantize(vqvae.encode(image).latents)[2][2]",
}


def write_cases(models, log):
    if CASES_OUT.exists():
        shutil.rmtree(CASES_OUT)
    CASES_OUT.mkdir(parents=True)
    per_model = {}
    for mn, m in models.items():
        img = make_image(m["px"], m["px"], 0.25)
        mask, tok_mask = make_mask(m)
        fi, fm = f"image-{mn}.png", f"mask-{mn}.png"
        save_png(img, CASES_OUT / fi, "RGB")
        save_png(mask, CASES_OUT / fm, "L")
        per_model[mn] = ({"image": load_png(CASES_OUT / fi, "RGB", img), "mask": load_png(CASES_OUT / fm, "L", mask),
                          "image_file": fi, "mask_file": fm}, tok_mask)
    entries = []
    for case in case_list():
        m = models[case["model"]]
        inputs, tok_mask = per_model[case["model"]]
        entry, tensors, elapsed = run_case(case, m, inputs, tok_mask)
        save_file(tensors, str(CASES_OUT / entry["file"]), metadata={"generator": GENERATOR})
        entries.append(entry)
        log(f"  {case['name']}: {entry['loop_steps']} steps, timesteps {entry['timesteps']}, "
            f"{entry['initial_masked']} masked at start, {elapsed:.2f} s (3 calls)")
    (CASES_OUT / "cases.json").write_text(to_json(entries) + "\n", encoding="utf-8")
    meta = {"generator": GENERATOR, "doc": "tools/reference/AMUSED_FIXTURES.md", "versions": versions(),
            "torch_threads": torch.get_num_threads(),
            "inputs": {f"image-{mn}.png": f"8-bit RGB PNG, {m['px']}x{m['px']} (the model's pixel size; the resize "
                                          "is a no-op), passed as the PIL image read back from the file"
                       for mn, m in models.items()} |
                      {f"mask-{mn}.png": f"8-bit grayscale PNG, {m['px']}x{m['px']}, 0 or 255; white = repaint; white "
                                         f"rectangle token rows/cols [r0, r1, c0, c1) = {list(MASK_RECT_TOKENS[mn])} "
                                         f"(pixels × vsf {m['vsf']})" for mn, m in models.items()},
            "tensor_keys": CASE_TENSORS,
            "draw_order": "one generator per call: img2img draws torch.rand(1, h, w) in add_noise first; every step "
                          "draws multinomial exponentials (h*w*codebook) then, except at timestep 0, h*w Gumbel uniforms",
            "calls_per_case": "three fresh pipelines (from_pretrained of the model folder) per case: output_type "
                              "'latent', 'np', 'latent'; all step records identical (checked)"}
    (CASES_OUT / "meta.json").write_text(to_json(meta) + "\n", encoding="utf-8")
    return entries


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.parse_args()
    check_versions()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    for lib in (diffusers, transformers):
        lib.utils.logging.disable_progress_bar()
        lib.utils.logging.set_verbosity_error()
    t0 = time.time()
    log = print
    log(f"torch {torch.__version__}, diffusers {diffusers.__version__}, transformers {transformers.__version__}")
    tmp = Path(tempfile.mkdtemp(prefix="chisel-amused-"))
    try:
        models = {}
        log("models:")
        for name, spec in MODEL_SPECS.items():
            models[name] = build_model(name, spec, tmp, log)
        log("network outputs:")
        for m in models.values():
            write_network_fixtures(m, log)
        log("pipeline cases:")
        write_cases(models, log)
    finally:
        shutil.rmtree(tmp)
    total = 0
    for root in (MODELS, CASES_OUT):
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        total += size
        log(f"  {rel(root)}: {size} B")
    log(f"total {total} B ({time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main()
