"""Runs `chisel bench --json`, diffusers_bench.py and (where the --python has openvino)
openvino_bench.py one after the other on this machine and prints the table of seconds and ratios
(diffusers ÷ Chisel and OpenVINO ÷ Chisel: above 1 means Chisel is faster). OpenVINO times the
networks (UNet pair, VAE, ControlNet + UNet) and the SD 1.5 whole edits (img2img, inpaint and the
recipes: diffusers' pipelines with OpenVINO's networks); its cells for other rows are "–".

    python3 tools/bench/side_by_side.py [--chisel .build/release/chisel] [--repeats 3]
    python3 tools/bench/side_by_side.py --part edit [--edit-repeats 1]   # the whole-edit rows
    python3 tools/bench/side_by_side.py --part amused [--edit-repeats 1] # aMUSEd 256/512 txt2img and img2img
    python3 tools/bench/side_by_side.py --part tiled-2048 --precision bf16  # 2048² tiled img2img, peak memory

Rows are matched by exact name and precision; the aMUSEd rows are "amused-256 txt2img 12 steps",
"amused-256 img2img 0.5 × 12", "amused-512 txt2img 12 steps" and "amused-512 img2img 0.5 × 12".
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--chisel", default=os.path.join(HERE, "..", "..", ".build", "release", "chisel"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--python", default=sys.executable, help="the Python with torch and diffusers")
    parser.add_argument("--part", action="append",
                        choices=["unet", "vae", "unet-xl", "vae-xl", "controlnet", "adapter", "img2img", "inpaint", "edit", "amused", "amused-256",
                                 "amused-512", "turbo-taesd", "turbo", "lcm", "recipes", "tiled-2048"],
                        help="repeatable; by default unet and vae (as both benchmarks)")
    parser.add_argument("--precision", choices=["f32", "bf16"], help="only this precision (tiled-2048 is a bf16 row)")
    parser.add_argument("--save", help="a folder to write each side's JSON report to as it finishes")
    parser.add_argument("--edit-repeats", type=int, default=1, help="timed runs of each whole edit")
    parser.add_argument("--no-openvino", action="store_true", help="leave OpenVINO's column out")
    args = parser.parse_args()
    common = ["--repeats", str(args.repeats), "--size", str(args.size), "--edit-repeats", str(args.edit_repeats)]
    for part in args.part or []:
        common += ["--part", part]
    def measure(name, command):
        text = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
        if args.save:  # keep each side's report, so a failure of the other does not lose it
            os.makedirs(args.save, exist_ok=True)
            with open(os.path.join(args.save, name + ".json"), "w") as f:
                f.write(text)
        return json.loads(text)

    only = ["--precision", args.precision] if args.precision else []
    chisel = measure("chisel", [args.chisel, "bench", "--json"] + common + only)
    reference = measure("diffusers", [args.python, os.path.join(HERE, "diffusers_bench.py")] + common
                        + (["--only", args.precision] if args.precision else []))
    has_openvino = not args.no_openvino and subprocess.run([args.python, "-c", "import openvino"],
                                                           capture_output=True).returncode == 0
    openvino = measure("openvino", [args.python, os.path.join(HERE, "openvino_bench.py")] + common
                       + (["--only", args.precision] if args.precision else [])) if has_openvino else None

    def table(report):
        out = {}
        for result in report["results"]:
            for row in result["rows"]:
                out[(row["name"], result["precision"])] = row["seconds"]
            out[("peak resident memory (GiB)", result["precision"])] = result["peak_resident_bytes"] / 2**30
        return out

    ours, theirs = table(chisel), table(reference)
    other = table(openvino) if openvino else {}
    print(f"diffusers {reference.get('diffusers')} / torch {reference.get('torch')}, {reference['threads']} threads"
          + (f"; OpenVINO {openvino.get('openvino')}" if openvino else ""))
    if openvino:
        print(f"| what | dtype | diffusers | OpenVINO | Chisel | diffusers ÷ Chisel | OpenVINO ÷ Chisel |")
        print(f"| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    else:
        print(f"| what | dtype | diffusers | Chisel | diffusers ÷ Chisel |")
        print(f"| --- | --- | ---: | ---: | ---: |")
    for key in theirs:
        if key in ours:
            name, precision = key
            if openvino:
                ov = other.get(key)
                cells = (f"{ov:.2f}", f"{ov / ours[key]:.2f}") if ov is not None else ("–", "–")
                print(f"| {name} | {precision} | {theirs[key]:.2f} | {cells[0]} | {ours[key]:.2f} | "
                      f"{theirs[key] / ours[key]:.2f} | {cells[1]} |")
            else:
                print(f"| {name} | {precision} | {theirs[key]:.2f} | {ours[key]:.2f} | {theirs[key] / ours[key]:.2f} |")


if __name__ == "__main__":
    main()
