#!/usr/bin/env python3
"""Records what ComfyUI's own KSampler code computes on the tiny random-weight SD1 model (sd1-tiny).

By hand only, never in CI. See tools/interop/COMFY.md (section 10) for pins and how to run:

    tools/.venv/bin/python tools/interop/comfy_ksampler.py --comfyui /tmp/comfyui

ComfyUI cannot build sd1-tiny from its weights (its UNet and VAE hard-code GroupNorm(32); its model detection
only knows real SD configurations), so this script runs ComfyUI's own code with diffusers' networks plugged in:

ComfyUI code that runs unchanged
  nodes.LoadImage.load_image, nodes.LoadImageMask.load_image, nodes.VAEEncode.encode,
  nodes.VAEEncodeForInpaint.encode, nodes.SetLatentNoiseMask.set_mask, nodes.VAEDecode.decode,
  nodes.KSampler.sample, nodes.KSamplerAdvanced.sample, nodes.common_ksampler, folder_paths (input directory =
  Tests/ChiselModelStagesTests/Fixtures/pipelines for the inpaint cases), comfy.sample.prepare_noise / sample,
  comfy.sampler_helpers.prepare_mask + comfy.utils.reshape_mask,
  comfy.samplers.* (KSampler.set_steps / calculate_sigmas / sample, the schedulers, CFGGuider, KSAMPLER,
  KSamplerX0Inpaint, sampling_function, calc_cond_batch, cfg_function), comfy.k_diffusion.sampling.*,
  comfy.extra_samplers.uni_pc, comfy.model_base.BaseModel (apply_model: c_in, timestep(), calculate_denoised,
  process_latent_in/out) with comfy.supported_models.SD15's config (ModelSamplingDiscrete + EPS, SD15 latent
  format), comfy.model_patcher.ModelPatcher, comfy.sd.VAE.encode / decode (crop, [0,1]->[-1,1], clamp, NHWC).

Stand-ins
  * BaseModel.diffusion_model = DiffusersUNet: calls diffusers' UNet2DConditionModel(xc, t,
    encoder_hidden_states=context).sample with exactly the (xc, t, context) ComfyUI's apply_model passes.
  * comfy.sd.VAE's first_stage_model = DiffusersVAE: encode = diffusers vae.encode(x).latent_dist.mode()
    (ComfyUI's DiagonalGaussianRegularizer(sample=False) also takes the mode), decode = vae.decode(z).sample.
    The VAE object is made by comfy.sd.VAE.__init__ with an empty state dict (which sets the SD defaults:
    process_input/output, crop_input) and then gets device/dtype/patcher and downscale/upscale ratio 2.
  * The zero txt2img latent is built at H/2 x W/2 (EmptyLatentImage hard-codes // 8).
  * Conditioning is diffusers' StableDiffusionPipeline.encode_prompt (prompt, negative ""). The script also
    runs ComfyUI's own comfy.sd1_clip SDTokenizer + SDClipModel on the same tiny text encoder and records
    the difference (cases.json -> clip_check).
  * Only for recording, these are wrapped (each wrapper calls the original and returns its result):
    comfy.samplers.KSAMPLER.sample (records sigmas, noise, latent_image and denoise_mask on entry),
    comfy.k_diffusion.sampling.default_noise_sampler (records the per-step noise draws),
    latent_preview.prepare_callback (records the step-0 denoised), comfy.sampler_helpers.prepare_mask (records
    its input and output), comfy.samplers.KSamplerX0Inpaint.__call__ (records the noise it blends with) and, for
    the VAEEncodeForInpaint call only, the VAE object's encode (records the grey-filled pixels).
  * Afterwards every case is re-run from COMFY.md's formulas alone (no ComfyUI code) and compared
    (cases.json -> doc_check).
  * If torchvision / av are not installed, empty stand-in modules are registered for them: ComfyUI imports them
    at import time for models and video nodes that this script never uses.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.abc
import importlib.machinery
import json
import platform
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "Tests" / "ChiselModelsTests" / "Fixtures" / "reference" / "sd1-tiny"
PIPELINES = REPO / "Tests" / "ChiselModelStagesTests" / "Fixtures" / "pipelines"
IMAGE = PIPELINES / "image.png"
OUT = REPO / "Tests" / "ChiselModelStagesTests" / "Fixtures" / "comfy"

COMFY_COMMIT = "a125cd84b054a57729b5eecab930ca9408719832"
PINS = {"torch": "2.15.0", "diffusers": "0.42.1", "transformers": "5.23.0", "safetensors": "0.8.0",
        "numpy": "2.4.6", "scipy": "1.17.1", "torchsde": "0.2.6"}
# sha256 of the ComfyUI files whose code decides the numbers, at COMFY_COMMIT.
COMFY_FILES = {
    "latent_preview.py":
        "7605177dcbf6c7d7fa6127d54833582d1e0ec6529be8c05f5885faaca4cad304",
    "nodes.py":
        "88f3c18338cfc2dc6b5bef1a24dbe9f49898e23ef01df05093189ae2e432d3d7",
    "comfy/sample.py":
        "5e97452ec4f29e558c60fd2d050a2705f4dc5bca661c2b0f2de49edcfd1b6e6f",
    "comfy/samplers.py":
        "23d5c6d83bc4649833e8c79f61418288c380d0b14aaa8ca6063950fff36c844b",
    "comfy/sampler_helpers.py":
        "eee411e01b12017962f0ba36b3a7041dab20186081a06eb5bab059c694089316",
    "comfy/model_sampling.py":
        "127dd382157084b35d7500c83552bb40c0b9287ed09096ee699dd3695aa7c04a",
    "comfy/model_base.py":
        "91edb703aebe1d521f9ea15d4a2b36f12705aae684520afe14a965f28694060a",
    "comfy/latent_formats.py":
        "9979565e55598de60c65b271585b25b415773bef47f56de37aa6ed416afcd640",
    "comfy/k_diffusion/sampling.py":
        "6bce1a552e847c6c65c6f134cdc9b5a68d5f93586872b709d376c6f9c2591a12",
    "comfy/extra_samplers/uni_pc.py":
        "62a3bc207d60d10fc2700459c2090961ffa9f1199f1f1213ade0e4b97be6b04c",
    "comfy/sd.py":
        "00579b03a415ef2f152da12fbf1cbe3d22aa465ac591cc7ee7dbd95633260eee",
    "comfy/sd1_clip.py":
        "699ac0ac2ce16b31f0ad4933e0c595843886304cdaf456739d3c5a3a3b36da9c",
    "comfy/clip_model.py":
        "cdf6b1fc32beb95074bc8e5c3590ea700b3c3f0280d261e595b1e9e4fe23d554",
    "comfy/conds.py":
        "be2e5766726d9cf3a886b610a986a548f1c05f74d788f328c022ca0c56b7b9b0",
    "comfy/utils.py":
        "b7b95a92a04dca297fd183a7105b89a8c8d78807d282ab670abeb5c6b9b767d4",
    "comfy/ldm/modules/diffusionmodules/util.py":
        "18db468ff259fda6737c0aee17a9d007d08b0067945e9164fd5d0221926a671e",
}

PROMPT = "a red fox sitting in a snowy forest, highly detailed"
NEGATIVE = ""
SEED = 42
CFG = 7.5


def case(name, kind, sampler, scheduler, steps, denoise=1.0, seed=SEED, cfg=CFG, advanced=None, inpaint=None):
    return dict(name=name, kind=kind, sampler=sampler, scheduler=scheduler, steps=steps, denoise=denoise,
                seed=seed, cfg=cfg, advanced=advanced, inpaint=inpaint)


def inpaint_case(name, chain, mask, sampler, scheduler, steps, denoise, grow_mask_by=None):
    """chain "setmask": LoadImage -> VAEEncode -> SetLatentNoiseMask(LoadImageMask(mask, red)) -> KSampler;
    chain "vaeforinpaint": LoadImage + LoadImageMask(mask, red) -> VAEEncodeForInpaint(grow_mask_by) -> KSampler."""
    return case(name, "inpaint", sampler, scheduler, steps, denoise=denoise,
                inpaint=dict(chain=chain, mask=mask, grow_mask_by=grow_mask_by))


CASES = [
    case("txt2img_euler_normal", "txt2img", "euler", "normal", 8),
    case("txt2img_euler_ancestral_normal", "txt2img", "euler_ancestral", "normal", 8),
    case("txt2img_dpmpp_2m_karras", "txt2img", "dpmpp_2m", "karras", 8),
    case("txt2img_ddim_ddim_uniform", "txt2img", "ddim", "ddim_uniform", 8),
    case("txt2img_heun_normal", "txt2img", "heun", "normal", 8),
    case("txt2img_euler_simple", "txt2img", "euler", "simple", 8),
    case("txt2img_euler_sgm_uniform", "txt2img", "euler", "sgm_uniform", 8),
    case("txt2img_euler_exponential", "txt2img", "euler", "exponential", 8),
    case("txt2img_dpmpp_2m_normal", "txt2img", "dpmpp_2m", "normal", 8),
    case("txt2img_lcm_normal", "txt2img", "lcm", "normal", 8),
    case("txt2img_uni_pc_normal", "txt2img", "uni_pc", "normal", 8),
    case("txt2img_euler_normal_cfg1", "txt2img", "euler", "normal", 8, cfg=1.0),
    case("img2img_euler_normal_d060", "img2img", "euler", "normal", 10, denoise=0.6),
    case("img2img_euler_ancestral_karras_d060", "img2img", "euler_ancestral", "karras", 10, denoise=0.6),
    case("img2img_dpmpp_2m_karras_d060", "img2img", "dpmpp_2m", "karras", 10, denoise=0.6),
    case("img2img_ddim_ddim_uniform_d060", "img2img", "ddim", "ddim_uniform", 10, denoise=0.6),
    case("adv_img2img_euler_normal_start4", "img2img", "euler", "normal", 10,
         advanced=dict(add_noise="enable", start_at_step=4, end_at_step=10000, return_with_leftover_noise="disable")),
    case("adv_img2img_euler_ancestral_normal_start4_end7_leftover", "img2img", "euler_ancestral", "normal", 10,
         advanced=dict(add_noise="enable", start_at_step=4, end_at_step=7, return_with_leftover_noise="enable")),
    inpaint_case("inpaint_setmask_euler_normal_d060", "setmask", "mask.png", "euler", "normal", 10, 0.6),
    inpaint_case("inpaint_setmask_ddim_ddim_uniform_d060", "setmask", "mask.png", "ddim", "ddim_uniform", 10, 0.6),
    inpaint_case("inpaint_setmask_euler_ancestral_karras_d080", "setmask", "mask.png", "euler_ancestral", "karras",
                 10, 0.8),
    inpaint_case("inpaint_setmask_soft_heun_normal_d070", "setmask", "mask-soft.png", "heun", "normal", 6, 0.7),
    inpaint_case("inpaint_vaeforinpaint_euler_normal", "vaeforinpaint", "mask.png", "euler", "normal", 8, 1.0,
                 grow_mask_by=6),
    inpaint_case("inpaint_vaeforinpaint_grow0_dpmpp_2m_karras", "vaeforinpaint", "mask.png", "dpmpp_2m", "karras",
                 8, 1.0, grow_mask_by=0),
]


# ---------------------------------------------------------------------------------------------------------------
# Import-time stand-ins for unused optional packages

class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        value = type(name, (), {})
        setattr(self, name, value)
        return value


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, roots):
        self.roots = set(roots)
        self.made = []

    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in self.roots:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        self.made.append(spec.name)
        module = _StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def import_comfy(comfy_dir):
    """Imports diffusers/transformers first (so they see no torchvision), then ComfyUI in CPU mode."""
    import importlib.util
    import transformers  # noqa: F401
    import diffusers  # noqa: F401
    from transformers.utils import import_utils
    import_utils.is_torchvision_available()  # cached before any stand-in exists
    missing = [m for m in ("torchvision", "av") if importlib.util.find_spec(m) is None]
    finder = _StubFinder(missing)
    sys.meta_path.insert(0, finder)
    sys.path.insert(0, str(comfy_dir))
    sys.argv = sys.argv[:1]
    import comfy.cli_args
    comfy.cli_args.args.cpu = True
    comfy.cli_args.args.deterministic = True
    import comfy.model_management as mm
    assert str(mm.get_torch_device()) == "cpu"
    import nodes  # noqa: F401
    return finder


# ---------------------------------------------------------------------------------------------------------------

def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fnv1a64_f32le(t):
    import numpy as np
    data = np.ascontiguousarray(t.detach().cpu().float().numpy()).astype("<f4").tobytes()
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def check_versions():
    import importlib.metadata as md
    got = {k: md.version(k) for k in PINS}
    got["torch"] = got["torch"].split("+")[0]
    bad = {k: (got[k], v) for k, v in PINS.items() if got[k] != v}
    if bad:
        sys.exit(f"comfy_ksampler.py: version mismatch (got, pinned): {bad}")
    got["torch"] = md.version("torch")
    for extra in ("einops", "Pillow", "tqdm", "psutil", "pyyaml"):
        try:
            got[extra] = md.version(extra)
        except md.PackageNotFoundError:
            pass
    got["python"] = platform.python_version()
    return got


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--comfyui", required=True, type=Path, help=f"a ComfyUI work tree at {COMFY_COMMIT}")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--allow-other-comfyui", action="store_true",
                    help="run even if the ComfyUI files differ from the pinned commit's")
    args = ap.parse_args()

    comfy_dir = args.comfyui.resolve()
    hashes = {f: sha256(comfy_dir / f) for f in COMFY_FILES}
    if hashes != COMFY_FILES and not args.allow_other_comfyui:
        diff = sorted(k for k in hashes if hashes[k] != COMFY_FILES[k])
        sys.exit(f"comfy_ksampler.py: {comfy_dir} is not ComfyUI {COMFY_COMMIT} (files differ: {diff})")

    versions = check_versions()

    import torch
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    finder = import_comfy(comfy_dir)
    run(args.out, comfy_dir, versions, hashes, finder)


# ---------------------------------------------------------------------------------------------------------------

def run(out_dir, comfy_dir, versions, hashes, finder):
    import torch
    from safetensors.torch import save_file
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel

    import comfy.k_diffusion.sampling as kds
    import comfy.model_base
    import comfy.model_management
    import comfy.model_patcher
    import comfy.samplers
    import comfy.sd
    import comfy.supported_models
    import comfy.utils
    import nodes

    dev = torch.device("cpu")

    # ---- networks -------------------------------------------------------------------------------------------
    unet = UNet2DConditionModel.from_pretrained(MODEL / "unet", torch_dtype=torch.float32).eval()
    vae_net = AutoencoderKL.from_pretrained(MODEL / "vae", torch_dtype=torch.float32).eval()
    pipe = StableDiffusionPipeline.from_pretrained(
        MODEL, unet=unet, vae=vae_net, torch_dtype=torch.float32, safety_checker=None,
        requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)

    calls = []  # per UNet call: (sigma, t) of the first batch row, batch size

    class DiffusersUNet(torch.nn.Module):
        """ComfyUI's BaseModel.diffusion_model slot, filled with diffusers' UNet."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        @property
        def dtype(self):
            return next(self.net.parameters()).dtype

        def forward(self, x, timesteps, context=None, control=None, transformer_options={}, **kwargs):
            assert control is None and not kwargs, kwargs
            sig = transformer_options["sigmas"]
            assert torch.all(timesteps == timesteps[0]) and torch.all(sig == sig[0])
            calls.append((float(sig[0]), float(timesteps[0]), int(x.shape[0])))
            return self.net(x, timesteps, encoder_hidden_states=context).sample

    class DiffusersVAE(torch.nn.Module):
        """comfy.sd.VAE.first_stage_model, filled with diffusers' AutoencoderKL (posterior mode, no scaling)."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def encode(self, x):
            return self.net.encode(x).latent_dist.mode()

        def decode(self, z):
            return self.net.decode(z).sample

    config = comfy.supported_models.SD15({"disable_unet_model_creation": True})
    base = comfy.model_base.BaseModel(config, model_type=comfy.model_base.ModelType.EPS, device=dev)
    base.diffusion_model = DiffusersUNet(unet)
    base.eval()
    model = comfy.model_patcher.ModelPatcher(base, load_device=dev, offload_device=dev)

    vae = comfy.sd.VAE(sd={})  # SD defaults (process_input/output, crop_input); no network
    vae.first_stage_model = DiffusersVAE(vae_net).eval()
    vae.downscale_ratio = vae.upscale_ratio = 2  # sd1-tiny's VAE downsamples by 2
    vae.device = dev
    vae.vae_dtype = torch.float32
    vae.output_device = comfy.model_management.intermediate_device()
    vae.patcher = comfy.model_patcher.ModelPatcher(vae.first_stage_model, load_device=dev, offload_device=dev)

    # ---- conditioning ---------------------------------------------------------------------------------------
    with torch.no_grad():
        cond, uncond = pipe.encode_prompt(PROMPT, dev, 1, True, negative_prompt=NEGATIVE)
    cond, uncond = cond.float().contiguous(), uncond.float().contiguous()
    positive = [[cond, {}]]
    negative = [[uncond, {}]]
    clip_check = comfy_clip_check(cond, uncond)

    # ---- recorders --------------------------------------------------------------------------------------------
    entry = {}
    orig_ksampler_sample = comfy.samplers.KSAMPLER.sample

    def recording_ksampler_sample(self, model_wrap, sigmas, extra_args, callback, noise, latent_image=None,
                                  denoise_mask=None, disable_pbar=False):
        entry["sigmas"] = sigmas.detach().clone()
        entry["noise"] = noise.detach().clone()
        entry["latent_image"] = latent_image.detach().clone()
        entry["seed"] = extra_args.get("seed")
        entry["denoise_mask"] = None if denoise_mask is None else denoise_mask.detach().clone()
        return orig_ksampler_sample(self, model_wrap, sigmas, extra_args, callback, noise, latent_image,
                                    denoise_mask, disable_pbar)

    draws = []
    orig_default_noise_sampler = kds.default_noise_sampler

    def recording_default_noise_sampler(x, seed=None):
        inner = orig_default_noise_sampler(x, seed=seed)
        draws.append({"seed": seed, "device": str(x.device), "draws": []})

        def sampler(sigma, sigma_next):
            n = inner(sigma, sigma_next)
            draws[-1]["draws"].append((float(sigma), float(sigma_next), n.detach().clone()))
            return n
        return sampler

    import latent_preview
    orig_prepare_callback = latent_preview.prepare_callback

    def recording_prepare_callback(model, steps, x0_output_dict=None):
        inner = orig_prepare_callback(model, steps, x0_output_dict)

        def callback(step, x0, x, total_steps):
            if step == 0 and "denoised_step0" not in entry:
                entry["denoised_step0"] = x0.detach().clone()
            return inner(step, x0, x, total_steps)
        return callback

    import comfy.sampler_helpers
    orig_prepare_mask = comfy.sampler_helpers.prepare_mask

    def recording_prepare_mask(noise_mask, shape, device):
        out = orig_prepare_mask(noise_mask, shape, device)
        entry["prepare_mask_in"] = noise_mask.detach().clone()
        entry["prepare_mask_out"] = out.detach().clone()
        return out

    orig_x0_call = comfy.samplers.KSamplerX0Inpaint.__call__

    def recording_x0_call(self, *args, **kwargs):
        if "blend_noise" not in entry:
            entry["blend_noise"] = self.noise.detach().clone()
        return orig_x0_call(self, *args, **kwargs)

    comfy.samplers.KSAMPLER.sample = recording_ksampler_sample
    kds.default_noise_sampler = recording_default_noise_sampler
    latent_preview.prepare_callback = recording_prepare_callback
    comfy.sampler_helpers.prepare_mask = recording_prepare_mask
    comfy.samplers.KSamplerX0Inpaint.__call__ = recording_x0_call
    comfy.utils.PROGRESS_BAR_ENABLED = False

    # ---- image and VAEEncode ----------------------------------------------------------------------------------
    pixels, _ = nodes.LoadImage().load_image(str(IMAGE))
    assert pixels.shape == (1, 32, 48, 3), pixels.shape
    with torch.no_grad():
        (img_latent,) = nodes.VAEEncode().encode(vae, pixels)
    assert img_latent["samples"].shape == (1, 4, 16, 24)
    H, W = pixels.shape[1], pixels.shape[2]
    empty_latent = {"samples": torch.zeros([1, 4, H // 2, W // 2])}

    shared = {
        "cond": cond, "uncond": uncond,
        "pixels": pixels.contiguous(),
        "img2img_latent": img_latent["samples"].contiguous(),
    }

    # the inpaint cases load image and masks by name from ComfyUI's input directory
    import folder_paths
    folder_paths.set_input_directory(str(PIPELINES))
    (pixels_by_name, _) = nodes.LoadImage().load_image("image.png")
    assert torch.equal(pixels_by_name, pixels)

    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    noise_by_seed = {}
    for c in CASES:
        calls.clear()
        draws.clear()
        entry.clear()
        inp = c["inpaint"]
        filled = None
        if c["kind"] == "txt2img":
            latent = empty_latent
        elif inp is None:
            latent = img_latent
        else:
            (mask,) = nodes.LoadImageMask().load_image(inp["mask"], "red")
            assert mask.shape == (1, H, W) and mask.dtype == torch.float32, mask.shape
            with torch.no_grad():
                if inp["chain"] == "setmask":
                    (latent,) = nodes.SetLatentNoiseMask().set_mask(img_latent, mask)
                else:
                    seen = {}
                    vae_encode = vae.encode

                    def recording_vae_encode(p):
                        seen["pixels"] = p.detach().clone()
                        return vae_encode(p)
                    vae.encode = recording_vae_encode  # instance attribute: only this call sees it
                    try:
                        (latent,) = nodes.VAEEncodeForInpaint().encode(vae, pixels_by_name, mask, inp["grow_mask_by"])
                    finally:
                        del vae.encode
                    filled = seen["pixels"]
        with torch.no_grad():
            if c["advanced"] is None:
                (res,) = nodes.KSampler().sample(model, c["seed"], c["steps"], c["cfg"], c["sampler"],
                                                 c["scheduler"], positive, negative, latent, denoise=c["denoise"])
            else:
                a = c["advanced"]
                (res,) = nodes.KSamplerAdvanced().sample(
                    model, a["add_noise"], c["seed"], c["steps"], c["cfg"], c["sampler"], c["scheduler"],
                    positive, negative, latent, a["start_at_step"], a["end_at_step"],
                    a["return_with_leftover_noise"])
            (image,) = nodes.VAEDecode().decode(vae, res)

        samples = res["samples"].float().contiguous()
        noise_key = f"noise_seed{c['seed']}"
        if noise_key in shared:
            assert torch.equal(shared[noise_key], entry["noise"]), c["name"]
        else:
            shared[noise_key] = entry["noise"].contiguous()
        latent_in = entry["latent_image"]
        scaled = latent["samples"] * 0.18215 if c["kind"] != "txt2img" else latent["samples"]
        assert torch.equal(latent_in, scaled), c["name"]

        sig = entry["sigmas"].float()
        max_denoise = comfy.samplers.Sampler().max_denoise(
            types.SimpleNamespace(inner_model=base), sig)
        tensors = {
            "sigmas": sig.contiguous(),
            "call_sigmas": torch.tensor([s for s, _, _ in calls], dtype=torch.float32),
            "timesteps": torch.tensor([t for _, t, _ in calls], dtype=torch.float32),
            "denoised_step0": entry["denoised_step0"].float().contiguous(),
            "samples": samples,
            "image": image.float().contiguous(),
        }
        if inp is not None:
            info = inpaint_record(c, latent, mask, filled, pixels_by_name, samples, entry, torch)
            nm, dm = latent["noise_mask"], entry["denoise_mask"]
            tensors["noise_mask"] = nm.float().contiguous()
            tensors["denoise_mask"] = dm.float().contiguous()
            tensors["latent_image"] = latent["samples"].float().contiguous()
            if filled is not None:
                tensors["pixels_filled"] = filled.float().contiguous()
            if not torch.equal(entry["blend_noise"], entry["noise"]):
                tensors["inpaint_noise"] = entry["blend_noise"].float().contiguous()
        save_file(tensors, str(out_dir / f"{c['name']}.safetensors"))

        step_noise = []
        for d in draws:
            for k, (s0, s1, n) in enumerate(d["draws"]):
                step_noise.append({
                    "index": k, "sigma": s0, "sigma_next": s1, "generator_seed": d["seed"],
                    "generator_device": d["device"], "shape": list(n.shape),
                    "first4": [float(v) for v in n.flatten()[:4]], "fnv1a64_f32le": fnv1a64_f32le(n),
                    "equals_initial_noise": bool(torch.equal(n, entry["noise"])),
                })
        # the per-step noise is a fresh CPU generator seeded with the KSampler seed: check we can replay it
        if draws:
            g = torch.Generator().manual_seed(c["seed"])
            for k, (_, _, n) in enumerate(draws[0]["draws"]):
                assert torch.equal(torch.randn(n.shape, generator=g), n), (c["name"], k)

        results.append({
            **{k: c[k] for k in ("name", "kind", "sampler", "scheduler", "steps", "denoise", "seed", "cfg")},
            "node": "KSampler" if c["advanced"] is None else "KSamplerAdvanced",
            "advanced": c["advanced"],
            "latent_input": "zeros (1, 4, 16, 24)" if c["kind"] == "txt2img"
                            else "shared.safetensors:img2img_latent" if inp is None
                            else "shared.safetensors:img2img_latent (= case key latent_image)"
                            if inp["chain"] == "setmask" else "case key latent_image (VAEEncodeForInpaint output)",
            "noise_key": f"shared.safetensors:{noise_key}" if c["advanced"] is None
                         or c["advanced"]["add_noise"] == "enable" else None,
            "n_sigmas": int(sig.numel()),
            "sigmas": [float(v) for v in sig],
            "max_denoise": bool(max_denoise),
            "start_scale": float(torch.sqrt(1 + sig[0] ** 2)) if max_denoise else float(sig[0]),
            "unet_calls": len(calls),
            "unet_batch": sorted({b for _, _, b in calls}),
            "timesteps": [int(t) for _, t, _ in calls],
            "step_noise_draws": step_noise,
            "samples_abs_max": float(samples.abs().max()),
            "image_mean": float(image.mean()),
        })
        if inp is not None:
            results[-1]["inpaint"] = info
        print(f"{c['name']}: {sig.numel() - 1} steps, {len(calls)} UNet calls, "
              f"{len(step_noise)} noise draws, |samples|max {float(samples.abs().max()):.4f}")

    comfy.samplers.KSAMPLER.sample = orig_ksampler_sample
    kds.default_noise_sampler = orig_default_noise_sampler
    latent_preview.prepare_callback = orig_prepare_callback
    comfy.sampler_helpers.prepare_mask = orig_prepare_mask
    comfy.samplers.KSamplerX0Inpaint.__call__ = orig_x0_call

    save_file({k: v.contiguous() for k, v in shared.items()}, str(out_dir / "shared.safetensors"))

    # ---- a second check that VAEEncode took the posterior mode -------------------------------------------
    with torch.no_grad():
        mode = vae_net.encode(pixels.movedim(-1, 1) * 2 - 1).latent_dist.mean
    assert torch.equal(mode, img_latent["samples"])

    doc_check = check_against_doc(unet, vae_net, cond, uncond, shared, results, out_dir)

    doc = {
        "generator": "tools/interop/comfy_ksampler.py",
        "doc": "tools/interop/COMFY.md",
        "comfyui": {"repository": "https://github.com/Comfy-Org/ComfyUI", "commit": COMFY_COMMIT,
                    "file_sha256": hashes,
                    "stand_in_modules": sorted(set(m.split(".")[0] for m in finder.made))},
        "versions": versions,
        "torch_threads": 1,
        "device": "cpu",
        "model": "Tests/ChiselModelsTests/Fixtures/reference/sd1-tiny (diffusers folder)",
        "image": "Tests/ChiselModelStagesTests/Fixtures/pipelines/image.png (48x32 RGB) via nodes.LoadImage",
        "prompt": PROMPT,
        "negative_prompt": NEGATIVE,
        "latent_size": {"channels": 4, "height": 16, "width": 24, "note": "sd1-tiny's VAE downsamples by 2"},
        "clip_check": clip_check,
        "doc_check": doc_check,
        "shared_keys": {
            "cond": "(1, 77, 32) float32: diffusers StableDiffusionPipeline.encode_prompt(prompt)[0] "
                    "(= text_encoder(ids).last_hidden_state); the KSampler 'positive' tensor",
            "uncond": "(1, 77, 32) float32: encode_prompt(..., negative_prompt='')[1]; the 'negative' tensor",
            "pixels": "(1, 32, 48, 3) float32 NHWC in [0,1]: nodes.LoadImage of image.png (uint8 / 255)",
            "img2img_latent": "(1, 4, 16, 24) float32: nodes.VAEEncode output LATENT['samples'] = posterior mode "
                              "of vae.encode(pixels * 2 - 1), UNSCALED (no 0.18215; the sampler applies "
                              "process_latent_in itself)",
            "noise_seed42": "(1, 4, 16, 24) float32: comfy.sample.prepare_noise(latent, 42) = "
                            "torch.randn(shape, generator=torch.manual_seed(42)) on CPU, unscaled",
        },
        "case_keys": {
            "sigmas": "(n+1,) float32: the sigma tensor the k-diffusion sampler got (after denoise / start / end "
                      "handling; recorded on entry to KSAMPLER.sample, so uni_pc's in-place 0.001 is not in it)",
            "call_sigmas": "(calls,) float32: sigma of each model evaluation (BaseModel.apply_model's t argument)",
            "timesteps": "(calls,) float32: the timestep the UNet received at each call = "
                         "ModelSamplingDiscrete.timestep(sigma), an integer in [0, 999]",
            "denoised_step0": "(1, 4, 16, 24) float32: the CFG-combined x0 prediction D(x_start, sigmas[0]) of the "
                              "first model evaluation, in the sampler's (scaled, 0.18215) latent space, as the "
                              "sampler callback gets it at step 0 (uni_pc: the x0 UniPC derives from its noise "
                              "prediction, equal to D up to float rounding)",
            "samples": "(1, 4, 16, 24) float32: the KSampler output LATENT['samples'] = process_out(x_final) = "
                       "x_final / 0.18215 (unscaled, what VAEDecode takes)",
            "image": "(1, 32, 48, 3) float32 NHWC in [0,1]: nodes.VAEDecode(samples) = "
                     "clamp((vae.decode(samples) + 1) / 2, 0, 1)",
        },
        "inpaint_inputs": {
            "directory": "Tests/ChiselModelStagesTests/Fixtures/pipelines (folder_paths.set_input_directory)",
            "image": "image.png (48x32 RGB) via nodes.LoadImage('image.png') (= shared.safetensors:pixels)",
            "masks": {"mask.png": "48x32 L, 0/255, white = repaint",
                      "mask-soft.png": "48x32 L, Gaussian-blurred rectangle, 91 gray levels"},
            "mask_loader": "nodes.LoadImageMask(image, channel='red'): L converted to RGBA, red channel = the gray "
                           "value; float32 value / 255, shape (1, H, W); 1 = repaint",
        },
        "inpaint_case_keys": {
            "noise_mask": "(1, 1, 32, 48) float32: the LATENT's noise_mask as the node returned it, at pixel size. "
                          "SetLatentNoiseMask: the loaded mask reshaped, values unchanged. VAEEncodeForInpaint: "
                          "round(clamp(conv2d(round(mask), ones(g, g), padding=ceil((g-1)/2)), 0, 1)[:H, :W]) "
                          "(g = grow_mask_by; g = 0: round(mask))",
            "denoise_mask": "(1, 4, 16, 24) float32: comfy.sampler_helpers.prepare_mask(noise_mask, noise.shape) = "
                            "reshape_mask: F.interpolate(noise_mask, (16, 24), mode='bilinear') (align_corners False, "
                            "no antialias; for this exact 2x: the mean of each 2x2 pixel block) repeated to 4 "
                            "channels; what KSAMPLER.sample / KSamplerX0Inpaint get",
            "latent_image": "(1, 4, 16, 24) float32: the LATENT['samples'] the KSampler got, UNSCALED (VAEEncode "
                            "output for setmask = shared img2img_latent; VAEEncodeForInpaint output for "
                            "vaeforinpaint); the sampler's latent_in = 0.18215 * this",
            "pixels_filled": "(1, 32, 48, 3) float32 NHWC in [0,1], VAEEncodeForInpaint cases only: the pixels "
                             "handed to vae.encode = (pixels - 0.5) * (1 - round(mask)) + 0.5 (grey 0.5 where the "
                             "undilated mask rounds to 1); vae.encode then applies * 2 - 1",
            "inpaint_noise": "(1, 4, 16, 24) float32, ddim cases only: the noise KSamplerX0Inpaint blends with = "
                             "torch.randn(shape, generator=torch.manual_seed(seed + 1)); for the other samplers it "
                             "is the initial noise (shared noise_seed42) and not stored",
            "denoised_step0": "as for the other cases, but it is the blended x0: D(x_in) * m + latent_in * (1 - m)",
        },
        "start_latent": "x_start = 0.18215 * latent + noise * start_scale (txt2img: latent = 0; start_scale = "
                        "sqrt(1 + sigmas[0]^2) if max_denoise else sigmas[0]); inpaint: latent = case key "
                        "latent_image, and the first model call blends it with the mask (COMFY.md section 6)",
        "cases": results,
    }
    (out_dir / "cases.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    total = sum(p.stat().st_size for p in out_dir.iterdir())
    print(f"wrote {len(list(out_dir.iterdir()))} files, {total} bytes to {out_dir}")


def inpaint_record(c, latent, mask, filled, pixels, samples, entry, torch):
    """Checks what the inpaint nodes handed the sampler and describes it for cases.json."""
    import math
    inp = c["inpaint"]
    nm, dm = latent["noise_mask"], entry["denoise_mask"]
    H, W = pixels.shape[1], pixels.shape[2]
    # the sampler got the LATENT's noise_mask, through prepare_mask, at the latent size, over all 4 channels
    assert nm.shape == (1, 1, H, W) and nm.dtype == torch.float32, nm.shape
    assert torch.equal(entry["prepare_mask_in"], nm) and torch.equal(entry["prepare_mask_out"], dm)
    assert dm.shape == (1, 4, H // 2, W // 2) and all(torch.equal(dm[:, k], dm[:, 0]) for k in range(4))
    seed = c["seed"] + 1 if c["sampler"] == "ddim" else None
    if seed is None:
        assert torch.equal(entry["blend_noise"], entry["noise"]), c["name"]
    else:
        g = torch.Generator().manual_seed(seed)
        assert torch.equal(entry["blend_noise"], torch.randn(entry["noise"].shape, generator=g)), c["name"]
    chain = ["LoadImage('image.png')"]
    if inp["chain"] == "setmask":
        chain += ["VAEEncode", f"LoadImageMask('{inp['mask']}', channel='red')", "SetLatentNoiseMask"]
    else:
        chain += [f"LoadImageMask('{inp['mask']}', channel='red')",
                  f"VAEEncodeForInpaint(grow_mask_by={inp['grow_mask_by']})"]
    chain += ["KSampler", "VAEDecode"]
    levels = torch.unique(dm)
    keep = dm == 0
    info = {
        "chain": inp["chain"],
        "nodes": chain,
        "mask_file": f"Tests/ChiselModelStagesTests/Fixtures/pipelines/{inp['mask']}",
        "mask_channel": "red",
        "grow_mask_by": inp["grow_mask_by"],
        "mask_levels": int(torch.unique(mask).numel()),
        "noise_mask_shape": list(nm.shape),
        "noise_mask_levels": int(torch.unique(nm).numel()),
        "noise_mask_sum": float(nm.sum()),
        "noise_mask_equals_loaded_mask": bool(torch.equal(nm[:, 0], mask)),
        "denoise_mask_shape": list(dm.shape),
        "denoise_mask_levels": int(levels.numel()),
        "denoise_mask_values": [float(v) for v in levels] if levels.numel() <= 8
                               else {"min": float(levels[0]), "max": float(levels[-1])},
        "denoise_mask_zeros_per_channel": int(keep[:, 0].sum()),
        "inpaint_noise": "noise_seed42 (KSamplerX0Inpaint blends with the initial noise)" if seed is None else
                         f"seed + 1 = {seed}: torch.randn(shape, generator=torch.manual_seed({seed})) on CPU "
                         "(ksampler('euler', inpaint_options={'random': True})); case key inpaint_noise",
        "inpaint_noise_first4": [float(v) for v in entry["blend_noise"].flatten()[:4]],
        "inpaint_noise_fnv1a64_f32le": fnv1a64_f32le(entry["blend_noise"]),
        # where denoise_mask is 0 the result should be the input latent (up to the last step's rounding)
        "unmasked_samples_max_abs_diff": float((samples - latent["samples"])[keep].abs().max()),
    }
    if inp["chain"] == "vaeforinpaint":
        g = inp["grow_mask_by"]
        ratio = 2
        r = mask.round()
        changed = (filled != pixels) & (r[..., None] == 0).expand_as(pixels)
        info["vae_encode_for_inpaint"] = {
            "downscale_ratio": ratio,
            "crop": {"to_height": (H // ratio) * ratio, "to_width": (W // ratio) * ratio,
                     "offset": [(H % ratio) // 2, (W % ratio) // 2],
                     "applied": (H // ratio) * ratio != H or (W // ratio) * ratio != W},
            "mask_interpolated_to_pixels": "bilinear (align_corners False) to (H, W) = "
                                           f"({H}, {W}), before the crop; same size here, values unchanged",
            "dilation": None if g == 0 else {
                "kernel": [g, g], "padding": math.ceil((g - 1) / 2),
                "conv2d_output": [H + 2 * math.ceil((g - 1) / 2) - g + 1, W + 2 * math.ceil((g - 1) / 2) - g + 1],
                "kept": f"[:{(H // ratio) * ratio}, :{(W // ratio) * ratio}] (top-left)",
                "window_rows_cols": [-math.ceil((g - 1) / 2), g - 1 - math.ceil((g - 1) / 2)]},
            "fill": "pixels = (pixels - 0.5) * (1 - round(mask)) + 0.5 per channel, in [0, 1], before vae.encode's "
                    "* 2 - 1; the fill uses the NOT dilated round(mask)",
            "filled_pixels": int(r.sum()),
            "fill_equals_0_5": bool(torch.all(filled[(r[..., None] == 1).expand_as(filled)] == 0.5)),
            "unmasked_pixels_changed_by_rounding": int(changed.sum()),
            "unmasked_pixels_max_abs_change": float((filled - pixels)[(r[..., None] == 0).expand_as(pixels)]
                                                    .abs().max()),
        }
    return info


def check_against_doc(unet, vae_net, cond, uncond, shared, results, out_dir):
    """Re-implements the cases from COMFY.md's formulas alone (no ComfyUI code) and compares with what ComfyUI
    computed: the sigma lists must match exactly, the latents to float rounding."""
    import math
    import torch
    from safetensors.torch import load_file

    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    acp = torch.cumprod(1 - betas, 0)
    s64 = ((1 - acp) / acp) ** 0.5
    S, logS = s64.float(), s64.log().float()
    smin, smax = float(S[0]), float(S[-1])

    def t_of(sig):
        return int((torch.log(torch.as_tensor(sig, dtype=torch.float32)) - logS).abs().argmin())

    def sigma_of(t):
        t = t.float().clamp(0, 999)
        lo, hi, w = t.floor().long(), t.ceil().long(), t.frac()
        return ((1 - w) * logS[lo] + w * logS[hi]).exp()

    def schedule(name, n):
        if name == "normal":
            return [float(sigma_of(t)) for t in torch.linspace(999, 0, n)] + [0.0]
        if name == "sgm_uniform":
            return [float(sigma_of(t)) for t in torch.linspace(999, 0, n + 1)[:-1]] + [0.0]
        if name == "simple":
            return [float(S[-(1 + int(k * (1000 / n)))]) for k in range(n)] + [0.0]
        if name == "ddim_uniform":
            ss = max(1000 // n, 1)
            return [float(S[i]) for i in range(1, 1000, ss)][::-1] + [0.0]
        if name == "karras":
            ramp = torch.linspace(0, 1, n)
            lo, hi = smin ** (1 / 7), smax ** (1 / 7)
            return ((hi + ramp * (lo - hi)) ** 7).tolist() + [0.0]
        if name == "exponential":
            return torch.linspace(math.log(smax), math.log(smin), n).exp().tolist() + [0.0]
        raise KeyError(name)

    def sigmas_for(c):
        steps, denoise = c["steps"], c["denoise"]
        discard = c["sampler"] in ("dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2")
        n = steps if denoise > 0.9999 else int(steps / denoise)
        sig = schedule(c["scheduler"], n + 1 if discard else n)
        if discard:
            sig = sig[:-2] + sig[-1:]
        if denoise <= 0.9999:
            sig = sig[-(steps + 1):]
        a = c["advanced"]
        if a is not None:
            if a["end_at_step"] < len(sig) - 1:
                sig = sig[:a["end_at_step"] + 1]
                if a["return_with_leftover_noise"] != "enable":
                    sig[-1] = 0.0
            sig = sig[a["start_at_step"]:]
        return torch.tensor(sig, dtype=torch.float32)

    ctx = torch.cat([uncond, cond])

    def denoiser(cfg):
        def D(x, sig):
            sig = torch.as_tensor(sig, dtype=torch.float32)
            t = torch.tensor([float(t_of(sig))] * (1 if math.isclose(cfg, 1.0) else 2))
            xc = x / (sig ** 2 + 1) ** 0.5
            if len(t) == 1:
                return x - unet(xc, t, encoder_hidden_states=cond).sample * sig
            eps = unet(torch.cat([xc, xc]), t, encoder_hidden_states=ctx).sample
            x0u, x0c = x - eps[:1] * sig, x - eps[1:] * sig
            return x0u + (x0c - x0u) * cfg
        return D

    def run_sampler(name, D, x, sig, seed):
        g = torch.Generator().manual_seed(seed)
        n = len(sig) - 1
        old = None
        for i in range(n):
            s0, s1 = sig[i], sig[i + 1]
            den = D(x, s0)
            d = (x - den) / s0
            if name in ("euler", "ddim"):
                x = x + d * (s1 - s0)
            elif name == "euler_ancestral":
                up = min(s1, (s1 ** 2 * (s0 ** 2 - s1 ** 2) / s0 ** 2) ** 0.5)
                down = (s1 ** 2 - up ** 2) ** 0.5
                x = den if down == 0 else x + d * (down - s0) + torch.randn(x.shape, generator=g) * up
            elif name == "heun":
                x2 = x + d * (s1 - s0)
                if s1 == 0:
                    x = x2
                else:
                    d2 = (x2 - D(x2, s1)) / s1
                    x = x + (d + d2) / 2 * (s1 - s0)
            elif name == "dpmpp_2m":
                t, tn = -s0.log(), -s1.log()
                h = tn - t
                if old is None or s1 == 0:
                    x = (s1 / s0) * x - torch.expm1(-h) * den
                else:
                    r = (t + sig[i - 1].log()) / h
                    dd = (1 + 1 / (2 * r)) * den - (1 / (2 * r)) * old
                    x = (s1 / s0) * x - torch.expm1(-h) * dd
                old = den
            elif name == "lcm":
                x = den
                if s1 > 0:
                    x = x + torch.randn(x.shape, generator=g) * s1
            else:
                return None
        return x

    def inpaint_inputs(c, entry, stored):
        """SetLatentNoiseMask / VAEEncodeForInpaint and prepare_mask from the formulas in section 6."""
        import numpy as np
        from PIL import Image
        inp = c["inpaint"]
        gray = np.array(Image.open(PIPELINES / inp["mask"]))
        assert gray.dtype == np.uint8 and gray.ndim == 2
        mask = torch.from_numpy(gray.astype(np.float32) / 255.0)[None, None]      # 1 x 1 x H x W, 1 = repaint
        pixels = shared["pixels"]
        if inp["chain"] == "setmask":
            noise_mask = mask
            latent = shared["img2img_latent"]
        else:
            # no crop: 32 and 48 are multiples of the VAE's downscale ratio (2); mask already at pixel size
            g = inp["grow_mask_by"]
            r = mask.round()
            filled = (pixels - 0.5) * (1 - r)[:, 0, :, :, None] + 0.5
            if g == 0:
                noise_mask = r
            else:   # conv2d(ones(g, g), padding p) of a 0/1 mask, clamped to 1 = max over rows/cols [i-p, i-p+g-1]
                p = math.ceil((g - 1) / 2)
                noise_mask = torch.nn.functional.max_pool2d(
                    torch.nn.functional.pad(r, (p, g - 1 - p, p, g - 1 - p)), g, stride=1).round()
            # contiguous: the posterior's mode is a strided view, and the UNet's convolutions round differently
            # on such a layout; ComfyUI's VAE.encode copies into a fresh tensor
            latent = vae_net.encode(filled.movedim(-1, 1) * 2 - 1).latent_dist.mode().contiguous()
            entry["pixels_filled_equal"] = bool(torch.equal(filled, stored["pixels_filled"]))
            entry["latent_image_max_abs_diff"] = float((latent - stored["latent_image"]).abs().max())
        # reshape_mask: bilinear (align_corners False) 32x48 -> 16x24 = the mean of each 2x2 block
        box = (noise_mask[..., 0::2, 0::2] + noise_mask[..., 0::2, 1::2]
               + noise_mask[..., 1::2, 0::2] + noise_mask[..., 1::2, 1::2]) / 4
        denoise_mask = box.expand(1, 4, -1, -1)
        entry["noise_mask_equal"] = bool(torch.equal(noise_mask, stored["noise_mask"]))
        entry["denoise_mask_max_abs_diff"] = float((denoise_mask - stored["denoise_mask"]).abs().max())
        entry["latent_image_equal"] = bool(torch.equal(latent, stored["latent_image"]))
        assert entry["noise_mask_equal"] and entry["denoise_mask_max_abs_diff"] < 1e-6, (c["name"], entry)
        assert entry.get("pixels_filled_equal", True), (c["name"], entry)
        assert torch.allclose(latent, stored["latent_image"], rtol=0, atol=1e-5), (c["name"], entry)
        return latent * 0.18215, denoise_mask

    def inpaint_denoiser(D, latent_in, m, blend_noise):
        """KSamplerX0Inpaint: blend x before and x0 after every model call."""
        def Dm(x, sig):
            x_in = x * m + (blend_noise * sig + latent_in) * (1. - m)
            return D(x_in, sig) * m + latent_in * (1. - m)
        return Dm

    noise = shared["noise_seed42"]
    assert SEED == 42 and torch.equal(noise, torch.randn((1, 4, 16, 24), generator=torch.Generator().manual_seed(42)))
    out = {}
    for r in results:
        c = next(cc for cc in CASES if cc["name"] == r["name"])
        stored = load_file(str(out_dir / f"{c['name']}.safetensors"))
        sig = sigmas_for(c)
        entry = {"sigmas_equal": bool(torch.equal(sig, stored["sigmas"]))}
        D = denoiser(c["cfg"])
        if c["kind"] == "inpaint":
            with torch.no_grad():
                latent, m = inpaint_inputs(c, entry, stored)
            g = torch.Generator().manual_seed(c["seed"] + 1)
            blend = torch.randn((1, 4, 16, 24), generator=g) if c["sampler"] == "ddim" else noise
            D = inpaint_denoiser(D, latent, m, blend)
        else:
            latent = torch.zeros(1, 4, 16, 24) if c["kind"] == "txt2img" else shared["img2img_latent"] * 0.18215
        s0 = sig[0]
        max_denoise = math.isclose(smax, float(s0), rel_tol=1e-5) or float(s0) > smax
        x = latent + noise * ((1 + s0 ** 2) ** 0.5 if max_denoise else s0)
        with torch.no_grad():
            x = run_sampler(c["sampler"], D, x, sig, c["seed"])
        if x is not None:
            samples = x / 0.18215
            ref = stored["samples"]
            entry["samples_max_abs_diff"] = float((samples - ref).abs().max())
            entry["samples_rel_diff"] = float((samples - ref).abs().max() / ref.abs().max())
            assert entry["samples_rel_diff"] < 1e-4, (c["name"], entry)
        assert entry["sigmas_equal"], (c["name"], sig, stored["sigmas"])
        out[c["name"]] = entry
    return {"what": "each case re-run from COMFY.md's formulas alone (own sigma table, schedulers, argmin "
                    "timestep, c_in, [uncond, cond] CFG batch, sampler steps, fresh torch.Generator(seed) for the "
                    "step noise); compared with the ComfyUI result (samples_rel_diff = max|diff| / max|ref|). "
                    "Samplers without a re-implementation here (uni_pc) only get the sigma check. Inpaint cases: "
                    "the masks are read from the PNGs (gray / 255), VAEEncodeForInpaint's fill and dilation "
                    "(as a max-pool over the same window) and prepare_mask (as a 2x2 block mean) are recomputed, "
                    "the latent re-encoded with diffusers' VAE, and every model call is wrapped in the "
                    "KSamplerX0Inpaint blend (ddim: blend noise from torch.Generator().manual_seed(seed + 1)).",
            "cases": out}


def comfy_clip_check(cond, uncond):
    """Runs ComfyUI's own SD1 tokenizer + CLIP text model on sd1-tiny's text encoder weights."""
    import torch
    from safetensors.torch import load_file
    import comfy.sd1_clip

    tok = comfy.sd1_clip.SDTokenizer(tokenizer_path=str(MODEL / "tokenizer"), embedding_size=32,
                                     embedding_key="clip_l")
    special = {"start": tok.start_token, "end": tok.end_token, "pad": tok.pad_token}
    clip = comfy.sd1_clip.SDClipModel(device="cpu", textmodel_json_config=str(MODEL / "text_encoder" / "config.json"),
                                      special_tokens=special, dtype=torch.float32)
    sd = load_file(str(MODEL / "text_encoder" / "model.safetensors"))
    sd = {k: v.float() for k, v in sd.items()}
    # ComfyUI's CLIPEmbeddings hard-codes vocab_size 49408; sd1-tiny has 1000 tokens: pad the table with zero
    # rows that no token id reaches.
    key = "text_model.embeddings.token_embedding.weight"
    emb = sd[key]
    sd[key] = torch.cat([emb, emb.new_zeros(49408 - emb.shape[0], emb.shape[1])])
    missing, unexpected = clip.transformer.load_state_dict(sd, strict=False)
    missing = [k for k in missing if "position_ids" not in k]
    out = {"tokens_start_end_pad": [tok.start_token, tok.end_token, tok.pad_token],
           "missing_keys": missing, "unexpected_keys": list(unexpected)}
    with torch.no_grad():
        res = {}
        for name, text, ref in (("positive", PROMPT, cond), ("negative", NEGATIVE, uncond)):
            tokens = tok.tokenize_with_weights(text)
            pairs = tokens if isinstance(tokens, list) else tokens["l"]
            z, pooled = clip.encode_token_weights(pairs)[:2]
            res[name] = {"ids": [t for t, _, *_ in pairs[0]][:24], "shape": list(z.shape),
                         "max_abs_diff_vs_diffusers": float((z - ref).abs().max())}
        clip.set_clip_options({"layer": -2})
        tokens = tok.tokenize_with_weights(PROMPT)
        z2 = clip.encode_token_weights(tokens)[0]
        clip.reset_clip_options()
        from transformers import CLIPTextModel, CLIPTokenizer
        te = CLIPTextModel.from_pretrained(MODEL / "text_encoder", torch_dtype=torch.float32).eval()
        hf_tok = CLIPTokenizer.from_pretrained(MODEL / "tokenizer")
        ids = hf_tok(PROMPT, padding="max_length", max_length=77, return_tensors="pt").input_ids
        hs = te(ids, output_hidden_states=True).hidden_states
        ref2 = te.final_layer_norm(hs[-2])
        res["clip_set_last_layer_-2"] = {
            "compared_with": "text_encoder.final_layer_norm(text_encoder(ids, output_hidden_states=True).hidden_states[-2]) (= diffusers encode_prompt clip_skip=1)",
            "max_abs_diff": float((z2 - ref2).abs().max())}
    out.update(res)
    return out


if __name__ == "__main__":
    main()
