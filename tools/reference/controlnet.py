#!/usr/bin/env python3
"""ControlNet fixtures for Chisel: tiny random ControlNets and diffusers' ControlNet pipelines on them.

Makes small random-weight ControlNetModel folders from the tiny Stable Diffusion UNets that
generate.py and sdxl.py write (`ControlNetModel.from_unet`, every weight then redrawn, the
zero-initialised convolutions included, so each part of the network shows in the output), and
runs diffusers' own StableDiffusionControlNet{,Img2Img,Inpaint}Pipeline and
StableDiffusionXLControlNetImg2ImgPipeline on them, recording the output of every case.

Pins (refused if different): Python 3.11, torch 2.15.0 (CPU), diffusers 0.42.1,
transformers 5.23.0, numpy 2.4.6, safetensors 0.8.0; Pillow 13.0.0 is recorded.

Run by hand, never in CI, after generate.py/pipelines.py/sdxl.py:
    tools/.venv/bin/python tools/reference/controlnet.py

It writes
    Tests/ChiselModelsTests/Fixtures/reference/{sd1-controlnet-tiny,sd1-controlnet-tiny-b,sdxl-controlnet-tiny}/
        config.json, diffusion_pytorch_model.safetensors
    Tests/ChiselModelStagesTests/Fixtures/controlnet/
        control.png, control-b.png, network.safetensors (one ControlNet call in and out),
        cases.json, <case>.safetensors (the pipeline's output and the loop's first latents)
Deterministic: two runs write byte-identical files.
"""

from __future__ import annotations

import functools
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import PIL
import PIL.Image
import safetensors
import torch
from safetensors.torch import save_file

import diffusers
import transformers
from diffusers import (ControlNetModel, DPMSolverMultistepScheduler, MultiAdapter, StableDiffusionAdapterPipeline,
                       StableDiffusionXLAdapterPipeline, T2IAdapter, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, StableDiffusionControlNetImg2ImgPipeline,
                       StableDiffusionControlNetInpaintPipeline, StableDiffusionControlNetPipeline,
                       StableDiffusionXLControlNetImg2ImgPipeline, StableDiffusionPipeline,
                       StableDiffusionInpaintPipeline, StableDiffusionXLPipeline)

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "Tests" / "ChiselModelsTests" / "Fixtures" / "reference"
OUT = REPO / "Tests" / "ChiselModelStagesTests" / "Fixtures" / "controlnet"
PIPELINE_INPUTS = REPO / "Tests" / "ChiselModelStagesTests" / "Fixtures" / "pipelines"  # image.png, mask.png

PINS = {"torch": "2.15.0", "diffusers": "0.42.1", "transformers": "5.23.0", "numpy": "2.4.6", "safetensors": "0.8.0"}

PROMPT_A = "a red fox sitting in a snowy forest, highly detailed"
PROMPT_B = "an old stone lighthouse on a cliff at sunset"
NEG_A = "blurry, low quality"

# ControlNet name -> (base UNet folder, seed of its weights, conditioning_embedding_out_channels)
CONTROLNETS = {
    "sd1-controlnet-tiny": ("sd1-tiny", 7001, (8, 16)),
    "sd1-controlnet-tiny-b": ("sd1-tiny", 7002, (8, 16)),
    "sdxl-controlnet-tiny": ("sdxl-tiny", 7003, None),  # SDXL's VAE halves as often as its levels say
}

# T2I-Adapter name -> (base, seed, config). Their first feature is at the latent's size (SD) or
# half of it (SDXL), as the full-size adapters' are.
ADAPTERS = {
    "sd1-adapter-tiny": ("sd1-tiny", 7011, dict(in_channels=3, channels=[16, 24], num_res_blocks=1, downscale_factor=2,
                                                adapter_type="full_adapter")),
    "sd1-adapter-light-tiny": ("sd1-tiny", 7012, dict(in_channels=1, channels=[16, 24], num_res_blocks=2, downscale_factor=2,
                                                      adapter_type="light_adapter")),
    "sdxl-adapter-tiny": ("sdxl-tiny", 7013, dict(in_channels=3, channels=[8, 16, 24, 24], num_res_blocks=1, downscale_factor=4,
                                                  adapter_type="full_adapter_xl")),
}

SCHEDULERS = {
    "euler": (EulerDiscreteScheduler, {}),
    "euler_a": (EulerAncestralDiscreteScheduler, {}),
    "dpmpp_2m_karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
}


def check_versions():
    got = {"torch": torch.__version__.split("+")[0], "diffusers": diffusers.__version__,
           "transformers": transformers.__version__, "numpy": np.__version__, "safetensors": safetensors.__version__}
    bad = {k: (got[k], v) for k, v in PINS.items() if got[k] != v}
    if bad:
        sys.exit(f"controlnet.py: version mismatch (got, pinned): {bad}")


def versions():
    return {"python": sys.version.split()[0], "torch": torch.__version__, "diffusers": diffusers.__version__,
            "transformers": transformers.__version__, "numpy": np.__version__,
            "safetensors": safetensors.__version__, "Pillow": PIL.__version__}


def rel(p: Path) -> str:
    return str(Path(p).resolve().relative_to(REPO))


def vae_levels(folder: Path) -> int:
    return len(json.loads((folder / "vae" / "config.json").read_text())["block_out_channels"])


def make_controlnet(name: str):
    base, seed, embedding = CONTROLNETS[name]
    folder = MODELS / base
    unet_cls = diffusers.UNet2DConditionModel
    unet = unet_cls.from_pretrained(folder / "unet", torch_dtype=torch.float32)
    if embedding is None:
        levels = vae_levels(folder)
        embedding = tuple([8] * (levels - 1) + [16])
    cn = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=embedding)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pname, p in sorted(cn.named_parameters()):
            if pname.endswith("norm.weight") or ".norm" in pname and pname.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = p[0].numel() if p.dim() > 1 else 1
                p.copy_(torch.randn(p.shape, generator=gen) / max(1.0, fan_in ** 0.5) * (0.5 if p.dim() > 1 else 0.05))
    cn.eval()
    out = MODELS / name
    cn.save_pretrained(out, safe_serialization=True)
    return ControlNetModel.from_pretrained(out, torch_dtype=torch.float32)


def make_adapter(name: str):
    _, seed, cfg = ADAPTERS[name]
    adapter = T2IAdapter(**cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(adapter.named_parameters()):
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn(p.shape, generator=gen) / max(1.0, fan_in ** 0.5) * (0.8 if p.dim() > 1 else 0.05))
    adapter.eval()
    out = MODELS / name
    adapter.save_pretrained(out, safe_serialization=True)
    return T2IAdapter.from_pretrained(out, torch_dtype=torch.float32)


# ----------------------------------------------------------------------------------------------
# Single files in lllyasviel's layout (ControlNet 1.0's `control_model.` names; 1.1's .pth files
# without the prefix), converted from the folder and read back by diffusers' own from_single_file.
# ----------------------------------------------------------------------------------------------

def controlnet_to_original(cn: ControlNetModel, unet_cfg: dict, prefix: str) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import to_single_file as sf
    import sdxl as sx
    sd = {k: v.detach().clone() for k, v in cn.state_dict().items()}
    blocks = len(cn.config.conditioning_embedding_out_channels) - 1
    out = {}
    own = {}
    for k, v in sd.items():
        if k.startswith("controlnet_cond_embedding.conv_in."):
            own["input_hint_block.0." + k.split(".")[-1]] = v
        elif k.startswith("controlnet_cond_embedding.blocks."):
            j = int(k.split(".")[2])
            own[f"input_hint_block.{2 * (j + 1)}." + k.split(".")[-1]] = v
        elif k.startswith("controlnet_cond_embedding.conv_out."):
            own[f"input_hint_block.{2 * (2 * blocks + 1)}." + k.split(".")[-1]] = v
        elif k.startswith("controlnet_down_blocks."):
            i = int(k.split(".")[1])
            own[f"zero_convs.{i}.0." + k.split(".")[-1]] = v
        elif k.startswith("controlnet_mid_block."):
            own["middle_block_out.0." + k.split(".")[-1]] = v
        else:
            out[k] = v
    converted = sf._convert_with_table(out, sx.unet_table(unet_cfg), True)
    converted.update(own)
    return {prefix + k: v.contiguous() for k, v in sorted(converted.items())}


def write_single_files(log):
    """sd1-controlnet-tiny as lllyasviel's layouts: `control_model.`-prefixed (ControlNet 1.0) and bare
    (1.1's .pth names), written by controlnet_to_original.

    diffusers' own reader (ControlNetModel.from_single_file) knows the control-image embedding of the real
    ControlNets only (four widths: input_hint_block.0 … .14), so the converter is first checked on a
    throwaway ControlNet with four embedding widths: diffusers reads its file back tensor for tensor. The
    tiny ControlNets' embedding has two widths (the tiny VAE halves once); the same rule numbers its
    convolutions 0, 2, 4, 6."""
    unet_cfg = dict(json.loads((MODELS / "sd1-tiny" / "unet" / "config.json").read_text()))
    unet = diffusers.UNet2DConditionModel.from_pretrained(MODELS / "sd1-tiny" / "unet", torch_dtype=torch.float32)
    probe = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(4, 4, 4, 8))
    gen = torch.Generator().manual_seed(7050)
    with torch.no_grad():
        for _, p in sorted(probe.named_parameters()):
            p.copy_(torch.randn(p.shape, generator=gen))
    with tempfile.TemporaryDirectory() as tmp:
        probe.save_pretrained(tmp, safe_serialization=True)
        for prefix in ("control_model.", ""):
            path = Path(tmp) / f"probe{prefix.strip('.')}.safetensors"
            save_file(controlnet_to_original(probe, unet_cfg, prefix), path)
            back = ControlNetModel.from_single_file(str(path), config=tmp, torch_dtype=torch.float32)
            ref, got = probe.state_dict(), back.state_dict()
            assert set(ref) == set(got), (set(ref) ^ set(got))
            for k in ref:
                assert torch.equal(ref[k], got[k]), k
            log.append(f"layout check ({prefix or 'no prefix'}): diffusers' from_single_file reads the converted file back exactly")
    cn = ControlNetModel.from_pretrained(MODELS / "sd1-controlnet-tiny", torch_dtype=torch.float32)
    for name, prefix in (("sd1-controlnet-tiny.safetensors", "control_model."), ("sd1-controlnet-tiny-v11.safetensors", "")):
        tensors = controlnet_to_original(cn, unet_cfg, prefix)
        save_file(tensors, MODELS / name)
        log.append(f"{name}: {len(tensors)} tensors")


def control_images():
    """Two deterministic 48×32 RGB control maps: white lines on black (an edge map's look), and
    a smooth gradient (a depth map's)."""
    w, h = 48, 32
    a = np.zeros((h, w, 3), dtype=np.uint8)
    for y in range(h):
        for x in range(w):
            if (x + 2 * y) % 11 == 0 or abs(x - 30) < 1 or (y == 20 and 5 < x < 40):
                a[y, x] = 255
    b = np.zeros((h, w, 3), dtype=np.uint8)
    for y in range(h):
        for x in range(w):
            v = int(255 * (0.5 + 0.5 * np.sin(x / 7.0) * np.cos(y / 5.0)))
            b[y, x] = (v, v, v)
    PIL.Image.fromarray(a).save(OUT / "control.png", optimize=False, compress_level=9)
    PIL.Image.fromarray(b).save(OUT / "control-b.png", optimize=False, compress_level=9)
    return PIL.Image.open(OUT / "control.png").convert("RGB"), PIL.Image.open(OUT / "control-b.png").convert("RGB")


def inpaint_condition(image: PIL.Image.Image, mask: PIL.Image.Image) -> torch.Tensor:
    """The inpaint ControlNet's control image as diffusers' documentation makes it: the photo in
    [0, 1] with the masked pixels (mask > 0.5) set to -1."""
    arr = np.array(image.convert("RGB")).astype(np.float32) / 255.0
    m = np.array(mask.convert("L")).astype(np.float32) / 255.0
    arr[m > 0.5] = -1.0
    return torch.from_numpy(np.expand_dims(arr, 0).transpose(0, 3, 1, 2).copy())


def network_fixture(cn: ControlNetModel, control: PIL.Image.Image):
    """One ControlNet call on fixed random inputs, plain and in guess mode."""
    gen = torch.Generator().manual_seed(7100)
    cfg = cn.config
    sample = torch.randn((2, cfg.in_channels, 16, 24), generator=gen)
    context = torch.randn((2, 7, cfg.cross_attention_dim), generator=gen)
    cond = torch.from_numpy(np.array(control).astype(np.float32) / 255.0).permute(2, 0, 1)[None].repeat(2, 1, 1, 1)
    T = {"sample": sample, "context": context, "condition": cond}
    with torch.no_grad():
        for tag, guess in (("", False), ("guess_", True)):
            down, mid = cn(sample, torch.tensor(421), encoder_hidden_states=context, controlnet_cond=cond,
                           conditioning_scale=0.8, guess_mode=guess, return_dict=False)
            for i, d in enumerate(down):
                T[f"{tag}down_{i}"] = d
            T[f"{tag}mid"] = mid
    # timestep 421, conditioning scale 0.8, sd1-controlnet-tiny (cases.json's "network")
    save_file({k: v.contiguous() for k, v in T.items()}, OUT / "network.safetensors")


def C(name, kind, model, controlnets, sched="euler", seed=0, steps=8, strength=None, guidance=7.5, prompt=PROMPT_A,
      negative=NEG_A, guess=False, mask=None):
    return dict(name=name, kind=kind, model=model, controlnets=controlnets, scheduler=sched, seed=seed, steps=steps,
                strength=strength, guidance=guidance, prompt=prompt, negative=negative, guess_mode=guess, mask=mask)


def U(model, image, scale=1.0, start=0.0, end=1.0):
    return dict(model=model, image=image, scale=scale, start=start, end=end)


CASES = [
    C("img2img_euler_s060", "img2img", "sd1-tiny", [U("sd1-controlnet-tiny", "control.png")], seed=7201, strength=0.6),
    C("img2img_dpmpp_2m_karras_s080_scale05_window", "img2img", "sd1-tiny",
      [U("sd1-controlnet-tiny", "control.png", 0.5, 0.2, 0.7)], sched="dpmpp_2m_karras", seed=7202, strength=0.8,
      prompt=PROMPT_B),
    C("img2img_euler_a_s070_g1", "img2img", "sd1-tiny", [U("sd1-controlnet-tiny", "control-b.png", 1.3)],
      sched="euler_a", seed=7203, strength=0.7, guidance=1.0),
    C("img2img_euler_s080_guess", "img2img", "sd1-tiny", [U("sd1-controlnet-tiny", "control.png", 0.9)],
      seed=7204, strength=0.8, guidance=4.0, guess=True),
    C("img2img_euler_s060_multi", "img2img", "sd1-tiny",
      [U("sd1-controlnet-tiny", "control.png", 0.7, 0.0, 0.6), U("sd1-controlnet-tiny-b", "control-b.png", 0.4, 0.3, 1.0)],
      seed=7205, strength=0.6, prompt=PROMPT_B),
    C("txt2img_euler", "txt2img", "sd1-tiny", [U("sd1-controlnet-tiny-b", "control-b.png", 0.8)], seed=7206),
    C("inpaint4_euler_s075", "inpaint", "sd1-tiny", [U("sd1-controlnet-tiny", "inpaint", 1.0)], seed=7207,
      strength=0.75, mask="mask.png"),
    C("inpaint9_euler_s100", "inpaint", "sd1-inpaint-tiny", [U("sd1-controlnet-tiny", "inpaint", 0.8)], seed=7208,
      strength=1.0, mask="mask.png", prompt=PROMPT_B),
    C("sdxl_img2img_euler_s060", "img2img", "sdxl-tiny", [U("sdxl-controlnet-tiny", "control.png", 0.8)], seed=7209,
      strength=0.6),
    # T2I-Adapters: diffusers' adapter pipelines are text-to-image.
    C("adapter_txt2img_euler", "adapter", "sd1-tiny", [U("sd1-adapter-tiny", "control.png", 0.9)], seed=7301),
    C("adapter_light_gray_txt2img_euler_a", "adapter", "sd1-tiny", [U("sd1-adapter-light-tiny", "control-b.png", 1.2)],
      sched="euler_a", seed=7302, prompt=PROMPT_B),
    C("adapter_multi_txt2img_euler", "adapter", "sd1-tiny",
      [U("sd1-adapter-tiny", "control.png", 0.7), U("sd1-adapter-tiny", "control-b.png", 0.5)], seed=7303),
    # img2img with an adapter: diffusers has no adapter img2img pipeline, so this is its img2img pipeline
    # with the UNet given the adapter's features as the adapter pipelines give them (scaled once, the
    # same for both halves of the guided batch, at every step).
    C("adapter_img2img_euler_s070", "adapter_img2img", "sd1-tiny", [U("sd1-adapter-tiny", "control.png", 0.9)], seed=7305,
      strength=0.7),
    C("sdxl_adapter_txt2img_euler_factor05", "adapter", "sdxl-tiny", [U("sdxl-adapter-tiny", "control.png", 0.8, 0.0, 0.5)],
      seed=7304),
]


def load_adapter_pipe(case, adapters):
    folder = MODELS / case["model"]
    adapter = adapters[0] if len(adapters) == 1 else MultiAdapter(adapters)
    if case["model"].startswith("sdxl"):
        base = StableDiffusionXLPipeline.from_pretrained(folder, torch_dtype=torch.float32)
        pipe = StableDiffusionXLAdapterPipeline(adapter=adapter, **base.components)
    else:
        base = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False,
                                                       torch_dtype=torch.float32)
        comps = {k: v for k, v in base.components.items() if k not in ("image_encoder", "feature_extractor", "safety_checker")}
        pipe = StableDiffusionAdapterPipeline(adapter=adapter, safety_checker=None, feature_extractor=None,
                                              requires_safety_checker=False, **comps)
    cls, over = SCHEDULERS[case["scheduler"]]
    pipe.scheduler = cls.from_config(pipe.scheduler.config, **over)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def adapted_img2img_pipe(case, adapter, image, scale):
    """StableDiffusionImg2ImgPipeline whose UNet gets the adapter's features (adapter(image) × scale,
    repeated for the batch) as down_intrablock_additional_residuals at every call."""
    from diffusers import StableDiffusionImg2ImgPipeline
    from diffusers.pipelines.t2i_adapter.pipeline_stable_diffusion_adapter import _preprocess_adapter_image
    folder = MODELS / case["model"]
    base = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False,
                                                   torch_dtype=torch.float32)
    comps = {k: v for k, v in base.components.items() if k not in ("image_encoder", "feature_extractor", "safety_checker")}
    pipe = StableDiffusionImg2ImgPipeline(safety_checker=None, feature_extractor=None, requires_safety_checker=False, **comps)
    cls, over = SCHEDULERS[case["scheduler"]]
    pipe.scheduler = cls.from_config(pipe.scheduler.config, **over)
    pipe.set_progress_bar_config(disable=True)
    with torch.no_grad():
        state = [f * scale for f in adapter(_preprocess_adapter_image(image, 32, 48))]
    forward = pipe.unet.forward

    def adapted(sample, *a, **k):
        rows = sample.shape[0]
        k["down_intrablock_additional_residuals"] = [f.repeat(rows, 1, 1, 1) for f in state]
        return forward(sample, *a, **k)
    pipe.unet.forward = adapted
    return pipe


def load_pipe(case, controlnets):
    folder = MODELS / case["model"]
    nets = controlnets if len(controlnets) > 1 else controlnets[0]
    sdxl = case["model"].startswith("sdxl")
    if sdxl:
        base = StableDiffusionXLPipeline.from_pretrained(folder, torch_dtype=torch.float32)
        assert case["kind"] == "img2img"
        pipe = StableDiffusionXLControlNetImg2ImgPipeline(controlnet=nets, **base.components)
    else:
        cls = StableDiffusionInpaintPipeline if case["model"] == "sd1-inpaint-tiny" else StableDiffusionPipeline
        base = cls.from_pretrained(folder, safety_checker=None, requires_safety_checker=False, torch_dtype=torch.float32)
        comps = {k: v for k, v in base.components.items() if k != "image_encoder"}
        comps.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        pipe_cls = {"img2img": StableDiffusionControlNetImg2ImgPipeline, "inpaint": StableDiffusionControlNetInpaintPipeline,
                    "txt2img": StableDiffusionControlNetPipeline}[case["kind"]]
        pipe = pipe_cls(controlnet=nets, **comps)
    cls, over = SCHEDULERS[case["scheduler"]]
    pipe.scheduler = cls.from_config(pipe.scheduler.config, **over)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_case(case, nets, images):
    units = case["controlnets"]
    if case["kind"] == "adapter":
        pipe = load_adapter_pipe(case, [nets[u["model"]] for u in units])
    elif case["kind"] == "adapter_img2img":
        pipe = adapted_img2img_pipe(case, nets[units[0]["model"]], images[units[0]["image"]], units[0]["scale"])
        case = dict(case, kind="img2img_plain")
    else:
        pipe = load_pipe(case, [nets[u["model"]] for u in units])
    image = images["image.png"]
    rec = {"prep": []}
    orig = pipe.prepare_latents

    @functools.wraps(orig)
    def prep(*a, **k):
        out = orig(*a, **k)
        rec["prep"].append(out)
        return out
    pipe.prepare_latents = prep
    controls = []
    for u in units:
        if u["image"] == "inpaint":
            controls.append(inpaint_condition(image, images[case["mask"]]))
        elif case["kind"] == "adapter" and nets[u["model"]].config.in_channels == 1:
            controls.append(images[u["image"]].convert("L"))
        else:
            controls.append(images[u["image"]])
    multi = len(units) > 1
    if case["kind"] == "img2img_plain":
        gen = torch.Generator().manual_seed(case["seed"])
        with torch.no_grad():
            out = pipe(prompt=case["prompt"], negative_prompt=case["negative"], num_inference_steps=case["steps"],
                       guidance_scale=case["guidance"], output_type="np", image=image, strength=case["strength"],
                       generator=gen).images
        T = {"output": torch.from_numpy(out[0].copy()), "latents_start": rec["prep"][0]}
        save_file({k: v.contiguous() for k, v in T.items()}, OUT / f"{case['name']}.safetensors")
        return dict(case, kind="adapter_img2img", file=f"{case['name']}.safetensors", width=int(out.shape[2]),
                    height=int(out.shape[1]))
    if case["kind"] == "adapter":
        kwargs = dict(prompt=case["prompt"], negative_prompt=case["negative"], num_inference_steps=case["steps"],
                      guidance_scale=case["guidance"], output_type="np", image=controls if multi else controls[0],
                      height=32, width=48)
        # With a MultiAdapter, the pipeline passes the scales as its adapter weights: the sum of w_i · features_i.
        kwargs.update(adapter_conditioning_scale=[u["scale"] for u in units] if multi else units[0]["scale"])
        if case["model"].startswith("sdxl"):
            kwargs.update(adapter_conditioning_factor=units[0]["end"])
        gen = torch.Generator().manual_seed(case["seed"])
        with torch.no_grad():
            out = pipe(generator=gen, **kwargs).images
        T = {"output": torch.from_numpy(out[0].copy()), "latents_start": rec["prep"][0]}
        save_file({k: v.contiguous() for k, v in T.items()}, OUT / f"{case['name']}.safetensors")
        return dict(case, file=f"{case['name']}.safetensors", width=int(out.shape[2]), height=int(out.shape[1]))
    kwargs = dict(prompt=case["prompt"], negative_prompt=case["negative"], num_inference_steps=case["steps"],
                  guidance_scale=case["guidance"], output_type="np",
                  controlnet_conditioning_scale=[u["scale"] for u in units] if multi else units[0]["scale"],
                  control_guidance_start=[u["start"] for u in units] if multi else units[0]["start"],
                  control_guidance_end=[u["end"] for u in units] if multi else units[0]["end"],
                  guess_mode=case["guess_mode"])
    control = controls if multi else controls[0]
    if case["kind"] == "img2img":
        kwargs.update(image=image, control_image=control, strength=case["strength"])
    elif case["kind"] == "inpaint":
        kwargs.update(image=image, mask_image=images[case["mask"]], control_image=control, strength=case["strength"],
                      height=32, width=48)
    else:
        kwargs.update(image=control, height=32, width=48)
    gen = torch.Generator().manual_seed(case["seed"])
    with torch.no_grad():
        out = pipe(generator=gen, **kwargs).images
    assert out.dtype == np.float32 and out.shape[0] == 1, (out.dtype, out.shape)
    T = {"output": torch.from_numpy(out[0].copy())}
    first = rec["prep"][0]
    T["latents_start"] = first[0] if isinstance(first, tuple) else first
    save_file({k: v.contiguous() for k, v in T.items()}, OUT / f"{case['name']}.safetensors")
    return dict(case, file=f"{case['name']}.safetensors", width=int(out.shape[2]), height=int(out.shape[1]))


def main():
    check_versions()
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    OUT.mkdir(parents=True, exist_ok=True)
    nets = {name: make_controlnet(name) for name in CONTROLNETS}
    nets.update({name: make_adapter(name) for name in ADAPTERS})
    a, b = control_images()
    images = {"control.png": a, "control-b.png": b,
              "image.png": PIL.Image.open(PIPELINE_INPUTS / "image.png").convert("RGB"),
              "mask.png": PIL.Image.open(PIPELINE_INPUTS / "mask.png").convert("L")}
    network_fixture(nets["sd1-controlnet-tiny"], a)
    log = []
    write_single_files(log)
    print("\n".join(log))
    written = []
    for case in CASES:
        written.append(run_case(case, nets, images))
        print("case", case["name"])
    doc = {"generator": rel(Path(__file__)), "versions": versions(),
           "controlnets": {n: {"base": b, "seed": s} for n, (b, s, _) in CONTROLNETS.items()},
           "adapters": {n: {"base": b, "seed": s, "config": c} for n, (b, s, c) in ADAPTERS.items()},
           "network": {"controlnet": "sd1-controlnet-tiny", "timestep": 421, "conditioning_scale": 0.8},
           "notes": "output: the pipeline's output_type='np' image (H, W, 3); latents_start: prepare_latents' latents",
           "cases": written}
    (OUT / "cases.json").write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
