"""Contrastive training and validation of world-SyncNet (called by train_world.py --what sync).

Each step takes `clips_per_batch` train clips and `windows_per_clip` random 5-frame window starts in each;
every lip window is scored (cosine / temperature) against every audio window of the batch. InfoNCE in
both directions: the positive is the aligned audio window; negatives are the same clip's windows shifted by
≥ NEG_MIN_SHIFT frames and all windows of the other clips. Same-clip windows closer than that are masked
out (they overlap the positive and are partly correct). Audio gain is augmented (a random constant on the
log-energy coefficient c0, which is what a gain change does to MFCCs).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from physavatar.evaluation.backbones.syncnet import MFCC_PER_FRAME, WINDOW
from physavatar.evaluation.backbones.world_sync import (MFCC_WINDOW, WorldSyncConfig, WorldSyncNet, audio_mfcc,
                                                        crop_mouths, embed_audio, embed_lips, mouth_boxes,
                                                        num_windows, save_world_syncnet)

NEG_MIN_SHIFT = 3  # frames: same-clip windows at least this far from the positive are negatives
TEMPERATURE = 0.1
SHIFTS = (-10, -5, 5, 10)  # validation: audio this many frames late (> 0) or early (< 0)


def _prepare(clips: list[Path], crop: int):
    """Per clip: mouth crops (3, F, S, S) uint8, MFCCs (13, M) and the window count, as the evaluation sees them."""
    from physavatar.evaluation.backbones.train_world import _load_clip

    out = []
    for c in clips:
        frames, audio, kp = _load_clip(c)
        n = num_windows(len(frames), len(audio))
        if n >= 2 * NEG_MIN_SHIFT + 2:
            crops = crop_mouths(frames, mouth_boxes(frames, kp), crop)
            out.append((torch.from_numpy(crops).permute(3, 0, 1, 2).contiguous(),
                        torch.from_numpy(audio_mfcc(audio).T.copy()), n))
    return out


def _batch(data, clips_per_batch: int, windows_per_clip: int, rng: np.random.Generator):
    pick = rng.choice(len(data), size=min(clips_per_batch, len(data)), replace=False)
    lips, auds, clip_id, start = [], [], [], []
    for i in pick:
        crops, cc, n = data[i]
        starts = np.sort(rng.choice(n, size=min(windows_per_clip, n), replace=False))
        lips.append(torch.stack([crops[:, t : t + WINDOW] for t in starts]).float())  # (K, 3, 5, S, S)
        a = torch.stack([cc[:, t * MFCC_PER_FRAME : t * MFCC_PER_FRAME + MFCC_WINDOW] for t in starts])[:, None]
        a[:, :, 0] += float(rng.normal(0.0, 1.0))  # gain augmentation (±1 in log energy ≈ ×/÷ 1.6 amplitude)
        auds.append(a)
        clip_id += [i] * len(starts)
        start += list(starts)
    return torch.cat(lips), torch.cat(auds), torch.tensor(clip_id), torch.tensor(start)


def train_sync(args, splits: dict[str, list[Path]]) -> dict:
    cfg = WorldSyncConfig()
    steps, clips_per_batch, windows_per_clip = args.steps or 600, args.batch or 16, 8
    # 1. data: crops + MFCCs of every train clip (held-out val/test identities only validate)
    t_prep = time.perf_counter()
    train = _prepare(splits["train"], cfg.crop)
    prep_s = time.perf_counter() - t_prep
    model = WorldSyncNet(cfg)
    all_cc = torch.cat([cc for _, cc, _ in train], 1).T.numpy().copy()
    all_cc[:, 0] = np.maximum(all_cc[:, 0], -5.0)
    model.mfcc_mean.copy_(torch.from_numpy(all_cc.mean(0)))
    model.mfcc_std.copy_(torch.from_numpy(all_cc.std(0) + 1e-3))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.05)
    rng = np.random.default_rng(args.seed)
    # 2. train
    t0, losses, accs, done = time.perf_counter(), [], [], 0
    model.train()
    for step in range(steps):
        lips, auds, clip_id, start = _batch(train, clips_per_batch, windows_per_clip, rng)
        v, a = model.forward_lip(lips), model.forward_aud(auds)
        logits = v @ a.T / TEMPERATURE  # (B, B)
        same = clip_id[:, None] == clip_id[None, :]
        near = same & ((start[:, None] - start[None, :]).abs() < NEG_MIN_SHIFT)
        logits = logits.masked_fill(near & ~torch.eye(len(v), dtype=torch.bool), float("-inf"))
        target = torch.arange(len(v))
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        accs.append((logits.argmax(1) == target).float().mean().item())
        done = step + 1
        if step % 100 == 0:
            print(f"step {step} loss {np.mean(losses[-100:]):.3f} acc {np.mean(accs[-100:]):.3f} "
                  f"{time.perf_counter() - t0:.0f}s", flush=True)
        if time.perf_counter() - t0 > 60 * args.max_minutes:
            break
    wall = time.perf_counter() - t0
    model.eval()
    save_world_syncnet(model, args.out)
    held_out = splits["val"] + splits["test"]
    return {"model": asdict(cfg), "steps": done, "steps_planned": steps, "clips_per_batch": clips_per_batch,
            "windows_per_clip": windows_per_clip, "temperature": TEMPERATURE, "negatives_min_shift": NEG_MIN_SHIFT,
            "lr": args.lr, "num_train_clips": len(train), "data_prep_s": round(prep_s, 1),
            "wall_time_s": round(wall, 1), "final_train_loss_infonce": float(np.mean(losses[-50:])),
            "final_train_batch_accuracy": float(np.mean(accs[-50:])),
            "validation": validate_sync(model, held_out)}


def validate_sync(model: WorldSyncNet, clips: list[Path], vshift: int = 15) -> dict:
    """Offset search on held-out clips with aligned and shifted audio (what the cards and docs report)."""
    from physavatar.evaluation.backbones.train_world import _load_clip, shift_audio
    from physavatar.evaluation.metrics import sync_offset_search

    aligned_off, aligned_c, aligned_d = [], [], []
    shifted = {s: {"err": [], "conf": []} for s in SHIFTS}
    for c in clips:
        frames, audio, kp = _load_clip(c)
        num = num_windows(len(frames), len(audio))
        lips = embed_lips(model, frames, kp, num)  # the same for every audio shift
        res = sync_offset_search(lips, embed_audio(model, audio, num), vshift=vshift)
        aligned_off.append(res.offset)
        aligned_c.append(res.confidence)
        aligned_d.append(res.min_dist)
        for s in SHIFTS:
            r = sync_offset_search(lips, embed_audio(model, shift_audio(audio, s), num), vshift=vshift)
            shifted[s]["err"].append(abs(r.offset - (-s)))  # audio s frames late -> offset −s
            shifted[s]["conf"].append(r.confidence)
    aligned_off = np.array(aligned_off)
    return {
        "clips": f"{len(clips)} held-out world clips (val + test identities), {len(frames)} frames each",
        "vshift": vshift,
        "aligned_offset_exactly_0_share": float((aligned_off == 0).mean()),
        "aligned_offset_within_1_share": float((np.abs(aligned_off) <= 1).mean()),
        "aligned_sync_c_mean": float(np.mean(aligned_c)),
        "aligned_sync_d_mean": float(np.mean(aligned_d)),
        "shifted": {str(s): {"mean_abs_offset_error": float(np.mean(v["err"])),
                             "within_1_share": float((np.array(v["err"]) <= 1).mean()),
                             "sync_c_mean": float(np.mean(v["conf"]))} for s, v in shifted.items()},
    }
