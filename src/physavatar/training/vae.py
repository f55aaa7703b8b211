"""Training a small Wan VAE (`AutoencoderKLWan`) on a clip dataset, e.g. the synthetic world.

The pretrained Wan VAE cannot be downloaded here, and the demo model needs a latent space for world frames.
Samples are random 1 + 4k-frame windows of the clips' videos; the loss is L1 + MSE reconstruction plus a small
KL term. At the end the per-channel latent mean / std over the data are written into the VAE config
(`latents_mean`, `latents_std`), which is how Wan normalises latents, and the folder is written atomically.

    physavatar train-vae --data data/world --out vae_world --steps 2000
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass
class VaeTrainArgs:
    data: str = "data/world"
    out: str = "vae_world"
    base_dim: int = 8
    z_dim: int = 16
    dim_mult: tuple[int, ...] = (1, 2, 2, 4)
    num_res_blocks: int = 1
    window: int = 5  # frames per sample (1 + 4k)
    batch_size: int = 4
    lr: float = 5e-4
    steps: int = 2000
    kl_weight: float = 1e-6
    max_clips: int = 200  # clips decoded into memory for training
    seed: int = 0


def _load_frames(root: Path, max_clips: int, split: str) -> list[np.ndarray]:
    from physavatar.data.manifest import read_manifest
    from physavatar.io.video import read_video

    rows = [r for r in read_manifest(root, required=True) if r.get("split", "train") == split][:max_clips]
    return [read_video(root / r["path"] / "video.mp4") for r in rows]


def _batch(videos: list[np.ndarray], window: int, size: int, generator: np.random.Generator) -> torch.Tensor:
    from physavatar.models.vae import frames_to_tensor

    picks = []
    for _ in range(size):
        video = videos[generator.integers(len(videos))]
        start = generator.integers(0, len(video) - window + 1)
        picks.append(video[start : start + window])
    return frames_to_tensor(np.stack(picks))  # (B, 3, window, H, W) in [-1, 1]


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two [-1, 1] videos."""
    mse = torch.mean(((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2) ** 2).item()
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


def train_vae(args: VaeTrainArgs, progress: bool = True) -> dict:
    from diffusers import AutoencoderKLWan
    from tqdm import tqdm

    from physavatar.constants import num_latent_frames
    from physavatar.io.atomic import atomic_dir

    num_latent_frames(args.window)  # 1 + 4k
    root = Path(args.data)
    videos = _load_frames(root, args.max_clips, "train")
    held_out = _load_frames(root, 8, "val") or videos[-2:]
    if not videos:
        raise ValueError(f"{root}: no train clips to learn from")
    if min(len(v) for v in videos) < args.window:
        raise ValueError(f"clips are shorter than --window {args.window} frames")
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    vae = AutoencoderKLWan(base_dim=args.base_dim, z_dim=args.z_dim, dim_mult=list(args.dim_mult),
                           num_res_blocks=args.num_res_blocks, latents_mean=[0.0] * args.z_dim,
                           latents_std=[1.0] * args.z_dim)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=args.lr, weight_decay=0.0)
    start = time.perf_counter()
    losses = []
    bar = tqdm(range(args.steps), unit="step", disable=not progress, desc="train vae")
    for _ in bar:
        x = _batch(videos, args.window, args.batch_size, rng)
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample(generator=None)).sample
        rec = (recon - x).abs().mean() + ((recon - x) ** 2).mean()
        kl = posterior.kl().mean() / x[0].numel()
        loss = rec + args.kl_weight * kl
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(rec.item())
        bar.set_postfix(rec=f"{rec.item():.4f}")

    # latent statistics for Wan's normalisation, and a held-out reconstruction figure
    vae.eval()
    with torch.no_grad():
        sample = _batch(videos, args.window, min(32, 8 * args.batch_size), rng)
        z = vae.encode(sample).latent_dist.mode()
        mean = z.mean(dim=(0, 2, 3, 4))
        std = z.std(dim=(0, 2, 3, 4)).clamp_min(1e-4)
        test = _batch(held_out, args.window, 8, np.random.default_rng(args.seed + 1))
        held_psnr = psnr(vae.decode(vae.encode(test).latent_dist.mode()).sample, test)
    vae.register_to_config(latents_mean=mean.tolist(), latents_std=std.tolist())
    card = {"args": asdict(args), "train_seconds": round(time.perf_counter() - start, 1),
            "final_reconstruction_loss": float(np.mean(losses[-20:])) if losses else None,
            "held_out_psnr_db": round(held_psnr, 2), "parameters": sum(p.numel() for p in vae.parameters())}
    with atomic_dir(args.out, overwrite=True) as tmp:
        vae.save_pretrained(tmp)
        (tmp / "training_card.json").write_text(json.dumps(card, indent=1))
    return card
