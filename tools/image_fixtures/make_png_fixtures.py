#!/usr/bin/env python3
"""Writes the PNG test fixtures of ChiselImageIO and the decoded samples they must give.

Uses only the Python standard library (zlib, struct, json): PNG chunks, filters and Adam7
interlacing are written by hand, so the fixtures do not come from libpng, the library
under test. Run through generate.sh; the output is deterministic.

png_expected.json lists, per file, the size, layout and bit depth ChiselImageIO must report
and the decoded samples, interleaved, at the output depth (1/2/4-bit gray scaled to 8 bits,
palette expanded, tRNS turned into an alpha channel).
"""
import json
import struct
import sys
import zlib
from pathlib import Path


class Rng:
    """xorshift32: deterministic across Python versions, unlike random."""

    def __init__(self, seed):
        self.state = seed or 1

    def next(self):
        x = self.state
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.state = x
        return x

    def below(self, n):
        return self.next() % n


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples, depth):
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    if depth == 8:
        return bytes(samples)
    out = bytearray()
    per_byte = 8 // depth
    for i in range(0, len(samples), per_byte):
        byte = 0
        group = samples[i:i + per_byte]
        for j, s in enumerate(group):
            byte |= s << (8 - depth * (j + 1))
        out.append(byte)
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_line(kind, line, prev, bpp):
    out = bytearray([kind])
    for i, x in enumerate(line):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i] if prev is not None else 0
        c = prev[i - bpp] if prev is not None and i >= bpp else 0
        predictor = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
        out.append((x - predictor) & 0xFF)
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def image_data(pixels, width, height, channels, depth, interlaced):
    """Filtered scanlines; every filter type is used, cycling per row."""
    bpp = max(1, channels * depth // 8)
    passes = ADAM7 if interlaced else [(0, 0, 1, 1)]
    raw = bytearray()
    row_number = 0
    for x0, y0, dx, dy in passes:
        xs = range(x0, width, dx)
        ys = range(y0, height, dy)
        if len(xs) == 0 or len(ys) == 0:
            continue
        prev = None
        for y in ys:
            samples = [s for x in xs for s in pixels[y * width + x]]
            line = pack_row(samples, depth)
            raw += filter_line(row_number % 5, line, prev, bpp)
            prev = line
            row_number += 1
    return zlib.compress(bytes(raw), 9)


COLOR_TYPES = {"gray": (0, 1), "rgb": (2, 3), "palette": (3, 1), "gray_alpha": (4, 2), "rgba": (6, 4)}


def make_png(spec, rng):
    """Returns (file bytes, expected entry) for one fixture spec."""
    name, kind, depth = spec["name"], spec["kind"], spec["depth"]
    width, height = spec.get("size", (7, 5))
    color_type, channels = COLOR_TYPES[kind]
    maxval = (1 << depth) - 1
    palette = trns = None
    if kind == "palette":
        entries = spec.get("palette_size", 1 << depth)
        palette = [(rng.below(256), rng.below(256), rng.below(256)) for _ in range(entries)]
        pixels = [(rng.below(entries),) for _ in range(width * height)]
        pixels[0] = (entries - 1,)
        if spec.get("trns"):
            # Shorter than the palette on purpose: the missing entries are opaque.
            trns = [rng.below(256) for _ in range(max(1, entries // 2))]
            trns[0] = 0
    else:
        pixels = [tuple(rng.below(maxval + 1) for _ in range(channels)) for _ in range(width * height)]
        pixels[0] = tuple([maxval] * channels)
        if len(pixels) > 1:
            pixels[1] = tuple([0] * channels)
        if spec.get("trns"):
            trns = pixels[width + 1]  # a colour that occurs, so some pixels turn transparent
            pixels[2] = trns

    out_depth = 16 if depth == 16 else 8
    out_max = (1 << out_depth) - 1
    expected = []
    for p in pixels:
        if kind == "palette":
            r, g, b = palette[p[0]]
            expected += [r, g, b]
            if trns is not None:
                expected.append(trns[p[0]] if p[0] < len(trns) else 255)
        else:
            scale = out_max // maxval if depth < 8 else 1
            expected += [s * scale for s in p]
            if trns is not None:
                expected.append(0 if tuple(p) == tuple(trns) else out_max)
    layout = {"gray": "gray", "gray_alpha": "gray_alpha", "rgb": "rgb", "rgba": "rgba", "palette": "rgb"}[kind]
    if trns is not None:
        layout = {"gray": "gray_alpha", "rgb": "rgba"}[layout]

    interlaced = spec.get("interlaced", False)
    out = bytearray(b"\x89PNG\r\n\x1a\n")
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 1 if interlaced else 0))
    if palette is not None:
        out += chunk(b"PLTE", bytes(v for entry in palette for v in entry))
    if trns is not None:
        if kind == "palette":
            out += chunk(b"tRNS", bytes(trns))
        else:
            out += chunk(b"tRNS", b"".join(struct.pack(">H", s) for s in trns))
    for extra in spec.get("before_idat", []):
        out += extra
    data = image_data(pixels, width, height, channels, depth, interlaced)
    split = spec.get("split_idat")
    pieces = [data[i:i + split] for i in range(0, len(data), split)] if split else [data]
    for piece in pieces:
        out += chunk(b"IDAT", piece)
    for extra in spec.get("after_idat", []):
        out += extra
    out += chunk(b"IEND", b"")
    entry = {"file": name + ".png", "width": width, "height": height, "layout": layout,
             "bitDepth": out_depth, "samples": expected}
    return bytes(out), entry


def text_chunks():
    """tEXt, zTXt and iTXt chunks, some after the image data, and the pairs they decode to."""
    def latin1(s):
        return s.encode("latin-1")

    long_text = "Chisel " * 200
    before = [
        chunk(b"tEXt", b"Title\x00" + latin1("Chisel fixture")),
        chunk(b"tEXt", b"Comment\x00" + latin1("caf\u00e9 \u00fcber \u00bd")),
        chunk(b"zTXt", b"Description\x00\x00" + zlib.compress(latin1(long_text))),
        chunk(b"iTXt", b"chisel.graph\x00\x00\x00en\x00chisel.graph\x00"
              + '{"nodes":["\u65e5\u672c\u8a9e","\u00fc"]}'.encode("utf-8")),
        chunk(b"iTXt", b"Note\x00\x01\x00el\x00\x00" + zlib.compress("\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac".encode("utf-8"))),
    ]
    after = [chunk(b"tEXt", b"After\x00" + latin1("written after IDAT"))]
    pairs = [["Title", "Chisel fixture"], ["Comment", "caf\u00e9 \u00fcber \u00bd"], ["Description", long_text],
             ["chisel.graph", '{"nodes":["\u65e5\u672c\u8a9e","\u00fc"]}'],
             ["Note", "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac"], ["After", "written after IDAT"]]
    return before, after, pairs


def exif_chunk(orientation):
    """A big-endian TIFF structure with only the orientation tag, as a PNG eXIf chunk."""
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    return chunk(b"eXIf", tiff)


def main():
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = []
    for depth in (1, 2, 4, 8, 16):
        specs.append({"name": f"gray{depth}", "kind": "gray", "depth": depth, "size": (13, 5) if depth < 8 else (7, 5)})
    for depth in (8, 16):
        specs.append({"name": f"gray_alpha{depth}", "kind": "gray_alpha", "depth": depth})
        specs.append({"name": f"rgb{depth}", "kind": "rgb", "depth": depth})
        specs.append({"name": f"rgba{depth}", "kind": "rgba", "depth": depth})
    for depth in (1, 2, 4, 8):
        specs.append({"name": f"palette{depth}", "kind": "palette", "depth": depth, "size": (11, 4)})
        specs.append({"name": f"palette{depth}_trns", "kind": "palette", "depth": depth, "size": (11, 4),
                      "trns": True, **({"palette_size": 200} if depth == 8 else {})})
    for depth in (2, 8, 16):
        specs.append({"name": f"gray{depth}_trns", "kind": "gray", "depth": depth, "trns": True})
    for depth in (8, 16):
        specs.append({"name": f"rgb{depth}_trns", "kind": "rgb", "depth": depth, "trns": True})
    specs += [
        {"name": "interlaced_rgba8", "kind": "rgba", "depth": 8, "size": (11, 9), "interlaced": True},
        {"name": "interlaced_rgb16", "kind": "rgb", "depth": 16, "size": (11, 9), "interlaced": True},
        {"name": "interlaced_gray1", "kind": "gray", "depth": 1, "size": (13, 9), "interlaced": True},
        {"name": "interlaced_gray_alpha16", "kind": "gray_alpha", "depth": 16, "size": (9, 11), "interlaced": True},
        {"name": "interlaced_palette2_trns", "kind": "palette", "depth": 2, "size": (10, 10), "interlaced": True,
         "trns": True},
        {"name": "split_idat_rgb8", "kind": "rgb", "depth": 8, "size": (16, 12), "split_idat": 17},
        {"name": "single_pixel", "kind": "gray", "depth": 8, "size": (1, 1)},
        {"name": "exif_orientation6", "kind": "rgb", "depth": 8, "size": (4, 3), "before_idat": [exif_chunk(6)]},
    ]
    before, after, pairs = text_chunks()
    specs.append({"name": "text", "kind": "gray", "depth": 8, "size": (4, 3), "before_idat": before,
                  "after_idat": after})

    rng = Rng(20240601)
    manifest = {"images": [], "texts": {"file": "text.png", "entries": pairs}}
    for spec in specs:
        data, entry = make_png(spec, rng)
        (out_dir / entry["file"]).write_bytes(data)
        manifest["images"].append(entry)
    (out_dir / "png_expected.json").write_text(json.dumps(manifest, ensure_ascii=True, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
