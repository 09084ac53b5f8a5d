#!/usr/bin/env python3
"""Measures the step-skipping options of `chisel img2img` on the bundled scene model: what each
costs in quality against the full edit, and what it saves.

On held-out scenes of the training world (as tools/eval/quality.py draws them: seeds never used
in training, 128×128, their captions), each scene's stroke painting is edited with
`chisel img2img --model builtin:scenes` at 20 steps × strength 0.75, guidance 4, seed = the
scene's index — once in full, then with each setting (or those --settings names). For every setting: PSNR and
SSIM of its output against the full edit's (what the option changes), against the true scene
(what the edit is for, beside the full edit's own), and the UNet evaluations it runs.

    python3 tools/eval/step_skipping.py --chisel .build/release/chisel [--count 24] [--settings "token merging"]

Prints a Markdown table (docs/quality.md, "Skipping work"). Needs numpy, Pillow, scipy
(tools/eval/requirements.txt).
"""

import argparse
import os
import subprocess
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import quality  # noqa: E402  (scenes, strokes, psnr, ssim)

SETTINGS = [
    ("DeepCache every 2nd step", ["--cache-interval", "2"]),
    ("DeepCache every 3rd step", ["--cache-interval", "3"]),
    ("DeepCache every 5th step", ["--cache-interval", "5"]),
    ("guidance on the first half", ["--guidance-end", "0.5"]),
    ("guidance on the first 30%", ["--guidance-end", "0.3"]),
    ("DeepCache 3 + guidance on the first half", ["--cache-interval", "3", "--guidance-end", "0.5"]),
    # The scene model's UNet has no attention at full resolution (as SDXL's): its first attention
    # level is downsampled 2×, where --token-merging-downsample 2 merges.
    ("token merging 0.3 (to 2×)", ["--token-merging", "0.3", "--token-merging-downsample", "2"]),
    ("token merging 0.5 (to 2×)", ["--token-merging", "0.5", "--token-merging-downsample", "2"]),
    ("DeepCache 3 + token merging 0.5 (to 2×)", ["--cache-interval", "3", "--token-merging", "0.5",
                                                "--token-merging-downsample", "2"]),
]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chisel", default=os.path.join(quality.REPO, ".build", "release", "chisel"))
    p.add_argument("--model", default="builtin:scenes")
    p.add_argument("--count", type=int, default=24)
    p.add_argument("--work", default="/tmp/chisel-step-skipping")
    p.add_argument("--settings", action="append", default=[],
                   help="only the settings whose name contains this (repeatable); by default all")
    args = p.parse_args()
    chosen = [s for s in SETTINGS if not args.settings or any(part in s[0] for part in args.settings)]
    os.makedirs(args.work, exist_ok=True)
    common = ["--model", args.model, "--steps", "20", "--strength", "0.75", "--guidance", "4.0", "--progress", "none"]
    rows = {name: [] for name, _ in chosen}
    full_scores = []
    for i in range(args.count):
        image, caption, _ = quality.scenes.render(quality.scenes.HELD_OUT_START + 1000 + i, 128)
        truth = np.asarray(image)
        stroke = np.asarray(quality.strokes(Image.fromarray(truth)))
        stroke_path = f"{args.work}/stroke-{i}.png"
        quality.save(stroke, stroke_path)

        def edit(extra, name):
            out = f"{args.work}/{name}-{i}.png"
            subprocess.run([args.chisel, "img2img", "--image", stroke_path, "--prompt", caption, "--seed", str(i),
                            "--output", out, *common, *extra], check=True, stdout=subprocess.DEVNULL)
            return quality.load(out)
        full = edit([], "full")
        full_scores.append((quality.psnr(full, truth), quality.ssim(full, truth)))
        for k, (name, extra) in enumerate(chosen):
            out = edit(extra, f"setting{k}")
            rows[name].append((quality.psnr(out, full), quality.ssim(out, full), quality.psnr(out, truth), quality.ssim(out, truth)))
    mean = lambda values: float(np.mean(values))
    print(f"| setting | PSNR to the full edit | SSIM to the full edit | PSNR to the true scene | SSIM to the true scene |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| full edit | – | – | {mean([a for a, _ in full_scores]):.2f} | {mean([b for _, b in full_scores]):.3f} |")
    for name, _ in chosen:
        v = rows[name]
        print(f"| {name} | {mean([r[0] for r in v]):.2f} | {mean([r[1] for r in v]):.3f} | {mean([r[2] for r in v]):.2f} | "
              f"{mean([r[3] for r in v]):.3f} |")


if __name__ == "__main__":
    main()
