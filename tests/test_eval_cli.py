"""`physavatar eval` end to end on tiny generated videos with known answers."""

import json

import numpy as np
import pytest

from physavatar.cli import main
from physavatar.constants import NUM_KEYPOINTS, SAMPLES_PER_FRAME
from physavatar.evaluation.config import METRICS, EvalConfig
from physavatar.evaluation.runner import evaluate

write_video = pytest.importorskip("physavatar.io").write_video


def _textured_frames(seed, n=18, size=64):
    """A smooth random texture drifting over time: something for Inception / I3D to see."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(size // 8, size // 8, 3)).astype(np.float32)
    base = np.kron(base, np.ones((8, 8, 1)))
    return np.stack([np.roll(base, 2 * t, axis=1) for t in range(n)]).clip(0, 255).astype(np.uint8)


def _blur(frames):
    import cv2

    return np.stack([cv2.GaussianBlur(f, (0, 0), 3) for f in frames])


def _write_set(folder, videos, audio=None):
    folder.mkdir(parents=True, exist_ok=True)
    for i, frames in enumerate(videos):
        write_video(folder / f"v{i}.mp4", frames, 25, audio=None if audio is None else audio[i])
    return folder


@pytest.mark.slow  # ≈ 40 s on 2 busy cores: 24 Inception frames and 8 I3D clips on CPU
def test_fid_fvd_identical_is_zero_blurred_and_shuffled_are_worse(tmp_path):
    real = [_textured_frames(s, n=9) for s in range(2)]
    rng = np.random.default_rng(9)
    shuffled = [v[rng.permutation(len(v))] for v in real]
    # "identical" = the same files: x264 does not encode the same frames to the same bytes twice
    ref = _write_set(tmp_path / "ref", real)
    sets = {
        "same": ref,
        "blur": _write_set(tmp_path / "blur", [_blur(v) for v in real]),
        "shuffled": _write_set(tmp_path / "shuffled", shuffled),
    }
    cfg = EvalConfig(metrics=("fid", "fvd"), fid_frame_stride=3, fvd_clip_len=9, fvd_clip_stride=9)
    results, _ = evaluate(sets, ref, cfg)
    r = {m.name: m.metrics for m in results}
    assert r["same"]["fid"].value == pytest.approx(0.0, abs=1e-3)
    assert r["same"]["fvd"].value == pytest.approx(0.0, abs=1e-3)
    assert r["blur"]["fid"].value > 1.0 and r["blur"]["fvd"].value > 1.0
    assert r["shuffled"]["fvd"].value > 1.0  # same frames, broken motion: FVD sees it
    assert "InceptionV3" in r["same"]["fid"].backbone and "I3D" in r["same"]["fvd"].backbone
    assert r["same"]["fvd"].details["num_generated_samples"] == 2  # 2 videos × 1 clip of 9 frames
    assert r["same"]["fid"].details["num_generated_samples"] == 6  # 2 videos × frames 0, 3, 6


class MouthSync:
    """Analytic stand-in for SyncNet: mouth opening (dark pixels) vs audio RMS, in 5-frame windows."""

    name = "analytic mouth / envelope (test)"

    def embed(self, frames, audio, keypoints=None):
        opening = (frames[:, 36:60, 20:44, 0] < 80).mean(axis=(1, 2))
        n = min(len(opening), len(audio) // SAMPLES_PER_FRAME)
        env = np.sqrt((audio[: n * SAMPLES_PER_FRAME].reshape(n, -1) ** 2).mean(1))
        z = lambda x: (x - x.mean()) / (x.std() + 1e-9)  # noqa: E731
        win = lambda x: np.stack([x[t : t + 5] for t in range(n - 5)])  # noqa: E731
        return win(z(opening[:n])), win(z(env))


def _talking(envelope, size=64):
    frames = np.full((len(envelope), size, size, 3), 200, np.uint8)
    for t, e in enumerate(envelope):
        h = int(round(22 * e))
        frames[t, 37 : 37 + h, 22:42] = 20  # the mouth opens with the envelope
    return frames


def test_sync_aligned_beats_audio_shifted_by_ten_frames(tmp_path):
    rng = np.random.default_rng(3)
    envelope = rng.uniform(0.05, 1.0, size=60)
    noise = rng.normal(size=60 * SAMPLES_PER_FRAME).astype(np.float32)
    audio = 0.5 * noise * np.repeat(envelope, SAMPLES_PER_FRAME).astype(np.float32) / 3
    late = np.concatenate([np.zeros(10 * SAMPLES_PER_FRAME, np.float32), audio[: -10 * SAMPLES_PER_FRAME]])
    frames = _talking(envelope)
    sets = {"aligned": _write_set(tmp_path / "a", [frames], [audio]),
            "late": _write_set(tmp_path / "b", [frames], [late])}
    results, _ = evaluate(sets, None, EvalConfig(metrics=("sync_c", "sync_d")), backbones={"sync": MouthSync()})
    aligned, shifted = (m.metrics for m in results)
    assert aligned["sync_c"].details["offset"] == {"v0": 0}
    assert shifted["sync_c"].details["offset"] == {"v0": -10}  # audio 10 frames late
    assert aligned["sync_c"].value > shifted["sync_c"].value
    assert aligned["sync_d"].value < shifted["sync_d"].value
    assert aligned["sync_c"].backbone == MouthSync.name


def _write_clip_dataset(root, clips):
    """A dataset in docs/clip_format.md layout: manifest.jsonl + clips/<id>/{video.mp4,audio.wav,keypoints.npy,...}."""
    from physavatar.io import write_wav

    (root / "clips").mkdir(parents=True)
    lines = []
    for cid, (frames, keypoints, audio) in clips.items():
        d = root / "clips" / cid
        d.mkdir()
        write_video(d / "video.mp4", frames, 25, audio=audio)
        write_wav(d / "audio.wav", audio)
        np.save(d / "keypoints.npy", keypoints.astype(np.float32))
        (d / "meta.json").write_text(json.dumps({"fps": 25, "sample_rate": 16000, "num_frames": len(frames),
                                                 "size": list(frames.shape[1:3])}))
        lines.append(json.dumps({"id": cid, "path": f"clips/{cid}", "num_frames": len(frames), "split": "test"}))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


def _pose(frames=40, wave=0.0, seed=0):
    rng = np.random.default_rng(seed)
    one = np.concatenate([rng.uniform(0.3, 0.7, size=(NUM_KEYPOINTS, 2)), np.ones((NUM_KEYPOINTS, 1))], -1)
    kp = np.repeat(one[None], frames, axis=0)
    kp[:, 85:, 0] += wave * np.sin(np.arange(frames) / 2.0)[:, None]
    return kp


def test_clip_dataset_div_static_is_zero_and_fgd_identical_is_zero(tmp_path):
    import torch

    from physavatar.evaluation.backbones.gesture_encoder import (GestureEncoder, GestureEncoderConfig,
                                                                 save_gesture_encoder)

    frames = _textured_frames(0, n=40, size=32)
    audio = np.zeros(40 * SAMPLES_PER_FRAME, np.float32)
    data = _write_clip_dataset(tmp_path / "data", {"still": (frames, _pose(), audio),
                                                   "waving": (frames, _pose(wave=0.1, seed=1), audio)})
    torch.manual_seed(0)
    encoder_path = tmp_path / "gesture.pt"  # a tiny random encoder: tests the file format, not the numbers
    save_gesture_encoder(GestureEncoder(GestureEncoderConfig(window=20, hidden=8, latent_dim=4)).eval(), encoder_path)
    cfg = EvalConfig(metrics=("div", "fgd"), gesture_window=20, gesture_stride=5, gesture_weights=str(encoder_path))
    plain, _ = evaluate({"m": data}, data, EvalConfig(metrics=("div",), gesture_window=20, gesture_stride=5))
    div = plain[0].metrics["div"]
    assert div.per_video["still"] == 0.0 and div.per_video["waving"] > 0.01
    assert div.backbone.startswith("shoulder-normalised pose windows")
    with_encoder, _ = evaluate({"m": data}, data, cfg)
    assert with_encoder[0].metrics["fgd"].value == pytest.approx(0.0, abs=1e-6)
    assert "gesture encoder" in with_encoder[0].metrics["fgd"].backbone


def test_csim_of_a_video_with_itself_is_one(tmp_path):
    skdata = pytest.importorskip("skimage.data")
    import cv2

    face = cv2.resize(skdata.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    folder = _write_set(tmp_path / "v", [np.stack([face] * 6)])
    results, _ = evaluate({"self": folder}, folder, EvalConfig(metrics=("csim",), csim_frame_stride=2))
    csim = results[0].metrics["csim"]
    if csim.value is None and "weights not found" in csim.status:
        pytest.skip(csim.status)
    assert csim.value == pytest.approx(1.0, abs=0.01)
    assert "not ArcFace" in csim.backbone


def test_cli_report_side_by_side_and_not_computed(tmp_path, capsys):
    a = _write_set(tmp_path / "a", [_textured_frames(1, n=6)])
    b = _write_set(tmp_path / "b", [_blur(_textured_frames(1, n=6))])
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    rc = main(["eval", "--generated", f"ours={a}", "--generated", f"blurry={b}", "--reference", str(a),
               "--metrics", "fid,fgd,sync_c,sync_d,vqa", "--fid-stride", "2",
               "--out", str(out_json), "--out", str(out_md)])
    assert rc == 0
    report = json.loads(out_json.read_text())
    ours = report["methods"]["ours"]
    assert set(report["methods"]) == {"ours", "blurry"}
    assert {"fid", "fgd", "sync_c", "sync_d", "vqa"} <= set(ours)
    assert ours["fid"]["value"] == pytest.approx(0.0, abs=1e-3)
    assert report["methods"]["blurry"]["fid"]["value"] > 1.0
    assert ours["sync_c"]["value"] is None
    assert ours["sync_c"]["status"].startswith("not computed: SyncNet weights not found at")
    assert ours["vqa"]["status"].startswith("not computed: Q-Align weights not found at")
    assert ours["fgd"]["status"].startswith("not computed: gesture encoder (FGD) weights not found")
    md = out_md.read_text()
    assert "| Method | FID↓ | VQA↑ | FGD↓ | Sync-C↑ | Sync-D↓ |" in md
    assert "| ours | **0.0** | – |" in md and "| blurry | <u>" in md
    assert "not computed: SyncNet weights not found" in md and "InceptionV3" in md
    assert "ours" in capsys.readouterr().out
    # an earlier report's rows go beside new ones without recomputing them
    rc = main(["eval", "--add-report", str(out_json), "--out", str(tmp_path / "merged.md")])
    assert rc == 0 and "| blurry |" in (tmp_path / "merged.md").read_text()


def test_cli_errors_name_the_input(tmp_path, capsys):
    assert main(["eval", "--generated", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["eval", "--generated", str(tmp_path / "empty")]) == 2
    assert "no videos found" in capsys.readouterr().err
    assert main(["eval", "--generated", str(tmp_path / "empty"), "--metrics", "fid,nope"]) == 2
    assert "unknown metric" in capsys.readouterr().err
    assert main(["eval", "--generated", str(tmp_path / "empty"), "--out", "r.txt"]) == 2
    assert set(METRICS) == {"fid", "fvd", "vqa", "ase", "fgd", "div", "hand_c", "hand_v", "sync_c", "sync_d", "csim"}


def test_cli_syncnet_checkpoint_path_runs_end_to_end(tmp_path):
    """The real Sync path (face box from a detector, crop, MFCC, S model, offset search) with random weights
    saved in syncnet_python's format: checks the plumbing, not the numbers."""
    skdata = pytest.importorskip("skimage.data")
    import cv2
    import torch

    from physavatar.evaluation.backbones.syncnet import SyncNetS

    torch.manual_seed(0)
    weights = tmp_path / "syncnet_v2.model"
    torch.save(SyncNetS().state_dict(), weights)
    face = cv2.resize(skdata.astronaut(), (192, 192), interpolation=cv2.INTER_AREA)
    audio = (0.2 * np.sin(np.arange(12 * SAMPLES_PER_FRAME) / 7.0)).astype(np.float32)
    folder = _write_set(tmp_path / "v", [np.stack([face] * 12)], [audio])
    out = tmp_path / "r.json"
    assert main(["eval", "--generated", str(folder), "--metrics", "sync_c,sync_d", "--syncnet-weights", str(weights),
                 "--vshift", "3", "--out", str(out)]) == 0
    sync = json.loads(out.read_text())["methods"]["v"]
    assert sync["sync_c"]["status"] == "ok" and np.isfinite(sync["sync_d"]["value"])
    assert -3 <= sync["sync_c"]["details"]["offset"]["v0"] <= 3
    assert "SyncNet (syncnet_python S" in sync["sync_c"]["backbone"]


def test_div_on_mp4_uses_the_mediapipe_pose_backend(tmp_path):
    skdata = pytest.importorskip("skimage.data")
    pytest.importorskip("mediapipe")
    import cv2

    portrait = cv2.resize(skdata.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    frames = np.stack([np.roll(portrait, 3 * (t % 4), axis=1) for t in range(14)])
    folder = _write_set(tmp_path / "v", [frames])
    results, _ = evaluate({"m": folder}, None, EvalConfig(metrics=("div",), gesture_window=6, gesture_stride=4))
    div = results[0].metrics["div"]
    if div.value is None and "unavailable" in div.status:
        pytest.skip(div.status)
    assert div.details["pose_source"] == {"v0": "mediapipe"}
    assert "MediaPipe pose" in div.backbone
    assert div.value is not None and div.value >= 0.0
    off, _ = evaluate({"m": folder}, None, EvalConfig(metrics=("div",), gesture_window=6, pose_from_video=False))
    assert off[0].metrics["div"].status.startswith("not computed: no pose sequence")


class BrightSquareHands:
    """Analytic stand-in for the hand landmarker: one 'hand' = the bright square, 21 copies of its centre."""

    name = "analytic bright-square hands (test)"

    def track(self, frames):
        from physavatar.evaluation.backbones.hands import HandTrack

        n, h, w = frames.shape[:3]
        lm = np.zeros((n, 2, 21, 2), np.float32)
        det = np.zeros((n, 2), bool)
        for t, f in enumerate(frames):
            ys, xs = np.nonzero(f[..., 0] > 200)
            if len(xs):
                lm[t, 0] = (xs.mean() / w, ys.mean() / h)
                det[t, 0] = True
        return HandTrack(scores=det.astype(np.float32) * 0.8, landmarks=lm, detected=det)


def test_hand_metrics_aggregate_per_video_and_per_set(tmp_path):
    still = np.zeros((10, 64, 64, 3), np.uint8)
    still[:, 10:20, 10:20] = 255
    moving = np.zeros_like(still)
    for t in range(10):
        x = 8 + 40 * (t % 2)  # jumps between x = 8 and x = 48
        moving[t, 30:40, x : x + 8] = 255
    folder = _write_set(tmp_path / "h", [still, moving])
    results, _ = evaluate({"m": folder}, None, EvalConfig(metrics=("hand_c", "hand_v")),
                          backbones={"hands": BrightSquareHands()})
    m = results[0].metrics
    assert m["hand_c"].per_video == pytest.approx({"v0": 0.4, "v1": 0.4})  # one of two hand slots, score 0.8
    assert m["hand_v"].per_video["v0"] == pytest.approx(0.0, abs=1e-3)
    # x alternates between centres 12/64 and 52/64: variance (40/64 / 2)² per landmark, × 100
    assert m["hand_v"].per_video["v1"] == pytest.approx(100 * (40 / 64 / 2) ** 2, rel=0.05)
    assert m["hand_v"].value == pytest.approx(np.mean(list(m["hand_v"].per_video.values())))
