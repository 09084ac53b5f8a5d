#!/usr/bin/env python3
"""Writes the diffusers reference numbers that Chisel's scheduler tests compare against.

Pinned reference (run by hand, never in CI):
    python 3.11, torch 2.15.0 (CPU), diffusers 0.42.1, numpy 2.4.6, scipy 1.17.1
Run:
    tools/.venv/bin/python tools/diffusion/make_scheduler_fixtures.py
Writes Tests/ChiselDiffusionTests/Fixtures/schedulers/*.json (see tools/diffusion/SCHEDULERS.md).

Float32 tensors are stored as base64 of their little-endian bytes (bit-exact); timesteps,
sigmas and other float64 values as JSON numbers written with Python's repr (round-trip exact).
Each run stores, after every step, the values at PROBE (a fixed set of element indices from both
batch items), and the whole latent after the last step of the SD 1.5 config's runs, to keep the
files small (schedulers are element-wise, so the probe sees every code path).
Stochastic steps draw from `counter_noise`, a fixed integer formula that Chisel's tests compute
the same way, so no noise tensor needs storing; the script checks the draw count.
"""
import base64
import json
import os
import sys

import numpy as np
import torch
import diffusers
from diffusers import (DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, HeunDiscreteScheduler, LCMScheduler, LMSDiscreteScheduler,
                       PNDMScheduler, UniPCMultistepScheduler)

PINS = {"torch": "2.15.0", "diffusers": "0.42.1", "numpy": "2.4.6"}
for mod, want in [(torch, PINS["torch"]), (diffusers, PINS["diffusers"]), (np, PINS["numpy"])]:
    if not mod.__version__.startswith(want):
        sys.exit(f"{mod.__name__} {mod.__version__} is not the pinned {want}")

torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "ChiselDiffusionTests", "Fixtures", "schedulers")
SHAPE = (2, 4, 4, 4)

# Checkpoint configs as shipped (scheduler_config.json), plus variants exercising spacing and beta options.
SD15 = {"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
        "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
        "trained_betas": None, "clip_sample": False}
CONFIGS = {
    "sd15": SD15,
    "sd2_v": {**SD15, "_class_name": "DDIMScheduler", "prediction_type": "v_prediction"},
    "trailing": {**SD15, "timestep_spacing": "trailing"},
    "linspace": {**SD15, "timestep_spacing": "linspace"},
    "leading": {**SD15, "timestep_spacing": "leading"},
    "zero_snr": {**SD15, "_class_name": "DDIMScheduler", "prediction_type": "v_prediction",
                 "rescale_betas_zero_snr": True, "timestep_spacing": "trailing"},
    "cosine": {"_class_name": "DDPMScheduler", "beta_schedule": "squaredcos_cap_v2", "num_train_timesteps": 1000,
               "clip_sample": False},
    "linear": {"_class_name": "DDPMScheduler", "beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02,
               "clip_sample": False},
}
# Classes that accept rescale_betas_zero_snr (others would silently ignore it, so skip the case).
ZERO_SNR_CLASSES = {DDIMScheduler, DDPMScheduler, EulerDiscreteScheduler, EulerAncestralDiscreteScheduler,
                    DPMSolverMultistepScheduler, UniPCMultistepScheduler, LCMScheduler}

# kind -> (class, overrides, step kwargs, stochastic)
KINDS = {
    "ddim": (DDIMScheduler, {}, {}),
    "ddim_eta": (DDIMScheduler, {}, {"eta": 0.7}),
    "ddpm": (DDPMScheduler, {}, {}),
    "pndm": (PNDMScheduler, {}, {}),
    "pndm_prk": (PNDMScheduler, {"skip_prk_steps": False}, {}),
    "lms": (LMSDiscreteScheduler, {}, {}),
    "lms_karras": (LMSDiscreteScheduler, {"use_karras_sigmas": True}, {}),
    "euler": (EulerDiscreteScheduler, {}, {}),
    "euler_karras": (EulerDiscreteScheduler, {"use_karras_sigmas": True}, {}),
    "euler_a": (EulerAncestralDiscreteScheduler, {}, {}),
    "heun": (HeunDiscreteScheduler, {}, {}),
    "dpmpp_2m": (DPMSolverMultistepScheduler, {}, {}),
    "dpmpp_2m_karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}, {}),
    "dpmpp_2m_sde": (DPMSolverMultistepScheduler, {"algorithm_type": "sde-dpmsolver++"}, {}),
    "dpmpp_2m_sde_karras": (DPMSolverMultistepScheduler, {"algorithm_type": "sde-dpmsolver++",
                                                          "use_karras_sigmas": True}, {}),
    "dpmpp_3m": (DPMSolverMultistepScheduler, {"solver_order": 3}, {}),
    "unipc": (UniPCMultistepScheduler, {}, {}),
    "lcm": (LCMScheduler, {}, {}),
}
# Which configs run a full loop per kind; every kind also records schedules for SCHEDULE_STEPS.
RUN_STEPS_MAIN = [1, 2, 4, 10, 25, 50]
RUN_STEPS_OTHER = [1, 4, 20]
SCHEDULE_STEPS = [1, 2, 3, 4, 7, 10, 20, 25, 30, 50]
STRENGTHS_MAIN = [None, 0.3, 0.75]
STRENGTHS_OTHER = [None, 0.75]
LCM_STEPS = [1, 2, 4, 8]


PROBE = list(range(0, 8)) + list(range(64, 72)) + [37, 101]


def counter_noise(draw, count):
    """Noise for the draw-th randn call: a splitmix64 hash of (draw, j) mapped to [-1.5, 1.5) in float32."""
    out = np.empty(count, dtype=np.float32)
    mask = (1 << 64) - 1
    for j in range(count):
        z = (draw * 0x9E3779B97F4A7C15 + j * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        u = np.float32(z >> 40) / np.float32(1 << 24)  # exact: 24-bit integer over 2^24
        out[j] = (u - np.float32(0.5)) * np.float32(3.0)
    return out


def b64(t):
    a = np.ascontiguousarray(t.detach().cpu().numpy().astype("<f4"))
    return base64.b64encode(a.tobytes()).decode("ascii")


def floats(t):
    return [float(x) for x in np.asarray(t, dtype=np.float64).reshape(-1)]


def fake_model(scaled, t, base):
    """A stand-in UNet that depends on sample and timestep; Chisel's tests compute it the same way."""
    tf = float(t)
    c1 = 0.05 + 0.9 * tf / 1000.0
    c2 = 0.5 - 0.3 * tf / 1000.0
    return scaled * c1 + base * c2


def make(cls, config, overrides):
    return cls.from_config(config, **overrides)


def run_loop(sched, n, strength, x0, noise0, base, step_kwargs, seed, full_last):
    """The SD txt2img/img2img loop: set_timesteps, truncate, add_noise (img2img), scale, model, step."""
    sched.set_timesteps(n)
    timesteps = sched.timesteps
    order = sched.order
    record = {"strength": strength}
    if strength is None:
        latents = noise0 * sched.init_noise_sigma
        t_start = 0
    else:
        init_timestep = min(int(n * strength), n)
        t_start = max(n - init_timestep, 0)
        timesteps = timesteps[t_start * order:]
        if hasattr(sched, "set_begin_index"):
            sched.set_begin_index(t_start * order)
        if len(timesteps) == 0:
            return None
        latents = sched.add_noise(x0, noise0, timesteps[:1])
    record["t_start"] = t_start
    record["begin_index"] = t_start * order
    record["latents"] = b64(latents.reshape(-1)[PROBE])
    gen = torch.Generator().manual_seed(seed)
    noises = []
    real_randn = diffusers.utils.torch_utils.randn_tensor

    def recording_randn(shape, generator=None, device=None, dtype=None, layout=None):
        count = int(np.prod(shape))
        noises.append(count)
        return torch.from_numpy(counter_noise(len(noises) - 1, count)).reshape(shape).to(dtype or torch.float32)

    outputs, scaled_first, denoised = [], None, []
    patched = []
    mod = sys.modules[type(sched).__module__]
    if hasattr(mod, "randn_tensor"):
        patched.append(mod)
        mod.randn_tensor = recording_randn
    try:
        for i, t in enumerate(timesteps):
            scaled = sched.scale_model_input(latents, t)
            if i == 0:
                scaled_first = b64(scaled.reshape(-1)[PROBE])
            model_out = fake_model(scaled, t, base)
            kwargs = dict(step_kwargs)
            if "generator" in sched.step.__code__.co_varnames:
                kwargs["generator"] = gen
            res = sched.step(model_out, t, latents, **kwargs, return_dict=False)
            latents = res[0]
            full = full_last and i == len(timesteps) - 1
            outputs.append(b64(latents) if full else b64(latents.reshape(-1)[PROBE]))
            if isinstance(sched, LCMScheduler):
                denoised.append(b64(res[1]) if full else b64(res[1].reshape(-1)[PROBE]))
    finally:
        for m in patched:
            m.randn_tensor = real_randn
    record["scaled_first"] = scaled_first
    record["outputs"] = outputs
    record["noise_draws"] = noises
    if denoised:
        record["denoised"] = denoised
    return record


def schedule_record(sched, n):
    sched.set_timesteps(n)
    rec = {"steps": n, "timesteps": floats(sched.timesteps),
           "init_noise_sigma": float(sched.init_noise_sigma)}
    sig = getattr(sched, "sigmas", None)
    if sig is not None and not isinstance(sched, (DDIMScheduler, DDPMScheduler, PNDMScheduler, LCMScheduler)):
        rec["sigmas"] = floats(sig)
    return rec


def main():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(1234)
    x0 = torch.randn(SHAPE, generator=gen)
    noise0 = torch.randn(SHAPE, generator=gen)
    base = torch.randn(SHAPE, generator=gen) * 0.5
    common = {"shape": list(SHAPE), "probe": PROBE, "x0": b64(x0), "noise": b64(noise0), "base": b64(base),
              "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__, "numpy": np.__version__},
              "cpu_capability": torch.backends.cpu.get_cpu_capability(), "noise_schedules": {}}
    for name, cfg in CONFIGS.items():
        s = DDIMScheduler.from_config(cfg) if cfg.get("_class_name") != "DDPMScheduler" else DDPMScheduler.from_config(cfg)
        common["noise_schedules"][name] = {"config": cfg, "betas": b64(s.betas), "alphas_cumprod": b64(s.alphas_cumprod)}
    with open(os.path.join(OUT, "common.json"), "w") as f:
        json.dump(common, f)

    total = 0
    for kind, (cls, overrides, step_kwargs) in KINDS.items():
        cases = []
        for cname, cfg in CONFIGS.items():
            if cname == "zero_snr" and cls not in ZERO_SNR_CLASSES:
                continue
            if cls is LCMScheduler and cname not in ("sd15", "sd2_v", "linear"):
                continue
            main_cfg = cname == "sd15"
            case = {"config_name": cname, "config": cfg, "overrides": overrides, "step_kwargs": step_kwargs,
                    "schedules": [], "runs": []}
            schedule_steps = LCM_STEPS if cls is LCMScheduler else SCHEDULE_STEPS
            for n in schedule_steps:
                try:
                    case["schedules"].append(schedule_record(make(cls, cfg, overrides), n))
                except ValueError as err:  # e.g. PNDM with PRK steps cannot do 1 step
                    case["schedules"].append({"steps": n, "error": str(err)})
            run_steps = LCM_STEPS if cls is LCMScheduler else (RUN_STEPS_MAIN if main_cfg else RUN_STEPS_OTHER)
            strengths = STRENGTHS_MAIN if main_cfg else STRENGTHS_OTHER
            for n in run_steps:
                for strength in strengths:
                    try:
                        rec = run_loop(make(cls, cfg, overrides), n, strength, x0, noise0, base, step_kwargs,
                                       seed=1000 + n, full_last=main_cfg)
                    except (ValueError, IndexError):  # diffusers itself fails (e.g. duplicate karras timesteps)
                        continue
                    if rec is not None:
                        rec["steps"] = n
                        case["runs"].append(rec)
            cases.append(case)
        doc = {"kind": kind, "class": cls.__name__, "cases": cases}
        path = os.path.join(OUT, f"{kind}.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        size = os.path.getsize(path)
        total += size
        print(f"{kind}: {len(cases)} configs, {size / 1024:.0f} KiB")
    print(f"total {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
