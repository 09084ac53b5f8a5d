"""Draws the sample images under samples/ (run by hand; the outputs are committed).

Everything is procedural so the samples are small, license-free and reproducible:
    python3 tools/samples/make_samples.py
"""
import io
import os

import numpy as np
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "samples")


def lake(width=512, height=384, sun=(0.70, 0.30), sun_color=(1.0, 0.86, 0.45), hue=0.0):
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / width, y / height
    horizon = 0.55
    sky = np.stack([0.35 + 0.55 * v, 0.45 + 0.35 * v, 0.85 - 0.25 * v], -1)
    sun_d = np.hypot((u - sun[0]) * width / height, v - sun[1])
    glow = np.clip(1 - sun_d / 0.09, 0, 1)[..., None]
    sky = sky * (1 - glow) + np.array(sun_color) * glow
    hills = horizon - 0.08 * np.sin(u * 7.0 + 1.3) - 0.05 * np.sin(u * 17.0)
    ground = np.stack([0.18 + 0.1 * v, 0.35 + 0.1 * v, 0.16 + 0.05 * v], -1)
    img = np.where((v > hills)[..., None], ground, sky)
    water_top = 0.72
    mirror_v = np.clip(2 * water_top - v, 0, 1)
    mirror = img[(mirror_v * (height - 1)).astype(int), x.astype(int)]
    ripple = 0.04 * np.sin(v * 180.0 + np.sin(u * 25.0))
    water = 0.65 * mirror + 0.35 * np.array([0.1, 0.25, 0.45]) + ripple[..., None]
    img = np.where((v > water_top)[..., None], water, img)
    if hue:
        img = img[..., [1, 2, 0]] * hue + img * (1 - hue)
    return np.clip(img, 0, 1)


def save_png(array, path, bits=8):
    if bits == 16:
        data = np.round(np.clip(array, 0, 1) * 65535).astype(np.uint16)
        Image.fromarray(data).save(path)
    else:
        Image.fromarray(np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)).save(path, optimize=True)


def main():
    images = os.path.join(ROOT, "images")
    batch = os.path.join(ROOT, "batch")
    os.makedirs(images, exist_ok=True)
    os.makedirs(batch, exist_ok=True)

    scene = lake()
    save_png(scene, os.path.join(images, "lake.png"))

    # The region to edit: an ellipse around the sun, white = edit.
    h, w = scene.shape[:2]
    y, x = np.mgrid[0:h, 0:w]
    mask = (((x - 0.70 * w) / 70) ** 2 + ((y - 0.30 * h) / 60) ** 2 <= 1).astype(np.float64)
    save_png(mask, os.path.join(images, "lake-mask.png"))

    # A stand-in for a model's edit of the masked region: the sun turned into a pale moon,
    # the sky's colours shifted, so compositing back through the mask is visible.
    edited = lake(sun_color=(0.85, 0.9, 1.0), hue=0.25)
    save_png(edited, os.path.join(images, "lake-edited.png"))

    # A phone-style JPEG stored sideways with EXIF orientation 6: it must load upright (portrait).
    upright = lake(width=288, height=384, sun=(0.5, 0.25))
    stored = np.rot90(upright, k=1)  # rotate 90° counter-clockwise; orientation 6 turns it back
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.round(stored * 255).astype(np.uint8)).save(
        os.path.join(images, "portrait-exif6.jpg"), quality=88, exif=exif.tobytes())

    # An RGBA sticker with a transparent hole: a mask read from alpha marks the hole for editing.
    sticker = lake(width=256, height=256, sun=(0.3, 0.3))
    alpha = np.ones((256, 256))
    yy, xx = np.mgrid[0:256, 0:256]
    alpha[((xx - 170) ** 2 + (yy - 170) ** 2) <= 45 ** 2] = 0
    rgba = np.concatenate([sticker, alpha[..., None]], -1)
    save_png(rgba, os.path.join(images, "sticker-rgba.png"))

    # A 16-bit gray gradient: 16-bit in, 16-bit out.
    gradient = np.tile(np.linspace(0, 1, 320), (64, 1))
    save_png(gradient, os.path.join(images, "gradient-16bit.png"), bits=16)

    # A small folder of mixed formats and sizes for `chisel batch`.
    sizes = [(320, 240), (240, 320), (256, 256), (400, 200), (200, 300), (300, 300)]
    for i, (bw, bh) in enumerate(sizes):
        img = lake(width=bw, height=bh, sun=(0.2 + 0.12 * i, 0.25 + 0.03 * i), hue=0.1 * i)
        name = f"scene-{i + 1:02d}"
        if i % 2:
            Image.fromarray(np.round(img * 255).astype(np.uint8)).save(os.path.join(batch, name + ".jpg"), quality=90)
        else:
            save_png(img, os.path.join(batch, name + ".png"))


if __name__ == "__main__":
    main()
