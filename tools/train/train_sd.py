#!/usr/bin/env python3
"""Trains Chisel's bundled Stable-Diffusion-architecture model on the scene world.

Three networks in diffusers' StableDiffusionPipeline layout: an AutoencoderKL (128² images to
32×32×4 latents: a factor of 4, not SD's 8, so that these small images keep their detail), a CLIP-architecture text encoder on a small CLIP-format tokenizer of the
world's words (tools/train/tokenizer.py), and a UNet2DConditionModel trained on the latents with
epsilon prediction, SD's scaled-linear schedule and 10% caption dropout for classifier-free
guidance. Phase 1 trains the autoencoder (on crops), phase 1b its decoder alone on whole scenes
(the encoder fixed, so the latents do not change; --decoder-steps); phase 2 the UNet and the text encoder together
(exponential moving average of both kept and saved). Run by hand, never in CI:

    python3 -m venv tools/.venv-train && tools/.venv-train/bin/pip install -r tools/train/requirements.txt
    tools/.venv-train/bin/python tools/train/train_sd.py --work ~/chisel-train/sd --out models/scenes/scenes-sd

It runs on a CUDA device when there is one (--device), else on the CPU; every random draw comes
from --seed. Checkpoints go to --work every --checkpoint-every steps and --resume continues from
the last. The final folder holds the weights in fp16, training.json (arguments, versions,
losses), loss.png and samples.png; the script loads it back with diffusers and runs img2img.
"""

import copy
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from common import (ema_update, finetune_decoder, grid, lr_at, mirror, plot_losses, prepare, save_state, text_encoder_config,
                    to_tensor, tokenize, training_arguments, write_training_record)

SIZE = 128
VAE_CHANNELS = (16, 32, 64)
FACTOR = 2 ** (len(VAE_CHANNELS) - 1)


def vae_config():
    return dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=VAE_CHANNELS,
                down_block_types=("DownEncoderBlock2D",) * len(VAE_CHANNELS),
                up_block_types=("UpDecoderBlock2D",) * len(VAE_CHANNELS),
                layers_per_block=1, norm_num_groups=8, sample_size=SIZE)


def unet_config(cross):
    # No attention at the 32×32 level (1024 positions): cross-attention at 16×16 and 8×8.
    return dict(sample_size=SIZE // FACTOR, in_channels=4, out_channels=4, block_out_channels=(32, 64, 128),
                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                layers_per_block=1, cross_attention_dim=cross, attention_head_dim=4, norm_num_groups=16)



def train_vae(args, images, device, work):
    from diffusers import AutoencoderKL
    torch.manual_seed(args.seed)
    vae = AutoencoderKL(**vae_config()).to(device)
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    losses, start = [], 0
    state_path = os.path.join(work, "vae.pt")
    if args.resume and os.path.exists(state_path):
        state = torch.load(state_path, map_location=device)
        vae.load_state_dict(state["vae"])
        opt.load_state_dict(state["opt"])
        losses, start = state["losses"], state["step"]
    rng = np.random.default_rng(args.seed + 1)
    started = time.time()
    for step in range(start, args.vae_steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.vae_steps, args.vae_lr)
        idx = rng.integers(0, len(images), args.vae_batch)
        crop = args.vae_crop
        oy, ox = rng.integers(0, SIZE - crop + 1, 2)
        x = to_tensor(mirror(rng, images[idx, oy:oy + crop, ox:ox + crop]), device)
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample
        rec = F.l1_loss(recon, x) + F.mse_loss(recon, x)
        kl = posterior.kl().mean() / (crop * crop * 3)
        loss = rec + args.kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(rec))
        if (step + 1) % 50 == 0:
            print(f"vae {step + 1}/{args.vae_steps} rec {np.mean(losses[-50:]):.4f} kl {float(kl):.2f} "
                  f"({time.time() - started:.0f} s)", flush=True)
        if (step + 1) % args.checkpoint_every == 0:
            save_state(state_path, vae=vae, opt=opt, losses=losses, step=step + 1)
    save_state(state_path, vae=vae, opt=opt, losses=losses, step=args.vae_steps)
    return vae.eval(), losses


@torch.no_grad()
def encode_all(vae, images, device, batch=64):
    """The latent distributions of every scene and of its mirror image (2N, the mirrors second)."""
    means, stds = [], []
    for flip in (False, True):
        for i in range(0, len(images), batch):
            chunk = images[i:i + batch, :, ::-1] if flip else images[i:i + batch]
            d = vae.encode(to_tensor(np.ascontiguousarray(chunk), device)).latent_dist
            means.append(d.mean.cpu())
            stds.append(d.std.cpu())
    return torch.cat(means), torch.cat(stds)


def finetune_vae_decoder(args, vae, latents, images, held_images, device):
    """Phase 1b: the VAE decoder (and post_quant_conv) alone on whole scenes, from posterior
    samples of the fixed encoder (the latents the UNet learns to make)."""
    if args.decoder_steps <= 0:
        return [], None
    parts = torch.nn.ModuleList([vae.post_quant_conv, vae.decoder])
    means, stds = latents

    def decode(p, z):
        return p[1](p[0](z))

    def batch_of(rng):
        idx = rng.integers(0, len(means), args.decoder_batch)
        scenes = np.stack([images[i] if i < len(images) else images[i - len(images), :, ::-1] for i in idx])
        noise = torch.from_numpy(rng.standard_normal(stds[idx].shape).astype(np.float32))
        return (means[idx] + stds[idx] * noise).to(device), to_tensor(scenes, device)

    with torch.no_grad():
        held_means = vae.encode(to_tensor(held_images, device)).latent_dist.mean
    held = (held_means, to_tensor(held_images, device))
    losses, before, after = finetune_decoder(args, parts, decode, batch_of, held, 2.0, "vae", args.work)
    return losses, (before, after)


def train_unet(args, latents, captions, tokenizer, vocab_size, device, work):
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel
    torch.manual_seed(args.seed + 2)
    if args.init_from:
        # A finished folder's (EMA) weights, in fp32, trained further; the optimiser starts afresh.
        text_encoder = CLIPTextModel.from_pretrained(os.path.join(args.init_from, "text_encoder")).float().to(device)
        unet = UNet2DConditionModel.from_pretrained(os.path.join(args.init_from, "unet")).float().to(device)
    else:
        text_encoder = CLIPTextModel(text_encoder_config(vocab_size, args.text_width, args.text_layers, 4)).to(device)
        unet = UNet2DConditionModel(**unet_config(args.text_width)).to(device)
    ema_unet, ema_text = copy.deepcopy(unet).eval(), copy.deepcopy(text_encoder).eval()
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=args.unet_lr, weight_decay=1e-2)
    noise_scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                    num_train_timesteps=1000)
    losses, start = [], 0
    state_path = os.path.join(work, "unet.pt")
    if args.resume and os.path.exists(state_path):
        state = torch.load(state_path, map_location=device)
        for k, m in (("unet", unet), ("text", text_encoder), ("ema_unet", ema_unet), ("ema_text", ema_text),
                     ("opt", opt)):
            m.load_state_dict(state[k])
        losses, start = state["losses"], state["step"]
    means, stds = latents
    ids_all = tokenize(tokenizer, captions, "cpu")
    empty = tokenize(tokenizer, [""], "cpu")[0]
    rng = np.random.default_rng(args.seed + 3)
    started = time.time()
    alphas = noise_scheduler.alphas_cumprod.to(device)
    for step in range(start, args.unet_steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.unet_steps, args.unet_lr)
        idx = torch.from_numpy(rng.integers(0, len(captions), args.batch))
        z = (means[idx] + stds[idx] * torch.randn_like(stds[idx])).to(device) * args.scaling
        ids = ids_all[idx].clone()
        drop = torch.from_numpy(rng.random(args.batch) < args.caption_dropout)
        ids[drop] = empty
        t = torch.randint(0, 1000, (args.batch,), device=device)
        noise = torch.randn_like(z)
        if args.offset_noise:
            # Offset noise: a per-image, per-channel constant in the noise, so that the model learns
            # to move an image's mean (a night sky from a day scene's latent), which plain Gaussian
            # noise at the schedule's last steps leaves almost untouched.
            noise = noise + args.offset_noise * torch.randn(z.shape[0], z.shape[1], 1, 1, device=device)
        a = alphas[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * z + (1 - a).sqrt() * noise
        states = text_encoder(ids.to(device)).last_hidden_state
        pred = unet(noisy, t, encoder_hidden_states=states).sample
        if args.min_snr:
            # Min-SNR-γ weighting (Hang et al. 2023): each timestep's noise loss weighted by
            # min(SNR, γ) / SNR, so the nearly clean steps do not dominate the gradient.
            snr = alphas[t] / (1 - alphas[t])
            weight = snr.clamp(max=args.min_snr) / snr
            loss = (weight * (pred - noise).pow(2).mean(dim=(1, 2, 3))).mean()
        else:
            loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(args.ema, (1 + step) / (10 + step))
        ema_update(ema_unet, unet, decay)
        ema_update(ema_text, text_encoder, decay)
        losses.append(loss.item())
        if (step + 1) % 50 == 0:
            print(f"unet {step + 1}/{args.unet_steps} loss {np.mean(losses[-50:]):.4f} "
                  f"({time.time() - started:.0f} s)", flush=True)
        if (step + 1) % args.checkpoint_every == 0:
            save_state(state_path, unet=unet, text=text_encoder, ema_unet=ema_unet, ema_text=ema_text, opt=opt,
                       losses=losses, step=step + 1)
    save_state(state_path, unet=unet, text=text_encoder, ema_unet=ema_unet, ema_text=ema_text, opt=opt,
               losses=losses, step=args.unet_steps)
    return ema_unet, ema_text, losses


def write_folder(out, vae, unet, text_encoder, tokenizer_dir, scaling):
    import shutil
    from diffusers import DDIMScheduler
    os.makedirs(out, exist_ok=True)
    vae.register_to_config(scaling_factor=scaling)
    for name, model in (("vae", vae), ("unet", unet), ("text_encoder", text_encoder)):
        copy.deepcopy(model).to("cpu", torch.float16).save_pretrained(os.path.join(out, name), safe_serialization=True)
    shutil.copytree(tokenizer_dir, os.path.join(out, "tokenizer"), dirs_exist_ok=True)
    DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                  set_alpha_to_one=False, steps_offset=1).save_pretrained(os.path.join(out, "scheduler"))
    index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": __import__("diffusers").__version__,
             "feature_extractor": [None, None], "requires_safety_checker": False, "safety_checker": [None, None],
             "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
             "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"]}
    with open(os.path.join(out, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2)


def check_and_sample(out, held_images, held_captions, seed):
    """Loads the folder back with diffusers and makes the sample grid (txt2img and img2img)."""
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline
    from PIL import Image
    pipe = StableDiffusionPipeline.from_pretrained(out, torch_dtype=torch.float32, safety_checker=None)
    img2img = StableDiffusionImg2ImgPipeline(**pipe.components)
    shown, labels = [], []
    for i in range(4):
        g = torch.Generator().manual_seed(seed + i)
        txt = pipe(held_captions[i], height=SIZE, width=SIZE, num_inference_steps=25, guidance_scale=4,
                   generator=g).images[0]
        source = Image.fromarray(held_images[i])
        edit = img2img(held_captions[i].replace("at night", "at sunset").replace("on a sunny day", "at sunset"),
                       image=source, strength=0.6, num_inference_steps=25, guidance_scale=4,
                       generator=torch.Generator().manual_seed(seed + i)).images[0]
        shown += [source, txt, edit]
        labels += ["held-out scene", "txt2img: " + held_captions[i], "img2img 0.6 → sunset"]
    return grid(shown, 3, labels, cell=192)


def main():
    p = training_arguments(__doc__.split("\n\n")[0], seed=20261201)
    p.add_argument("--vae-steps", type=int, default=2500)
    p.add_argument("--vae-batch", type=int, default=16)
    p.add_argument("--vae-crop", type=int, default=64)
    p.add_argument("--vae-lr", type=float, default=1e-3)
    p.add_argument("--kl-weight", type=float, default=1e-4)
    p.add_argument("--unet-steps", type=int, default=6000)
    p.add_argument("--unet-lr", type=float, default=6e-4)
    p.add_argument("--offset-noise", type=float, default=0.1,
                   help="scale of the per-channel constant added to the UNet's training noise (0: plain noise)")
    p.add_argument("--min-snr", type=float, default=0.0,
                   help="γ of min-SNR loss weighting, e.g. 5 (default 0: the plain noise MSE the finished sd4 UNet was trained with)")
    p.add_argument("--init-from", default=None,
                   help="a finished scenes-sd folder to go on from: its VAE kept as it is, its UNet and text encoder "
                        "trained --unet-steps more (the loss plot shows this run's UNet only; training.json keeps "
                        "the folder's own record under initialised_from)")
    args = p.parse_args()
    device, (images, captions), (held_images, held_captions), (tokenizer, tokenizer_dir, vocab_size) = prepare(args, SIZE)

    earlier = None
    if args.init_from:
        from diffusers import AutoencoderKL
        with open(os.path.join(args.init_from, "training.json")) as f:
            earlier = json.load(f)
        if earlier.get("vocabulary") != vocab_size:
            raise SystemExit(f"{args.init_from}: vocabulary {earlier.get('vocabulary')}, this world's is {vocab_size}")
        vae = AutoencoderKL.from_pretrained(os.path.join(args.init_from, "vae")).float().to(device)
        vae_losses, decoder_losses, decoder_psnr = [], [], earlier.get("vae_decoder_held_out_psnr_before_after")
        scaling = float(vae.config.scaling_factor)
        means, stds = encode_all(vae, images, device)
    else:
        vae, vae_losses = train_vae(args, images, device, args.work)
        means, stds = encode_all(vae, images, device)
        scaling = float(1 / means.std())
        print(f"latent scaling factor {scaling:.4f}", flush=True)
        decoder_losses, decoder_psnr = finetune_vae_decoder(args, vae, (means, stds), images, held_images, device)
    args.scaling = scaling
    unet, text_encoder, unet_losses = train_unet(args, (means, stds), captions + captions, tokenizer, vocab_size,
                                                 device, args.work)
    write_folder(args.out, vae, unet, text_encoder, tokenizer_dir, scaling)
    plot_losses(os.path.join(args.out, "loss.png"), {"VAE reconstruction (L1 + MSE)": vae_losses,
                                                      "VAE decoder on whole scenes (L1 + MSE)": decoder_losses,
                                                      "UNet noise MSE": unet_losses}, "scenes-sd training")
    check_and_sample(args.out, held_images, held_captions, args.seed).save(os.path.join(args.out, "samples.png"))
    write_training_record(os.path.join(args.out, "training.json"), args, {
        "vae_final_reconstruction": float(np.mean(vae_losses[-100:])) if vae_losses else earlier["vae_final_reconstruction"],
        "unet_final_loss": float(np.mean(unet_losses[-100:])), "vocabulary": vocab_size,
        "vae_decoder_held_out_psnr_before_after": decoder_psnr,
        "scaling_factor": scaling, **({"initialised_from": earlier} if earlier else {})})
    print("wrote", args.out, flush=True)


if __name__ == "__main__":
    main()
