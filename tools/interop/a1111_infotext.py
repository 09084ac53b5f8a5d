#!/usr/bin/env python3
"""Reads Chisel's infotext back with AUTOMATIC1111's own parser.

Runs each command line of CASES with the built `chisel` (tiny test models, a few steps), reads
the `parameters` text of the PNG it wrote, and parses it with `parse_generation_parameters` from
an AUTOMATIC1111 checkout's modules/infotext_utils.py (and infotext_versions.py when present).
The functions are taken from the checkout's source and run as they are, with stand-ins for
the web UI's option store (infotext styles ignored, backward compatibility on, nothing skipped).
Writes Tests/ChiselCLITests/Fixtures/a1111-infotext.json: for each case its arguments, the
infotext Chisel wrote, and what A1111 read from it. CLIInteropTests checks that Chisel still
writes that infotext and that what A1111 read is what was run. By hand, never in CI:

    pip install pillow packaging
    python3 tools/interop/a1111_infotext.py --webui PATH/TO/stable-diffusion-webui [--chisel .build/debug/chisel]
"""
import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
import types

from PIL import Image

REF = "Tests/ChiselModelsTests/Fixtures/reference"
IMAGE = "Tests/ChiselModelStagesTests/Fixtures/pipelines/image.png"
MASK = "Tests/ChiselModelStagesTests/Fixtures/pipelines/mask.png"
LONG = ", ".join(f"detail {i} (sharp:1.1)" for i in range(70))  # over 1 KiB

# name -> chisel arguments ({out} is the PNG to write)
CASES = {
    "img2img-euler-a": ["img2img", "--model", f"{REF}/sd1-tiny", "--image", IMAGE, "--prompt", "a lighthouse at sunset",
                        "--steps", "10", "--strength", "0.8", "--guidance", "7.5", "--seed", "107", "--scheduler", "euler_a"],
    "img2img-karras-clip-skip": ["img2img", "--model", f"{REF}/sd1-tiny", "--image", IMAGE,
                                 "--prompt", "a lake, at dusk: \"quiet\", (oil:1.2) [sketch] \\(escaped\\)",
                                 "--negative-prompt", "blurry,\nlow quality: jpeg", "--steps", "8", "--strength", "0.5",
                                 "--guidance", "6", "--seed", "18446744073709551615", "--scheduler", "dpmpp_2m_karras",
                                 "--clip-skip", "1"],
    "img2img-ddim-eta-full-strength": ["img2img", "--model", f"{REF}/sd1-tiny", "--image", IMAGE, "--prompt", "日本の灯台 🎨",
                                       "--steps", "4", "--strength", "1", "--guidance", "3", "--seed", "5",
                                       "--scheduler", "ddim", "--eta", "0.5"],
    "img2img-sde-uniform-long": ["img2img", "--model", f"{REF}/sd1-tiny", "--image", IMAGE, "--prompt", LONG,
                                 "--steps", "6", "--strength", "0.6", "--guidance", "5", "--seed", "9",
                                 "--scheduler", "dpmpp_2m_sde"],
    "inpaint-9-channel": ["inpaint", "--model", f"{REF}/sd1-inpaint-tiny", "--image", IMAGE, "--mask", MASK,
                          "--prompt", "a bowl of oranges", "--steps", "4", "--guidance", "7", "--seed", "402",
                          "--scheduler", "euler"],
    "inpaint-4-channel-partial": ["inpaint", "--model", f"{REF}/sd1-tiny", "--image", IMAGE, "--mask", MASK,
                                  "--prompt", "a bowl of oranges", "--steps", "6", "--strength", "0.75", "--guidance", "7",
                                  "--seed", "3", "--scheduler", "heun_karras"],
    "img2img-lora": ["img2img", "--model", f"{REF}/sd1-tiny", "--image", IMAGE, "--prompt", "a fox in snow",
                     "--lora", "Tests/ChiselModelsTests/Fixtures/lora/kohya-sd1.safetensors:0.8",
                     "--steps", "4", "--strength", "0.7", "--guidance", "7", "--seed", "12", "--scheduler", "euler"],
    "inpaint-only-masked-fill": ["inpaint", "--model", f"{REF}/sd1-tiny", "--image", IMAGE, "--mask", MASK,
                                 "--prompt", "a bowl of oranges", "--steps", "4", "--strength", "0.9", "--guidance", "7",
                                 "--seed", "4", "--scheduler", "euler", "--masked-content", "fill", "--mask-blur", "6",
                                 "--only-masked", "--only-masked-padding", "16", "--width", "32", "--height", "32"],
}

KEYS = ["Prompt", "Negative prompt", "Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size-1", "Size-2",
        "Model", "Denoising strength", "Clip skip", "Emphasis", "Eta DDIM", "RNG", "Mask blur", "Masked content",
        "Inpaint area", "Masked area padding", "Lora hashes"]


def load_parser(webui):
    """parse_generation_parameters and what it uses, from the checkout's source, run as written."""
    source_path = os.path.join(webui, "modules", "infotext_utils.py")
    tree = ast.parse(open(source_path, encoding="utf-8").read(), source_path)
    wanted_names = {"re_param_code", "re_param", "re_imagesize"}
    wanted_functions = {"unquote", "restore_old_hires_fix_params", "parse_generation_parameters"}
    body = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) in wanted_names for t in node.targets):
            body.append(node)
        elif isinstance(node, ast.FunctionDef) and node.name in wanted_functions:
            body.append(node)
    missing = wanted_functions - {n.name for n in body if isinstance(n, ast.FunctionDef)}
    if missing:
        sys.exit(f"{source_path} lacks {', '.join(sorted(missing))}")
    opts = types.SimpleNamespace(infotext_styles="Ignore", use_old_hires_fix_width_height=False,
                                 auto_backcompat=True, infotext_skip_pasting=[])
    shared = types.SimpleNamespace(opts=opts)
    versions = types.SimpleNamespace(backcompat=lambda d: None)
    versions_path = os.path.join(webui, "modules", "infotext_versions.py")
    if os.path.exists(versions_path):
        vtree = ast.parse(open(versions_path, encoding="utf-8").read(), versions_path)
        vtree.body = [n for n in vtree.body if not (isinstance(n, ast.ImportFrom) and n.module == "modules")]
        vspace = {"shared": shared}
        exec(compile(vtree, versions_path, "exec"), vspace)
        versions = types.SimpleNamespace(backcompat=vspace["backcompat"])
    space = {"shared": shared, "processing": types.SimpleNamespace(), "infotext_versions": versions}
    exec("import json\nimport re\n", space)
    exec(compile(ast.Module(body=body, type_ignores=[]), source_path, "exec"), space)
    return space["parse_generation_parameters"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--webui", required=True, help="an AUTOMATIC1111 stable-diffusion-webui checkout")
    parser.add_argument("--chisel", default=".build/debug/chisel")
    parser.add_argument("--out", default="Tests/ChiselCLITests/Fixtures/a1111-infotext.json")
    args = parser.parse_args()
    parse = load_parser(args.webui)
    cases = []
    with tempfile.TemporaryDirectory() as temp:
        for name, arguments in CASES.items():
            out = os.path.join(temp, name + ".png")
            subprocess.run([args.chisel] + arguments + ["--output", out, "--progress", "none"], check=True,
                           capture_output=True)
            infotext = Image.open(out).text["parameters"]
            read = parse(infotext)
            # A1111 reads the whole text, Version included; the stored text leaves out the last
            # setting, ", Version: chisel X" (X names the build, so changes with every commit).
            assert read.get("Version", "").startswith("chisel "), read.get("Version")
            infotext = infotext[:infotext.rindex(", Version: chisel ")]
            cases.append({"name": name, "arguments": arguments, "infotext": infotext,
                          "a1111": {k: str(read[k]) for k in KEYS if k in read}})
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"parser": "AUTOMATIC1111 modules/infotext_utils.py parse_generation_parameters",
                   "cases": cases}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {args.out}: {len(cases)} cases")


if __name__ == "__main__":
    main()
