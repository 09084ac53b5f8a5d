#!/usr/bin/env python3
"""Writes images as ComfyUI and AUTOMATIC1111 save them, for `chisel run --from` tests.

Neither tool can run here (their checkpoints detection and web UIs need real models), so this
script writes their metadata the way their save code does, with Pillow:

- ComfyUI's SaveImage (nodes.py): `PngInfo.add_text("prompt", json.dumps(prompt))` and
  `add_text("workflow", json.dumps(workflow))`, plain tEXt chunks;
- AUTOMATIC1111's save_image_with_geninfo (modules/images.py): for PNG,
  `PngInfo.add_text("parameters", infotext)`; for JPEG, an Exif block whose UserComment is
  piexif's UserComment.dump(infotext, encoding="unicode"): b"UNICODE\\0" + UTF-16BE text.

Outputs Tests/ChiselCLITests/Fixtures/interop/ (a few KB each). By hand, never in CI:

    pip install pillow
    python3 tools/interop/tool_images.py
"""
import json
import os

from PIL import Image
from PIL.PngImagePlugin import PngInfo

OUT = "Tests/ChiselCLITests/Fixtures/interop"
SOURCE = "Tests/ChiselModelStagesTests/Fixtures/pipelines/image.png"

# An img2img workflow in ComfyUI's API format: its checkpoint and input named by file name only.
PROMPT = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd1-tiny.safetensors"}},
    "5": {"class_type": "CLIPSetLastLayer", "inputs": {"stop_at_clip_layer": -2, "clip": ["4", 1]}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse, (storm:1.2), oil painting", "clip": ["5", 0]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["5", 0]}},
    "10": {"class_type": "LoadImage", "inputs": {"image": "photo.png", "upload": "image"}},
    "12": {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}},
    "3": {"class_type": "KSampler", "inputs": {"seed": 1234, "steps": 10, "cfg": 6.5, "sampler_name": "dpmpp_2m",
                                               "scheduler": "karras", "denoise": 0.55, "model": ["4", 0],
                                               "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["12", 0]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "lighthouse", "images": ["8", 0]}},
}

A1111_INPAINT = (
    "a wooden boat on a lake\n"
    "Negative prompt: blurry\n"
    "Steps: 8, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 99, Size: 48x32, "
    "Model hash: 0123456789, Model: sd15, Denoising strength: 0.75, Mask blur: 4, Masked content: original, "
    "Inpaint area: Only masked, Masked area padding: 8, RNG: CPU, Version: v1.10.1"
)

A1111_JPEG = (
    "a snowy mountain, \"golden hour\": warm light, ünïcödé\n"
    "Negative prompt: lowres\n"
    "Steps: 6, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5, Seed: 314, Size: 48x32, Model: sd15, "
    "Clip skip: 2, RNG: CPU, Version: v1.10.1"
)


def piexif_user_comment(text):
    """The Exif block piexif.dump writes for {"Exif": {UserComment: ...}}: a big-endian TIFF
    structure, IFD0 with the Exif IFD pointer, the Exif IFD with the UserComment (UNDEFINED)."""
    import struct
    comment = b"UNICODE\0" + text.encode("utf-16-be")
    ifd0 = 8
    exif_ifd = ifd0 + 2 + 12 + 4
    data = exif_ifd + 2 + 12 + 4
    tiff = b"MM\0*" + struct.pack(">I", ifd0)
    tiff += struct.pack(">H", 1) + struct.pack(">HHII", 0x8769, 4, 1, exif_ifd) + struct.pack(">I", 0)
    tiff += struct.pack(">H", 1) + struct.pack(">HHII", 0x9286, 7, len(comment), data) + struct.pack(">I", 0)
    return b"Exif\0\0" + tiff + comment


def main():
    os.makedirs(OUT, exist_ok=True)
    image = Image.open(SOURCE).convert("RGB")

    info = PngInfo()
    info.add_text("prompt", json.dumps(PROMPT))
    # The editor's workflow is only carried along; Chisel reads the API prompt.
    info.add_text("workflow", json.dumps({"last_node_id": 12, "last_link_id": 0, "nodes": [], "links": [], "version": 0.4}))
    image.save(f"{OUT}/comfyui-img2img.png", pnginfo=info, compress_level=4)

    info = PngInfo()
    info.add_text("parameters", A1111_INPAINT)
    image.save(f"{OUT}/a1111-inpaint.png", pnginfo=info, compress_level=4)

    image.save(f"{OUT}/a1111-txt2img.jpg", quality=90, exif=piexif_user_comment(A1111_JPEG))

    # What was written, read back as the tools read it.
    print(Image.open(f"{OUT}/comfyui-img2img.png").info.keys())
    print(Image.open(f"{OUT}/a1111-inpaint.png").info["parameters"][:40])
    print(Image.open(f"{OUT}/a1111-txt2img.jpg").getexif().get_ifd(0x8769)[0x9286][:24])


if __name__ == "__main__":
    main()
