#!/usr/bin/env python3
"""End-to-end Stable Diffusion pipeline fixtures for Chisel (img2img, inpainting, txt2img).

Runs diffusers' own StableDiffusionImg2ImgPipeline / StableDiffusionInpaintPipeline /
StableDiffusionPipeline on the three tiny random-weight models that generate.py writes, and
records every call's output plus the intermediates Chisel needs to debug stage by stage.

Pins (refused if different, except Pillow which is only recorded):
    Python 3.11, torch 2.15.0 (CPU), diffusers 0.42.1, transformers 5.23.0, numpy 2.4.6,
    scipy 1.17.1 (LMSDiscreteScheduler), safetensors 0.8.0, tomesd 0.1.3 (the token-merging cases),
    Pillow 13.0.0 (comes with diffusers;
    not in requirements.txt; used to write and read the PNGs).

Run by hand, never in CI, after generate.py (generate.py rewrites the model folders and drops
their tokenizer/, which this script puts back):
    tools/.venv/bin/python tools/reference/pipelines.py

It writes
    Tests/ChiselModelsTests/Fixtures/reference/{sd1-tiny,sd2-tiny,sd1-inpaint-tiny}/tokenizer/
        (and the "tokenizer" entry of each model_index.json)
    Tests/ChiselModelStagesTests/Fixtures/pipelines/
        image.png, mask.png, mask-soft.png, inputs.safetensors, cases.json, <case>.safetensors
See tools/reference/PIPELINES.md. Deterministic: two runs write byte-identical files.
"""

from __future__ import annotations

import argparse
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
import scipy
import scipy.ndimage
import safetensors
import torch
from safetensors.torch import save_file

import diffusers
import transformers
from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, HeunDiscreteScheduler, LMSDiscreteScheduler,
                       StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline, StableDiffusionPipeline,
                       UniPCMultistepScheduler)
from diffusers.pipelines.stable_diffusion import pipeline_stable_diffusion_img2img as img2img_module
from transformers import CLIPTokenizer

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "Tests" / "ChiselModelsTests" / "Fixtures" / "reference"
REAL_TOKENIZER = REPO / "Tests" / "ChiselModelsTests" / "Fixtures" / "tokenizer"  # the configs
# The real vocabulary ships with Chisel (Sources/ChiselModels/Resources/CLIP).
REAL_VOCAB = REPO / "Sources" / "ChiselModels" / "Resources" / "CLIP"
DEFAULT_OUT = REPO / "Tests" / "ChiselModelStagesTests" / "Fixtures" / "pipelines"

PINS = {"torch": "2.15.0", "diffusers": "0.42.1", "transformers": "5.23.0", "numpy": "2.4.6",
        "scipy": "1.17.1", "safetensors": "0.8.0"}
PILLOW_EXPECTED = "13.0.0"

WIDTH, HEIGHT = 48, 32          # image size (multiple of 4: VAE x2, UNet x2)
N_MERGES = 486                  # 256 + 256 + 486 + 2 = 1000 = the tiny text encoders' vocab_size
BOS, EOS = 998, 999

FAMILY_FOLDERS = {"sd1-tiny": "clip", "sd2-tiny": "sd2", "sd1-inpaint-tiny": "clip"}


def rel(p: Path) -> str:
    return str(Path(p).resolve().relative_to(REPO))


def check_versions():
    got = {"torch": torch.__version__.split("+")[0], "diffusers": diffusers.__version__,
           "transformers": transformers.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
           "safetensors": safetensors.__version__}
    bad = {k: (got[k], v) for k, v in PINS.items() if got[k] != v}
    if bad:
        sys.exit(f"pipelines.py: version mismatch (got, pinned): {bad}")
    if PIL.__version__ != PILLOW_EXPECTED:
        print(f"warning: Pillow {PIL.__version__}, fixtures were made with {PILLOW_EXPECTED} "
              f"(PNG bytes may differ; pixels must not)")


def versions():
    return {"python": sys.version.split()[0], "torch": torch.__version__, "diffusers": diffusers.__version__,
            "transformers": transformers.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "safetensors": safetensors.__version__, "Pillow": PIL.__version__}


# ======================================================================================
# 1. Tiny CLIP BPE tokenizer
# ======================================================================================

def bytes_to_unicode():
    """CLIP's (and GPT-2's) byte -> printable unicode table, in CLIP's vocabulary order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def build_tiny_vocab():
    """CLIP's own construction (SimpleTokenizer): bytes, bytes+</w>, merged strings, specials;
    truncated to the first N_MERGES merges.  Checked against the real 49408-token vocabulary:
    the first 998 entries must have the same ids there."""
    real_vocab = json.loads((REAL_VOCAB / "vocab.json").read_bytes())
    lines = (REAL_VOCAB / "merges.txt").read_text(encoding="utf-8").split("\n")
    header = lines[0]
    assert header.startswith("#version"), header
    merges = [tuple(line.split(" ")) for line in lines[1:1 + N_MERGES]]
    assert all(len(m) == 2 for m in merges)
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 1000 and len(set(vocab)) == 1000
    for i, tok in enumerate(vocab[:-2]):
        assert real_vocab[tok] == i, (i, tok, real_vocab.get(tok))
    assert vocab.index("<|startoftext|>") == BOS and vocab.index("<|endoftext|>") == EOS
    vocab_json = json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False, separators=(",", ":"))
    merges_txt = header + "\n" + "".join(f"{a} {b}\n" for a, b in merges)
    return vocab_json, merges_txt


TOKENIZER_NULL = '"tokenizer": [\n    null,\n    null\n  ]'
TOKENIZER_CLIP = '"tokenizer": [\n    "transformers",\n    "CLIPTokenizer"\n  ]'


def write_tokenizers(log):
    vocab_json, merges_txt = build_tiny_vocab()
    for fam, cfg_dir in FAMILY_FOLDERS.items():
        fam_dir = MODELS / fam
        tok = fam_dir / "tokenizer"
        tok.mkdir(exist_ok=True)
        (tok / "vocab.json").write_bytes(vocab_json.encode("utf-8"))
        (tok / "merges.txt").write_bytes(merges_txt.encode("utf-8"))
        for f in ("tokenizer_config.json", "special_tokens_map.json"):
            shutil.copyfile(REAL_TOKENIZER / cfg_dir / f, tok / f)
        mi = fam_dir / "model_index.json"
        text = mi.read_text()
        before = json.loads(text)
        if TOKENIZER_NULL in text:
            text = text.replace(TOKENIZER_NULL, TOKENIZER_CLIP)
            mi.write_text(text)
        assert TOKENIZER_CLIP in text, f"{mi}: unexpected tokenizer entry"
        after = json.loads(text)
        assert {k: v for k, v in before.items() if k != "tokenizer"} == {k: v for k, v in after.items() if k != "tokenizer"}
        log(f"  {rel(tok)}: vocab.json {len(vocab_json.encode())} B, merges.txt {len(merges_txt.encode())} B, "
            f"configs from {rel(REAL_TOKENIZER / cfg_dir)}")


TOKENIZER_CHECKS = [
    "a photograph of an astronaut riding a horse",
    "A Red FOX, sitting in the snow -- 4k, highly detailed!",
    "café crème brûlée, naïve façade, Ångström, Øresund",
    "emoji: 🦊🔥👩‍🚀 ✨",
    "wow!!! great!",
    "日本語のテキスト and Ελληνικά",
    "",
]


def check_tokenizers(log):
    fam_dir = MODELS / "sd1-tiny" / "tokenizer"
    t = CLIPTokenizer(str(fam_dir / "vocab.json"), str(fam_dir / "merges.txt"))
    assert (t.bos_token_id, t.eos_token_id) == (BOS, EOS), (t.bos_token_id, t.eos_token_id)
    assert len(t) == 1000, len(t)
    ids_by = {}
    for fam, pad in (("sd1-tiny", EOS), ("sd2-tiny", 0), ("sd1-inpaint-tiny", EOS)):
        tf = CLIPTokenizer.from_pretrained(MODELS / fam / "tokenizer")
        assert (tf.bos_token_id, tf.eos_token_id, tf.pad_token_id, tf.model_max_length) == (BOS, EOS, pad, 77), \
            (fam, tf.bos_token_id, tf.eos_token_id, tf.pad_token_id, tf.model_max_length)
        assert len(tf) == 1000, (fam, len(tf))
        for s in TOKENIZER_CHECKS:
            ids = tf(s).input_ids
            if pad == EOS:
                # SD1 folders behave exactly like CLIPTokenizer(vocab_file, merges_file)
                assert ids == t(s).input_ids, (fam, s)
            elif "!" not in s:
                assert ids == t(s).input_ids, (fam, s)
            assert ids[0] == BOS and ids[-1] == EOS and all(0 <= i < BOS for i in ids[1:-1]), (fam, s, ids)
            padded = tf(s, padding="max_length", max_length=77, truncation=True).input_ids
            assert len(ids) <= 77 and padded == ids + [pad] * (77 - len(ids)), (fam, s)
            ids_by.setdefault(s, {})["sd2" if pad == 0 else "sd1"] = ids
    checks = [{"text": s, "sd1_input_ids": ids_by[s]["sd1"], "sd2_input_ids": ids_by[s]["sd2"]}
              for s in TOKENIZER_CHECKS]
    out = {"vocab_size": 1000, "bos": BOS, "eos": EOS, "pad_sd1": EOS, "pad_sd2": 0, "merges": N_MERGES,
           "built_from": "Sources/ChiselModels/Resources/CLIP: bytes_to_unicode symbols (0-255), the same "
                         "with </w> (256-511), the first 486 merges (512-997), <|startoftext|> 998, <|endoftext|> 999",
           "ids_from": f"transformers {transformers.__version__} CLIPTokenizer.from_pretrained(<family>/tokenizer) "
                       "(tokenizers-backed; no ftfy; NFC + whitespace collapse + lowercase), unpadded, with BOS/EOS. "
                       "SD2's pad token '!' (id 0) is an added token, so every '!' in a text becomes id 0 on its own "
                       "(as with the real SD 2.x tokenizer); SD1 ids and SD2 ids differ only there.",
           "checks": checks}
    log(f"  tokenizer checks: {len(checks)} texts, ids < 1000, BOS/EOS 998/999, pad 999 (SD1) / 0 (SD2)")
    return out


# ======================================================================================
# 2. Input images
# ======================================================================================

def make_image():
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    u, v = x / (WIDTH - 1), y / (HEIGHT - 1)
    img = np.stack([0.15 + 0.70 * u,
                    0.20 + 0.60 * v,
                    0.50 + 0.35 * np.sin(2 * np.pi * 0.75 * (u + v))], axis=-1)
    # an anti-aliased yellow disc
    d = np.sqrt((x - 14.5) ** 2 + (y - 13.0) ** 2)
    a = np.clip(8.5 - d + 0.5, 0, 1)[..., None]
    img = img * (1 - a) + a * np.array([0.95, 0.85, 0.20])
    # a dark blue rectangle and a thin white diagonal line
    img[19:29, 30:43] = [0.10, 0.25, 0.75]
    line = np.abs((x - 4) - 1.4 * (y - 2)) < 0.8
    img[line & (x > 26)] = [0.98, 0.98, 0.98]
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def make_mask():
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    inside = ((x - 24.3) / 13.1) ** 2 + ((y - 15.2) / 9.4) ** 2 <= 1.0
    return np.where(inside, 255, 0).astype(np.uint8)


def make_soft_mask():
    m = np.zeros((HEIGHT, WIDTH), np.float64)
    m[7:25, 9:33] = 1.0
    m = scipy.ndimage.gaussian_filter(m, sigma=3.0, mode="nearest")
    return np.clip(np.round(m * 255), 0, 255).astype(np.uint8)


def save_png(arr: np.ndarray, path: Path, mode: str):
    PIL.Image.fromarray(arr, mode=mode).save(path, format="PNG", optimize=False, compress_level=9)


def load_png(path: Path, mode: str, expected: np.ndarray) -> PIL.Image.Image:
    im = PIL.Image.open(path)
    im.load()
    assert im.mode == mode and im.size == (WIDTH, HEIGHT), (path, im.mode, im.size)
    assert np.array_equal(np.asarray(im), expected), path
    return im


# ======================================================================================
# 3. Capture machinery
# ======================================================================================

def fnv1a64(t: torch.Tensor) -> str:
    data = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


class Capture:
    """Global recorder, active during one pipeline call."""
    def __init__(self):
        self.gen = None
        self.draws = []          # (origin path, tensor)
        self.vae_samples = []    # (origin path, unscaled latent_dist sample)


CAP = Capture()
_orig_randn = torch.randn


def _origin_path():
    names = []
    f = sys._getframe(2)
    while f is not None:
        fn = f.f_code.co_filename
        if "diffusers" in fn:
            if f.f_code.co_name == "__call__":
                break
            if f.f_code.co_name not in ("randn_tensor", "decorate_context"):
                names.append(f"{Path(fn).stem}.{f.f_code.co_name}")
        f = f.f_back
    return " < ".join(names)


def _recording_randn(*args, generator=None, **kwargs):
    out = _orig_randn(*args, generator=generator, **kwargs)
    if CAP.gen is not None and generator is CAP.gen:
        CAP.draws.append((_origin_path(), out.detach().clone()))
    return out


torch.randn = _recording_randn

_orig_retrieve_latents = img2img_module.retrieve_latents


def _recording_retrieve_latents(encoder_output, generator=None, sample_mode="sample"):
    out = _orig_retrieve_latents(encoder_output, generator=generator, sample_mode=sample_mode)
    if CAP.gen is not None:
        CAP.vae_samples.append((_origin_path(), out.detach().clone()))
    return out


img2img_module.retrieve_latents = _recording_retrieve_latents


def draw_name(origin: str) -> str:
    if "vae.sample" in origin and "prepare_mask_latents" in origin:
        return "vae_sample_noise_masked_image"
    if "vae.sample" in origin:
        return "vae_sample_noise_image"
    if origin.split(" < ")[0].endswith(".prepare_latents"):
        return "noise"
    if ".step" in origin and "scheduling_" in origin:
        return "scheduler_step_noise"
    return "other"


# ======================================================================================
# 4. Cases
# ======================================================================================

PROMPT_A = "a red fox sitting in a snowy forest, highly detailed"
PROMPT_B = "an old stone lighthouse on a cliff at sunset"
PROMPT_C = "a bowl of ripe oranges on a wooden table"
NEG_A = "blurry, low quality"
NEG_B = "text, watermark"
LONG_PROMPT = ("a very long prompt about a quiet mountain village in the early morning with thin fog over the "
               "river, wooden houses with red roofs, smoke rising from chimneys, a small bridge, pine trees, "
               "snow on the distant peaks, warm light, soft shadows, and birds flying over the valley")

SCHEDULERS = {
    "pndm": (None, {}),  # the folder's own scheduler (PNDMScheduler / DDIMScheduler for sd2-tiny)
    "ddim": (DDIMScheduler, {}),
    "euler": (EulerDiscreteScheduler, {}),
    "euler_a": (EulerAncestralDiscreteScheduler, {}),
    "dpmpp_2m_karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
    "dpmpp_2m_sde_karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True,
                                                          "algorithm_type": "sde-dpmsolver++"}),
    "lms": (LMSDiscreteScheduler, {}),
    "heun": (HeunDiscreteScheduler, {}),
    "unipc": (UniPCMultistepScheduler, {}),
}


def C(name, kind, family, sched, seed, strength=None, guidance=7.5, prompt=PROMPT_A, negative=None, steps=10,
      eta=0.0, mask=None, source="folder", overrides=None, repeat=False, guidance_rescale=0.0, tome=0.0):
    return dict(name=name, kind=kind, family=family, sched=sched, seed=seed, strength=strength, guidance=guidance,
                prompt=prompt, negative=negative, steps=steps, eta=eta, mask=mask, source=source,
                overrides=overrides or {}, repeat=repeat, guidance_rescale=guidance_rescale, tome=tome)


# DDIM from the PNDM config would get DDIMScheduler's default clip_sample=True; real SD 1.5
# scheduler configs say clip_sample false, so the SD1 DDIM cases pass it explicitly.
DDIM_SD1 = {"clip_sample": False}

CASES = [
    # ---- img2img, sd1-tiny (epsilon) --------------------------------------------------------
    C("img2img_sd1_pndm_s080", "img2img", "sd1-tiny", "pndm", 101, 0.8, negative=NEG_A, repeat=True),
    C("img2img_sd1_ddim_s080", "img2img", "sd1-tiny", "ddim", 102, 0.8, prompt=PROMPT_B, overrides=DDIM_SD1),
    C("img2img_sd1_ddim_eta05_s060_g1", "img2img", "sd1-tiny", "ddim", 103, 0.6, guidance=1.0, eta=0.5,
      prompt=PROMPT_C, overrides=DDIM_SD1),
    C("img2img_sd1_euler_s030", "img2img", "sd1-tiny", "euler", 104, 0.3),
    C("img2img_sd1_euler_s080", "img2img", "sd1-tiny", "euler", 105, 0.8, negative=NEG_B),
    C("img2img_sd1_euler_a_s030", "img2img", "sd1-tiny", "euler_a", 106, 0.3, prompt=PROMPT_B),
    C("img2img_sd1_euler_a_s080", "img2img", "sd1-tiny", "euler_a", 107, 0.8, prompt=PROMPT_B, repeat=True),
    C("img2img_sd1_dpmpp_2m_karras_s030", "img2img", "sd1-tiny", "dpmpp_2m_karras", 108, 0.3, prompt=PROMPT_C),
    C("img2img_sd1_dpmpp_2m_karras_s080", "img2img", "sd1-tiny", "dpmpp_2m_karras", 109, 0.8, prompt=PROMPT_C,
      negative=NEG_A),
    C("img2img_sd1_dpmpp_2m_sde_karras_s080", "img2img", "sd1-tiny", "dpmpp_2m_sde_karras", 110, 0.8,
      repeat=True),
    C("img2img_sd1_lms_s080_g1", "img2img", "sd1-tiny", "lms", 111, 0.8, guidance=1.0, prompt=PROMPT_B),
    C("img2img_sd1_heun_s080", "img2img", "sd1-tiny", "heun", 112, 0.8, prompt=PROMPT_C),
    C("img2img_sd1_unipc_s080_g1", "img2img", "sd1-tiny", "unipc", 113, 0.8, guidance=1.0),
    # ---- the same call as img2img_sd1_euler_s080, pipeline loaded from the single file ----------
    C("img2img_sd1_euler_s080_single_file", "img2img", "sd1-tiny", "euler", 105, 0.8, negative=NEG_B,
      source="single_file"),
    # ---- token merging (ToMe for SD as AUTOMATIC1111 applies it: tomesd's merge, no randomness) ----
    C("img2img_sd1_euler_s080_tome05", "img2img", "sd1-tiny", "euler", 105, 0.8, negative=NEG_B, tome=0.5),
    C("img2img_sd2_euler_a_s080_tome07", "img2img", "sd2-tiny", "euler_a", 205, 0.8, prompt=PROMPT_C, tome=0.7),
    # ---- img2img, sd2-tiny (v_prediction) ---------------------------------------------------
    C("img2img_sd2_ddim_s050", "img2img", "sd2-tiny", "pndm", 201, 0.5, prompt=PROMPT_B, negative=NEG_A),
    C("img2img_sd2_ddim_s080", "img2img", "sd2-tiny", "pndm", 202, 0.8),
    C("img2img_sd2_euler_s050", "img2img", "sd2-tiny", "euler", 203, 0.5, prompt=PROMPT_C),
    C("img2img_sd2_euler_s080", "img2img", "sd2-tiny", "euler", 204, 0.8, prompt=PROMPT_B, repeat=True),
    # ---- inpainting, 9-channel UNet (sd1-inpaint-tiny) -----------------------------------------
    C("inpaint9_pndm_s100", "inpaint", "sd1-inpaint-tiny", "pndm", 301, 1.0, mask="mask.png", negative=NEG_A,
      repeat=True),
    C("inpaint9_pndm_s075_g1", "inpaint", "sd1-inpaint-tiny", "pndm", 302, 0.75, guidance=1.0, mask="mask.png",
      prompt=PROMPT_B),
    C("inpaint9_euler_a_s100_g1", "inpaint", "sd1-inpaint-tiny", "euler_a", 303, 1.0, guidance=1.0,
      mask="mask.png", prompt=PROMPT_C),
    C("inpaint9_euler_a_s075", "inpaint", "sd1-inpaint-tiny", "euler_a", 304, 0.75, mask="mask.png"),
    # ---- inpainting, 4-channel UNet (sd1-tiny): latents blended each step ---------------------
    C("inpaint4_pndm_s075", "inpaint", "sd1-tiny", "pndm", 401, 0.75, mask="mask.png", prompt=PROMPT_B,
      repeat=True),
    C("inpaint4_euler_a_s100", "inpaint", "sd1-tiny", "euler_a", 402, 1.0, mask="mask.png", prompt=PROMPT_C),
    C("inpaint4_euler_s075_soft", "inpaint", "sd1-tiny", "euler", 403, 0.75, mask="mask-soft.png",
      negative=NEG_B),
    # ---- text to image ---------------------------------------------------------------------
    C("txt2img_sd1_euler", "txt2img", "sd1-tiny", "euler", 501, None, prompt=LONG_PROMPT),
    # guidance_rescale (Lin et al. 2024): only StableDiffusionPipeline takes it in diffusers 0.42.
    C("txt2img_sd1_euler_rescale07", "txt2img", "sd1-tiny", "euler", 502, None, prompt=PROMPT_C, negative=NEG_A,
      guidance_rescale=0.7),
]

TENSOR_DOC = {
    "output": "the pipeline's output_type='np' image (H, W, 3) float32 in [0, 1] (before any uint8 rounding)",
    "prompt_embeds": "encode_prompt(...)[0]: text_encoder(prompt ids).last_hidden_state, (1, 77, D)",
    "negative_prompt_embeds": "encode_prompt(...)[1] (CFG only): embeds of the negative prompt, or of '' when none, (1, 77, D); "
                              "the UNet gets cat([negative_prompt_embeds, prompt_embeds]) (batch 2)",
    "image_latents": "scaling_factor * vae.encode(init image).latent_dist.sample(generator), (1, 4, h, w), h = H/2",
    "masked_image_latents": "prepare_mask_latents(...)[1], first batch row: scaling_factor * vae.encode(init * (mask < 0.5)).latent_dist.sample(generator)",
    "mask_latents": "prepare_mask_latents(...)[0], first batch row: the binarized full-size mask, F.interpolate(size=(h, w)) mode nearest, (1, 1, h, w)",
    "mask_condition": "mask_processor.preprocess(mask_image): grayscale, /255, binarized (>= 0.5 -> 1), (1, 1, H, W)",
    "noise": "the randn_tensor draw made in prepare_latents (the initial noise), (1, 4, h, w)",
    "latents_start": "the latents the denoising loop starts from (prepare_latents' result)",
    "timesteps": "the timesteps the loop runs, in order (float64; integers for DDIM/PNDM/DPM, fractional for Euler/LMS/Heun)",
    "scheduler_timesteps": "scheduler.timesteps after set_timesteps(steps), the whole schedule before get_timesteps cuts it",
    "scheduler_sigmas": "scheduler.sigmas after set_timesteps (sigma-based schedulers only; float64 of the float32 values)",
    "model_output_step0": "the (guided) model output passed to scheduler.step at loop index 0, (1, 4, h, w)",
    "latents_step1": "latents after loop index 0 (callback_on_step_end at i == 0; after the 4-channel blend for inpaint4)",
    "latents_final": "latents after the last loop index, i.e. what vae.decode gets times scaling_factor",
}


def scheduler_for(case, pipe_sched):
    cls, over = SCHEDULERS[case["sched"]]
    over = dict(over, **case["overrides"])
    if cls is None:
        assert not over
        return type(pipe_sched).from_config(pipe_sched.config), type(pipe_sched).__name__, over
    return cls.from_config(pipe_sched.config, **over), cls.__name__, over


class Family:
    def __init__(self, name):
        self.name = name
        self.folder = MODELS / name
        cls = StableDiffusionInpaintPipeline if name == "sd1-inpaint-tiny" else StableDiffusionPipeline
        self.base = cls.from_pretrained(self.folder, safety_checker=None, requires_safety_checker=False,
                                        torch_dtype=torch.float32)
        assert self.base.safety_checker is None and isinstance(self.base.tokenizer, CLIPTokenizer)
        for m in (self.base.unet, self.base.vae, self.base.text_encoder):
            m.eval()
            assert all(p.dtype == torch.float32 for p in m.parameters())
        self.single = None

    def components(self, source):
        if source == "folder":
            return dict(self.base.components)
        if self.single is None:
            self.single = load_single_file(self)
        return dict(self.single.components)


def load_single_file(fam: Family):
    """from_single_file with a config folder that holds only configs and the tokenizer (no weights), so the
    UNet, VAE and text encoder can only come from the single file; then compare with the folder's weights."""
    path = MODELS / f"{fam.name}.safetensors"
    tmp = Path(tempfile.mkdtemp(prefix="chisel-sf-"))
    try:
        for p in fam.folder.rglob("*"):
            if p.is_file() and p.suffix in (".json", ".txt") and not p.name.startswith(("expected_", "meta")):
                dst = tmp / p.relative_to(fam.folder)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, dst)
        pipe = StableDiffusionImg2ImgPipeline.from_single_file(
            str(path), config=str(tmp), local_files_only=True, safety_checker=None, requires_safety_checker=False,
            torch_dtype=torch.float32)
    finally:
        shutil.rmtree(tmp)
    for comp in ("unet", "vae", "text_encoder"):
        a = getattr(fam.base, comp).state_dict()
        b = getattr(pipe, comp).state_dict()
        assert set(a) == set(b), (comp, sorted(set(a) ^ set(b))[:5])
        assert all(torch.equal(a[k], b[k]) for k in a), comp
        assert all(p.dtype == torch.float32 for p in getattr(pipe, comp).parameters())
    assert dict(pipe.scheduler.config) == dict(fam.base.scheduler.config)
    return pipe


def tokenize(tok, text):
    return tok(text, padding="max_length", max_length=tok.model_max_length, truncation=True).input_ids


def apply_token_merging(unet, ratio):
    """ToMe for SD on every BasicTransformerBlock of `unet` as AUTOMATIC1111 applies tomesd: self-attention
    only, max_downsample 1, sx = sy = 2, use_rand off. The merge itself is tomesd's
    bipartite_soft_matching_random2d; the plan is made from each block's input, as tomesd's block does.
    Returns the hook handles and the patched modules, to undo."""
    import math
    import tomesd.merge
    from diffusers.models.attention import BasicTransformerBlock
    size = {}
    handles = [unet.register_forward_pre_hook(lambda m, args: size.__setitem__("hw", tuple(args[0].shape[2:4])))]
    patched = []
    for block in unet.modules():
        if not isinstance(block, BasicTransformerBlock):
            continue
        plan = {}

        def pre(mod, args, kwargs, plan=plan):
            x = args[0] if args else kwargs["hidden_states"]
            h0, w0 = size["hw"]
            downsample = int(math.ceil(math.sqrt(h0 * w0 // x.shape[1])))
            if downsample <= 1:
                w, h = int(math.ceil(w0 / downsample)), int(math.ceil(h0 / downsample))
                plan["mu"] = tomesd.merge.bipartite_soft_matching_random2d(x, w, h, 2, 2, int(x.shape[1] * ratio),
                                                                           no_rand=True)
            else:
                plan["mu"] = None
        handles.append(block.register_forward_pre_hook(pre, with_kwargs=True))
        attn = block.attn1
        original = attn.forward

        def forward(hidden_states, *a, original=original, plan=plan, **k):
            if plan["mu"] is None:
                return original(hidden_states, *a, **k)
            m, u = plan["mu"]
            return u(original(m(hidden_states), *a, **k))
        attn.forward = forward
        patched.append(attn)
    return handles, patched


def run_case(case, fams, images, shared):
    fam = fams[case["family"]]
    comps = fam.components(case["source"])
    cls = {"img2img": StableDiffusionImg2ImgPipeline, "inpaint": StableDiffusionInpaintPipeline,
           "txt2img": StableDiffusionPipeline}[case["kind"]]
    comps.pop("image_encoder", None)
    comps["safety_checker"] = None
    comps["feature_extractor"] = None
    comps["requires_safety_checker"] = False
    base_sched = comps["scheduler"]
    sched, sched_cls, over = scheduler_for(case, base_sched)
    comps["scheduler"] = sched
    pipe = cls(**comps)
    pipe.set_progress_bar_config(disable=True)
    sf = pipe.vae.config.scaling_factor

    rec = {"embeds": None, "prep": [], "mask": None, "encode_vae": [], "step_inputs": [], "cb": [],
           "decode_in": [], "unet_batches": [], "img_pre": [], "mask_pre": []}

    def wrap(obj, name, post):
        orig = getattr(obj, name)

        @functools.wraps(orig)
        def w(*a, **k):
            out = orig(*a, **k)
            post(out, a, k)
            return out
        setattr(obj, name, w)

    wrap(pipe, "encode_prompt", lambda o, a, k: rec.__setitem__("embeds", o))
    wrap(pipe, "prepare_latents", lambda o, a, k: rec["prep"].append(o))
    wrap(pipe.image_processor, "preprocess", lambda o, a, k: rec["img_pre"].append(o.clone()))
    if case["kind"] == "inpaint":
        wrap(pipe, "prepare_mask_latents", lambda o, a, k: rec.__setitem__("mask", o))
        wrap(pipe, "_encode_vae_image", lambda o, a, k: rec["encode_vae"].append((_origin_path(), o.clone())))
        wrap(pipe.mask_processor, "preprocess", lambda o, a, k: rec["mask_pre"].append(o.clone()))
    step_orig = pipe.scheduler.step

    @functools.wraps(step_orig)
    def step_rec(model_output, timestep, sample, *a, **k):
        rec["step_inputs"].append(model_output.detach().clone())
        return step_orig(model_output, timestep, sample, *a, **k)
    pipe.scheduler.step = step_rec

    vae_decode = pipe.vae.decode

    def decode_rec(z, *a, **k):
        rec["decode_in"].append(z.detach().clone())
        return vae_decode(z, *a, **k)
    hook = pipe.unet.register_forward_pre_hook(lambda m, args: rec["unet_batches"].append(int(args[0].shape[0])))
    tome_handles, tome_patched = apply_token_merging(pipe.unet, case["tome"]) if case["tome"] else ([], [])

    def on_step_end(p, i, t, kw):
        rec["cb"].append((i, t.detach().clone() if torch.is_tensor(t) else torch.tensor(t),
                          kw["latents"].detach().clone()))
        return {}

    kwargs = dict(prompt=case["prompt"], negative_prompt=case["negative"], num_inference_steps=case["steps"],
                  guidance_scale=case["guidance"], eta=case["eta"], output_type="np",
                  callback_on_step_end=on_step_end, callback_on_step_end_tensor_inputs=["latents"])
    if case["kind"] in ("img2img", "inpaint"):
        kwargs.update(image=images["image.png"], strength=case["strength"])
    if case["kind"] == "inpaint":
        kwargs.update(mask_image=images[case["mask"]], height=HEIGHT, width=WIDTH, padding_mask_crop=None)
    if case["kind"] == "txt2img":
        kwargs.update(height=HEIGHT, width=WIDTH, guidance_rescale=case["guidance_rescale"])

    def call():
        for v in rec.values():
            if isinstance(v, list):
                v.clear()
        gen = torch.Generator().manual_seed(case["seed"])
        CAP.gen, CAP.draws, CAP.vae_samples = gen, [], []
        pipe.vae.decode = decode_rec
        try:
            out = pipe(generator=gen, **kwargs).images
        finally:
            CAP.gen = None
            pipe.vae.decode = vae_decode
        # the generator was used for exactly the recorded randn draws: replay them on a fresh one
        replay = torch.Generator().manual_seed(case["seed"])
        for _, d in CAP.draws:
            chk = _orig_randn(d.shape, generator=replay, dtype=d.dtype)
            assert torch.equal(chk, d)
        assert torch.equal(replay.get_state(), gen.get_state()), "generator used outside torch.randn"
        return out, list(CAP.draws), list(CAP.vae_samples)

    t0 = time.time()
    try:
        output, draws, vae_samples = call()
        elapsed = time.time() - t0
        repeat_same = None
        if case["repeat"]:
            snapshot = {k: [x for x in v] if isinstance(v, list) else v for k, v in rec.items()}
            out2, draws2, _ = call()
            repeat_same = bool(np.array_equal(out2, output) and out2.dtype == output.dtype)
            assert repeat_same, f"{case['name']}: repeated call differs (max {np.abs(out2 - output).max()})"
            assert len(draws2) == len(draws) and all(torch.equal(a[1], b[1]) for a, b in zip(draws, draws2))
            rec.update(snapshot)
    finally:
        hook.remove()
        pipe.vae.decode = vae_decode
        for handle in tome_handles:
            handle.remove()
        for attn in tome_patched:
            del attn.forward

    # ---------------- collect ----------------
    assert output.dtype == np.float32 and output.shape == (1, HEIGHT, WIDTH, 3), (output.dtype, output.shape)
    T = {"output": torch.from_numpy(output[0].copy())}
    cfg = pipe.do_classifier_free_guidance
    pe, ne = rec["embeds"]
    T["prompt_embeds"] = pe
    if cfg:
        T["negative_prompt_embeds"] = ne
    else:
        assert ne is None
    # draws
    names = [draw_name(o) for o, _ in draws]
    assert "other" not in names, [o for o, _ in draws]
    step_draws = [d for (o, d), n in zip(draws, names) if n == "scheduler_step_noise"]
    # Only the initial noise is stored; every draw (the VAE samples' and the schedulers' too) is listed in
    # cases.json with its shape, first values and FNV-1a hash, which Chisel's torch-exact generator can match.
    assert names.count("noise") == 1, names
    for n in set(names) - {"scheduler_step_noise"}:
        assert names.count(n) == 1, names
    T["noise"] = draws[names.index("noise")][1]
    n_step_draws = len(step_draws)
    # image latents
    kind = case["kind"]
    if kind == "img2img":
        assert len(vae_samples) == 1 and len(rec["prep"]) == 1
        T["image_latents"] = sf * vae_samples[0][1]
        T["latents_start"] = rec["prep"][0]
        assert len(rec["img_pre"]) == 1 and torch.equal(rec["img_pre"][0], shared["image"])
    elif kind == "inpaint":
        lat_out = rec["prep"][0]
        T["latents_start"] = lat_out[0]
        assert torch.equal(lat_out[1], T["noise"])
        enc = rec["encode_vae"]
        img_enc = [e for o, e in enc if "prepare_mask_latents" not in o]
        msk_enc = [e for o, e in enc if "prepare_mask_latents" in o]
        assert len(msk_enc) == 1 and len(img_enc) <= 1
        if img_enc:
            T["image_latents"] = img_enc[0]
            if len(lat_out) == 3:
                assert torch.equal(lat_out[2], img_enc[0])
        mask, mil = rec["mask"]
        b = mask.shape[0] // 2 if cfg else mask.shape[0]
        assert b == 1
        if cfg:
            assert torch.equal(mask[:1], mask[1:]) and torch.equal(mil[:1], mil[1:])
        T["mask_latents"] = mask[:1]
        T["masked_image_latents"] = mil[:1]
        assert torch.equal(msk_enc[0], mil[:1])
        assert len(rec["mask_pre"]) == 1 and torch.equal(rec["mask_pre"][0], shared["mask_condition_" + case["mask"]])
        assert len(rec["img_pre"]) == 1 and torch.equal(rec["img_pre"][0], shared["image"])
    else:
        T["latents_start"] = rec["prep"][0]
    # loop
    cb = rec["cb"]
    ts = torch.stack([c[1].reshape(()) for c in cb]).to(torch.float64)
    T["timesteps"] = ts
    T["scheduler_timesteps"] = pipe.scheduler.timesteps.to(torch.float64)
    if getattr(pipe.scheduler, "sigmas", None) is not None and torch.is_tensor(pipe.scheduler.sigmas):
        T["scheduler_sigmas"] = pipe.scheduler.sigmas.to(torch.float64)
    T["model_output_step0"] = rec["step_inputs"][0]
    T["latents_step1"] = cb[0][2]
    T["latents_final"] = cb[-1][2]
    assert [c[0] for c in cb] == list(range(len(cb)))
    assert len(rec["decode_in"]) == 1 and torch.equal(rec["decode_in"][0], T["latents_final"] / sf)
    assert len(rec["unet_batches"]) == len(cb) and set(rec["unet_batches"]) == {2 if cfg else 1}
    assert len(rec["step_inputs"]) == len(cb)

    out = {}
    for k, v in T.items():
        v = v.detach().contiguous()
        if v.dtype not in (torch.float64, torch.int64):
            assert v.dtype == torch.float32, (k, v.dtype)
        out[k] = v

    tok = pipe.tokenizer
    ids = {"prompt": tokenize(tok, case["prompt"])}
    if cfg:
        ids["negative_prompt"] = tokenize(tok, case["negative"] if case["negative"] is not None else "")
    untruncated = len(tok(case["prompt"]).input_ids)
    sched_cfg = {k: v for k, v in dict(pipe.scheduler.config).items() if not k.startswith("_")}
    init_sigma = pipe.scheduler.init_noise_sigma
    init_sigma = float(init_sigma) if not torch.is_tensor(init_sigma) else float(init_sigma.item())
    steps = case["steps"]
    entry = {
        "name": case["name"],
        "kind": kind,
        "family": case["family"],
        "folder": rel(fam.folder),
        "loaded_from": case["source"],
        "pipeline": cls.__name__,
        "unet_in_channels": pipe.unet.config.in_channels,
        "prediction_type": pipe.scheduler.config.prediction_type,
        "scheduler": {"class": type(pipe.scheduler).__name__,
                      "from_config_of": type(base_sched).__name__ + " (the folder's scheduler/scheduler_config.json)",
                      "overrides": over, "order": pipe.scheduler.order, "config": sched_cfg},
        "num_inference_steps": steps,
        "strength": case["strength"],
        "guidance_scale": case["guidance"],
        "guidance_rescale": case["guidance_rescale"],
        **({"token_merging": case["tome"]} if case["tome"] else {}),
        "do_classifier_free_guidance": cfg,
        "prompt": case["prompt"],
        "negative_prompt": case["negative"],
        "seed": case["seed"],
        "generator": "torch.Generator() (CPU).manual_seed(seed), passed as generator=",
        "eta": case["eta"],
        "height": HEIGHT, "width": WIDTH,
        "height_width_passed": kind in ("inpaint", "txt2img"),
        "image": "image.png" if kind != "txt2img" else None,
        "mask": case["mask"],
        "input_ids": ids,
        "prompt_tokens_untruncated": untruncated,
        "init_noise_sigma": init_sigma,
        "loop_steps": len(cb),
        "timesteps": [float(x) for x in ts.tolist()],
        "unet_calls": len(rec["unet_batches"]),
        "unet_batch": 2 if cfg else 1,
        "scheduler_step_draws": n_step_draws,
        "rng_draws": [{"name": n, "origin": o, "shape": list(d.shape), "first": [float(x) for x in d.flatten()[:4]],
                       "fnv1a64_f32le": fnv1a64(d)} for (o, d), n in zip(draws, names)],
        "file": case["name"] + ".safetensors",
        "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")} for k, v in out.items()},
        "output_stats": {"min": float(output.min()), "max": float(output.max()), "mean": float(output.mean(dtype=np.float64))},
        "repeat_call_identical": repeat_same,
    }
    if kind != "txt2img":
        init_timestep = min(int(steps * case["strength"]), steps)
        entry["t_start"] = max(steps - init_timestep, 0)
        entry["begin_index"] = entry["t_start"] * pipe.scheduler.order
        entry["effective_steps"] = steps - entry["t_start"]
    if kind == "inpaint":
        entry["is_strength_max"] = case["strength"] == 1.0
        entry["blend_4ch"] = pipe.unet.config.in_channels == 4
        entry["padding_mask_crop"] = None
    if case["source"] == "single_file":
        entry["single_file"] = rel(MODELS / f"{case['family']}.safetensors")
        entry["single_file_load"] = ("StableDiffusionImg2ImgPipeline.from_single_file(single_file, config=<copy of the "
                                     "folder with only its JSON/txt files>, local_files_only=True, safety_checker=None, "
                                     "requires_safety_checker=False, torch_dtype=float32); UNet, VAE and text encoder "
                                     "weights checked equal to the folder's")
    return entry, out, output, elapsed


def to_json(o, ind=0):
    """json with one level of indent per dict/list of containers; lists of scalars on one line."""
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
    return json.dumps(o, ensure_ascii=False)


# ======================================================================================
# main
# ======================================================================================

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    check_versions()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    diffusers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    t0 = time.time()
    log = print
    log(f"torch {torch.__version__}, diffusers {diffusers.__version__}, transformers {transformers.__version__}, "
        f"numpy {np.__version__}, Pillow {PIL.__version__}")

    log("tokenizers:")
    write_tokenizers(log)
    tok_info = check_tokenizers(log)

    out_dir = args.out
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)

    # ---- inputs ----
    arrays = {"image.png": (make_image(), "RGB"), "mask.png": (make_mask(), "L"), "mask-soft.png": (make_soft_mask(), "L")}
    images = {}
    for fname, (arr, mode) in arrays.items():
        save_png(arr, out_dir / fname, mode)
        images[fname] = load_png(out_dir / fname, mode, arr)
    # what the processors make of them (checked against every pipeline call)
    from diffusers.image_processor import VaeImageProcessor
    img_proc = VaeImageProcessor(vae_scale_factor=2)
    mask_proc = VaeImageProcessor(vae_scale_factor=2, do_normalize=False, do_binarize=True, do_convert_grayscale=True)
    shared = {"image": img_proc.preprocess(images["image.png"])}
    exp_img = torch.from_numpy(arrays["image.png"][0].astype(np.float32) / 255.0).permute(2, 0, 1)[None] * 2.0 - 1.0
    assert torch.equal(shared["image"], exp_img)
    for m in ("mask.png", "mask-soft.png"):
        mc = mask_proc.preprocess(images[m], height=HEIGHT, width=WIDTH)
        a = arrays[m][0].astype(np.float32) / 255.0
        assert torch.equal(mc, torch.from_numpy((a >= 0.5).astype(np.float32))[None, None])
        shared["mask_condition_" + m] = mc
    inputs_t = {"image": shared["image"],
                "mask_condition": shared["mask_condition_mask.png"],
                "mask_soft_condition": shared["mask_condition_mask-soft.png"]}
    save_file({k: v.contiguous() for k, v in inputs_t.items()}, str(out_dir / "inputs.safetensors"),
              metadata={"generator": "tools/reference/pipelines.py"})
    soft = arrays["mask-soft.png"][0]
    log(f"inputs: image.png {WIDTH}x{HEIGHT} RGB, mask.png ({int((arrays['mask.png'][0] > 0).sum())} px white), "
        f"mask-soft.png ({len(np.unique(soft))} gray levels, {int(((soft > 0) & (soft < 255)).sum())} px strictly between 0 and 255)")

    # ---- cases ----
    fams = {name: Family(name) for name in FAMILY_FOLDERS}
    entries = []
    results = {}
    stored = {}
    for case in CASES:
        entry, tensors, output, elapsed = run_case(case, fams, images, shared)
        if case["source"] == "single_file":
            # same call as its folder twin: same expected tensors, checked equal below, not stored twice
            twin = case["name"].replace("_single_file", "")
            for k, v in tensors.items():
                assert torch.equal(v, stored[twin][k]), (case["name"], k)
            entry["file"] = twin + ".safetensors"
        else:
            save_file(tensors, str(out_dir / entry["file"]), metadata={"generator": "tools/reference/pipelines.py"})
        stored[case["name"]] = tensors
        entries.append(entry)
        results[case["name"]] = output
        log(f"  {case['name']}: {entry['scheduler']['class']}, {entry['loop_steps']} loop steps, "
            f"{entry['unet_calls']} UNet calls (batch {entry['unet_batch']}), {len(entry['rng_draws'])} draws, "
            f"{elapsed:.2f} s" + (", repeat identical" if entry["repeat_call_identical"] else ""))

    # the single-file case is the same call as its folder twin
    for e in entries:
        if e["loaded_from"] == "single_file":
            twin = e["name"].replace("_single_file", "")
            same = bool(np.array_equal(results[twin], results[e["name"]]))
            e["same_call_as"] = twin
            e["output_identical_to_folder_case"] = same
            assert same, "single-file pipeline output differs from the folder pipeline's"

    meta = {
        "generator": "tools/reference/pipelines.py",
        "doc": "tools/reference/PIPELINES.md",
        "versions": versions(),
        "torch_threads": 1,
        "image_size": {"width": WIDTH, "height": HEIGHT, "latent_width": WIDTH // 2, "latent_height": HEIGHT // 2},
        "inputs": {
            "image.png": "8-bit RGB PNG; the pipelines get PIL.Image.open(...) of it (mode RGB)",
            "mask.png": "8-bit grayscale (mode L) PNG, 0 or 255; white = repaint",
            "mask-soft.png": "8-bit grayscale PNG, a Gaussian-blurred rectangle (sigma 3); the mask processor binarizes it (>= 128 -> 1)",
            "inputs.safetensors": {
                "image": "image_processor.preprocess(image): (1, 3, H, W), pixels / 255 * 2 - 1",
                "mask_condition": "mask_processor.preprocess(mask.png): (1, 1, H, W), 1 where pixel >= 128",
                "mask_soft_condition": "mask_processor.preprocess(mask-soft.png): (1, 1, H, W), 1 where pixel >= 128",
            },
        },
        "tokenizer": tok_info,
        "tensor_keys": TENSOR_DOC,
        "cases": entries,
    }
    (out_dir / "cases.json").write_text(to_json(meta) + "\n", encoding="utf-8")

    files = sorted(p for p in out_dir.iterdir() if p.is_file())
    total = 0
    for p in files:
        total += p.stat().st_size
        log(f"  {p.name}  {p.stat().st_size} B  sha256:{hashlib.sha256(p.read_bytes()).hexdigest()[:16]}")
    log(f"{len(entries)} cases, total {total} B in {rel(out_dir)} ({time.time() - t0:.1f} s)")


if __name__ == "__main__":
    main()
