#!/usr/bin/env python3
"""Canny fixtures for Chisel's canny stage: OpenCV's own cv2.Canny on real photographs.

The photographs are crops of three public-domain / CC0 photos that scikit-image ships
(skimage.data.astronaut: NASA, public domain; coffee: CC0, Rachel Michetti; chelsea: CC0,
Stefan van der Walt), saved as 8-bit PNG. For each, cv2.Canny runs on the RGB array (as
diffusers' ControlNet examples and AUTOMATIC1111's extension call it) and on its grey version,
with several thresholds and both gradient norms; the edge maps are saved as 8-bit grey PNGs.

Pins (refused if different): opencv-python-headless 5.1.0.95 (cv2 5.1.0), numpy 2.4.6,
scikit-image 0.26.0, Pillow 13.0.0. Run by hand, never in CI:
    tools/.venv/bin/pip install opencv-python-headless==5.1.0.95 scikit-image==0.26.0
    tools/.venv/bin/python tools/reference/canny.py

It writes Tests/ChiselStagesTests/Fixtures/canny/: <photo>.png, <photo>-gray.png,
<case>.png (the edges, 0 or 255) and cases.json. Deterministic.
"""

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import PIL
import PIL.Image
import skimage
import skimage.data

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "Tests" / "ChiselStagesTests" / "Fixtures" / "canny"
PINS = {"cv2": "5.1.0", "numpy": "2.4.6", "skimage": "0.26.0", "PIL": "13.0.0"}

# name -> (loader, crop box x, y, width, height)
PHOTOS = {
    "astronaut": (skimage.data.astronaut, 140, 40, 160, 120),
    "coffee": (skimage.data.coffee, 120, 60, 200, 150),
    "chelsea": (skimage.data.chelsea, 100, 40, 180, 128),
}
# (low, high, L2gradient)
SETTINGS = [(100, 200, False), (50, 150, False), (20, 60, False), (100, 200, True), (180, 90, False)]


def check_versions():
    got = {"cv2": cv2.__version__, "numpy": np.__version__, "skimage": skimage.__version__, "PIL": PIL.__version__}
    bad = {k: (got[k], v) for k, v in PINS.items() if got[k] != v}
    if bad:
        sys.exit(f"canny.py: version mismatch (got, pinned): {bad}")


def main():
    check_versions()
    OUT.mkdir(parents=True, exist_ok=True)
    cases = []
    for name, (load, x, y, w, h) in PHOTOS.items():
        rgb = np.ascontiguousarray(load()[y:y + h, x:x + w, :3])
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        PIL.Image.fromarray(rgb).save(OUT / f"{name}.png", compress_level=9)
        PIL.Image.fromarray(gray).save(OUT / f"{name}-gray.png", compress_level=9)
        for source, array in ((f"{name}.png", rgb), (f"{name}-gray.png", gray)):
            for low, high, l2 in SETTINGS:
                edges = cv2.Canny(array, low, high, L2gradient=l2)
                stem = source[:-4] + f"_{low}_{high}" + ("_l2" if l2 else "")
                PIL.Image.fromarray(edges).save(OUT / f"{stem}.png", compress_level=9)
                cases.append(dict(name=stem, image=source, low=low, high=high, l2_gradient=l2, edges=f"{stem}.png",
                                  edge_pixels=int((edges > 0).sum())))
    doc = {"generator": str(Path(__file__).resolve().relative_to(REPO)),
           "versions": {"python": sys.version.split()[0], "cv2": cv2.__version__, "numpy": np.__version__,
                        "skimage": skimage.__version__, "Pillow": PIL.__version__},
           "photos": "crops of skimage.data.astronaut (NASA, public domain), coffee (CC0, Rachel Michetti), "
                     "chelsea (CC0, Stefan van der Walt)",
           "cases": cases}
    (OUT / "cases.json").write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
