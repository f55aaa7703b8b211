"""Training a small Wan VAE (`AutoencoderKLWan`) on a clip dataset, e.g. the synthetic world.

The pretrained Wan VAE cannot be downloaded here, and the demo model needs a latent space for world frames.
Samples are random 1 + 4k-frame windows of the clips' videos; the loss is L1 + MSE reconstruction of the
posterior mean (the latents the diffusion model is trained on are `mode()` latents, see models/vae.py) plus a
small pull of the means towards zero that keeps the latent scale bounded. Sampling the posterior instead made
a from-scratch VAE converge several times slower on CPU, for no gain here. The learning rate warms up, then
follows a cosine. Every `save_every` steps the state (weights, optimizer, data RNG) is saved to OUT.ckpt/, and
a rerun with the same arguments resumes from it. At the end the per-channel latent mean / std over the data
are written into the VAE config (`latents_mean`, `latents_std`), which is how Wan normalises latents, and the
folder is written atomically.

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
    crop: int = 64  # train on random crop x crop windows (0: whole frames); the VAE is convolutional, so a
    # 64-px crop costs a quarter of a 128-px frame and buys four times the steps
    batch_size: int = 4
    lr: float = 3e-3
    warmup_steps: int = 50
    steps: int = 2000
    mean_weight: float = 1e-4  # pull of the posterior means towards 0 (keeps the latent scale bounded)
    max_clips: int = 400  # clips decoded into memory for training
    save_every: int = 100  # steps between resumable checkpoints in OUT.ckpt/
    seed: int = 0
    init: str = ""  # start from this AutoencoderKLWan folder (fine-tuning, e.g. on longer windows) instead of scratch


def _load_frames(root: Path, max_clips: int, split: str) -> list[np.ndarray]:
    from physavatar.data.manifest import read_manifest
    from physavatar.io.video import read_video

    rows = [r for r in read_manifest(root, required=True) if r.get("split", "train") == split][:max_clips]
    return [read_video(root / r["path"] / "video.mp4") for r in rows]


def _batch(videos: list[np.ndarray], window: int, size: int, generator: np.random.Generator,
           crop: int = 0) -> torch.Tensor:
    from physavatar.models.vae import frames_to_tensor

    picks = []
    for _ in range(size):
        video = videos[generator.integers(len(videos))]
        start = generator.integers(0, len(video) - window + 1)
        clip = video[start : start + window]
        if crop:
            y, x = generator.integers(0, clip.shape[1] - crop + 1), generator.integers(0, clip.shape[2] - crop + 1)
            clip = clip[:, y : y + crop, x : x + crop]
        picks.append(clip)
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
    if args.crop and (args.crop % 8 or args.crop > min(v.shape[1] for v in videos)):
        raise ValueError(f"--crop {args.crop}: use a multiple of 8 no larger than the frames (0: whole frames)")
    if min(len(v) for v in videos) < args.window:
        raise ValueError(f"clips are shorter than --window {args.window} frames")
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    if args.init:
        vae = AutoencoderKLWan.from_pretrained(args.init, torch_dtype=torch.float32)
    else:
        vae = AutoencoderKLWan(base_dim=args.base_dim, z_dim=args.z_dim, dim_mult=list(args.dim_mult),
                               num_res_blocks=args.num_res_blocks, latents_mean=[0.0] * args.z_dim,
                               latents_std=[1.0] * args.z_dim)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, args))
    ckpt = Path(f"{args.out}.ckpt")
    step, losses, seconds = 0, [], 0.0
    if (ckpt / "state.pt").exists():
        try:
            state = torch.load(ckpt / "state.pt", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unpickling failure means the same thing here
            raise ValueError(f"{ckpt / 'state.pt'} is unreadable ({type(err).__name__}); delete {ckpt} to start "
                             "over") from None
        if state["args"] != asdict(args):
            raise ValueError(f"{ckpt} holds a run with other arguments; delete it or use another --out")
        vae.load_state_dict(state["vae"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        step, losses, seconds = state["step"], state["losses"], state["seconds"]
    start = time.perf_counter() - seconds
    bar = tqdm(range(step, args.steps), unit="step", disable=not progress, desc="train vae", initial=step,
               total=args.steps)
    for step in bar:
        x = _batch(videos, args.window, args.batch_size, rng, args.crop)
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.mode()).sample
        rec = (recon - x).abs().mean() + ((recon - x) ** 2).mean()
        loss = rec + args.mean_weight * (posterior.mean ** 2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(rec.item())
        bar.set_postfix(rec=f"{np.mean(losses[-20:]):.4f}")
        if (step + 1) % args.save_every == 0 and step + 1 < args.steps:
            _save_state(ckpt, {"args": asdict(args), "vae": vae.state_dict(), "optimizer": optimizer.state_dict(),
                               "schedule": schedule.state_dict(), "rng": rng.bit_generator.state,
                               "torch_rng": torch.get_rng_state(), "step": step + 1, "losses": losses,
                               "seconds": time.perf_counter() - start})

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
    card = {"args": asdict(args), "init_card": _card(args.init), "train_seconds": round(time.perf_counter() - start, 1),
            "final_reconstruction_loss": float(np.mean(losses[-20:])) if losses else None,
            "loss_curve": [round(float(np.mean(losses[i:i + 50])), 4) for i in range(0, len(losses), 50)],
            "held_out_psnr_db": round(held_psnr, 2), "parameters": sum(p.numel() for p in vae.parameters())}
    with atomic_dir(args.out, overwrite=True) as tmp:
        vae.save_pretrained(tmp)
        (tmp / "training_card.json").write_text(json.dumps(card, indent=1))
    import shutil

    shutil.rmtree(ckpt, ignore_errors=True)
    return card


def _card(folder: str) -> dict | None:
    path = Path(folder) / "training_card.json" if folder else None
    return json.loads(path.read_text()) if path and path.exists() else None


def _lr_factor(step: int, args: VaeTrainArgs) -> float:
    if step < args.warmup_steps:
        return (step + 1) / args.warmup_steps
    progress = (step - args.warmup_steps) / max(1, args.steps - args.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _save_state(ckpt: Path, state: dict) -> None:
    from physavatar.io.atomic import atomic_write

    ckpt.mkdir(parents=True, exist_ok=True)
    with atomic_write(ckpt / "state.pt", "wb") as f:
        torch.save(state, f)
