#!/usr/bin/env python3
"""Writes samples/scenes/: the inputs of the README's first command (scripts/demo.sh).

All from held-out seeds of the scene world (never used in training):

- day.png: "a mountain in daylight with a blue house", and house-mask.png over its house;
- strokes.png: a stroke painting (median filter and 6 colours, as the SDEdit paper simulates
  them) of a snowy lake scene;
- damaged.png: a scene with three 24×24 patches of noise pasted on it (damaged-mask.png marks them);
- batch/: four scenes for the batch run;
- scenes.json: each file's seed and caption.

    python3 tools/world/make_samples.py      # needs numpy and Pillow (tools/samples/requirements.txt)
"""

import json
import os

import numpy as np
from PIL import Image, ImageFilter

import scenes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(REPO, "samples", "scenes")
DAY, STROKES, DAMAGED = 1_000_038, 1_000_026, 1_000_011
BATCH = [1_000_003, 1_000_028, 1_000_036, 1_000_005]


def main():
    os.makedirs(os.path.join(OUT, "batch"), exist_ok=True)
    record = {}

    image, caption, attributes = scenes.render(DAY)
    image.save(os.path.join(OUT, "day.png"))
    house = next(o["box"] for o in attributes["objects"] if o["kind"] == "house")
    mask = Image.new("L", image.size, 0)
    x0, y0, x1, y1 = house
    # A margin of twice the paste-back's feathering (σ 4 px), so no edge of the house shows through it.
    mask.paste(255, (max(0, x0 - 8), max(0, y0 - 8), min(128, x1 + 8), min(128, y1 + 8)))
    mask.save(os.path.join(OUT, "house-mask.png"))
    record["day.png"] = {"seed": DAY, "caption": caption, "house": house}

    image, caption, _ = scenes.render(STROKES)
    smooth = image.filter(ImageFilter.MedianFilter(9))
    smooth.quantize(colors=6, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).convert("RGB").save(
        os.path.join(OUT, "strokes.png"))
    record["strokes.png"] = {"seed": STROKES, "caption": caption}

    image, caption, _ = scenes.render(DAMAGED)
    pixels = np.asarray(image).copy()
    planted = np.zeros(pixels.shape[:2], dtype=np.uint8)
    rng = np.random.default_rng(DAMAGED)
    for _ in range(3):
        x, y = (int(v) for v in rng.integers(0, 128 - 24 + 1, 2))
        pixels[y:y + 24, x:x + 24] = rng.integers(0, 256, (24, 24, 3))
        planted[y:y + 24, x:x + 24] = 255
    Image.fromarray(pixels).save(os.path.join(OUT, "damaged.png"))
    Image.fromarray(planted).save(os.path.join(OUT, "damaged-mask.png"))
    record["damaged.png"] = {"seed": DAMAGED, "caption": caption}

    for i, seed in enumerate(BATCH):
        image, caption, _ = scenes.render(seed)
        name = f"batch/scene-{i + 1}.png"
        image.save(os.path.join(OUT, name))
        record[name] = {"seed": seed, "caption": caption}
    with open(os.path.join(OUT, "scenes.json"), "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
