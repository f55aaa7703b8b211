"""Write world clips in the clip format (docs/clip_format.md): resumable, deterministic, in parallel.

Clip i of a dataset with seed S:
    identity index k = i // clips_per_identity   (several clips per person: same identity, new speech)
    identity seed    = SeedSequence([S, 1, k]),  clip seed = SeedSequence([S, 2, i])
    split            = by identity (zero-shot test people): k % 10 == 8 -> "val", k % 10 == 9 -> "test"
None of these depend on the number of clips asked for, so `--clips 400` after `--clips 200` extends
the same dataset. A clip is built in a temporary folder (`atomic_dir`) and its manifest line is appended
only after the folder is renamed into place; a rerun skips clips already in the manifest.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physavatar.constants import FPS, SAMPLE_RATE
from physavatar.data.manifest import MANIFEST, read_manifest, repair_jsonl

WORLD_VERSION = 4  # 2: varied speech, 3: short gaps inside phrases, 4: running speech (world/speech.py)
WORLD_VERSIONS = (3, 4)  # what `world make --world-version` can still write: 3 is 4 without running speech


@dataclass(frozen=True)
class WorldDatasetConfig:
    out: str
    clips: int = 200
    seed: int = 0
    size: int = 128
    frames: int = 81
    workers: int = 1
    clips_per_identity: int = 4
    framing: str = "mixed"  # world.identity.FRAMINGS
    version: int = WORLD_VERSION  # WORLD_VERSIONS


@dataclass(frozen=True)
class ClipPlan:
    index: int
    clip_id: str
    identity_index: int
    identity_seed: int
    clip_seed: int
    split: str


def _derive(*key: int) -> int:
    return int(np.random.SeedSequence(list(key)).generate_state(1)[0])


def clip_plan(seed: int, index: int, clips_per_identity: int = 4) -> ClipPlan:
    """Seeds, id and split of clip `index` (a pure function: the dataset's whole layout)."""
    k = index // clips_per_identity
    split = {8: "val", 9: "test"}.get(k % 10, "train")
    return ClipPlan(index, f"{index:06d}", k, _derive(seed, 1, k), _derive(seed, 2, index), split)


def write_clip(
    clip, clip_dir: Path, plan: ClipPlan | None = None, dataset_seed: int | None = None, clips_per_identity: int = 4,
    framing: str = "mixed", world_version: int = WORLD_VERSION,
) -> None:
    """Write one `world.clip.Clip` into an (empty, temporary) folder in the clip format."""
    from PIL import Image

    from physavatar.io.audio import write_wav
    from physavatar.io.video import write_video

    frames_n, h, w = clip.frames.shape[:3]
    write_video(clip_dir / "video.mp4", clip.frames, fps=FPS, audio=clip.wav, sample_rate=SAMPLE_RATE,
                preset="veryfast")  # fmt: skip
    write_wav(clip_dir / "audio.wav", clip.wav, SAMPLE_RATE)
    np.save(clip_dir / "keypoints.npy", clip.keypoints.astype(np.float32))
    np.save(clip_dir / "phys_tokens.npy", clip.tokens.astype(np.float16))
    Image.fromarray(clip.reference).save(clip_dir / "reference.png")
    speech = clip.speech
    meta = {
        "fps": FPS,
        "sample_rate": SAMPLE_RATE,
        "num_frames": int(frames_n),
        "size": [int(h), int(w)],
        "backends": {"pose": "world-gt"},
        "source": "world",
        "world_version": world_version,
        "identity_seed": clip.identity.seed,
        "clip_seed": clip.clip_seed,
        "identity": clip.identity.to_dict(),
        "speech": None
        if speech is None
        else {"text": speech.text, "language": speech.language, "voice": speech.voice, "rate": speech.rate,
              "pitch": speech.pitch, "pauses": [list(map(int, p)) for p in speech.pauses],
              "running": speech.running},  # fmt: skip
    }
    if plan is not None:
        meta.update(dataset_seed=dataset_seed, clip_index=plan.index, identity_index=plan.identity_index,
                    clips_per_identity=clips_per_identity, framing=framing)  # fmt: skip
    (clip_dir / "meta.json").write_text(json.dumps(meta, indent=1))


def _check_same_dataset(out: Path, row: dict, cfg: WorldDatasetConfig) -> None:
    """Refuse to resume a dataset with other settings: it would mix two datasets in one manifest."""
    meta_path = out / row["path"] / "meta.json"
    if not meta_path.exists():
        raise ValueError(f"{meta_path} is missing: {out} is not a complete world dataset; choose another --out")
    meta = json.loads(meta_path.read_text())
    if meta.get("source") != "world":
        raise ValueError(f"--out {out} holds clips from {meta.get('source')!r}, not the world; choose another --out")
    if meta.get("world_version", 1) != cfg.version:  # another version speaks otherwise: one manifest, one world
        raise ValueError(f"--out {out} was made by world version {meta.get('world_version', 1)}, this run writes "
                         f"version {cfg.version} (docs/world.md); choose another --out or --world-version")
    was = {"seed": meta.get("dataset_seed"), "size": meta["size"][0], "frames": meta["num_frames"],
           "clips-per-identity": meta.get("clips_per_identity", 4),
           "framing": meta.get("framing", "mixed")}  # fmt: skip
    now = {"seed": cfg.seed, "size": cfg.size, "frames": cfg.frames, "clips-per-identity": cfg.clips_per_identity,
           "framing": cfg.framing}  # fmt: skip
    if was != now:
        old = " ".join(f"--{k} {v}" for k, v in was.items())
        raise ValueError(f"--out {out} was made with {old}; rerun with those settings or choose another --out")


def _build(args: tuple[ClipPlan, WorldDatasetConfig]) -> dict:
    """Worker: build and write one clip, return its manifest row (the parent appends it)."""
    import cv2

    from physavatar.io.atomic import atomic_dir
    from physavatar.world.clip import make_clip

    cv2.setNumThreads(1)  # one clip per core; OpenCV's own threads would only fight the pool
    plan, cfg = args
    from physavatar.world.speech import RUNNING_P

    running_p = RUNNING_P if cfg.version >= 4 else 0.0
    clip = make_clip(plan.identity_seed, plan.clip_seed, cfg.frames, cfg.size, framing=cfg.framing, running_p=running_p)
    final = Path(cfg.out) / "clips" / plan.clip_id
    # overwrite=True: a folder without a manifest line is a leftover of a crash after the rename.
    with atomic_dir(final, overwrite=True) as tmp:
        write_clip(clip, tmp, plan, cfg.seed, cfg.clips_per_identity, cfg.framing, cfg.version)
    return {
        "id": plan.clip_id,
        "path": f"clips/{plan.clip_id}",
        "num_frames": cfg.frames,
        "duration_s": round(cfg.frames / FPS, 4),
        "split": plan.split,
        "source": "world",
    }


def make_dataset(cfg: WorldDatasetConfig, progress: bool = True) -> list[dict]:
    """Build (or complete) the dataset; returns the rows appended by this call."""
    from tqdm import tqdm

    from physavatar.constants import num_latent_frames
    from physavatar.world.identity import FRAMINGS
    from physavatar.world.render import SIZES

    if cfg.clips < 1:
        raise ValueError(f"--clips {cfg.clips}: ask for at least one clip")
    if cfg.size not in SIZES:
        raise ValueError(f"--size {cfg.size}: the world renders square sizes {SIZES}")
    num_latent_frames(cfg.frames)  # raises a clear error unless frames = 1 + 4k
    if cfg.framing not in FRAMINGS:
        raise ValueError(f"--framing {cfg.framing!r}: choose from {FRAMINGS}")
    if cfg.version not in WORLD_VERSIONS:
        raise ValueError(f"--world-version {cfg.version}: this code writes versions {WORLD_VERSIONS} (docs/world.md)")
    if cfg.workers < 1 or cfg.clips_per_identity < 1:
        raise ValueError("--workers and --clips-per-identity must be >= 1")
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder; choose a folder path")
    (out / "clips").mkdir(parents=True, exist_ok=True)
    repair_jsonl(out / MANIFEST)
    existing = read_manifest(out)
    if existing:
        _check_same_dataset(out, existing[0], cfg)
    done = {row["id"] for row in existing}
    for stale in (out / "clips").glob(".*.tmp-*"):  # temp folders of an interrupted run
        shutil.rmtree(stale, ignore_errors=True)
    todo = [p for p in (clip_plan(cfg.seed, i, cfg.clips_per_identity) for i in range(cfg.clips))
            if p.clip_id not in done]  # fmt: skip
    rows: list[dict] = []
    if not todo:
        return rows
    bar = tqdm(total=cfg.clips, initial=cfg.clips - len(todo), unit="clip", disable=not progress,
               desc=f"world -> {out}")  # fmt: skip
    jobs = [(p, cfg) for p in todo]
    with open(out / MANIFEST, "a") as manifest:
        if cfg.workers == 1:
            results = map(_build, jobs)
            pool = None
        else:
            # spawn, not fork: a fork of a parent that already runs torch / OpenCV thread pools can hang
            pool = mp.get_context("spawn").Pool(cfg.workers)
            results = pool.imap(_build, jobs)
        try:
            for row in results:
                manifest.write(json.dumps(row) + "\n")
                manifest.flush()
                os.fsync(manifest.fileno())
                rows.append(row)
                bar.update(1)
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
            bar.close()
    return rows
