"""Times OpenVINO's CPU plugin on the networks `chisel bench` and diffusers_bench.py time: SD 1.5's
UNet (a CFG pair at batch 2) and VAE encode and decode, built by diffusers from the same public
configs with random weights, converted with `openvino.convert_model` (traced with inputs of the
benchmark's shapes, then compiled for those static shapes), the fastest of N runs after a
warm-up, each precision in its own process with its peak resident memory. `f32` compiles with
INFERENCE_PRECISION_HINT f32, `bf16` with bf16 (OpenVINO keeps f32 where the CPU has no bfloat16
instructions, and says so in the row's `inference_precision`). Prints one JSON object in the
shape of `chisel bench --json`.

    python3 tools/bench/openvino_bench.py [--repeats 3] [--size 512] [--threads 2] [--only f32]

Pinned (by hand, never in CI): openvino 2026.4.1 with torch 2.15.0 and diffusers 0.42.1
(tools/bench/requirements.txt).
"""
import argparse
import json
import os
import resource
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import diffusers_bench as db  # noqa: E402  (configs, timed)

PARTS = ["unet", "vae", "controlnet"]


def compiled(core, module, example, precision, threads):
    import openvino as ov
    import torch
    module.requires_grad_(False)
    with torch.no_grad():
        model = ov.convert_model(module, example_input=example)
    config = {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    network = core.compile_model(model, "CPU", config)
    return network, str(network.get_property("INFERENCE_PRECISION_HINT"))


def run_precision(precision, repeats, size, parts, threads):
    import openvino as ov
    import torch
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel

    torch.manual_seed(0)
    core = ov.Core()
    latent = size // 8
    rows = []

    def row(name, network, inputs, effective):
        request = network.create_infer_request()
        result = db.timed(name, repeats, lambda: request.infer(inputs))
        result["inference_precision"] = effective
        rows.append(result)

    with torch.no_grad():
        sample = torch.randn(2, 4, latent, latent)
        context = torch.randn(2, 77, 768)
        steps = torch.tensor([500, 500])
        if "unet" in parts:
            unet = UNet2DConditionModel.from_config(db.UNET_CONFIG).eval()

            class Pair(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.unet = unet

                def forward(self, x, t, c):
                    return self.unet(x, t, encoder_hidden_states=c).sample
            network, effective = compiled(core, Pair(), (sample, steps, context), precision, threads)
            row(f"UNet, CFG pair (batch 2) {size}²", network, [sample.numpy(), steps.numpy(), context.numpy()], effective)
            del unet, network
        if "controlnet" in parts:
            unet = UNet2DConditionModel.from_config(db.UNET_CONFIG).eval()
            controlnet = ControlNetModel.from_config(db.CONTROLNET_CONFIG).eval()
            image = torch.rand(2, 3, size, size)

            class Controlled(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.unet, self.controlnet = unet, controlnet

                def forward(self, x, t, c, image):
                    down, mid = self.controlnet(x, t, encoder_hidden_states=c, controlnet_cond=image, return_dict=False)
                    return self.unet(x, t, encoder_hidden_states=c, down_block_additional_residuals=down,
                                     mid_block_additional_residual=mid).sample
            network, effective = compiled(core, Controlled(), (sample, steps, context, image), precision, threads)
            row(f"ControlNet + UNet, CFG pair (batch 2) {size}²", network,
                [sample.numpy(), steps.numpy(), context.numpy(), image.numpy()], effective)
            del unet, controlnet, network
        if "vae" in parts:
            vae = AutoencoderKL.from_config(db.VAE_CONFIG).eval()
            image = torch.rand(1, 3, size, size) * 2 - 1
            code = torch.randn(1, 4, latent, latent)

            class Encode(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.vae = vae

                def forward(self, x):
                    return self.vae.encode(x).latent_dist.mean

            class Decode(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.vae = vae

                def forward(self, z):
                    return self.vae.decode(z).sample
            network, effective = compiled(core, Encode(), (image,), precision, threads)
            row(f"VAE encode {size}²", network, [image.numpy()], effective)
            network, effective = compiled(core, Decode(), (code,), precision, threads)
            row(f"VAE decode {size}²", network, [code.numpy()], effective)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"precision": precision, "peak_resident_bytes": peak, "rows": rows}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--precision", choices=["f32", "bf16"], help="run this precision here (the child process)")
    parser.add_argument("--only", choices=["f32", "bf16"])
    parser.add_argument("--part", action="append", help="unet, vae, controlnet (others are skipped: OpenVINO has no row)")
    parser.add_argument("--edit-repeats", type=int, default=1, help="accepted for side_by_side.py; no whole edits yet")
    args = parser.parse_args()
    parts = [p for p in (args.part or ["unet", "vae"]) if p in PARTS]
    if args.precision:
        print(json.dumps(run_precision(args.precision, args.repeats, args.size, parts, args.threads)))
        return
    import openvino as ov
    results = []
    for precision in [args.only] if args.only else ["f32", "bf16"]:
        command = [sys.executable, __file__, "--precision", precision, "--repeats", str(args.repeats),
                   "--size", str(args.size), "--threads", str(args.threads)]
        for part in parts:
            command += ["--part", part]
        results.append(json.loads(subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout))
    print(json.dumps({"model": "stable-diffusion-1.5 (random weights)", "size": args.size, "threads": args.threads,
                      "openvino": ov.__version__, "results": results}))


if __name__ == "__main__":
    main()
