"""Pass 2: stream the source again and write every planned clip in the clip format (docs/clip_format.md).

Each clip is built in a temporary folder (`atomic_dir`) and renamed into place when complete; a clip
that fails its last checks (silent audio, SyncNet) is abandoned and its folder removed. keypoints.npy and
phys_tokens.npy are not written here: `physavatar extract` computes them for real video (meta.json lists
them under "pending_features").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from physavatar.curation.analyse import PlannedClip
from physavatar.curation.config import CurateConfig
from physavatar.curation.crop import apply_crop
from physavatar.curation.sync import SKIPPED, smooth_boxes


class _Drop(Exception):
    """A finished clip failed a check; its temporary folder is discarded."""


class _OpenClip:
    def __init__(self, plan: PlannedClip, final: Path, audio: np.ndarray, cfg: CurateConfig, syncer):
        from physavatar.io import VideoWriter, atomic_dir

        self.plan, self.cfg, self.syncer = plan, cfg, syncer
        spf = cfg.sample_rate / cfg.fps
        a0, a1 = round(plan.start * spf), round(plan.end * spf)
        wav = audio[a0:a1]
        self.wav = np.pad(wav, (0, (a1 - a0) - wav.size)).astype(np.float32)  # exact num_frames * 640 samples
        self._ctx = atomic_dir(final, overwrite=True)
        self.tmp = self._ctx.__enter__()
        self.writer = VideoWriter(self.tmp / "video.mp4", cfg.fps, audio=self.wav, sample_rate=cfg.sample_rate,
                                  crf=cfg.crf, preset=cfg.preset)
        self.reference = None
        self.sync_boxes = smooth_boxes(plan.face_boxes) if syncer is not None else None
        self.sync_crops: list[np.ndarray] = []

    def add(self, k: int, frame: np.ndarray) -> None:
        i = k - self.plan.start
        img = apply_crop(frame, self.plan.corners[i], self.plan.side, self.cfg.size)
        if self.reference is None:
            self.reference = img  # the clip's first frame is its identity reference
        self.writer.write(img)
        if self.syncer is not None:
            self.sync_crops.append(self.syncer.crop(frame, self.sync_boxes[i]))

    def finish(self, meta: dict) -> None:
        from PIL import Image

        from physavatar.io import write_wav

        try:
            rec = self.plan.record
            peak = float(np.abs(self.wav).max()) if self.wav.size else 0.0
            rec["audio_peak"] = round(peak, 5)
            if peak < self.cfg.min_audio_peak:
                rec.update(drop="audio", reason=f"audio is silent in this clip (peak {peak:.2g})")
                raise _Drop
            rec["sync"] = dict(SKIPPED) if self.syncer is None else self.syncer.score(
                np.stack(self.sync_crops), self.wav, stride=self.cfg.sync_stride)
            if rec["sync"].get("kept") is False:
                rec.update(drop="sync", reason=rec["sync"]["reason"])
                raise _Drop
            self.writer.close()
            write_wav(self.tmp / "audio.wav", self.wav, self.cfg.sample_rate)
            Image.fromarray(self.reference).save(self.tmp / "reference.png")
            meta.update(sync=rec["sync"], crop=rec["crop"])
            (self.tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        except BaseException as err:
            self.abort(err)
            if isinstance(err, _Drop):
                return
            raise
        self._ctx.__exit__(None, None, None)

    def abort(self, err: BaseException | None = None) -> None:
        self.writer.abort()
        try:
            self._ctx.__exit__(type(err) if err else RuntimeError, err or RuntimeError("aborted"), None)
        except BaseException:  # noqa: BLE001 - atomic_dir re-raises after cleaning up; we only want the cleanup
            pass


def write_clips(path: str, info, audio: np.ndarray, planned: list[PlannedClip], cfg: CurateConfig,
                clips_dir: Path, sid: str, base_meta: dict, syncer=None) -> list[tuple[str, PlannedClip]]:
    """Write the planned clips (sorted, non-overlapping) in one pass; return (clip id, plan) of those kept."""
    from physavatar.io import iter_video_frames

    if not planned:
        return []
    kept, todo = [], list(planned)
    current: _OpenClip | None = None
    try:
        for k, frame in enumerate(iter_video_frames(path, cfg.fps, info=info, max_frames=planned[-1].end)):
            if current is None and todo and k == todo[0].start:
                plan = todo.pop(0)
                current = _OpenClip(plan, clips_dir / f"{sid}_{plan.index:03d}", audio, cfg, syncer)
            if current is None:
                continue
            current.add(k, frame)
            if k == current.plan.end - 1:
                plan = current.plan
                meta = dict(base_meta, num_frames=plan.end - plan.start, start_s=plan.record["start_s"],
                            end_s=plan.record["end_s"])
                current.finish(meta)
                current = None
                if plan.record["drop"] is None:
                    kept.append((f"{sid}_{plan.index:03d}", plan))
    finally:
        if current is not None:  # the source ended early or decoding failed mid-clip
            current.abort()
    return kept
