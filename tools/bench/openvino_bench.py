"""Times OpenVINO's CPU plugin on the networks `chisel bench` and diffusers_bench.py time: SD 1.5's
UNet (a CFG pair at batch 2) and VAE encode and decode, built by diffusers from the same public
configs with random weights, converted with `openvino.convert_model` (traced with inputs of the
benchmark's shapes, then compiled for those static shapes), the fastest of N runs after a
warm-up, each precision in its own process with its peak resident memory.

The whole edits (--part img2img, inpaint, edit; turbo-taesd, turbo, lcm, recipes) run
diffusers_bench.py's own pipelines, the same calls it times, with the text encoder, UNet and
VAE (or TAESD) swapped for OpenVINO compiled models: each is converted and compiled on its
first call for that call's shapes (inside the untimed warm-up edit), and the loop, scheduler
and image handling stay diffusers', as in FastSD CPU and optimum-intel's OpenVINO pipelines.
The peak memory of an edit row includes the PyTorch modules the networks were converted from. `f32` compiles with
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

PARTS = ["unet", "vae", "controlnet"] + db.EDITS + db.RECIPES
GROUPS = {"edit": db.EDITS, "recipes": db.RECIPES}


def openvino_networks(core, precision, threads):
    """A function that swaps a diffusers pipeline's text encoder, UNet and VAE for OpenVINO: each
    network's `forward` (the VAE's `encode` and `decode`) becomes a call of a model converted and
    compiled on first use for the shapes it is called with, returning what diffusers' own returns."""
    import numpy as np
    import torch
    from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKLOutput
    from diffusers.models.autoencoders.autoencoder_tiny import AutoencoderTinyOutput
    from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

    class Traced(torch.nn.Module):
        def __init__(self, owner, body):
            super().__init__()
            self.owner, self.body = owner, body

        def forward(self, *inputs):
            return self.body(*inputs)

    def lazily(owner, body):
        cache = {}

        def run(*inputs):
            key = tuple((tuple(x.shape), x.dtype) for x in inputs)
            if key not in cache:
                cache[key], _ = compiled(core, Traced(owner, body), inputs, precision, threads)
            network = cache[key]
            out = network([x.numpy() for x in inputs])[network.output(0)]
            return torch.from_numpy(np.array(out, copy=True))
        return run

    def swap(pipe):
        unet, vae, text = pipe.unet, pipe.vae, pipe.text_encoder
        unet_body = unet.forward
        run_unet = lazily(unet, lambda x, t, c: unet_body(x, t, encoder_hidden_states=c).sample)

        def unet_forward(sample, timestep, encoder_hidden_states, *args, return_dict=True, **kwargs):
            extra = [k for k, v in kwargs.items() if v is not None]
            assert not args and not extra, f"the OpenVINO UNet takes no {extra}"
            t = torch.as_tensor(timestep).reshape(-1).expand(sample.shape[0]).contiguous()
            out = run_unet(sample.contiguous(), t, encoder_hidden_states.contiguous())
            return UNet2DConditionOutput(sample=out) if return_dict else (out,)
        unet.forward = unet_forward

        text_body = text.forward
        run_text = lazily(text, lambda ids: text_body(ids)[0])

        def text_forward(input_ids, attention_mask=None, output_hidden_states=None, **kwargs):
            assert not output_hidden_states, "the OpenVINO text encoder gives the last hidden state only (no clip skip)"
            return (run_text(input_ids.contiguous()),)
        text.forward = text_forward

        encode_body, decode_body = vae.encode, vae.decode
        tiny = not hasattr(vae, "quant_conv")
        run_encode = lazily(vae, (lambda x: encode_body(x).latents) if tiny else (lambda x: encode_body(x).latent_dist.parameters))
        run_decode = lazily(vae, lambda z: decode_body(z).sample)

        def encode(x, return_dict=True):
            out = run_encode(x.contiguous())
            out = AutoencoderTinyOutput(latents=out) if tiny else AutoencoderKLOutput(latent_dist=DiagonalGaussianDistribution(out))
            return out if return_dict else (out.latents if tiny else out.latent_dist,)

        def decode(z, return_dict=True, generator=None):
            out = run_decode(z.contiguous())
            return DecoderOutput(sample=out) if return_dict else (out,)
        vae.encode, vae.decode = encode, decode
    return swap


def compiled(core, module, example, precision, threads):
    import openvino as ov
    import torch
    module.requires_grad_(False)
    with torch.no_grad():
        model = ov.convert_model(module, example_input=example)
    config = {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    network = core.compile_model(model, "CPU", config)
    return network, str(network.get_property("INFERENCE_PRECISION_HINT"))


def run_precision(precision, repeats, size, parts, threads, edit_repeats=1):
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
    # The whole edits: diffusers' pipelines in FP32 around OpenVINO's networks in `precision`.
    # Checked once at 128² with the turbo-taesd recipe: the same output as diffusers' own networks
    # within 4e-5 of 255 (max).
    import gc
    swap = openvino_networks(core, precision, threads)
    with torch.no_grad():
        for edit in db.EDITS:
            if edit in parts:
                rows.append(db.time_edit(edit, torch.float32, size, edit_repeats, accelerate=swap))
                gc.collect()  # the swapped networks hold their modules in a cycle
        for recipe in db.RECIPES:
            if recipe in parts:
                rows.append(db.time_recipe(recipe, torch.float32, size, edit_repeats, accelerate=swap))
                gc.collect()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"precision": precision, "peak_resident_bytes": peak, "rows": rows}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--precision", choices=["f32", "bf16"], help="run this precision here (the child process)")
    parser.add_argument("--only", choices=["f32", "bf16"])
    parser.add_argument("--part", action="append",
                        help="unet, vae, controlnet, img2img, inpaint (edit: both), turbo-taesd, turbo, lcm (recipes: "
                             "all three); others are skipped: OpenVINO has no row")
    parser.add_argument("--edit-repeats", type=int, default=1, help="timed runs of each whole edit")
    args = parser.parse_args()
    parts = [q for p in (args.part or ["unet", "vae"]) for q in GROUPS.get(p, [p]) if q in PARTS]
    if args.precision:
        print(json.dumps(run_precision(args.precision, args.repeats, args.size, parts, args.threads, args.edit_repeats)))
        return
    import openvino as ov
    results = []
    for precision in [args.only] if args.only else ["f32", "bf16"]:
        command = [sys.executable, __file__, "--precision", precision, "--repeats", str(args.repeats),
                   "--size", str(args.size), "--threads", str(args.threads), "--edit-repeats", str(args.edit_repeats)]
        for part in parts:
            command += ["--part", part]
        results.append(json.loads(subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout))
    print(json.dumps({"model": "stable-diffusion-1.5 (random weights)", "size": args.size, "threads": args.threads,
                      "openvino": ov.__version__, "results": results}))


if __name__ == "__main__":
    main()
