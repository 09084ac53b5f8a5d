#!/usr/bin/env python3
"""Checks the committed fixtures with Pillow, a decoder independent of the code under test.

Not needed to regenerate fixtures; run it by hand after changing a generator:
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -r requirements.txt
    /tmp/venv/bin/python cross_check_pillow.py ../../Tests/ChiselImageIOTests/Fixtures
It checks that ImageOps.exif_transpose turns every orientation_N.jpg upright and that
Pillow decodes each PNG to the samples in png_expected.json (Pillow reduces 16-bit colour
to 8 bits and handles gray tRNS differently, so those files are compared loosely or skipped).
"""
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

RGB = [(220, 30, 30), (30, 200, 60), (40, 60, 210), (230, 220, 40)]
CENTERS = [(8, 16), (8, 48), (24, 16), (24, 48)]


def main():
    folder = Path(sys.argv[1])
    failures = 0
    for o in range(1, 9):
        upright = np.asarray(ImageOps.exif_transpose(Image.open(folder / f"orientation_{o}.jpg")).convert("RGB"))
        worst = max(int(np.abs(upright[y, x].astype(int) - RGB[q]).max()) for q, (y, x) in enumerate(CENTERS))
        if upright.shape != (32, 64, 3) or worst > 8:
            failures += 1
            print(f"orientation_{o}.jpg: shape {upright.shape}, worst difference {worst}")
    manifest = json.loads((folder / "png_expected.json").read_text())
    for entry in manifest["images"]:
        image = Image.open(folder / entry["file"])
        image.load()
        if image.mode == "P":
            image = image.convert("RGBA" if entry["layout"] == "rgba" else "RGB")
        elif "trns" in entry["file"]:
            continue
        samples = np.asarray(image).astype(int)
        if image.mode == "1":
            samples = samples * 255
        expected = np.array(entry["samples"])
        if entry["bitDepth"] == 16 and image.mode in ("RGB", "RGBA"):
            expected = expected >> 8
            if entry["layout"] == "gray_alpha":  # opened as RGBA with the gray repeated
                samples = samples[:, :, [0, 3]]
        if samples.reshape(-1).tolist() != expected.tolist():
            failures += 1
            print(f"{entry['file']}: Pillow disagrees")
    print("all fixtures agree with Pillow" if failures == 0 else f"{failures} disagreements")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
