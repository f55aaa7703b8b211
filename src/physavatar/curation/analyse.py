"""Per-file analysis: one decoding pass for scene cuts, face tracks and identity samples, then the
single-speaker, identity, length and crop decisions of every segment (what `pipeline` writes as clips).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from physavatar.curation.config import CurateConfig
from physavatar.curation.crop import crop_track
from physavatar.curation.faces import FaceDetector, analysis_scale, track_faces, track_runs
from physavatar.curation.scenes import SceneCuts
from physavatar.curation.segment import clip_frame_bounds, plan_clips
from physavatar.curation.speakers import (IdentitySample, face_crop, identity_check, samples_on_track,
                                          speaker_decision)


@dataclass
class PlannedClip:
    index: int  # number within the source file (clip id suffix)
    start: int  # [start, end) frames at cfg.fps
    end: int
    corners: np.ndarray  # (F, 2) crop top-left per frame, source pixels
    side: float  # crop side, source pixels
    face_boxes: np.ndarray  # (F, 4) speaker face per frame (SyncNet crops)
    record: dict  # its manifest record (updated when written)


def _sec(frames: int, fps: int) -> float:
    return round(frames / fps, 4)


def decode_and_detect(path: str, info, cfg: CurateConfig):
    """Pass 1: (num_frames, scenes, detections {frame: boxes}, identity samples, face detector used)."""
    import cv2

    from physavatar.io import iter_video_frames

    useful_face = cfg.min_crop_fraction * cfg.size / cfg.framing_heights  # smallest face that gives a usable crop
    scale = analysis_scale(info.height, info.width, cfg.analysis_side, useful_face)
    small_wh = (max(2, round(info.width * scale)), max(2, round(info.height * scale)))
    cuts = SceneCuts(cfg.fps, cfg.scene_threshold, cfg.min_scene_sec)
    detections: dict[int, np.ndarray] = {}
    samples: list[IdentitySample] = []
    n = 0
    with FaceDetector(cfg.face_detector) as detect:
        for n, frame in enumerate(iter_video_frames(path, cfg.fps, info=info), start=1):
            k = n - 1
            small = cv2.resize(frame, small_wh, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            cuts.feed(k, cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
            if k % cfg.detect_every == 0:
                boxes = detect(small, scale)
                detections[k] = boxes
                if k % cfg.identity_every == 0:
                    samples += [IdentitySample(k, b, face_crop(frame, b)) for b in boxes]
    return n, cuts.finish(n), detections, samples, detect.name


def plan_segments(scenes, detections, samples, frame_hw, cfg: CurateConfig):
    """Decide every scene segment (pure given the detections): (segment records, planned clips)."""
    fps = cfg.fps
    min_f, max_f = clip_frame_bounds(cfg.min_sec, cfg.max_sec, fps)
    max_gap = max(cfg.detect_every, round(cfg.max_gap_sec * fps))
    records, planned = [], []
    for s, e in scenes:
        rec = {"start_s": _sec(s, fps), "end_s": _sec(e, fps), "duration_s": _sec(e - s, fps), "drop": None,
               "clips": []}
        records.append(rec)
        dets = {t: b for t, b in detections.items() if s <= t < e}
        # 1. speakers: how many faces are in view, and for how long
        tracks = track_faces({t: b for t, b in dets.items() if len(b)}, max_gap)
        main, rec["speakers"] = speaker_decision(tracks, len(dets), cfg.min_face_fraction, cfg.other_person_fraction)
        if main is None:
            rec.update(drop="speaker", reason=rec["speakers"].pop("reason"))
            continue
        # 2. the span the speaker is continuously in view (gaps <= max_gap)
        a, b = max(track_runs(main, max_gap), key=lambda r: r[1] - r[0])
        # detections are every detect_every frames: a run that starts/ends within one step of the scene's
        # edge covers it (the face was there in the frames between samples)
        span = (s if a - s < cfg.detect_every else a, e if e - b <= cfg.detect_every else b + 1)
        rec["span_s"] = [_sec(span[0], fps), _sec(span[1], fps)]
        # 3. one identity along the track
        on_track = [x for x in samples_on_track(samples, main) if span[0] <= x.frame < span[1]]
        rec["identity"] = identity_check(on_track, cfg.dlib_threshold, cfg.histogram_threshold,
                                          cfg.identity_method)
        if rec["identity"]["identities"] > 1:
            rec.update(drop="identity", reason=f"{rec['identity']['identities']} identities along the face track "
                                               f"({rec['identity']['method']})")
            continue
        # 4. long enough for at least one clip
        pieces = plan_clips(span[0], span[1], min_f, max_f)
        if not pieces:
            rec.update(drop="length", reason=f"speaker span {_sec(span[1] - span[0], fps)} s < {cfg.min_sec} s")
            continue
        # 5. a stable crop per clip; too small a crop would be upscaled into blur
        for c0, c1 in pieces:
            boxes = main.box_at(np.arange(c0, c1, dtype=np.float64))
            corners, side, crop_info = crop_track(boxes, frame_hw, framing_heights=cfg.framing_heights,
                                                  face_at=cfg.face_at, smooth_frames=cfg.smooth_sec * fps)
            crec = {"start_s": _sec(c0, fps), "end_s": _sec(c1, fps), "num_frames": c1 - c0,
                    "duration_s": _sec(c1 - c0, fps), "crop": crop_info, "drop": None}
            rec["clips"].append(crec)
            if side < cfg.min_crop_fraction * cfg.size:
                crec.update(drop="resolution", reason=f"crop is {side:.0f} px, < {cfg.min_crop_fraction:g} x "
                                                      f"--size {cfg.size}: too small to upscale")
                continue
            planned.append(PlannedClip(0, c0, c1, corners, side, boxes, crec))
    for i, p in enumerate(sorted(planned, key=lambda p: p.start)):
        p.index = i
    return records, sorted(planned, key=lambda p: p.start)
