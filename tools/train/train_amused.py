#!/usr/bin/env python3
"""Trains Chisel's bundled aMUSEd-architecture (masked-token) model on the scene world.

Three networks in diffusers' AmusedPipeline layout: a VQModel (128² images in [0, 1] to a 32×32
grid of ids from a 512-entry codebook: 4×4 pixels a token), a CLIPTextModelWithProjection on the same small
CLIP-format tokenizer as the SD model, and a UVit2DModel that predicts masked ids. Phase 1 trains
the VQ model (on randomly mirrored crops: reconstruction plus the quantiser's codebook and commitment loss; codes unused for
a while are restarted from encoder outputs); phase 1b its decoder alone on whole scenes (the
encoder and codebook fixed, so the ids do not change; --decoder-steps); phase 2 the transformer and the text encoder
together, MaskGIT-style: per image a mask ratio cos(π/2 · u), u ~ U(0, 1), of the tokens replaced
by the mask id, cross-entropy on the masked ones, 10% of captions dropped to the empty prompt
(classifier-free guidance), the micro-conditioning the pipelines pass at 128² (size, crop 0, 0,
aesthetic score 6). Run by hand, never in CI:

    tools/.venv-train/bin/python tools/train/train_amused.py --work ~/chisel-train/amused --out models/scenes/scenes-mvtm

--device, --seed, --resume and the outputs are as for train_sd.py.
"""

import copy
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from common import (ema_update, finetune_decoder, grid, lr_at, mirror, plot_losses, prepare, save_state, text_encoder_config,
                    tokenize, training_arguments, write_training_record)

SIZE = 128
CODEBOOK = 512  # the default of --codebook
VQ_CHANNELS = (16, 32, 64)
FACTOR = 2 ** (len(VQ_CHANNELS) - 1)
MICRO = [SIZE, SIZE, 0, 0, 6]


def vq_config():
    return dict(in_channels=3, out_channels=3, latent_channels=16, num_vq_embeddings=CODEBOOK,
                block_out_channels=VQ_CHANNELS, down_block_types=("DownEncoderBlock2D",) * len(VQ_CHANNELS),
                up_block_types=("UpDecoderBlock2D",) * len(VQ_CHANNELS), layers_per_block=1, norm_num_groups=8,
                mid_block_add_attention=False, lookup_from_codebook=True, force_upcast=False, sample_size=SIZE)


def transformer_config(text_width, hidden=128, layers=4, heads=4, intermediate=256):
    # The 32×32 grid is halved by the down block (as in amused-512) before the transformer layers.
    return dict(hidden_size=hidden, use_bias=False, hidden_dropout=0.0, cond_embed_dim=text_width,
                micro_cond_encode_dim=16, micro_cond_embed_dim=80, encoder_hidden_size=text_width,
                vocab_size=CODEBOOK + 1, codebook_size=CODEBOOK, in_channels=64, block_out_channels=64,
                num_res_blocks=1, downsample=True, upsample=True, block_num_heads=2, num_hidden_layers=layers,
                num_attention_heads=heads, attention_dropout=0.0, intermediate_size=intermediate, layer_norm_eps=1e-6,
                ln_elementwise_affine=True, sample_size=SIZE // FACTOR)


def unit(images, device):
    """uint8 N×H×W×3 to float N×3×H×W in [0, 1], as the aMUSEd pipelines feed the VQ model."""
    return torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float() / 255



def train_vq(args, images, device, work):
    from diffusers import VQModel
    torch.manual_seed(args.seed)
    vq = VQModel(**vq_config()).to(device)
    opt = torch.optim.AdamW(vq.parameters(), lr=args.vq_lr, weight_decay=0.0)
    losses, start = [], 0
    state_path = os.path.join(work, "vq.pt")
    if args.resume and os.path.exists(state_path):
        state = torch.load(state_path, map_location=device)
        vq.load_state_dict(state["vq"])
        opt.load_state_dict(state["opt"])
        losses, start = state["losses"], state["step"]
    rng = np.random.default_rng(args.seed + 1)
    usage = torch.zeros(CODEBOOK, device=device)
    started = time.time()
    for step in range(start, args.vq_steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.vq_steps, args.vq_lr)
        idx = rng.integers(0, len(images), args.vq_batch)
        crop = args.vq_crop
        oy, ox = (rng.integers(0, (SIZE - crop) // FACTOR + 1, 2) * FACTOR).tolist()
        x = unit(mirror(rng, images[idx, oy:oy + crop, ox:ox + crop]), device)
        h = vq.encode(x).latents
        quant, commit, (_, _, ids) = vq.quantize(h)
        recon = vq.decoder(vq.post_quant_conv(quant))
        rec = F.l1_loss(recon, x) + F.mse_loss(recon, x)
        loss = rec + commit
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        usage += torch.bincount(ids.flatten(), minlength=CODEBOOK).float()
        if (step + 1) % 100 == 0 and step + 1 < args.vq_steps * 0.8:
            # Restart codes no latent chose over the last 100 steps from random encoder outputs.
            dead = (usage == 0).nonzero().flatten()
            if len(dead):
                with torch.no_grad():
                    flat = h.detach().permute(0, 2, 3, 1).reshape(-1, h.shape[1])
                    pick = torch.from_numpy(rng.integers(0, len(flat), len(dead))).to(device)
                    vq.quantize.embedding.weight[dead] = flat[pick]
            usage.zero_()
        losses.append(float(rec))
        if (step + 1) % 50 == 0:
            print(f"vq {step + 1}/{args.vq_steps} rec {np.mean(losses[-50:]):.4f} commit {float(commit):.4f} "
                  f"({time.time() - started:.0f} s)", flush=True)
        if (step + 1) % args.checkpoint_every == 0:
            save_state(state_path, vq=vq, opt=opt, losses=losses, step=step + 1)
    save_state(state_path, vq=vq, opt=opt, losses=losses, step=args.vq_steps)
    return vq.eval(), losses


@torch.no_grad()
def tokenize_images(vq, images, device, batch=64):
    """The token grids of every scene and of its mirror image (2N, the mirrors second)."""
    grids = []
    for flip in (False, True):
        for i in range(0, len(images), batch):
            chunk = np.ascontiguousarray(images[i:i + batch, :, ::-1]) if flip else images[i:i + batch]
            h = vq.encode(unit(chunk, device)).latents
            _, _, (_, _, ids) = vq.quantize(h)
            grids.append(ids.reshape(h.shape[0], h.shape[2], h.shape[3]).cpu())
    return torch.cat(grids)


def finetune_vq_decoder(args, vq, grids, images, held_images, device):
    """Phase 1b: the VQ decoder (and post_quant_conv) alone on whole scenes, ids fixed."""
    if args.decoder_steps <= 0:
        return [], None
    parts = torch.nn.ModuleList([vq.post_quant_conv, vq.decoder])

    def decode(p, ids):
        return p[1](p[0](vq.quantize.embedding(ids).permute(0, 3, 1, 2)))

    def batch_of(rng):
        idx = rng.integers(0, len(grids), args.decoder_batch)
        scenes = np.stack([images[i] if i < len(images) else images[i - len(images), :, ::-1] for i in idx])
        return grids[idx].to(device), unit(scenes, device)

    held = (tokenize_images(vq, held_images, device)[:len(held_images)].to(device), unit(held_images, device))
    losses, before, after = finetune_decoder(args, parts, decode, batch_of, held, 1.0, "vq", args.work)
    return losses, (before, after)


def encode_text(text_encoder, ids):
    out = text_encoder(ids, return_dict=True, output_hidden_states=True)
    return out.hidden_states[-2], out.text_embeds


def train_transformer(args, grids, captions, tokenizer, vocab_size, device, work):
    from diffusers import UVit2DModel
    from transformers import CLIPTextModelWithProjection
    torch.manual_seed(args.seed + 2)
    if args.init_from:
        # A finished folder's (EMA) weights, in fp32, trained further; the optimiser starts afresh.
        text_encoder = CLIPTextModelWithProjection.from_pretrained(
            os.path.join(args.init_from, "text_encoder")).float().to(device)
        transformer = UVit2DModel.from_pretrained(os.path.join(args.init_from, "transformer")).float().to(device)
    else:
        text_encoder = CLIPTextModelWithProjection(
            text_encoder_config(vocab_size, args.text_width, args.text_layers, 4, projection=args.text_width)).to(device)
        transformer = UVit2DModel(**transformer_config(args.text_width, args.transformer_hidden, args.transformer_layers,
                                                       args.transformer_heads, args.transformer_intermediate)).to(device)
    ema_transformer, ema_text = copy.deepcopy(transformer).eval(), copy.deepcopy(text_encoder).eval()
    params = list(transformer.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=args.transformer_lr, weight_decay=1e-2)
    losses, start = [], 0
    state_path = os.path.join(work, "transformer.pt")
    if args.resume and os.path.exists(state_path):
        state = torch.load(state_path, map_location=device)
        for k, m in (("transformer", transformer), ("text", text_encoder), ("ema_transformer", ema_transformer),
                     ("ema_text", ema_text), ("opt", opt)):
            m.load_state_dict(state[k])
        losses, start = state["losses"], state["step"]
    ids_all = tokenize(tokenizer, captions, "cpu")
    empty = tokenize(tokenizer, [""], "cpu")[0]
    micro = torch.tensor([MICRO] * args.batch, dtype=torch.float32, device=device)
    rng = np.random.default_rng(args.seed + 3)
    tokens = grids[0].numel()
    started = time.time()
    for step in range(start, args.transformer_steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.transformer_steps, args.transformer_lr)
        idx = torch.from_numpy(rng.integers(0, len(captions), args.batch))
        target = grids[idx].to(device)
        ratio = torch.cos(math.pi / 2 * torch.from_numpy(rng.random(args.batch)).float()).to(device)
        scores = torch.from_numpy(rng.random((args.batch, tokens))).float().to(device)
        count = (ratio * tokens).ceil().clamp(min=1).long()
        ranks = scores.argsort(dim=1).argsort(dim=1)
        mask = (ranks < count[:, None]).reshape(target.shape)
        if args.block_masks:
            # Inpainting masks are contiguous: for this fraction of the batch the masked tokens are
            # a random rectangle (an eighth to a half of the grid a side) instead of a random set.
            side = target.shape[1]
            for b in np.nonzero(rng.random(args.batch) < args.block_masks)[0]:
                h, w = (int(v) for v in rng.integers(side // 8, side // 2 + 1, 2))
                y, x = int(rng.integers(0, side - h + 1)), int(rng.integers(0, side - w + 1))
                mask[b] = False
                mask[b, y:y + h, x:x + w] = True
        inputs = torch.where(mask, torch.full_like(target, CODEBOOK), target)
        scored = mask
        if args.corrupt:
            # Damaged images give implausible tokens among plausible ones: this fraction of the
            # unmasked tokens is replaced by random ids, which the loss asks to be told back.
            wrong = (torch.from_numpy(rng.random(target.shape)).to(device) < args.corrupt) & ~mask
            random_ids = torch.from_numpy(rng.integers(0, CODEBOOK, target.shape)).to(device)
            if args.corrupt_blocks:
                # Damage is rarely one token: for this fraction of the batch a few rectangles of the
                # visible tokens (2 to 8 a side) are random ids too.
                side = target.shape[1]
                for b in np.nonzero(rng.random(args.batch) < args.corrupt_blocks)[0]:
                    for _ in range(int(rng.integers(1, 4))):
                        h, w = (int(v) for v in rng.integers(2, 9, 2))
                        y, x = int(rng.integers(0, side - h + 1)), int(rng.integers(0, side - w + 1))
                        wrong[b, y:y + h, x:x + w] |= ~mask[b, y:y + h, x:x + w]
            inputs = torch.where(wrong, random_ids, inputs)
            scored = mask | wrong
        ids = ids_all[idx].clone()
        drop = torch.from_numpy(rng.random(args.batch) < args.caption_dropout)
        ids[drop] = empty
        hidden, pooled = encode_text(text_encoder, ids.to(device))
        logits = transformer(inputs, micro_conds=micro, pooled_text_emb=pooled, encoder_hidden_states=hidden)
        logits = logits.permute(0, 2, 3, 1).reshape(-1, CODEBOOK)
        loss = F.cross_entropy(logits[scored.flatten()], target.flatten()[scored.flatten()])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(args.ema, (1 + step) / (10 + step))
        ema_update(ema_transformer, transformer, decay)
        ema_update(ema_text, text_encoder, decay)
        losses.append(loss.item())
        if (step + 1) % 50 == 0:
            print(f"transformer {step + 1}/{args.transformer_steps} loss {np.mean(losses[-50:]):.4f} "
                  f"({time.time() - started:.0f} s)", flush=True)
        if (step + 1) % args.checkpoint_every == 0:
            save_state(state_path, transformer=transformer, text=text_encoder, ema_transformer=ema_transformer,
                       ema_text=ema_text, opt=opt, losses=losses, step=step + 1)
    save_state(state_path, transformer=transformer, text=text_encoder, ema_transformer=ema_transformer,
               ema_text=ema_text, opt=opt, losses=losses, step=args.transformer_steps)
    return ema_transformer, ema_text, losses


def write_folder(out, vq, transformer, text_encoder, tokenizer_dir):
    import shutil
    from diffusers import AmusedScheduler
    os.makedirs(out, exist_ok=True)
    for name, model in (("vqvae", vq), ("transformer", transformer), ("text_encoder", text_encoder)):
        copy.deepcopy(model).to("cpu", torch.float16).save_pretrained(os.path.join(out, name), safe_serialization=True)
    shutil.copytree(tokenizer_dir, os.path.join(out, "tokenizer"), dirs_exist_ok=True)
    AmusedScheduler(mask_token_id=CODEBOOK, masking_schedule="cosine").save_pretrained(os.path.join(out, "scheduler"))
    index = {"_class_name": "AmusedPipeline", "_diffusers_version": __import__("diffusers").__version__,
             "scheduler": ["diffusers", "AmusedScheduler"],
             "text_encoder": ["transformers", "CLIPTextModelWithProjection"],
             "tokenizer": ["transformers", "CLIPTokenizer"], "transformer": ["diffusers", "UVit2DModel"],
             "vqvae": ["diffusers", "VQModel"]}
    with open(os.path.join(out, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2)


def check_and_sample(out, held_images, held_captions, seed):
    """Loads the folder back with diffusers and makes the sample grid (txt2img, img2img, inpaint)."""
    from diffusers import AmusedImg2ImgPipeline, AmusedInpaintPipeline, AmusedPipeline
    from PIL import Image
    pipe = AmusedPipeline.from_pretrained(out, torch_dtype=torch.float32)
    img2img = AmusedImg2ImgPipeline(**pipe.components)
    inpaint = AmusedInpaintPipeline(**pipe.components)
    shown, labels = [], []
    for i in range(4):
        source = Image.fromarray(held_images[i])
        txt = pipe(held_captions[i], height=SIZE, width=SIZE, num_inference_steps=12, guidance_scale=4,
                   generator=torch.Generator().manual_seed(seed + i)).images[0]
        edit = img2img(held_captions[i], image=source, strength=0.5, num_inference_steps=12, guidance_scale=4,
                       generator=torch.Generator().manual_seed(seed + i)).images[0]
        mask = Image.new("L", (SIZE, SIZE), 0)
        mask.paste(255, (32, 64, 96, 112))
        filled = inpaint(held_captions[i], image=source, mask_image=mask, num_inference_steps=12, guidance_scale=4,
                         generator=torch.Generator().manual_seed(seed + i)).images[0]
        shown += [source, txt, edit, filled]
        labels += ["held-out scene", "txt2img: " + held_captions[i], "img2img 0.5", "inpaint (box)"]
    return grid(shown, 4, labels, cell=192)


def main():
    global CODEBOOK
    p = training_arguments(__doc__.split("\n\n")[0], seed=20261202)
    p.add_argument("--vq-steps", type=int, default=2500)
    p.add_argument("--vq-batch", type=int, default=16)
    p.add_argument("--vq-crop", type=int, default=64)
    p.add_argument("--vq-lr", type=float, default=1e-3)
    p.add_argument("--codebook", type=int, default=CODEBOOK,
                   help="VQ codebook entries (the transformer's vocabulary is one more: the mask id)")
    p.add_argument("--transformer-steps", type=int, default=5000)
    p.add_argument("--transformer-lr", type=float, default=6e-4)
    p.add_argument("--block-masks", type=float, default=0.0,
                   help="fraction of training grids masked as one random rectangle, as inpainting masks are (default 0)")
    p.add_argument("--corrupt", type=float, default=0.0,
                   help="fraction of the unmasked tokens replaced by random ids to be predicted back (default 0)")
    p.add_argument("--corrupt-blocks", type=float, default=0.0,
                   help="with --corrupt: fraction of training grids that also get 1–3 rectangles of random ids "
                        "among the visible tokens, as damaged patches give (default 0)")
    p.add_argument("--init-from", default=None,
                   help="a finished scenes-mvtm folder to go on from: its VQ model kept as it is, its U-ViT and "
                        "text encoder trained --transformer-steps more (the loss plot shows this run's U-ViT only; "
                        "training.json keeps the folder's own record under initialised_from)")
    p.add_argument("--transformer-hidden", type=int, default=128, help="the U-ViT's width (hidden_size)")
    p.add_argument("--transformer-layers", type=int, default=4, help="its transformer layers")
    p.add_argument("--transformer-heads", type=int, default=4, help="its attention heads")
    p.add_argument("--transformer-intermediate", type=int, default=256, help="its feed-forward width")
    args = p.parse_args()
    CODEBOOK = args.codebook
    device, (images, captions), (held_images, held_captions), (tokenizer, tokenizer_dir, vocab_size) = prepare(args, SIZE)
    earlier = None
    if args.init_from:
        from diffusers import VQModel
        with open(os.path.join(args.init_from, "training.json")) as f:
            earlier = json.load(f)
        if earlier.get("vocabulary") != vocab_size:
            raise SystemExit(f"{args.init_from}: vocabulary {earlier.get('vocabulary')}, this world's is {vocab_size}")
        vq = VQModel.from_pretrained(os.path.join(args.init_from, "vqvae")).float().to(device)
        vq_losses, decoder_losses, decoder_psnr = [], [], earlier.get("vq_decoder_held_out_psnr_before_after")
        with torch.no_grad():
            grids = tokenize_images(vq, images, device)
    else:
        vq, vq_losses = train_vq(args, images, device, args.work)
        grids = tokenize_images(vq, images, device)
    used = len(torch.unique(grids))
    print(f"codebook use: {used} of {CODEBOOK} codes", flush=True)
    if not args.init_from:
        decoder_losses, decoder_psnr = finetune_vq_decoder(args, vq, grids, images, held_images, device)
    transformer, text_encoder, transformer_losses = train_transformer(args, grids, captions + captions, tokenizer,
                                                                      vocab_size, device, args.work)
    write_folder(args.out, vq, transformer, text_encoder, tokenizer_dir)
    plot_losses(os.path.join(args.out, "loss.png"), {"VQ reconstruction (L1 + MSE)": vq_losses,
                                                      "VQ decoder on whole scenes (L1 + MSE)": decoder_losses,
                                                      "transformer masked-token cross-entropy": transformer_losses},
                "scenes-mvtm training")
    check_and_sample(args.out, held_images, held_captions, args.seed).save(os.path.join(args.out, "samples.png"))
    write_training_record(os.path.join(args.out, "training.json"), args, {
        "vq_final_reconstruction": float(np.mean(vq_losses[-100:])) if vq_losses else earlier["vq_final_reconstruction"],
        "transformer_final_loss": float(np.mean(transformer_losses[-100:])), "vocabulary": vocab_size,
        "vq_decoder_held_out_psnr_before_after": decoder_psnr,
        "codebook_used": used, **({"initialised_from": earlier} if earlier else {})})
    print("wrote", args.out, flush=True)


if __name__ == "__main__":
    main()
