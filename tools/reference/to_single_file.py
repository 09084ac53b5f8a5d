"""Diffusers <-> original (CompVis / Stability "LDM") single-file key mapping.

Written for Chisel's reference fixtures.  The mapping is built from the
*diffusers configs* (block counts, which blocks have attention, layers per
block), so it works for any SD 1.x / 2.x style UNet2DConditionModel,
AutoencoderKL and CLIP text encoder, not only the tiny fixture models.

Layout of an original checkpoint:

  model.diffusion_model.*                      UNet (openaimodel.UNetModel)
  first_stage_model.*                          VAE  (AutoencoderKL)
  cond_stage_model.transformer.text_model.*    SD1: HF CLIPTextModel, unchanged names
  cond_stage_model.model.*                     SD2: OpenCLIP text tower

Public functions
  unet_module_table(cfg), vae_module_table(cfg) -> [(diffusers prefix, original prefix, kind)]
  diffusers_to_original(unet_sd, vae_sd, te_sd, unet_cfg, vae_cfg, te_hidden_size, text_layout)
  original_to_diffusers(ckpt, unet_cfg, vae_cfg, te_num_layers, text_layout, extra_ok)
  verify_roundtrip(...)                   exact round trip + bijection checks

Tensors whose layout differs between the two formats:
  * VAE mid-block attention q/k/v/proj_out: original = 1x1 conv weights (C, C, 1, 1),
    diffusers = linear (C, C).
  * OpenCLIP attention: original in_proj_weight (3D, D) / in_proj_bias (3D) are
    q, k, v concatenated along dim 0; diffusers has separate q_proj/k_proj/v_proj.
Everything else is a pure rename.
"""

from __future__ import annotations

import re
from typing import Dict, Iterable, List, Tuple

import torch

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."  # + "text_model.<hf name>"
OPENCLIP_PREFIX = "cond_stage_model.model."

# ----------------------------------------------------------------------------
# Leaf renames inside one module, diffusers name -> original name.
# Applied to the part of the key after the module prefix.
# ----------------------------------------------------------------------------

# UNet ResBlock (ldm.modules.diffusionmodules.openaimodel.ResBlock):
#   in_layers = [GroupNorm, SiLU, conv]; emb_layers = [SiLU, Linear];
#   out_layers = [GroupNorm, SiLU, Dropout, conv]; skip_connection = 1x1 conv
UNET_RESNET_LEAVES = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}

# VAE ResnetBlock (ldm.modules.diffusionmodules.model.ResnetBlock): same names
# except the shortcut.
VAE_RESNET_LEAVES = {
    "norm1": "norm1",
    "conv1": "conv1",
    "norm2": "norm2",
    "conv2": "conv2",
    "conv_shortcut": "nin_shortcut",
}

# VAE AttnBlock (single head, 1x1 convs in the original)
VAE_ATTN_LEAVES = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}
VAE_ATTN_CONV_LEAVES = {"to_q", "to_k", "to_v", "to_out.0"}  # weights are 4-D in original

# OpenCLIP ResidualAttentionBlock, per layer (q/k/v handled separately)
OPENCLIP_LAYER_LEAVES = {
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "self_attn.out_proj": "attn.out_proj",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
}


def _split_leaf(rest: str) -> Tuple[str, str]:
    """'conv1.weight' -> ('conv1', 'weight'); 'to_out.0.bias' -> ('to_out.0', 'bias')."""
    module, _, param = rest.rpartition(".")
    return module, param


# ----------------------------------------------------------------------------
# UNet
# ----------------------------------------------------------------------------


def _has_attn(block_type: str) -> bool:
    return "CrossAttn" in block_type


def unet_module_table(cfg) -> List[Tuple[str, str, str]]:
    """List of (diffusers module prefix, original module prefix, kind).

    kind: 'plain' (identical leaf names), 'resnet' (UNET_RESNET_LEAVES).
    Derived from openaimodel.UNetModel's construction order:
      input_blocks[0]          = conv_in
      input_blocks[k]          = [ResBlock, (SpatialTransformer)] per layer, then
                                 [Downsample] (its conv is called 'op') after every level but the last
      middle_block             = [ResBlock, SpatialTransformer, ResBlock]
      output_blocks[k]         = [ResBlock, (SpatialTransformer), (Upsample)] with
                                 layers_per_block + 1 layers per level; Upsample on the last
                                 layer of every level but the last
      out                      = [GroupNorm, SiLU, conv]
      time_embed               = [Linear, SiLU, Linear]
    """
    down = list(cfg["down_block_types"])
    up = list(cfg["up_block_types"])
    lpb = cfg["layers_per_block"]
    if not isinstance(lpb, int):
        raise ValueError("per-block layers_per_block is not supported")
    t = []
    t.append(("time_embedding.linear_1", "time_embed.0", "plain"))
    t.append(("time_embedding.linear_2", "time_embed.2", "plain"))
    t.append(("conv_in", "input_blocks.0.0", "plain"))
    k = 1
    for i, bt in enumerate(down):
        for j in range(lpb):
            t.append((f"down_blocks.{i}.resnets.{j}", f"input_blocks.{k}.0", "resnet"))
            if _has_attn(bt):
                t.append((f"down_blocks.{i}.attentions.{j}", f"input_blocks.{k}.1", "plain"))
            k += 1
        if i != len(down) - 1:
            t.append((f"down_blocks.{i}.downsamplers.0.conv", f"input_blocks.{k}.0.op", "plain"))
            k += 1
    mid = cfg.get("mid_block_type", "UNetMidBlock2DCrossAttn") or "UNetMidBlock2DCrossAttn"
    if mid != "UNetMidBlock2DCrossAttn":
        raise ValueError(f"unsupported mid block {mid}")
    t.append(("mid_block.resnets.0", "middle_block.0", "resnet"))
    t.append(("mid_block.attentions.0", "middle_block.1", "plain"))
    t.append(("mid_block.resnets.1", "middle_block.2", "resnet"))
    k = 0
    for i, bt in enumerate(up):
        for j in range(lpb + 1):
            t.append((f"up_blocks.{i}.resnets.{j}", f"output_blocks.{k}.0", "resnet"))
            n = 1
            if _has_attn(bt):
                t.append((f"up_blocks.{i}.attentions.{j}", f"output_blocks.{k}.1", "plain"))
                n = 2
            if j == lpb and i != len(up) - 1:
                t.append((f"up_blocks.{i}.upsamplers.0.conv", f"output_blocks.{k}.{n}.conv", "plain"))
            k += 1
    t.append(("conv_norm_out", "out.0", "plain"))
    t.append(("conv_out", "out.2", "plain"))
    return t


# ----------------------------------------------------------------------------
# VAE
# ----------------------------------------------------------------------------


def vae_module_table(cfg) -> List[Tuple[str, str, str]]:
    """(diffusers prefix, original prefix, kind) for AutoencoderKL.

    Original decoder 'up' list is indexed from the LOWEST resolution upwards in
    reverse: diffusers decoder.up_blocks.i == original decoder.up.(n-1-i).
    The decoder has layers_per_block + 1 resnets per level.
    """
    n_down = len(cfg["down_block_types"])
    n_up = len(cfg["up_block_types"])
    lpb = cfg["layers_per_block"]
    t = []
    for side in ("encoder", "decoder"):
        t.append((f"{side}.conv_in", f"{side}.conv_in", "plain"))
        t.append((f"{side}.conv_out", f"{side}.conv_out", "plain"))
        t.append((f"{side}.conv_norm_out", f"{side}.norm_out", "plain"))
        t.append((f"{side}.mid_block.resnets.0", f"{side}.mid.block_1", "vae_resnet"))
        t.append((f"{side}.mid_block.attentions.0", f"{side}.mid.attn_1", "vae_attn"))
        t.append((f"{side}.mid_block.resnets.1", f"{side}.mid.block_2", "vae_resnet"))
    for i in range(n_down):
        for j in range(lpb):
            t.append((f"encoder.down_blocks.{i}.resnets.{j}", f"encoder.down.{i}.block.{j}", "vae_resnet"))
        if i != n_down - 1:
            t.append((f"encoder.down_blocks.{i}.downsamplers.0.conv", f"encoder.down.{i}.downsample.conv", "plain"))
    for i in range(n_up):
        o = n_up - 1 - i
        for j in range(lpb + 1):
            t.append((f"decoder.up_blocks.{i}.resnets.{j}", f"decoder.up.{o}.block.{j}", "vae_resnet"))
        if i != n_up - 1:
            t.append((f"decoder.up_blocks.{i}.upsamplers.0.conv", f"decoder.up.{o}.upsample.conv", "plain"))
    t.append(("quant_conv", "quant_conv", "plain"))
    t.append(("post_quant_conv", "post_quant_conv", "plain"))
    return t


# ----------------------------------------------------------------------------
# Generic prefix-table conversion
# ----------------------------------------------------------------------------

_LEAVES = {
    "plain": None,
    "resnet": UNET_RESNET_LEAVES,
    "vae_resnet": VAE_RESNET_LEAVES,
    "vae_attn": VAE_ATTN_LEAVES,
}


def _match(key: str, prefixes: Iterable[str]):
    best = None
    for p in prefixes:
        if key.startswith(p + ".") and (best is None or len(p) > len(best)):
            best = p
    return best


def _convert_with_table(sd: Dict[str, torch.Tensor], table, forward: bool) -> Dict[str, torch.Tensor]:
    """forward=True: diffusers -> original; False: original -> diffusers."""
    src_index = {(d if forward else o): (d, o, kind) for d, o, kind in table}
    out: Dict[str, torch.Tensor] = {}
    for key, tensor in sd.items():
        p = _match(key, src_index.keys())
        if p is None:
            raise KeyError(f"no mapping rule for {key!r}")
        d, o, kind = src_index[p]
        rest = key[len(p) + 1:]
        leaves = _LEAVES[kind]
        module, param = _split_leaf(rest)
        if leaves is not None:
            table_leaf = leaves if forward else {v: k for k, v in leaves.items()}
            if module not in table_leaf:
                raise KeyError(f"no leaf rule for {key!r} (module {module!r}, kind {kind})")
            new_module = table_leaf[module]
        else:
            new_module = module
        new_key = (o if forward else d) + "." + (new_module + "." if new_module else "") + param
        if kind == "vae_attn" and param == "weight":
            lin_name = module if forward else table_leaf[module]
            if lin_name in VAE_ATTN_CONV_LEAVES:
                if forward:
                    assert tensor.ndim == 2, key
                    tensor = tensor[:, :, None, None]
                else:
                    assert tensor.ndim == 4 and tensor.shape[2:] == (1, 1), key
                    tensor = tensor[:, :, 0, 0]
        if new_key in out:
            raise KeyError(f"two keys map to {new_key!r}")
        out[new_key] = tensor.contiguous()
    return out


# ----------------------------------------------------------------------------
# Text encoders
# ----------------------------------------------------------------------------

def _strip_text_model(sd):
    """Accept transformers 4.x ('text_model.*') and 5.x (no prefix) state dicts."""
    return {(k[len("text_model."):] if k.startswith("text_model.") else k): v for k, v in sd.items()}


def clip_to_original(te_sd):
    """SD1: HF CLIPTextModel weights kept as-is under cond_stage_model.transformer.text_model."""
    return {CLIP_PREFIX + "text_model." + k: v for k, v in _strip_text_model(te_sd).items()}


def clip_from_original(ckpt):
    """Returns (state_dict, ignored_keys).  `embeddings.position_ids` (an int buffer that
    many SD1 checkpoints carry; transformers 5 does not persist it) is ignored."""
    pre = CLIP_PREFIX + "text_model."
    out, ignored = {}, []
    for k, v in ckpt.items():
        if not k.startswith(pre):
            continue
        if k[len(pre):] == "embeddings.position_ids":
            ignored.append(k)
        else:
            out[k[len(pre):]] = v
    return out, ignored


_LAYER_RE = re.compile(r"^encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$")
_RESBLOCK_RE = re.compile(r"^transformer\.resblocks\.(\d+)\.(.+)$")


def openclip_to_original(te_sd, hidden_size: int):
    """SD2: HF CLIPTextModel -> OpenCLIP text tower names (without the extras)."""
    sd = _strip_text_model(te_sd)
    out = {}
    qkv: Dict[Tuple[int, str], Dict[str, torch.Tensor]] = {}
    for k, v in sd.items():
        if k == "embeddings.token_embedding.weight":
            out["token_embedding.weight"] = v
        elif k == "embeddings.position_embedding.weight":
            out["positional_embedding"] = v
        elif k.startswith("final_layer_norm."):
            out["ln_final." + k.split(".")[-1]] = v
        else:
            m = _LAYER_RE.match(k)
            if not m:
                raise KeyError(f"no OpenCLIP rule for {k!r}")
            n, module, param = int(m.group(1)), m.group(2), m.group(3)
            if module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                qkv.setdefault((n, param), {})[module[-6]] = v
            elif module in OPENCLIP_LAYER_LEAVES:
                out[f"transformer.resblocks.{n}.{OPENCLIP_LAYER_LEAVES[module]}.{param}"] = v
            else:
                raise KeyError(f"no OpenCLIP rule for {k!r}")
    for (n, param), parts in qkv.items():
        assert set(parts) == {"q", "k", "v"}, (n, param, parts.keys())
        for p in parts.values():
            assert p.shape[0] == hidden_size
        out[f"transformer.resblocks.{n}.attn.in_proj_{param}"] = torch.cat(
            [parts["q"], parts["k"], parts["v"]], dim=0).contiguous()
    return {OPENCLIP_PREFIX + k: v for k, v in out.items()}


def openclip_from_original(ckpt, num_layers: int):
    """OpenCLIP -> HF CLIPTextModel (5.x names, no 'text_model.' prefix).

    Only resblocks 0..num_layers-1 are used.  Returns (state_dict, ignored_keys):
    ignored = text_projection, logit_scale and any resblock >= num_layers
    (real SD 2.x checkpoints have 24 resblocks; the diffusers text encoder has
    23 because SD2 conditions on the penultimate layer)."""
    inv_leaves = {v: k for k, v in OPENCLIP_LAYER_LEAVES.items()}
    out, ignored = {}, []
    for full, v in ckpt.items():
        if not full.startswith(OPENCLIP_PREFIX):
            continue
        k = full[len(OPENCLIP_PREFIX):]
        if k == "token_embedding.weight":
            out["embeddings.token_embedding.weight"] = v
        elif k == "positional_embedding":
            out["embeddings.position_embedding.weight"] = v
        elif k.startswith("ln_final."):
            out["final_layer_norm." + k.split(".")[-1]] = v
        elif k in ("text_projection", "logit_scale"):
            ignored.append(full)
        else:
            m = _RESBLOCK_RE.match(k)
            if not m:
                raise KeyError(f"no OpenCLIP rule for {full!r}")
            n, rest = int(m.group(1)), m.group(2)
            if n >= num_layers:
                ignored.append(full)
                continue
            if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
                param = rest.split("_")[-1]
                q, kk, vv = torch.chunk(v, 3, dim=0)
                out[f"encoder.layers.{n}.self_attn.q_proj.{param}"] = q.contiguous()
                out[f"encoder.layers.{n}.self_attn.k_proj.{param}"] = kk.contiguous()
                out[f"encoder.layers.{n}.self_attn.v_proj.{param}"] = vv.contiguous()
            else:
                module, param = _split_leaf(rest)
                if module not in inv_leaves:
                    raise KeyError(f"no OpenCLIP rule for {full!r}")
                out[f"encoder.layers.{n}.{inv_leaves[module]}.{param}"] = v
    return out, ignored


# ----------------------------------------------------------------------------
# Whole checkpoint
# ----------------------------------------------------------------------------

def diffusers_to_original(unet_sd, vae_sd, te_sd, unet_cfg, vae_cfg, te_hidden_size, text_layout):
    """text_layout: 'clip' (SD1) or 'openclip' (SD2). Returns the mapped tensors only
    (no extras)."""
    ckpt = {}
    for k, v in _convert_with_table(unet_sd, unet_module_table(unet_cfg), True).items():
        ckpt[UNET_PREFIX + k] = v
    for k, v in _convert_with_table(vae_sd, vae_module_table(vae_cfg), True).items():
        ckpt[VAE_PREFIX + k] = v
    if text_layout == "clip":
        ckpt.update(clip_to_original(te_sd))
    elif text_layout == "openclip":
        ckpt.update(openclip_to_original(te_sd, te_hidden_size))
    else:
        raise ValueError(text_layout)
    return ckpt


def original_to_diffusers(ckpt, unet_cfg, vae_cfg, te_num_layers, text_layout, extra_ok=()):
    """Returns (unet_sd, vae_sd, te_sd, ignored_keys).  Any key outside the three
    model prefixes must be listed in extra_ok, otherwise KeyError."""
    unet = {k[len(UNET_PREFIX):]: v for k, v in ckpt.items() if k.startswith(UNET_PREFIX)}
    vae = {k[len(VAE_PREFIX):]: v for k, v in ckpt.items() if k.startswith(VAE_PREFIX)}
    ignored = []
    if text_layout == "clip":
        te, ignored = clip_from_original(ckpt)
        te_used = {CLIP_PREFIX + "text_model." + k for k in te}
    else:
        te, ignored = openclip_from_original(ckpt, te_num_layers)
        te_used = {k for k in ckpt if k.startswith(OPENCLIP_PREFIX)} - set(ignored)
    leftovers = [k for k in ckpt
                 if not k.startswith(UNET_PREFIX) and not k.startswith(VAE_PREFIX) and k not in te_used
                 and k not in ignored]
    bad = [k for k in leftovers if k not in extra_ok]
    if bad:
        raise KeyError(f"unmapped original keys: {bad}")
    ignored = sorted(ignored + leftovers)
    unet_sd = _convert_with_table(unet, unet_module_table(unet_cfg), False)
    vae_sd = _convert_with_table(vae, vae_module_table(vae_cfg), False)
    return unet_sd, vae_sd, te, ignored


def verify_roundtrip(unet_sd, vae_sd, te_sd, unet_cfg, vae_cfg, te_hidden_size, te_num_layers,
                     text_layout, ckpt, extra_ok):
    """Checks, raising AssertionError on failure:
      1. original -> diffusers reproduces every diffusers tensor bit-exactly
         (same key set, dtype, shape, values);
      2. every original key is produced by exactly one diffusers key or is a
         declared extra (no leftovers, no collisions);
      3. diffusers -> original -> diffusers is the identity.
    Returns a dict of counts for the report."""
    te_ref = _strip_text_model(te_sd)
    u2, v2, t2, ignored = original_to_diffusers(ckpt, unet_cfg, vae_cfg, te_num_layers, text_layout, extra_ok)
    for name, a, b in (("unet", unet_sd, u2), ("vae", vae_sd, v2), ("text_encoder", te_ref, t2)):
        assert set(a) == set(b), (name, sorted(set(a) ^ set(b))[:10])
        for k in a:
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, (name, k, a[k].shape, b[k].shape)
            assert torch.equal(a[k], b[k]), (name, k)
    mapped = diffusers_to_original(unet_sd, vae_sd, te_sd, unet_cfg, vae_cfg, te_hidden_size, text_layout)
    n_diffusers = len(unet_sd) + len(vae_sd) + len(te_ref)
    # OpenCLIP merges 3 diffusers tensors into one in_proj tensor
    assert set(mapped) | set(ignored) == set(ckpt), sorted(set(ckpt) ^ (set(mapped) | set(ignored)))[:10]
    assert not (set(mapped) & set(ignored))
    for k, v in mapped.items():
        assert torch.equal(v, ckpt[k]) and v.dtype == ckpt[k].dtype, k
    return {"diffusers_tensors": n_diffusers, "original_tensors_mapped": len(mapped),
            "original_tensors_ignored": ignored}
