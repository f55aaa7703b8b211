"""Train the world backbones (world-gesture-AE for FGD, world-SyncNet for Sync-C/D) on world clip datasets.

    python -m physavatar.evaluation.backbones.train_world --what gesture --data /tmp/worldbb \
        --out src/physavatar/evaluation/assets/world_gesture_ae.safetensors
    python -m physavatar.evaluation.backbones.train_world --what sync --data /tmp/worldbb \
        --out src/physavatar/evaluation/assets/world_syncnet.safetensors

`--data` (repeatable) is a dataset written by `physavatar world make`; the manifest's split (by identity)
decides: train clips train, val + test clips (identities never seen in training) validate. Each run writes
the weights and a JSON card beside them (`<out>.json`: data, seed, steps, wall time, final losses,
validation figures). Seeded; on 2 CPU cores each run takes a few minutes (see the cards).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from physavatar.constants import SAMPLES_PER_FRAME


@dataclass
class TrainArgs:
    what: str  # "gesture" or "sync"
    data: tuple[str, ...]
    out: str
    steps: int = 0  # 0: the default of `what`
    batch: int = 0
    lr: float = 1e-3
    seed: int = 0
    max_minutes: float = 9.0  # stop early (and say so in the card) past this wall time
    threads: int = 2


# ---------------------------------------------------------------------------------------------------- data


def world_clips(data_dirs) -> dict[str, list[Path]]:
    """{split: clip folders} over the given world datasets; raises unless train and held-out clips exist."""
    from physavatar.world.dataset import read_manifest

    splits: dict[str, list[Path]] = {"train": [], "val": [], "test": []}
    for d in data_dirs:
        rows = read_manifest(d)
        if not rows:
            raise FileNotFoundError(f"{d}: no manifest.jsonl rows; give a dataset made by `physavatar world make`")
        for row in rows:
            if row.get("source") != "world":
                raise ValueError(f"{d}: clip {row.get('id')} is not a world clip (source {row.get('source')!r})")
            splits.setdefault(row["split"], []).append(Path(d) / row["path"])
    if not splits["train"] or not (splits["val"] or splits["test"]):
        raise ValueError(f"{list(data_dirs)}: need train and val/test clips (the split is by identity; make at "
                         "least 40 clips so that val and test identities exist)")
    return splits


def shift_audio(audio: np.ndarray, frames: int) -> np.ndarray:
    """The audio `frames` video frames late (> 0, silence first) or early (< 0); same length."""
    s = abs(int(frames)) * SAMPLES_PER_FRAME
    pad = np.zeros(min(s, len(audio)), audio.dtype)
    if frames > 0:
        return np.concatenate([pad, audio[: len(audio) - len(pad)]])
    return np.concatenate([audio[len(pad):], pad]) if frames < 0 else audio.copy()


def _load_clip(clip_dir: Path):
    from physavatar.constants import FPS, SAMPLE_RATE
    from physavatar.io import load_audio, read_video

    frames = read_video(clip_dir / "video.mp4", FPS)
    audio = load_audio(clip_dir / "audio.wav", SAMPLE_RATE, validate=False)
    keypoints = np.load(clip_dir / "keypoints.npy").astype(np.float32)[: len(frames)]
    return frames, audio, keypoints


# ------------------------------------------------------------------------------------------ gesture AE


class GestureDecoder(nn.Module):
    """(B, latent) -> (B, window, J, 2); training only (FGD uses the encoder)."""

    def __init__(self, window: int, num_joints: int, latent_dim: int, hidden: int = 256):
        super().__init__()
        self.shape = (window, num_joints, 2)
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                                 nn.LeakyReLU(0.2), nn.Linear(hidden, window * num_joints * 2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).reshape(len(z), *self.shape)


def _pose_windows(clips: list[Path], window: int, stride: int) -> np.ndarray:
    from physavatar.evaluation.metrics.gesture import normalize_pose, pose_windows

    out = [pose_windows(normalize_pose(np.load(c / "keypoints.npy"), name=str(c)), window, stride) for c in clips]
    out = [w for w in out if len(w)]
    if not out:
        raise ValueError(f"clips shorter than one {window}-frame gesture window; make clips with --frames 81")
    return np.concatenate(out).astype(np.float32)


def train_gesture(args: TrainArgs, splits: dict[str, list[Path]]) -> dict:
    from physavatar.evaluation.backbones.gesture_encoder import (GestureEncoder, GestureEncoderConfig,
                                                                 save_gesture_encoder)

    cfg = GestureEncoderConfig(window=34, hidden=64, latent_dim=32, temporal_pool=False)
    steps, batch = args.steps or 3000, args.batch or 128
    # 1. data: all overlapping windows (stride 2) of the train identities; held out: val and test identities
    train = torch.from_numpy(_pose_windows(splits["train"], cfg.window, 2))
    val_windows = _pose_windows(splits["val"], cfg.window, 8)  # the evaluation's stride
    test_windows = _pose_windows(splits["test"], cfg.window, 8)
    enc = GestureEncoder(cfg)
    dec = GestureDecoder(cfg.window, cfg.num_joints, cfg.latent_dim)
    opt = torch.optim.AdamW([*enc.parameters(), *dec.parameters()], lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(args.seed)
    # 2. train: MSE reconstruction of the normalised pose window (shoulder-width units)
    t0, losses, done = time.perf_counter(), [], 0
    for step in range(steps):
        x = train[torch.randint(len(train), (batch,), generator=g)]
        loss = F.mse_loss(dec(enc(x)), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        done = step + 1
        if time.perf_counter() - t0 > 60 * args.max_minutes:
            break
    wall = time.perf_counter() - t0
    enc.eval(), dec.eval()
    save_gesture_encoder(enc, args.out)
    # 3. validation on held-out identities
    from physavatar.evaluation.metrics import frechet_from_features

    with torch.inference_mode():
        val_t = torch.from_numpy(val_windows)
        recon = F.mse_loss(dec(enc(val_t)), val_t).item()
        feats = lambda w: enc(torch.from_numpy(np.ascontiguousarray(w, np.float32))).numpy().astype(np.float64)
        ref = feats(val_windows)
        rng = np.random.default_rng(args.seed)
        shuffled = np.stack([w[rng.permutation(len(w))] for w in val_windows])
        static = np.repeat(val_windows[:, :1], cfg.window, axis=1)
        fgd = {"ref_vs_itself": frechet_from_features(ref, ref),
               "ref_vs_other_real_clips": frechet_from_features(ref, feats(test_windows)),
               "ref_vs_time_shuffled": frechet_from_features(ref, feats(shuffled)),
               "ref_vs_static": frechet_from_features(ref, feats(static))}
    return {"model": asdict(cfg), "steps": done, "steps_planned": steps, "batch": batch, "lr": args.lr,
            "wall_time_s": round(wall, 1),
            "num_train_windows": len(train), "final_train_loss_mse": float(np.mean(losses[-50:])),
            "validation": {
                "ref": f"val split, {len(splits['val'])} clips, {len(val_windows)} windows (stride 8)",
                "other_real": f"test split, {len(splits['test'])} clips, {len(test_windows)} windows",
                "reconstruction_mse": recon,
                "data_variance": float(val_windows.var(axis=0).mean()),
                "relative_reconstruction_error": recon / float(val_windows.var(axis=0).mean()),
                "fgd": fgd}}


# ----------------------------------------------------------------------------------------------- main


def _make_command(data_dir) -> tuple[str, str]:
    """(the `physavatar world make` line that re-creates a dataset, its folder), from its first clip's meta."""
    from physavatar.world.dataset import read_manifest

    rows = read_manifest(data_dir)
    meta = json.loads((Path(data_dir) / rows[0]["path"] / "meta.json").read_text())
    cmd = (f"physavatar world make --clips {len(rows)} --seed {meta['dataset_seed']} --size {meta['size'][0]} "
           f"--frames {meta['num_frames']} --clips-per-identity {meta['clips_per_identity']} --out {data_dir}")
    return cmd, str(data_dir)


def train(args: TrainArgs) -> dict:
    """Train `args.what`, write the weights to `args.out` and the card to `<out>.json`; returns the card."""
    if args.what not in ("gesture", "sync"):
        raise ValueError(f"--what {args.what!r}: choose gesture or sync")
    if not str(args.out).endswith(".safetensors"):
        raise ValueError(f"--out {args.out}: give a .safetensors path")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    splits = world_clips(args.data)
    if args.what == "gesture":
        result = train_gesture(args, splits)
    else:
        from physavatar.evaluation.backbones.train_world_sync import train_sync

        result = train_sync(args, splits)
    card = {"name": "world-gesture-AE" if args.what == "gesture" else "world-SyncNet",
            "weights": Path(args.out).name,
            "recreate": f"python -m physavatar.evaluation.backbones.train_world --what {args.what} "
                        + " ".join(f"--data {_make_command(d)[1]}" for d in args.data)
                        + f" --out {Path(args.out).name} --seed {args.seed} --steps {result['steps_planned']}",
            "data": {"datasets": [str(d) for d in args.data],
                     "made_with": [_make_command(d)[0] for d in args.data],
                     "clips": {k: len(v) for k, v in splits.items()},
                     "split": "by identity (world manifest): train trains; val + test identities validate"},
            "seed": args.seed, "torch": torch.__version__, "machine": f"{platform.machine()}, "
            f"{args.threads} CPU threads", **result}
    from physavatar.io.atomic import atomic_write

    with atomic_write(Path(args.out).with_suffix(".json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(card, indent=1) + "\n")
    return card


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m physavatar.evaluation.backbones.train_world",
                                description="Train a world backbone (FGD gesture AE or SyncNet) on world clips.")
    p.add_argument("--what", required=True, choices=("gesture", "sync"))
    p.add_argument("--data", required=True, action="append", help="world dataset folder (repeatable)")
    p.add_argument("--out", required=True, help="weights path (.safetensors); the card goes to <out>.json")
    p.add_argument("--steps", type=int, default=0, help="0: 3000 (gesture) / 600 (sync)")
    p.add_argument("--batch", type=int, default=0, help="0: 128 windows (gesture) / 16 clips x 8 windows (sync)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=9.0)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    card = train(TrainArgs(a.what, tuple(a.data), a.out, a.steps, a.batch, a.lr, a.seed, a.max_minutes, a.threads))
    print(json.dumps({k: card[k] for k in ("name", "steps", "wall_time_s", "validation")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
