"""Times diffusers' SD 1.5 UNet and VAE, built from the public configs with random weights,
exactly as `chisel bench` times Chisel's: the fastest of N runs after a warm-up, each precision
in its own process so its peak resident memory is its own. Prints one JSON object in the same
shape as `chisel bench --json`.

    python3 tools/bench/diffusers_bench.py [--repeats 3] [--size 512] [--threads 2]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

UNET_CONFIG = {
    "act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False, "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
    "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}
VAE_CONFIG = {
    "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4, "in_channels": 3, "latent_channels": 4, "layers_per_block": 2,
    "norm_num_groups": 32, "out_channels": 3, "sample_size": 512, "scaling_factor": 0.18215,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}


def timed(name, repeats, body):
    body()  # warm-up
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        body()
        runs.append(time.perf_counter() - start)
        print(f"{name}: {runs[-1]:.2f} s", file=sys.stderr)
    return {"name": name, "seconds": min(runs), "runs": runs}


def run_precision(precision, repeats, size, parts):
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel

    torch.manual_seed(0)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    latent = size // 8
    rows = []
    with torch.inference_mode():
        if "unet" in parts:
            unet = UNet2DConditionModel.from_config(UNET_CONFIG).eval().to(dtype)
            sample = torch.randn(2, 4, latent, latent, dtype=dtype)
            context = torch.randn(2, 77, 768, dtype=dtype)
            steps = torch.tensor([500, 500])
            rows.append(timed(f"UNet, CFG pair (batch 2) {size}²", repeats,
                              lambda: unet(sample, steps, encoder_hidden_states=context)))
            del unet
        if "vae" in parts:
            vae = AutoencoderKL.from_config(VAE_CONFIG).eval().to(dtype)
            image = torch.rand(1, 3, size, size, dtype=dtype) * 2 - 1
            code = torch.randn(1, 4, latent, latent, dtype=dtype)
            rows.append(timed(f"VAE encode {size}²", repeats, lambda: vae.encode(image).latent_dist.mean))
            rows.append(timed(f"VAE decode {size}²", repeats, lambda: vae.decode(code).sample))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"precision": precision, "peak_resident_bytes": peak, "rows": rows}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--precision", choices=["f32", "bf16"])
    parser.add_argument("--part", action="append", choices=["unet", "vae"])
    args = parser.parse_args()
    parts = args.part or ["unet", "vae"]
    if args.precision:
        import torch
        torch.set_num_threads(args.threads)
        print(json.dumps(run_precision(args.precision, args.repeats, args.size, parts)))
        return
    import diffusers
    import torch
    results = []
    for precision in ["f32", "bf16"]:
        command = [sys.executable, __file__, "--precision", precision, "--repeats", str(args.repeats),
                   "--size", str(args.size), "--threads", str(args.threads)]
        for part in parts:
            command += ["--part", part]
        output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
        results.append(json.loads(output))
    print(json.dumps({"model": "stable-diffusion-1.5 (random weights)", "size": args.size,
                      "threads": args.threads, "torch": torch.__version__, "diffusers": diffusers.__version__,
                      "results": results}))


if __name__ == "__main__":
    main()
