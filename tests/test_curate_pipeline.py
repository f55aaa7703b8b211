"""End-to-end curation on synthetic-world videos built in the test: cuts, bad files, speakers, identity,
sync, clip format, resume after a crash and after a real kill."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from physavatar.constants import SAMPLE_RATE, SAMPLES_PER_FRAME
from physavatar.curation import manifest as mf
from physavatar.curation.config import CurateConfig
from physavatar.curation.pipeline import curate

N = 101  # 4.04 s at 25 fps


def _write_vfr(path: Path, frames: np.ndarray, wav: np.ndarray) -> None:
    """H.264 in Matroska with alternating 30 / 50 ms frame intervals (mean 25 fps, variable)."""
    import av

    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        vs.time_base = vs.codec_context.time_base = Fraction(1, 1000)
        aus = c.add_stream("aac", rate=SAMPLE_RATE)
        aus.layout = "mono"
        t = 0
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts, vf.time_base = t, Fraction(1, 1000)
            c.mux(vs.encode(vf))
            t += 30 if i % 2 == 0 else 50
        c.mux(vs.encode(None))
        for i in range(0, wav.size, 1024):
            af = av.AudioFrame.from_ndarray(wav[None, i:i + 1024], format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = SAMPLE_RATE, i, Fraction(1, SAMPLE_RATE)
            c.mux(aus.encode(af))
        c.mux(aus.encode(None))


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    from physavatar.io import write_video
    from physavatar.world import make_clip

    raw = tmp_path_factory.mktemp("raw")
    a = make_clip(identity_seed=3, clip_seed=1, num_frames=N, size=128)
    b = make_clip(identity_seed=8, clip_seed=2, num_frames=N, size=128)
    w = dict(preset="ultrafast")
    write_video(raw / "a.mp4", a.frames, audio=a.wav, **w)
    write_video(raw / "cut.mp4", np.concatenate([a.frames, b.frames]), audio=np.concatenate([a.wav, b.wav]), **w)
    write_video(raw / "two.mp4", np.concatenate([a.frames, b.frames], axis=2), audio=(a.wav + b.wav) / 2, **w)
    # a 1 s dissolve from one person to another: no hard cut, so only the identity check can catch it
    mix = np.clip((np.arange(2 * N) - 88) / 25, 0, 1)[:, None, None, None]
    fr = np.concatenate([a.frames, a.frames[::-1]]) * (1 - mix) + np.concatenate([b.frames[::-1], b.frames]) * mix
    (raw / "sub").mkdir()
    write_video(raw / "sub" / "dissolve.mp4", fr.round().astype(np.uint8), audio=np.concatenate([a.wav, b.wav]), **w)
    write_video(raw / "shifted.mp4", a.frames, audio=np.roll(a.wav, 8000), **w)  # audio 0.5 s late
    write_video(raw / "noaudio.mp4", a.frames, **w)
    data = (raw / "a.mp4").read_bytes()
    (raw / "trunc.mp4").write_bytes(data[: len(data) // 2])
    _write_vfr(raw / "vfr.mkv", b.frames, b.wav)
    (raw / "notes.txt").write_text("not a video")
    (raw / "empty.mp4").write_bytes(b"")
    return raw


def _cfg(raw: Path, out: Path, **kw) -> CurateConfig:
    return CurateConfig(raw_dir=str(raw), out_dir=str(out), size=64, identity_method="histogram", progress=False,
                        val_fraction=0.0, **kw)


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): (hashlib.sha1(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def curated(raw, tmp_path_factory):
    before = _snapshot(raw)
    out = tmp_path_factory.mktemp("out")
    summary = curate(_cfg(raw, out, workers=2))
    assert _snapshot(raw) == before  # the raw folder is never modified
    ledger = {r["file"]: r for r in mf.read_jsonl(out / mf.LEDGER)}
    return out, summary, ledger


def test_bad_files_are_skipped_with_a_reason(curated):
    out, _, ledger = curated
    assert len(ledger) == 10
    expect = {"trunc.mp4": ("probe", "truncated"), "noaudio.mp4": ("audio", "no audio track"),
              "notes.txt": ("probe", "not a readable"), "empty.mp4": ("probe", "empty")}
    for name, (stage, words) in expect.items():
        rec = ledger[name]
        assert rec["status"] == "skipped" and rec["stage"] == stage and words in rec["reason"], rec
        assert name in rec["reason"]  # the reason names the file


def test_cuts_speakers_identity_and_vfr(curated):
    _, _, ledger = curated
    cut = ledger["cut.mp4"]
    assert len(cut["scene_cuts"]) == 1 and abs(cut["scene_cuts"][0] - N) <= 1
    assert [s["drop"] for s in cut["segments"]] == [None, None] and cut["clips"] == 2
    assert ledger["a.mp4"]["scene_cuts"] == [] and ledger["a.mp4"]["clips"] == 1
    (two,) = ledger["two.mp4"]["segments"]
    assert two["drop"] == "speaker" and "several people" in two["reason"] and ledger["two.mp4"]["clips"] == 0
    (dis,) = ledger["sub/dissolve.mp4"]["segments"]
    assert dis["drop"] == "identity" and dis["identity"]["identities"] == 2
    assert dis["identity"]["method"] == "colour-histogram"
    vfr = ledger["vfr.mkv"]
    assert vfr["probe"]["video"]["is_vfr"] is True and vfr["clips"] == 1
    shifted = ledger["shifted.mp4"]
    (clip,) = shifted["segments"][0]["clips"]
    assert clip["sync"]["status"] == "skipped" and "no SyncNet weights" in clip["sync"]["reason"]


def test_kept_clips_follow_the_clip_format(curated):
    import soundfile as sf
    from PIL import Image

    from physavatar.io import probe_video

    out, summary, ledger = curated
    rows = mf.read_jsonl(out / mf.MANIFEST)
    assert len(rows) == summary["clips_written"] == sum(r["clips"] for r in ledger.values()) == 5
    assert len({r["id"] for r in rows}) == len(rows)
    for row in rows:
        d = out / row["path"]
        info = probe_video(d / "video.mp4")
        f = row["num_frames"]
        assert (info.width, info.height, info.fps, info.num_frames, info.is_vfr) == (64, 64, 25.0, f, False)
        assert info.has_audio and info.audio_sample_rate == SAMPLE_RATE
        assert 3.0 <= row["duration_s"] <= 15.0 and (f - 1) % 4 == 0 and row["duration_s"] == f / 25
        wav, sr = sf.read(d / "audio.wav", dtype="int16")
        assert sr == SAMPLE_RATE and wav.ndim == 1 and wav.size == f * SAMPLES_PER_FRAME
        assert Image.open(d / "reference.png").size == (64, 64)
        meta = json.loads((d / "meta.json").read_text())
        assert meta["fps"] == 25 and meta["num_frames"] == f and meta["size"] == [64, 64]
        assert "keypoints.npy" in meta["pending_features"] and not (d / "keypoints.npy").exists()
        assert meta["crop"]["max_step_px"] < 2.0  # no jitter
        assert row["source"] in ledger and row["split"] == "train"
    assert not [p for p in (out / "clips").iterdir() if p.name.startswith(".")]  # no temp folders left
    text = (out / "report.txt").read_text()
    assert "scene segments" in text and "sync: skipped" in text
    assert (out / "report.png").stat().st_size > 1000


def test_rerun_skips_finished_files(curated, raw):
    out, _, _ = curated
    ledger_before = (out / mf.LEDGER).read_text()
    manifest_before = (out / mf.MANIFEST).read_text()
    t = time.perf_counter()
    curate(_cfg(raw, out, workers=1))
    assert time.perf_counter() - t < 5
    assert (out / mf.LEDGER).read_text() == ledger_before and (out / mf.MANIFEST).read_text() == manifest_before
    with pytest.raises(ValueError, match="was curated with"):
        curate(_cfg(raw, out, min_sec=4.0))


def _rows(out: Path) -> list[dict]:
    return sorted(mf.read_jsonl(out / mf.MANIFEST), key=lambda r: r["id"])


def test_interrupted_state_resumes_to_the_same_manifest(curated, raw, tmp_path):
    out, _, _ = curated
    crashed = tmp_path / "crashed"
    shutil.copytree(out, crashed)
    # the state a crash leaves: cut.mp4's clips renamed into place and listed, its ledger line torn
    lines = [ln for ln in (out / mf.LEDGER).read_text().splitlines() if '"file": "cut.mp4"' not in ln]
    (crashed / mf.LEDGER).write_text("\n".join(lines) + '\n{"file": "cut.mp4", "sta')
    (crashed / "clips" / ".000_000.tmp-dead").mkdir()  # a half-written clip folder
    curate(_cfg(raw, crashed, workers=1))
    assert _rows(crashed) == _rows(out)
    files = lambda folder: {r["file"] for r in mf.read_jsonl(folder / mf.LEDGER)}  # noqa: E731
    assert files(crashed) == files(out)
    assert sorted(p.name for p in (crashed / "clips").iterdir()) == sorted(p.name for p in (out / "clips").iterdir())


def test_killed_run_resumes_to_the_same_manifest(curated, raw, tmp_path):
    out, _, _ = curated
    small = tmp_path / "raw"
    small.mkdir()
    for name in ("a.mp4", "cut.mp4", "vfr.mkv"):
        shutil.copy2(raw / name, small / name)
    killed = tmp_path / "killed"
    code = ("import sys; from physavatar.cli import main; sys.exit(main(['curate', sys.argv[1], sys.argv[2], "
            "'--size', '64', '--identity-method', 'histogram', '--val-fraction', '0', '--quiet']))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(small), str(killed)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    ledger = killed / mf.LEDGER
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if ledger.exists() and ledger.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_at_kill = ledger.read_text().count("\n") if ledger.exists() else 0
    assert done_at_kill < 3, "the run finished before it could be killed; the test did not test resuming"
    curate(_cfg(small, killed, workers=1))
    expected = [r for r in _rows(out) if r["source"] in {"a.mp4", "cut.mp4", "vfr.mkv"}]
    assert _rows(killed) == expected
    assert len(mf.read_jsonl(ledger)) == 3


def test_syncnet_weights_measure_and_drop(raw, tmp_path):
    import torch

    from physavatar.evaluation.backbones.syncnet import SyncNetS

    torch.manual_seed(0)
    weights = tmp_path / "syncnet_v2.model"
    torch.save(SyncNetS().state_dict(), weights)  # the official format, random values
    one = tmp_path / "raw"
    one.mkdir()
    shutil.copy2(raw / "shifted.mp4", one / "shifted.mp4")
    out = tmp_path / "out"
    # a random network is never confident: with the usual threshold the clip is dropped for sync, and says why
    summary = curate(_cfg(one, out, syncnet_weights=str(weights), sync_stride=8))
    (rec,) = mf.read_jsonl(out / mf.LEDGER)
    (clip,) = rec["segments"][0]["clips"]
    assert clip["sync"]["status"] == "measured" and {"offset", "confidence", "min_dist"} <= set(clip["sync"])
    assert clip["drop"] == "sync" and "poor sync" in clip["reason"] and summary["clips_written"] == 0
    assert not list((out / "clips").iterdir())
    with pytest.raises(FileNotFoundError, match="syncnet-weights"):
        curate(_cfg(one, tmp_path / "o2", syncnet_weights=str(tmp_path / "missing.model")))


def test_cli_errors_are_one_line(raw, tmp_path, capsys):
    from physavatar.cli import main

    assert main(["curate", str(tmp_path / "nope"), str(tmp_path / "o"), "--quiet"]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["curate", str(raw), str(raw / "out"), "--quiet"]) == 2
    assert "inside RAW_DIR" in capsys.readouterr().err


def test_real_face_moving_camera_uses_dlib_identity(tmp_path):
    """A real photo (skimage's astronaut) panned across a 16:9 frame: face found, dlib decides, the crop follows
    the face smoothly."""
    import cv2
    from skimage import data

    from physavatar.curation.speakers import dlib_embedder
    from physavatar.io import write_video

    if dlib_embedder() is None:
        pytest.skip("face-recognition / dlib not installed: the histogram fallback is tested above")
    img = cv2.resize(data.astronaut(), (192, 192), interpolation=cv2.INTER_AREA)
    n = 101
    frames = np.full((n, 192, 336, 3), 40, np.uint8)
    for t in range(n):
        x = int(round(20 + 100 * t / (n - 1)))  # 1 px/frame pan
        frames[t, :, x:x + 192] = img
    rng = np.random.default_rng(0)
    wav = (0.2 * np.sin(2 * np.pi * 220 * np.arange(n * SAMPLES_PER_FRAME) / SAMPLE_RATE)
           * (1 + rng.uniform(0, 1, n * SAMPLES_PER_FRAME))).astype(np.float32) / 2
    raw = tmp_path / "raw"
    raw.mkdir()
    write_video(raw / "astronaut.mp4", frames, audio=wav, preset="ultrafast")
    out = tmp_path / "out"
    curate(CurateConfig(raw_dir=str(raw), out_dir=str(out), size=64, progress=False, val_fraction=0.0))
    (rec,) = mf.read_jsonl(out / mf.LEDGER)
    (seg,) = rec["segments"]
    assert seg["identity"]["method"] == "dlib-face-descriptor" and seg["identity"]["identities"] == 1
    assert seg["speakers"]["coverage"][0] > 0.9 and rec["clips"] == 1
    (clip,) = seg["clips"]
    assert not clip["crop"]["still"] and clip["crop"]["max_step_px"] < 2.0
