#!/usr/bin/env python3
"""Writes the MaskGIT scheduler fixtures of ChiselDiffusionTests
(Tests/ChiselDiffusionTests/Fixtures/maskgit/amused_scheduler.json).

Run by hand, never in CI, with the pinned reference environment:

    tools/.venv/bin/python tools/diffusion/make_maskgit_fixtures.py

Pins: Python 3.11, torch 2.15.0 (CPU), diffusers 0.42.1, numpy 2.4.6. It drives diffusers'
AmusedScheduler (MaskGIT decoding as aMUSEd runs it) with logits drawn from NumPy (so the torch
generator's stream is the scheduler's alone) and records, for every step, the logits it was
given (batch × tokens × codebook, row-major), the tokens it returned and the re-masked ones; and
add_noise (img2img's starting mask) for several steps. Values are plain JSON numbers: every
float32 converts to a double exactly and back.
"""

import json
import os
import sys

import numpy as np
import torch
import diffusers
from diffusers import AmusedScheduler

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                   "Tests", "ChiselDiffusionTests", "Fixtures", "maskgit", "amused_scheduler.json")

# name, schedule, steps, temperature, batch, grid side, codebook, seed, known fraction, starting ratio
STEP_CASES = [
    ("cosine_4_steps", "cosine", 4, (2.0, 0.0), 2, 4, 32, 0, 0.0, 1.0),
    ("linear_5_steps_partial", "linear", 5, (3.0, 0.5), 1, 6, 20, 7, 0.4, 0.6),
    ("cosine_12_steps_256", "cosine", 12, (2.0, 0.0), 1, 16, 4, 42, 0.0, 1.0),
    ("cosine_1_step", "cosine", 1, (2.0, 0.0), 1, 3, 10, 3, 0.0, 1.0),
    ("cosine_scalar_temperature", "cosine", 3, 1.5, 2, 2, 6, 1234, 0.0, 1.0),
]

# name, schedule, steps, batch, side, codebook, seed, step indices
NOISE_CASES = [
    ("cosine", "cosine", 12, 2, 4, 50, 5, [0, 3, 6, 11]),
    ("linear", "linear", 8, 1, 8, 50, 99, [0, 2, 7]),
]


def floats(t):
    return [float(x) for x in t.reshape(-1).tolist()]


def step_case(name, schedule, steps, temperature, batch, side, codebook, seed, known, start_ratio):
    mask_id = codebook + 3  # as aMUSEd, the mask id lies past the codebook
    scheduler = AmusedScheduler(mask_token_id=mask_id, masking_schedule=schedule)
    scheduler.set_timesteps(steps, temperature=temperature)
    rng = np.random.default_rng(seed + 1000)
    tokens = side * side
    sample = np.full((batch, side, side), mask_id, dtype=np.int64)
    if known > 0:
        keep = rng.random((batch, side, side)) < known
        sample[keep] = rng.integers(0, codebook, size=int(keep.sum()))
    generator = torch.Generator().manual_seed(seed)
    case = {
        "name": name, "schedule": schedule, "steps": steps, "mask_token_id": mask_id,
        "temperature": list(temperature) if isinstance(temperature, tuple) else temperature,
        "batch": batch, "tokens": tokens, "codebook": codebook, "seed": seed,
        "starting_mask_ratio": start_ratio,
        "timesteps": [int(t) for t in scheduler.timesteps.tolist()],
        "temperatures": floats(scheduler.temperatures),
        "initial": sample.reshape(-1).tolist(), "steps_run": [],
    }
    current = torch.from_numpy(sample)
    for t in scheduler.timesteps:
        logits = (rng.standard_normal((batch, tokens, codebook)) * 3).astype(np.float32)
        # The scheduler takes batch × codebook × h × w and reads it as batch × tokens × codebook.
        model_output = torch.from_numpy(logits).permute(0, 2, 1).reshape(batch, codebook, side, side)
        out = scheduler.step(model_output, t, current, starting_mask_ratio=start_ratio, generator=generator)
        case["steps_run"].append({
            "timestep": int(t),
            "logits": floats(torch.from_numpy(logits)),
            "prev_sample": out.prev_sample.reshape(-1).tolist(),
            "pred_original_sample": out.pred_original_sample.reshape(-1).tolist(),
        })
        current = out.prev_sample
    return case


def noise_case(name, schedule, steps, batch, side, codebook, seed, indices):
    mask_id = codebook + 3
    scheduler = AmusedScheduler(mask_token_id=mask_id, masking_schedule=schedule)
    scheduler.set_timesteps(steps)
    rng = np.random.default_rng(seed)
    sample = torch.from_numpy(rng.integers(0, codebook, size=(batch, side, side)).astype(np.int64))
    runs = []
    for index in indices:
        generator = torch.Generator().manual_seed(seed)
        noised = scheduler.add_noise(sample, scheduler.timesteps[index], generator)
        runs.append({"step_index": index, "noised": noised.reshape(-1).tolist()})
    return {"name": name, "schedule": schedule, "steps": steps, "mask_token_id": mask_id, "seed": seed,
            "sample": sample.reshape(-1).tolist(), "runs": runs}


def main():
    if torch.__version__.split("+")[0] != "2.15.0" or diffusers.__version__ != "0.42.1":
        sys.exit(f"needs torch 2.15.0 and diffusers 0.42.1, found {torch.__version__} / {diffusers.__version__}")
    torch.set_num_threads(1)
    data = {
        "generator": f"tools/diffusion/make_maskgit_fixtures.py, torch {torch.__version__}, diffusers {diffusers.__version__}",
        "steps": [step_case(*c) for c in STEP_CASES],
        "add_noise": [noise_case(*c) for c in NOISE_CASES],
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
