"""`curate(cfg)`: raw videos -> clean clips, one worker task per source file, resumable (Appendix A).

    probe -> audio (16 kHz mono, video clock) -> pass 1: scene cuts, face tracks, identity samples
          -> per segment: speakers, identity, length, crop -> pass 2: write clips (audio, SyncNet checks)

Workers return one ledger record per file; the parent appends the file's clip rows to manifest.jsonl and
then its record to curation.jsonl (the "done" mark). Nothing under RAW_DIR is ever opened for writing.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
import traceback
import warnings
from pathlib import Path

from physavatar.curation import manifest as mf
from physavatar.curation.config import CurateConfig
from physavatar.curation.probe import file_key, list_inputs, probe_file, source_id

CONFIG_FILE = "curate_config.json"
_SYNCER = None  # (settings, SyncChecker): loaded once per worker process


def _split(rel: str, val_fraction: float) -> str:
    import hashlib

    u = int(hashlib.sha1(("split:" + rel).encode()).hexdigest()[:8], 16) / 2**32
    return "val" if u < val_fraction else "train"


def _syncer(cfg: CurateConfig):
    global _SYNCER
    if cfg.syncnet_weights is None:
        return None
    key = (cfg.syncnet_weights, cfg.sync_min_confidence, cfg.sync_max_offset)
    if _SYNCER is None or _SYNCER[0] != key:
        from physavatar.curation.sync import SyncChecker

        if cfg.workers > 1:
            import torch

            torch.set_num_threads(1)  # one file per core
        _SYNCER = key, SyncChecker(cfg.syncnet_weights, cfg.sync_min_confidence, cfg.sync_max_offset)
    return _SYNCER[1]


def process_file(task: tuple[str, str, dict]) -> tuple[dict, list[dict]]:
    """Worker: curate one source file. Returns (ledger record, clip manifest rows); never raises for bad media."""
    import cv2
    import numpy as np

    from physavatar.curation.analyse import decode_and_detect, plan_segments
    from physavatar.curation.write import write_clips
    from physavatar.io import MediaError, load_audio

    cv2.setNumThreads(1)  # one file per core: OpenCV's own threads would only fight the pool
    # long sources are streamed on purpose: the reader's "reading N frames takes a while" hint is noise here
    warnings.filterwarnings("ignore", message=r".*this takes a while.*")
    path, rel, cfg_dict = task
    cfg = CurateConfig(**cfg_dict)
    t0 = time.perf_counter()
    rec = {**file_key(Path(path), Path(cfg.raw_dir)), "status": "skipped", "clips": 0, "kept_s": 0.0}
    rows: list[dict] = []
    try:
        # 1. probe: container, streams, duration, fps, VFR, audio
        rec["probe"] = probe = probe_file(Path(path))
        if not probe["ok"]:
            rec.update(stage="audio" if "video" in probe else "probe", reason=probe["reason"])
            return rec, rows
        rec["duration_s"] = probe["duration_s"]
        from physavatar.io import probe_video

        info = probe_video(path)
        # 2. audio on the video's clock, 16 kHz mono
        audio = load_audio(path, cfg.sample_rate, validate=False, align_to_video=True)
        peak = float(np.abs(audio).max()) if audio.size else 0.0
        if peak < cfg.min_audio_peak:
            rec.update(stage="audio",
                       reason=f"{path}: audio track is silent (peak {peak:.2g}); talking clips need speech")
            return rec, rows
        # 3. pass 1 and decisions
        n, scenes, detections, samples, rec["face_detector"] = decode_and_detect(path, info, cfg)
        rec["frames"] = n
        rec["scene_cuts"] = [s for s, _ in scenes[1:]]
        segments, planned = plan_segments(scenes, detections, samples, (info.height, info.width), cfg)
        rec["segments"] = segments
        # 4. pass 2: write clips
        sid = source_id(rel)
        base_meta = {"fps": cfg.fps, "sample_rate": cfg.sample_rate, "size": [cfg.size, cfg.size], "backends": {},
                     "source": rel, "source_path": str(Path(path).resolve()),
                     "pending_features": ["keypoints.npy", "phys_tokens.npy"],
                     "note": "curated real video: keypoints.npy / phys_tokens.npy are written by `physavatar extract`"}
        kept = write_clips(path, info, audio, planned, cfg, Path(cfg.out_dir) / "clips", sid, base_meta, _syncer(cfg))
        for p in planned:
            if p.record["drop"] is None and all(p is not q for _, q in kept):
                p.record.update(drop="decode", reason="the source ended before this clip was complete")
        split = _split(rel, cfg.val_fraction)
        for cid, p in kept:
            p.record["id"] = cid
            rows.append({"id": cid, "path": f"clips/{cid}", "num_frames": p.end - p.start,
                         "duration_s": p.record["duration_s"], "split": split, "source": rel})
        rec.update(status="done", stage=None, clips=len(rows), kept_s=round(sum(r["duration_s"] for r in rows), 4))
    except MediaError as err:  # truncated or corrupt data found while decoding
        rec.update(stage="decode", reason=str(err), status="skipped")
        rows = []
    except Exception as err:  # noqa: BLE001 - one broken file must not stop the run; the ledger keeps the trace
        rec.update(stage="error", reason=f"{path}: {type(err).__name__}: {err}", status="skipped",
                   traceback=traceback.format_exc(limit=6))
        rows = []
    finally:
        rec["seconds"] = round(time.perf_counter() - t0, 3)
    if not rows:  # a failure after some clips were renamed into place: remove them (they have no manifest rows)
        import shutil

        for d in (Path(cfg.out_dir) / "clips").glob(f"{source_id(rel)}_*"):
            shutil.rmtree(d, ignore_errors=True)
    return rec, rows


def _check_config(out: Path, cfg: CurateConfig) -> None:
    """Refuse to resume into OUT_DIR with other output settings (that would mix two datasets)."""
    from physavatar.io import atomic_write

    path = out / CONFIG_FILE
    if path.exists():
        old = json.loads(path.read_text())
        was = {k: old.get(k) for k in cfg.output_settings()}
        if was != cfg.output_settings():
            raise ValueError(f"OUT_DIR {out} was curated with {was}; rerun with those settings or choose another "
                             "OUT_DIR")
    with atomic_write(path, "w") as f:
        json.dump(cfg.to_dict(), f, indent=1)


def curate(cfg: CurateConfig) -> dict:
    """Curate every file under cfg.raw_dir into cfg.out_dir; returns the summary (see `report.summarize`)."""
    from tqdm import tqdm

    from physavatar.curation.report import write_report

    cfg.validate()
    raw, out = Path(cfg.raw_dir).resolve(), Path(cfg.out_dir)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    _check_config(out, cfg)
    ledger = mf.repair(out)
    done = {r["file"] for r in ledger}
    inputs = list_inputs(raw)
    todo = [p for p in inputs if p.relative_to(raw).as_posix() not in done]
    cfg_dict = dict(cfg.to_dict(), raw_dir=str(raw))
    tasks = [(str(p), p.relative_to(raw).as_posix(), cfg_dict) for p in todo]
    bar = tqdm(total=len(inputs), initial=len(inputs) - len(todo), unit="file", disable=not cfg.progress,
               desc=f"curate -> {out}", dynamic_ncols=True)
    raw_s = kept_s = 0.0
    pool = None
    try:
        if cfg.workers == 1 or len(tasks) <= 1:
            results = map(process_file, tasks)
        else:  # spawn: safe with torch / OpenCV threads in the parent, same behaviour on every OS
            pool = mp.get_context("spawn").Pool(min(cfg.workers, len(tasks)))
            results = pool.imap_unordered(process_file, tasks)
        for rec, rows in results:
            mf.append(out / mf.MANIFEST, rows)  # clip rows first, then the file's "done" mark
            mf.append(out / mf.LEDGER, [rec])
            if rec["status"] == "skipped" and cfg.progress:  # logged in curation.jsonl; shown as it happens
                bar.write(f"skipped {rec['file']} ({rec['stage']}): {rec['reason']}")
            raw_s += rec.get("duration_s", 0.0)
            kept_s += rec["kept_s"]
            bar.set_postfix_str(f"raw {raw_s / 3600:.3f} h, kept {kept_s / 3600:.3f} h", refresh=False)
            bar.update(1)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        bar.close()
    return write_report(out)
