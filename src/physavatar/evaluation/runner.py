"""Run the metrics of Table 1 over a reference set and one or more generated sets.

1. discover the videos of every set (mp4 folders or clip datasets) and pair them by name;
2. load each backbone once, on first use; one that is missing becomes "not computed: …" for its metrics
   (on world clips, Sync-C/D and FGD default to the shipped world-trained nets: backbones/world.py);
3. decode each video once and take every measurement from it (features for the set-level Fréchet
   distances, per-video scores for the rest);
4. aggregate: Fréchet distances over the pooled features, means of the per-video scores.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from physavatar.evaluation import features as F
from physavatar.evaluation.backbones import BackboneUnavailable
from physavatar.evaluation.backbones.world import (WORLD_GESTURE_AE, WORLD_GESTURE_LABEL, WORLD_SYNCNET,
                                                   is_world_clip)
from physavatar.evaluation.config import METRICS, NEEDS_REFERENCE, EvalConfig
from physavatar.evaluation.media import LoadedVideo, VideoSource, discover, load
from physavatar.evaluation.metrics import csim, diversity, frechet_from_features

# metric -> backbone key; DIV uses the gesture encoder when there is one, else raw normalised poses.
BACKBONE_OF = {"fid": "inception", "fvd": "i3d", "vqa": "qalign", "ase": "qalign", "fgd": "gesture",
               "hand_c": "hands", "hand_v": "hands", "sync_c": "sync", "sync_d": "sync", "csim": "face"}
# backbone key -> the EvalConfig weights field that, when None on world inputs, selects the shipped world net
WORLD_DEFAULT_FOR = {"sync": "syncnet_weights", "gesture": "gesture_weights"}
POSE_DIV_BACKBONE = "shoulder-normalised pose windows (no network)"


@dataclass
class MetricResult:
    value: float | None
    backbone: str | None
    status: str = "ok"  # or "not computed: <why>"
    per_video: dict[str, float | None] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # video -> why it has no value
    details: dict = field(default_factory=dict)  # e.g. sync offsets per video, sample counts

    @classmethod
    def not_computed(cls, why: str, backbone: str | None = None) -> "MetricResult":
        return cls(value=None, backbone=backbone, status=f"not computed: {why}")


@dataclass
class MethodResult:
    name: str
    generated: str
    num_videos: int
    metrics: dict[str, MetricResult]
    timings_s: dict[str, float]


class _MediaPipeKeypoints:
    """Clip-format keypoints (F, 127, 3) from pixels, with the project's MediaPipe pose backend."""

    def __init__(self):
        try:
            from physavatar.encoders.pose_mediapipe import MediaPipePoseEncoder

            self._encoder = MediaPipePoseEncoder()
        except Exception as err:  # ImportError, a missing model folder: the backend explains which
            raise BackboneUnavailable(f"MediaPipe pose backend unavailable ({err})") from err
        self.name = "MediaPipe pose + face + hand landmarkers (physavatar.encoders.pose_mediapipe)"

    def keypoints(self, frames: np.ndarray) -> np.ndarray:
        return self._encoder.keypoints(frames)

    def close(self) -> None:
        self._encoder.close()


class Backbones:
    """Lazily loaded feature networks; `overrides` plugs in any object with the same interface (tests, new nets)."""

    def __init__(self, config: EvalConfig, overrides: dict | None = None, world: bool = False):
        self.config = config
        self._cache: dict[str, object] = dict(overrides or {})
        self._errors: dict[str, str] = {}
        self.world = world  # inputs are world clips: shipped world nets stand in for missing user weights
        self.world_defaults: set[str] = set()  # keys loaded from the shipped world nets

    def _load_world(self, key: str):
        """The shipped world-trained net for `key` (sync, gesture); only called for world inputs."""
        self.world_defaults.add(key)
        if key == "sync":
            from physavatar.evaluation.backbones.world_sync import WorldSyncBackbone
            return WorldSyncBackbone(WORLD_SYNCNET)
        from physavatar.evaluation.backbones.gesture_encoder import GestureFeatures
        model = GestureFeatures(WORLD_GESTURE_AE, label=WORLD_GESTURE_LABEL)
        if model.window != self.config.gesture_window:
            raise BackboneUnavailable(f"{WORLD_GESTURE_LABEL} encodes {model.window}-frame windows, but "
                                      f"gesture_window is {self.config.gesture_window}; use "
                                      f"--gesture-window {model.window}")
        return model

    def _load(self, key: str):
        c = self.config
        if key == "inception":
            from physavatar.evaluation.backbones.inception import InceptionFID
            return InceptionFID(c.inception_weights)
        if key == "i3d":
            from physavatar.evaluation.backbones.i3d import I3DFVD
            return I3DFVD(c.i3d_weights)
        if key == "hands":
            from physavatar.evaluation.backbones.hands import MediaPipeHands
            return MediaPipeHands(c.hand_weights)
        if key == "face":
            from physavatar.evaluation.backbones.face_id import DlibFaceEmbedder
            return DlibFaceEmbedder(c.face_weights)
        if self.world and key in WORLD_DEFAULT_FOR and getattr(c, WORLD_DEFAULT_FOR[key]) is None:
            return self._load_world(key)
        if key == "sync":
            from physavatar.evaluation.backbones.syncnet import SyncNetBackbone
            return SyncNetBackbone(c.syncnet_weights)
        if key == "qalign":
            from physavatar.evaluation.backbones.qalign import QAlign
            return QAlign(c.qalign_weights)
        if key == "gesture":
            from physavatar.evaluation.backbones.gesture_encoder import GestureFeatures
            return GestureFeatures(c.gesture_weights)
        if key == "pose":  # keypoints for FGD / DIV when a video comes without keypoints.npy
            return _MediaPipeKeypoints()
        raise KeyError(key)

    def get(self, key: str):
        """The backbone, or raises BackboneUnavailable (remembered, so a missing one is tried once)."""
        if key in self._errors:
            raise BackboneUnavailable(self._errors[key])
        if key not in self._cache:
            try:
                self._cache[key] = self._load(key)
            except (BackboneUnavailable, FileNotFoundError) as err:
                self._errors[key] = str(err)
                raise BackboneUnavailable(str(err)) from err
        return self._cache[key]

    def close(self) -> None:
        """Release native resources (MediaPipe graphs) now rather than in a noisy interpreter-exit __del__."""
        for backbone in self._cache.values():
            close = getattr(backbone, "close", None)
            if callable(close):
                close()
        self._cache.clear()

    def div_encoder(self) -> bool:
        """DIV uses a gesture encoder the user gave; the shipped world net is FGD's default only, so DIV on
        world clips stays on normalised poses (comparable with real videos, in body units)."""
        return self.available("gesture") and "gesture" not in self.world_defaults

    def available(self, key: str) -> bool:
        try:
            self.get(key)
            return True
        except BackboneUnavailable:
            return False


@dataclass
class _SetMeasurements:
    """What one pass over a set collected: pooled features and per-video scores."""

    feats: dict[str, list[np.ndarray]] = field(default_factory=lambda: defaultdict(list))
    per_video: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    skipped: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    details: dict[str, dict] = field(default_factory=lambda: defaultdict(dict))
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    face_refs: dict[str, np.ndarray | None] = field(default_factory=dict)  # reference set: identity per video
    audio: dict[str, np.ndarray | None] = field(default_factory=dict)  # reference set: audio per video


def _measure_set(sources: list[VideoSource], wanted: set[str], bb: Backbones, cfg: EvalConfig,
                 ref: _SetMeasurements | None, is_reference: bool) -> _SetMeasurements:
    out = _SetMeasurements()
    use = {m for m in wanted if m not in BACKBONE_OF or bb.available(BACKBONE_OF[m])}
    if "div" in wanted:
        use.add("div")

    def timed(metric_key: str, video: str, fn, *metrics: str):
        t0 = time.perf_counter()
        try:
            return fn()
        except F.SkipVideo as why:
            for m in metrics:
                out.skipped[m][video] = str(why)
        finally:
            out.timings[metric_key] += time.perf_counter() - t0
        return None

    for src in sources:
        # 1. decode once; every metric below reads the same frames
        t0 = time.perf_counter()
        v: LoadedVideo = load(src, cfg.max_frames)
        out.timings["decode"] += time.perf_counter() - t0
        name = v.name
        # 2. features for the set-level Fréchet distances (both sets) and gesture windows
        if "fid" in use:
            feats = timed("fid", name, lambda: bb.get("inception").features(v.frames[:: cfg.fid_frame_stride]), "fid")
            out.feats["fid"].append(feats)
        if "fvd" in use:
            clips = timed("fvd", name, lambda: F.fvd_clips(v.frames, cfg.fvd_clip_len, cfg.fvd_clip_stride), "fvd")
            if clips is not None:
                out.feats["fvd"].append(timed("fvd", name, lambda: bb.get("i3d").features(clips), "fvd"))
        if {"fgd", "div"} & use:
            keypoints, source = v.keypoints, "keypoints.npy"
            if keypoints is None and cfg.pose_from_video and bb.available("pose"):
                keypoints, source = timed("pose", name, lambda: bb.get("pose").keypoints(v.frames)), "mediapipe"
            out.details["pose_source"][name] = source if keypoints is not None else None
            windows = timed("div", name, lambda: F.gesture_windows(keypoints, cfg.gesture_window, cfg.gesture_stride),
                            "fgd", "div")
            if windows is not None:
                if "fgd" in use:
                    out.feats["fgd"].append(timed("fgd", name, lambda: bb.get("gesture").features(windows), "fgd"))
                if "div" in use and not is_reference:
                    div_feats = (bb.get("gesture").features(windows) if bb.div_encoder()
                                 else windows.reshape(len(windows), -1))
                    out.feats["div"].append(div_feats)
                    if len(div_feats) >= 2:
                        out.per_video["div"][name] = diversity(div_feats)
                    else:
                        out.skipped["div"][name] = "only one gesture window"
        # 3. the reference set only lends identities and audio to the generated videos
        if is_reference:
            if "csim" in use:
                image = v.reference_image if v.reference_image is not None else v.frames[0]
                out.face_refs[name] = timed("csim", name, lambda: bb.get("face").embed(image), "csim")
            out.audio[name] = v.audio
            continue
        # 4. per-video scores of generated videos
        for key in ("vqa", "ase"):
            if key in use:
                out.per_video[key][name] = timed(key, name, lambda: bb.get("qalign").score(v.frames, key), key)
        if {"hand_c", "hand_v"} & use:
            scores = timed("hands", name, lambda: F.hand_scores(bb.get("hands"), v.frames, cfg.hand_frame_stride),
                           "hand_c", "hand_v")
            if scores is not None:
                out.per_video["hand_c"][name] = scores["hand_c"]
                if np.isnan(scores["hand_v"]):
                    out.skipped["hand_v"][name] = "no hand detected in 2 or more frames"
                else:
                    out.per_video["hand_v"][name] = scores["hand_v"]
        if {"sync_c", "sync_d"} & use:
            audio = v.audio if v.audio is not None else (ref.audio.get(name) if ref else None)
            res = timed("sync", name, lambda: F.sync_scores(bb.get("sync"), v.frames, audio, v.keypoints, cfg.vshift),
                        "sync_c", "sync_d")
            if res is not None:
                out.per_video["sync_c"][name], out.per_video["sync_d"][name] = res["sync_c"], res["sync_d"]
                out.details["sync_offset"][name] = res["offset"]
        if "csim" in use:
            face = bb.get("face")

            def one_csim():
                if v.reference_image is not None:
                    target = face.embed(v.reference_image)
                    if target is None:
                        raise F.SkipVideo(f"no face found in {src.reference_image}")
                elif ref is not None and ref.face_refs.get(name) is not None:
                    target = ref.face_refs[name]
                else:
                    raise F.SkipVideo("no reference image (no reference.png, and no paired reference video "
                                      "with a face)")
                return csim(F.face_embeddings(face, v.frames, cfg.csim_frame_stride), target)

            value = timed("csim", name, one_csim, "csim")
            if value is not None:
                out.per_video["csim"][name] = value
    return out


def _aggregate(metric: str, gen: _SetMeasurements, ref: _SetMeasurements | None, bb: Backbones,
               cfg: EvalConfig) -> MetricResult:
    key, backbone = BACKBONE_OF.get(metric), None
    if key is not None:
        try:
            model = bb.get(key)
        except BackboneUnavailable as err:
            return MetricResult.not_computed(str(err))
        backbone = getattr(model, "name", type(model).__name__)
    if metric == "div":
        backbone = getattr(bb.get("gesture"), "name") if bb.div_encoder() else POSE_DIV_BACKBONE
    if metric in ("div", "fgd"):
        sources = set(gen.details.get("pose_source", {}).values()) - {None}
        if "mediapipe" in sources:
            backbone = f"{backbone}; poses of videos without keypoints.npy from {bb.get('pose').name}"
    skipped = dict(gen.skipped.get(metric, {}))
    if metric in NEEDS_REFERENCE:
        if ref is None:
            return MetricResult.not_computed("no --reference set given (needs real videos)", backbone)
        a, b = gen.feats.get(metric, []), ref.feats.get(metric, [])
        if not a or not b:
            why = next(iter(skipped.values()), None) or next(iter(ref.skipped.get(metric, {}).values()), "no features")
            return MetricResult.not_computed(f"no {'generated' if not a else 'reference'} features ({why})", backbone)
        fa, fb = np.concatenate(a), np.concatenate(b)
        try:
            value = frechet_from_features(fa, fb)
        except ValueError as err:
            return MetricResult.not_computed(str(err), backbone)
        return MetricResult(value, backbone, skipped=skipped,
                            details={"num_generated_samples": len(fa), "num_reference_samples": len(fb)})
    per_video = dict(gen.per_video.get(metric, {}))
    if metric == "div":
        pooled = gen.feats.get("div", [])
        if not pooled or sum(len(p) for p in pooled) < 2:
            return MetricResult.not_computed(next(iter(skipped.values()), "no gesture windows"), backbone)
        return MetricResult(diversity(np.concatenate(pooled)), backbone, per_video=per_video, skipped=skipped,
                            details={"pose_source": dict(gen.details.get("pose_source", {}))})
    values = [x for x in per_video.values() if x is not None]
    if not values:
        return MetricResult.not_computed(next(iter(skipped.values()), "no video gave a value"), backbone)
    details = {"offset": dict(gen.details.get("sync_offset", {}))} if metric.startswith("sync") else {}
    return MetricResult(float(np.mean(values)), backbone, per_video=per_video, skipped=skipped, details=details)


def _world_inputs(sets: dict[str, list[VideoSource]], ref_sources: list[VideoSource] | None) -> bool:
    """World data: the reference set is world clips (meta.json "source": "world"), or, without a reference,
    every generated video is. The reference decides, so a model's mp4s scored against world clips count."""
    basis = ref_sources if ref_sources is not None else [s for srcs in sets.values() for s in srcs]
    return bool(basis) and all(is_world_clip(s.video.parent) for s in basis)


def evaluate(generated: dict[str, str | Path], reference: str | Path | None = None,
             config: EvalConfig | None = None, backbones: dict | None = None) -> tuple[list[MethodResult], dict]:
    """Evaluate each generated set {method name: folder} against `reference`; returns results and the config.

    `backbones` overrides the feature networks by key (inception, i3d, hands, face, sync, qalign, gesture).
    """
    cfg = config or EvalConfig()
    if not generated:
        raise ValueError("eval: give at least one --generated folder")
    sets = {name: discover(folder) for name, folder in generated.items()}  # fail early on a bad folder
    ref_sources = discover(reference) if reference is not None else None
    bb = Backbones(cfg, backbones, world=_world_inputs(sets, ref_sources))
    wanted = set(cfg.metrics)
    results = []
    try:
        ref_meas = None
        if ref_sources is not None:
            ref_wanted = wanted & {"fid", "fvd", "fgd", "csim", "sync_c", "sync_d"}
            ref_meas = _measure_set(ref_sources, ref_wanted, bb, cfg, None, is_reference=True)
        for name, sources in sets.items():
            meas = _measure_set(sources, wanted, bb, cfg, ref_meas, is_reference=False)
            metrics = {m: _aggregate(m, meas, ref_meas, bb, cfg) for m in METRICS if m in wanted}
            timings = {k: round(v, 3) for k, v in meas.timings.items()}
            if ref_meas is not None:
                timings["reference_set"] = round(float(sum(ref_meas.timings.values())), 3)
            results.append(MethodResult(name, str(generated[name]), len(sources), metrics, timings))
    finally:
        bb.close()
    return results, asdict(cfg)
