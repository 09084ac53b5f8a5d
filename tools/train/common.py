"""What the two training scripts share: arguments, the scene dataset, the tokenizer and text
encoder, checkpoints, plots and grids."""

import argparse
import copy
import json
import math
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tools", "world"))
sys.path.insert(0, HERE)

import scenes  # noqa: E402
from tokenizer import write_tokenizer  # noqa: E402


def pick_device(name):
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def scene_dataset(count, size, cache_dir, first_seed=0):
    """`count` scenes from `first_seed` as a uint8 N×H×W×3 array and their captions (cached)."""
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, f"scenes-{first_seed}-{count}-{size}.npz")
    if os.path.exists(path):
        data = np.load(path, allow_pickle=False)
        return data["images"], [str(c) for c in data["captions"]]
    images = np.empty((count, size, size, 3), dtype=np.uint8)
    captions = []
    started = time.time()
    for i in range(count):
        image, caption, _ = scenes.render(first_seed + i, size)
        images[i] = np.asarray(image)
        captions.append(caption)
        if (i + 1) % 1000 == 0:
            print(f"rendered {i + 1}/{count} scenes ({time.time() - started:.0f} s)", flush=True)
    np.savez(path, images=images, captions=np.array(captions))
    return images, captions


def mirror(rng, images):
    """A random half of a uint8 N×H×W×3 batch flipped left to right (the captions never say left or right)."""
    flip = rng.random(len(images)) < 0.5
    out = images.copy()
    out[flip] = out[flip][:, :, ::-1]
    return out


def to_tensor(images, device):
    """uint8 N×H×W×3 to float N×3×H×W in [-1, 1]."""
    x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1


def text_encoder_config(vocab_size, hidden, layers, heads, projection=None):
    from transformers import CLIPTextConfig
    return CLIPTextConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=4 * hidden,
                          num_hidden_layers=layers, num_attention_heads=heads, max_position_embeddings=77,
                          hidden_act="quick_gelu", bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1,
                          pad_token_id=vocab_size - 1, projection_dim=projection or hidden)


def make_tokenizer(folder, captions):
    from transformers import CLIPTokenizer
    size = write_tokenizer(folder, captions)
    return CLIPTokenizer.from_pretrained(folder), size


def tokenize(tokenizer, texts, device):
    return tokenizer(texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids.to(device)


def ema_update(ema, model, decay):
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.mul_(decay).add_(p.detach(), alpha=1 - decay)


def lr_at(step, total, peak, warmup=200):
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def plot_losses(path, series, title):
    """A loss plot as a PNG (log scale, smoothed), drawn with Pillow: series is {name: [values]}."""
    w, h, pad = 720, 360, 48
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    colours = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]
    smoothed = {}
    for name, values in series.items():
        v = np.asarray(values, dtype=np.float64)
        k = max(1, len(v) // 100)
        smoothed[name] = np.convolve(v, np.ones(k) / k, mode="valid") if len(v) > k else v
    every = np.concatenate([s for s in smoothed.values() if len(s)])
    lo, hi = np.log10(max(every.min(), 1e-8)), np.log10(every.max())
    hi = hi if hi > lo else lo + 1
    d.rectangle((pad, pad / 2, w - pad / 2, h - pad), outline="black")
    for decade in range(int(math.floor(lo)), int(math.ceil(hi)) + 1):
        y = h - pad - (decade - lo) / (hi - lo) * (h - 1.5 * pad)
        if pad / 2 <= y <= h - pad:
            d.line((pad, y, w - pad / 2, y), fill=(220, 220, 220))
            d.text((4, y - 6), f"1e{decade}", fill="black")
    for i, (name, s) in enumerate(smoothed.items()):
        if len(s) < 2:
            continue
        xs = pad + np.arange(len(s)) / (len(s) - 1) * (w - 1.5 * pad)
        ys = h - pad - (np.log10(np.maximum(s, 1e-8)) - lo) / (hi - lo) * (h - 1.5 * pad)
        d.line(list(zip(xs.tolist(), ys.tolist())), fill=colours[i % 4], width=2)
        d.text((w - 220, pad / 2 + 6 + 14 * i), name, fill=colours[i % 4])
    d.text((pad, h - pad + 8), f"{title} (steps →; smoothed)", fill="black")
    img.save(path)


def grid(images, columns, labels=None, cell=None):
    """Pastes PIL images into a grid with optional labels under each."""
    cell = cell or images[0].size[0]
    label_h = 26 if labels else 0
    rows = math.ceil(len(images) / columns)
    out = Image.new("RGB", (columns * cell, rows * (cell + label_h)), "white")
    d = ImageDraw.Draw(out)
    for i, im in enumerate(images):
        x, y = (i % columns) * cell, (i // columns) * (cell + label_h)
        out.paste(im.resize((cell, cell)), (x, y))
        if labels:
            text = labels[i]
            d.text((x + 2, y + cell + 1), text[:cell // 6], fill="black")
            if len(text) > cell // 6:
                d.text((x + 2, y + cell + 12), text[cell // 6:2 * (cell // 6)], fill="black")
    return out


def write_training_record(path, args, extra):
    import diffusers
    import transformers
    record = {"arguments": vars(args), "torch": torch.__version__, "diffusers": diffusers.__version__,
              "transformers": transformers.__version__, "python": platform.python_version(),
              "machine": platform.machine(), "threads": torch.get_num_threads()}
    record.update(extra)
    with open(path, "w") as f:
        json.dump(record, f, indent=2)


def training_arguments(description, seed):
    """The options both scripts take; each adds its own phases' steps and rates."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--work", required=True, help="checkpoints and the dataset cache (outside the repository)")
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=seed)
    p.add_argument("--images", type=int, default=8000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--caption-dropout", type=float, default=0.1)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--text-width", type=int, default=64)
    p.add_argument("--text-layers", type=int, default=2)
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--decoder-steps", type=int, default=1000,
                   help="steps of the autoencoder's decoder alone on whole scenes (0: none)")
    p.add_argument("--decoder-batch", type=int, default=8)
    p.add_argument("--decoder-lr", type=float, default=5e-4)
    return p


def prepare(args, size):
    """Threads, device, the training and held-out scenes and the tokenizer, for both scripts."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    os.makedirs(args.work, exist_ok=True)
    images, captions = scene_dataset(args.images, size, args.work)
    held = scene_dataset(16, size, args.work, first_seed=scenes.HELD_OUT_START)
    tokenizer_dir = os.path.join(args.work, "tokenizer")
    tokenizer, vocab_size = make_tokenizer(tokenizer_dir, captions)
    print(f"{len(images)} scenes, vocabulary {vocab_size}, device {device}", flush=True)
    return device, (images, captions), held, (tokenizer, tokenizer_dir, vocab_size)


def save_state(path, **parts):
    """A checkpoint of modules, optimisers and plain values, written whole or not at all."""
    torch.save({k: (v.state_dict() if hasattr(v, "state_dict") else v) for k, v in parts.items()}, path + ".tmp")
    os.replace(path + ".tmp", path)


def finetune_decoder(args, parts, decode, batch_of, held, peak, label, work):
    """Trains only the decoder side of a VAE or VQ model on whole scenes.

    The autoencoder's first phase trains on crops, so its decoder's group norms learn a crop's
    statistics, not those of the whole 128² scene every later use decodes. The encoder (and the
    codebook) stay fixed here, so the latents or token ids the second phase trains on do not
    change. `parts` holds the trainable modules and `decode(parts, z)` runs them; `batch_of(rng)`
    gives a training batch (decoder inputs, the scenes they should give back); `held` is the
    held-out check (inputs, scenes), its PSNR (for images spanning `peak`) measured before and
    after. The exponential moving average of the parts is what is kept (loaded into `parts`).
    Returns the losses and the two PSNRs.
    """
    steps = args.decoder_steps
    ema = copy.deepcopy(parts).eval()
    opt = torch.optim.AdamW(parts.parameters(), lr=args.decoder_lr, weight_decay=0.0)

    def held_psnr():
        with torch.no_grad():
            mse = (decode(ema, held[0]).clamp(-peak, peak) - held[1]).pow(2).mean(dim=(1, 2, 3))
            return float((10 * torch.log10(peak ** 2 / mse)).mean())

    losses, start, before = [], 0, held_psnr()
    state_path = os.path.join(work, f"{label}-decoder.pt")
    if args.resume and os.path.exists(state_path):
        state = torch.load(state_path, map_location=held[0].device)
        for k, m in (("parts", parts), ("ema", ema), ("opt", opt)):
            m.load_state_dict(state[k])
        losses, start, before = state["losses"], state["step"], state["before"]
    rng = np.random.default_rng(args.seed + 5)
    started = time.time()
    parts.train()
    for step in range(start, steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, args.decoder_lr, warmup=min(100, steps // 10 + 1))
        z, x = batch_of(rng)
        recon = decode(parts, z)
        loss = F.l1_loss(recon, x) + F.mse_loss(recon, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema_update(ema, parts, min(args.ema, (1 + step) / (10 + step)))
        losses.append(loss.item())
        if (step + 1) % 50 == 0:
            print(f"{label} decoder {step + 1}/{steps} rec {np.mean(losses[-50:]):.4f} "
                  f"({time.time() - started:.0f} s)", flush=True)
        if (step + 1) % args.checkpoint_every == 0:
            save_state(state_path, parts=parts, ema=ema, opt=opt, losses=losses, step=step + 1, before=before)
    save_state(state_path, parts=parts, ema=ema, opt=opt, losses=losses, step=steps, before=before)
    parts.load_state_dict(ema.state_dict())
    parts.eval()
    after = held_psnr()
    print(f"{label} decoder on whole scenes: held-out PSNR {before:.2f} → {after:.2f} dB", flush=True)
    return losses, before, after
