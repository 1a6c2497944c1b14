"""Train the built-in model from scratch on procedural scenes, on the CPU, reproducibly.

    python -m tools.builtin_model.train [--minutes-unet 60] [--out sdstudio/resources/models/builtin]

Stages (each resumable; state under tools/runs/builtin/, git-ignored):
1. VAE on whole 128x128 scenes (L1 + MSE on the posterior mean, tiny latent penalty).
2. Encode a fixed set of scenes to latents once, so the UNet stage touches no pixels.
3. UNet + text encoder together, epsilon prediction with min-SNR weighting, 10% empty
   captions for classifier-free guidance, EMA weights; the model folder is exported every
   few minutes so a usable model always exists.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sdstudio.resources import builtin_model_dir
from tools.builtin_model.components import make_scheduler, make_text_encoder, make_unet, make_vae
from tools.builtin_model.scenes import caption, training_example
from tools.builtin_model.tokenizer import write_tokenizer

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / "tools" / "runs" / "builtin"
DEFAULT_OUT = builtin_model_dir()
SEED = 1234


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def _to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


@torch.no_grad()
def linearise_output_norms(vae, k: float = 30.0) -> None:
    """Initialise the VAE so its two output GroupNorms pass colour through.

    The encoder's and decoder's last GroupNorm sit outside any skip connection and subtract
    the mean over the whole picture, so a flat background colour is erased and must be
    relearnt as a channel pattern: from a plain init the VAE reproduced shapes but not
    colours after hundreds of steps. Giving channel 0 a large constant offset K just before
    each norm makes the norm's mean and spread almost constant, i.e. the norm nearly affine;
    its scale and shift are then set to undo it, and channel 0 itself is switched off.
    """
    for last_resnet, norm in (
        (vae.encoder.mid_block.resnets[-1], vae.encoder.conv_norm_out),
        (vae.decoder.up_blocks[-1].resnets[-1], vae.decoder.conv_norm_out),
    ):
        last_resnet.conv2.weight[0].zero_()
        last_resnet.conv2.bias[0] = k
        c = norm.num_channels
        norm.weight.fill_(k * (c - 1) ** 0.5 / c)
        norm.bias.fill_(k / c)
        norm.weight[0] = 0.0
        norm.bias[0] = 0.0


def train_vae(runs: Path, minutes: float, batch: int = 8) -> torch.nn.Module:
    path = runs / "vae.pt"
    vae = make_vae()
    if path.exists():
        vae.load_state_dict(torch.load(path))
        return vae
    torch.manual_seed(SEED)
    linearise_output_norms(vae)
    rng = np.random.default_rng(SEED)
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    start, step = time.time(), 0
    while (elapsed := time.time() - start) < minutes * 60:
        for g in opt.param_groups:  # constant, then a lower rate for the last fifth
            g["lr"] = 1e-3 if elapsed < 0.8 * minutes * 60 else 2e-4
        imgs = [training_example(SEED + 1, int(i))[0] for i in rng.integers(0, 10**9, batch)]
        # Whole 128x128 scenes, not crops: GroupNorm statistics then match those at use time.
        x = _to_tensor(imgs)
        post = vae.encode(x).latent_dist
        # Decoding the posterior mean: with SD's tiny KL weight the initial unit-variance
        # sampling noise drowns the latents and training crawls; the diffusion stage only
        # needs a deterministic, well-scaled latent space (scaled by 1/std at export).
        rec = vae.decode(post.mode()).sample
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x) + 1e-4 * post.mean.pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0:
            log(f"vae step {step} loss {loss.item():.4f} ({elapsed:.0f}s)")
        step += 1
    torch.save(vae.state_dict(), path)
    return vae


@torch.no_grad()
def encode_dataset(runs: Path, vae: torch.nn.Module, count: int) -> tuple[torch.Tensor, list, float]:
    path = runs / "latents.pt"
    if path.exists():
        data = torch.load(path, weights_only=False)
        return data["latents"], data["scenes"], data["scale"]
    vae.eval()
    latents, scenes = [], []
    start = time.time()
    for lo in range(0, count, 64):
        batch = [training_example(SEED, i) for i in range(lo, min(count, lo + 64))]
        latents.append(vae.encode(_to_tensor([b[0] for b in batch])).latent_dist.mean)
        scenes += [b[2] for b in batch]
        if lo % 2048 == 0:
            log(f"encoded {lo}/{count} ({time.time() - start:.0f}s)")
    z = torch.cat(latents)
    scale = float(1.0 / z.std())
    torch.save({"latents": z.half(), "scenes": scenes, "scale": scale}, path)
    return z.half(), scenes, scale


def export(out: Path, vae, unet, text_encoder, scale: float) -> None:
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTokenizer

    out.mkdir(parents=True, exist_ok=True)
    write_tokenizer(out / "tokenizer")
    vae = copy.deepcopy(vae)
    vae.register_to_config(scaling_factor=scale)
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=copy.deepcopy(text_encoder),
        tokenizer=CLIPTokenizer.from_pretrained(out / "tokenizer"),
        unet=copy.deepcopy(unet),
        scheduler=make_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.to(torch.float16)  # halves the shipped size; loaders upcast to the device's dtype
    pipe.save_pretrained(out, safe_serialization=True)


def train_unet(runs: Path, vae, latents, scenes, scale, minutes: float, out: Path, batch: int = 64) -> None:
    from diffusers import DDPMScheduler
    from transformers import CLIPTokenizer

    tok_dir = runs / "tokenizer"
    vocab_size = write_tokenizer(tok_dir)
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir)
    torch.manual_seed(SEED)
    unet, text_encoder = make_unet(), make_text_encoder(vocab_size)
    state_path = runs / "unet_state.pt"
    ema = copy.deepcopy(unet).requires_grad_(False)
    ema_te = copy.deepcopy(text_encoder).requires_grad_(False)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2)
    step = 0
    if state_path.exists():
        st = torch.load(state_path, weights_only=False)
        unet.load_state_dict(st["unet"])
        text_encoder.load_state_dict(st["te"])
        ema.load_state_dict(st["ema"])
        ema_te.load_state_dict(st["ema_te"])
        opt.load_state_dict(st["opt"])
        step = st["step"]
    # Noise is added the DDPM way (sqrt(a) z + sqrt(1 - a) e): EulerDiscreteScheduler.add_noise
    # uses the sigma form z + s e, which the pipelines never feed to the UNet (a first run
    # trained that way produced only noise).
    noise_sched = DDPMScheduler.from_config(make_scheduler().config)
    alphas = noise_sched.alphas_cumprod
    snr = alphas / (1 - alphas)
    rng = np.random.default_rng(SEED + step)
    z_all = latents.float() * scale
    deadline = time.time() + minutes * 60
    last_export = time.time()
    start = time.time()
    while time.time() < deadline:
        idx = rng.integers(0, len(scenes), batch)
        texts = ["" if rng.random() < 0.1 else caption(scenes[i], rng) for i in idx]
        ids = tokenizer(texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        z0 = z_all[torch.from_numpy(idx)]
        noise = torch.randn_like(z0)
        t = torch.randint(0, 1000, (batch,))
        zt = noise_sched.add_noise(z0, noise, t)
        hidden = text_encoder(ids).last_hidden_state
        pred = unet(zt, t, hidden).sample
        weight = torch.clamp(snr[t], max=5.0) / snr[t]
        loss = (weight * ((pred - noise) ** 2).mean(dim=(1, 2, 3))).mean()
        lr = 1e-3 * min(1.0, (step + 1) / 200)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for src, dst in ((unet, ema), (text_encoder, ema_te)):
                for p, q in zip(src.parameters(), dst.parameters(), strict=True):
                    q.lerp_(p, 1 - decay)
        step += 1
        if step % 50 == 0:
            log(f"unet step {step} loss {loss.item():.4f} ({time.time() - start:.0f}s)")
        if time.time() - last_export > 8 * 60 or time.time() >= deadline:
            torch.save(
                {"unet": unet.state_dict(), "te": text_encoder.state_dict(), "ema": ema.state_dict(),
                 "ema_te": ema_te.state_dict(), "opt": opt.state_dict(), "step": step},
                state_path,
            )
            export(out, vae, ema, ema_te, scale)
            (runs / "progress.json").write_text(json.dumps({"unet_steps": step, "seconds": time.time() - start}))
            log(f"exported at step {step}")
            last_export = time.time()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes-vae", type=float, default=10.0)
    ap.add_argument("--scenes", type=int, default=8192)
    ap.add_argument("--minutes-unet", type=float, default=40.0)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--runs", type=Path, default=RUNS, help="working folder for resumable state")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    args.runs.mkdir(parents=True, exist_ok=True)
    vae = train_vae(args.runs, args.minutes_vae)
    vae.requires_grad_(False).eval()
    latents, scenes, scale = encode_dataset(args.runs, vae, args.scenes)
    log(f"latents {tuple(latents.shape)} scale {scale:.4f}")
    train_unet(args.runs, vae, latents, scenes, scale, args.minutes_unet, args.out)
    log("done")


if __name__ == "__main__":
    main()
