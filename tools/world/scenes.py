#!/usr/bin/env python3
"""The procedural world Chisel's bundled models are trained on: landscape scenes with captions.

Every scene comes from one integer seed: the sky at a time of day (day, sunset, night), a sun or
a moon, clouds, up to two mountain ridges (snow-capped or not), a meadow or a snowfield, a lake
reflecting what is above it, trees and a house. The caption names what is in the picture, so a
prompt changes what a model trained on these makes. Seeds below HELD_OUT_START are for training,
seeds from it on are held out (never seen in training, used by the quality evaluation).

    python3 tools/world/scenes.py --out /tmp/scenes --count 64            # training seeds 0…63
    python3 tools/world/scenes.py --out /tmp/held --count 16 --held-out   # held-out seeds
    python3 tools/world/scenes.py --out /tmp/grid --count 16 --grid grid.png

Writes NNNNNNN.png per seed and captions.jsonl ({"seed", "file", "caption", "attributes"}). The
same seed gives the same bytes (numpy's PCG64 generator, Pillow for drawing, no system fonts).
"""

import argparse
import json
import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HELD_OUT_START = 1_000_000
# Drawn at this many times the output size, then reduced: smooth edges without any blur model.
SUPERSAMPLE = 2

TIMES = ("day", "sunset", "night")
SKY = {  # zenith, horizon
    "day": ((52, 108, 196), (168, 206, 240)),
    "sunset": ((58, 46, 112), (250, 150, 78)),
    "night": ((4, 8, 26), (28, 40, 82)),
}
RIDGE = {  # far ridge, near ridge
    "day": ((118, 138, 168), (82, 104, 92)),
    "sunset": ((120, 82, 110), (76, 52, 72)),
    "night": ((30, 36, 64), (18, 22, 42)),
}
GROUND = {
    "meadow": {"day": (92, 150, 70), "sunset": (96, 98, 58), "night": (20, 38, 30)},
    "snowfield": {"day": (228, 234, 242), "sunset": (236, 196, 186), "night": (92, 102, 132)},
}
CLOUD = {"day": (246, 248, 252), "sunset": (250, 186, 160), "night": (60, 66, 92)}
COUNT_WORDS = {1: "a", 2: "two", 3: "three", 4: "four", 5: "five"}


def mix(a, b, t):
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


def shade(color, factor):
    return tuple(max(0, min(255, int(round(c * factor)))) for c in color)


def ridge_profile(rng, width, base, height, roughness):
    """A mountain ridge's top edge (one y per column) by midpoint displacement."""
    n = 1
    points = np.array([base - rng.uniform(0, height), base - rng.uniform(0, height)])
    amplitude = height
    while n < width:
        mids = (points[:-1] + points[1:]) / 2 + rng.uniform(-amplitude, amplitude, len(points) - 1)
        merged = np.empty(2 * len(points) - 1)
        merged[0::2] = points
        merged[1::2] = mids
        points = merged
        n = len(points) - 1
        amplitude *= roughness
    xs = np.linspace(0, len(points) - 1, width)
    profile = np.interp(xs, np.arange(len(points)), points)
    # One clear peak: lift a bump somewhere so the ridge reads as a mountain.
    centre = rng.uniform(0.2, 0.8) * width
    spread = rng.uniform(0.15, 0.35) * width
    bump = height * 0.9 * np.exp(-((np.arange(width) - centre) / spread) ** 2)
    return np.minimum(profile - bump, base)


def draw_sky(img, time, horizon, rng, size):
    top, bottom = np.array(SKY[time], dtype=np.float64)
    t = (np.arange(size) / max(1, horizon)).clip(0, 1) ** 1.3
    rows = np.rint(top + (bottom - top) * t[:, None]).astype(np.uint8)
    sky = np.repeat(rows[:, None, :], size, axis=1)
    if time == "night":
        for _ in range(int(rng.integers(20, 60))):
            x, y = int(rng.integers(0, size)), int(rng.integers(0, max(1, int(horizon * 0.8))))
            sky[y, x] = int(rng.integers(150, 255))
    img.paste(Image.fromarray(sky))


def draw_light(draw, time, horizon, rng, size):
    """The sun (day, sunset) or the moon (night); returns its name or None."""
    if rng.random() < 0.2:
        return None
    r = size * rng.uniform(0.05, 0.08)
    x = size * rng.uniform(0.15, 0.85)
    if time == "sunset":
        y = horizon - size * rng.uniform(0.02, 0.12)
        colours = ((255, 222, 140), (255, 170, 90))
    elif time == "day":
        y = size * rng.uniform(0.08, 0.25)
        colours = ((255, 252, 226), (255, 238, 170))
    else:
        y = size * rng.uniform(0.08, 0.3)
        colours = ((236, 238, 226), (200, 204, 196))
    draw.ellipse((x - r, y - r, x + r, y + r), fill=colours[0], outline=colours[1])
    return "moon" if time == "night" else "sun"


def draw_clouds(img, time, horizon, rng, size, amount):
    layer = Image.new("L", img.size, 0)
    d = ImageDraw.Draw(layer)
    for _ in range(amount):
        cx, cy = size * rng.uniform(0, 1), horizon * rng.uniform(0.1, 0.7)
        w = size * rng.uniform(0.12, 0.28)
        for _ in range(int(rng.integers(3, 7))):
            ox, oy = rng.uniform(-w / 2, w / 2), rng.uniform(-w / 8, w / 8)
            rx, ry = w * rng.uniform(0.2, 0.4), w * rng.uniform(0.1, 0.2)
            d.ellipse((cx + ox - rx, cy + oy - ry, cx + ox + rx, cy + oy + ry), fill=int(rng.integers(200, 255)))
    layer = layer.filter(ImageFilter.GaussianBlur(size / 96))
    img.paste(Image.new("RGB", img.size, CLOUD[time]), (0, 0), layer)


def draw_ridge(img, profile, colour, snowy, time, rng):
    size = img.size[0]
    d = ImageDraw.Draw(img)
    poly = [(x, float(profile[x])) for x in range(size)] + [(size - 1, size), (0, size)]
    d.polygon(poly, fill=colour)
    if snowy:
        peak = float(profile.min())
        base = float(np.median(profile))
        line = peak + (base - peak) * rng.uniform(0.35, 0.55)
        snow = GROUND["snowfield"][time]
        cap = [(x, float(profile[x])) for x in range(size)]
        cap += [(x, max(float(profile[x]), line + 2 * math.sin(x * 0.3))) for x in range(size - 1, -1, -1)]
        d.polygon(cap, fill=snow)


def draw_tree(d, x, ground_y, h, time, kind):
    trunk = shade((92, 64, 40), 0.35 if time == "night" else 1)
    leaf = {"day": (36, 98, 52), "sunset": (46, 70, 40), "night": (12, 30, 22)}[time]
    d.rectangle((x - h * 0.06, ground_y - h * 0.25, x + h * 0.06, ground_y), fill=trunk)
    if kind == "pine":
        for i in range(3):
            top = ground_y - h * (1.0 - 0.22 * i)
            half = h * (0.18 + 0.08 * i)
            bottom = ground_y - h * (0.5 - 0.15 * i)
            d.polygon([(x, top), (x - half, bottom), (x + half, bottom)], fill=shade(leaf, 1 - 0.08 * i))
    else:
        r = h * 0.32
        d.ellipse((x - r, ground_y - h + r * 0.2, x + r, ground_y - h + 2.2 * r), fill=leaf)


def draw_house(d, x, ground_y, w, time, wall, roof):
    h = w * 0.7
    if time == "night":
        wall, roof = shade(wall, 0.35), shade(roof, 0.35)
    d.rectangle((x - w / 2, ground_y - h, x + w / 2, ground_y), fill=wall)
    d.polygon([(x - w * 0.62, ground_y - h), (x, ground_y - h - w * 0.5), (x + w * 0.62, ground_y - h)], fill=roof)
    window = (255, 214, 96) if time == "night" else (70, 90, 120)
    s = w * 0.16
    d.rectangle((x - w * 0.3, ground_y - h * 0.7, x - w * 0.3 + s, ground_y - h * 0.7 + s), fill=window)
    d.rectangle((x + w * 0.1, ground_y - h * 0.7, x + w * 0.1 + s, ground_y - h * 0.7 + s), fill=window)
    d.rectangle((x - s / 2, ground_y - h * 0.45, x + s / 2, ground_y), fill=shade(roof, 0.7))


def scene_attributes(rng):
    time = TIMES[int(rng.integers(0, 3))]
    ridges = int(rng.choice([0, 1, 2], p=[0.15, 0.45, 0.4]))
    snowy = ridges > 0 and rng.random() < 0.45
    ground = "snowfield" if rng.random() < (0.5 if snowy else 0.1) else "meadow"
    lake = rng.random() < 0.45
    clouds = int(rng.choice([0, 2, 5], p=[0.35, 0.4, 0.25]))
    trees = int(rng.choice([0, 1, 2, 3, 5], p=[0.3, 0.2, 0.2, 0.15, 0.15]))
    tree_kind = "pine" if rng.random() < 0.6 else "round"
    house = rng.random() < 0.35
    house_colour = ("red", "blue", "yellow")[int(rng.integers(0, 3))]
    return {
        "time": time, "ridges": ridges, "snowy": bool(snowy), "ground": ground, "lake": bool(lake),
        "clouds": clouds, "trees": trees, "tree_kind": tree_kind, "house": bool(house),
        "house_colour": house_colour,
    }


def caption_for(a, light):
    if a["ridges"] == 0:
        subject = "a snowy plain" if a["ground"] == "snowfield" else "a green meadow"
    else:
        noun = "mountain" if a["ridges"] == 1 else "mountains"
        subject = ("a " if a["ridges"] == 1 else "") + ("snowy " if a["snowy"] else "") + noun
    when = {"day": "on a sunny day" if light == "sun" else "in daylight", "sunset": "at sunset",
            "night": "at night"}[a["time"]]
    parts = [subject, when]
    if a["lake"]:
        parts.append("above a lake")
    extras = []
    if a["trees"]:
        n = a["trees"]
        kind = "pine tree" if a["tree_kind"] == "pine" else "tree"
        extras.append(f"{COUNT_WORDS[n]} {kind}" + ("s" if n > 1 else ""))
    if a["house"]:
        extras.append(f"a {a['house_colour']} house")
    if a["clouds"] >= 5:
        extras.append("many clouds")
    elif a["clouds"]:
        extras.append("clouds")
    if light == "moon":
        extras.append("the moon")
    caption = " ".join(parts)
    if extras:
        caption += " with " + (", ".join(extras[:-1]) + " and " + extras[-1] if len(extras) > 1 else extras[0])
    return caption


def render(seed, size=128):
    """(image, caption, attributes) of one scene."""
    rng = np.random.default_rng(seed)
    a = scene_attributes(rng)
    big = size * SUPERSAMPLE
    img = Image.new("RGB", (big, big))
    horizon = int(big * rng.uniform(0.55, 0.68))
    draw_sky(img, a["time"], horizon, rng, big)
    d = ImageDraw.Draw(img)
    light = draw_light(d, a["time"], horizon, rng, big)
    if a["clouds"]:
        draw_clouds(img, a["time"], horizon, rng, big, a["clouds"])
    for layer in range(a["ridges"]):
        far = a["ridges"] == 2 and layer == 0
        height = big * (rng.uniform(0.28, 0.42) if far else rng.uniform(0.18, 0.34))
        profile = ridge_profile(rng, big, horizon + 2, height, rng.uniform(0.5, 0.62))
        colour = RIDGE[a["time"]][0 if far else 1]
        draw_ridge(img, profile, colour, a["snowy"], a["time"], rng)
    ground_colour = GROUND[a["ground"]][a["time"]]
    d = ImageDraw.Draw(img)
    d.rectangle((0, horizon, big, big), fill=ground_colour)
    if a["lake"]:
        top = horizon
        bottom = int(horizon + (big - horizon) * rng.uniform(0.45, 0.7))
        above = img.crop((0, max(0, 2 * top - bottom), big, top)).transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        water = Image.new("RGB", above.size, {"day": (60, 110, 170), "sunset": (120, 80, 100),
                                              "night": (10, 18, 40)}[a["time"]])
        reflection = Image.blend(above, water, 0.45)
        arr = np.asarray(reflection).copy()
        for y in range(0, arr.shape[0], 3):  # ripples
            arr[y] = (arr[y] * 0.88).astype(np.uint8)
        img.paste(Image.fromarray(arr), (0, top))
        shore = shade(ground_colour, 0.85)
        d.rectangle((0, bottom, big, bottom + 2), fill=shore)
        land_top = bottom + 2
    else:
        land_top = horizon
    objects = []
    for _ in range(a["trees"]):
        objects.append(("tree", rng.uniform(0.05, 0.95) * big))
    if a["house"]:
        objects.append(("house", rng.uniform(0.15, 0.85) * big))
    boxes = []
    for kind, x in sorted(objects, key=lambda o: o[1]):
        ground_y = rng.uniform(land_top + 4, big - 4) if land_top < big - 8 else big - 4
        scale = 0.6 + 0.6 * (ground_y - land_top) / max(1, big - land_top)
        if kind == "tree":
            h = big * 0.22 * scale
            draw_tree(d, x, ground_y, h, a["time"], a["tree_kind"])
            box = (x - h * 0.34, ground_y - h, x + h * 0.34, ground_y)
        else:
            w = big * 0.16 * scale
            box = (x - w * 0.62, ground_y - w * 1.2, x + w * 0.62, ground_y)
            wall = {"red": (220, 214, 200), "blue": (200, 214, 228), "yellow": (236, 214, 120)}[a["house_colour"]]
            roof = {"red": (170, 52, 40), "blue": (52, 82, 150), "yellow": (140, 96, 48)}[a["house_colour"]]
            draw_house(d, x, ground_y, w, a["time"], wall, roof)
        f = size / big
        boxes.append({"kind": kind, "box": [int(box[0] * f), int(box[1] * f), int(math.ceil(box[2] * f)),
                                            int(math.ceil(box[3] * f))]})
    image = img.resize((size, size), Image.Resampling.LANCZOS)
    return image, caption_for(a, light), dict(a, light=light, objects=boxes)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--count", type=int, default=64)
    p.add_argument("--start", type=int, default=0, help="first seed (added to the held-out start with --held-out)")
    p.add_argument("--held-out", action="store_true", help=f"seeds from {HELD_OUT_START} on")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--grid", help="also write the scenes as one grid PNG with this name")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    first = args.start + (HELD_OUT_START if args.held_out else 0)
    images = []
    with open(os.path.join(args.out, "captions.jsonl"), "w") as f:
        for seed in range(first, first + args.count):
            image, caption, attributes = render(seed, args.size)
            name = f"{seed:07d}.png"
            image.save(os.path.join(args.out, name))
            f.write(json.dumps({"seed": seed, "file": name, "caption": caption, "attributes": attributes}) + "\n")
            images.append(image)
    if args.grid:
        side = math.ceil(math.sqrt(len(images)))
        grid = Image.new("RGB", (side * args.size, side * args.size), (0, 0, 0))
        for i, im in enumerate(images):
            grid.paste(im, ((i % side) * args.size, (i // side) * args.size))
        grid.save(os.path.join(args.out, args.grid))


if __name__ == "__main__":
    main()
