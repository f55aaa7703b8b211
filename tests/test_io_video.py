"""Video probe/read/write: round trips, fps resampling (CFR and VFR), bad inputs, atomic writer."""

from fractions import Fraction

import av
import numpy as np
import pytest

from physavatar.io.audio import load_audio
from physavatar.io.errors import MediaError, MediaNotFoundError
from physavatar.io.video import VideoWriter, iter_video_frames, probe_video, read_video, write_video

H, W = 48, 64
FAST = {"preset": "ultrafast"}


def coded_frames(n, h=H, w=W):
    """Frame i is flat grey 8 * i (+ a gradient): the frame index survives H.264 and can be read back."""
    ramp = np.linspace(0, 20, w)[None, :, None]
    return np.stack([np.clip(8 * i + ramp + np.zeros((h, w, 3)), 0, 255) for i in range(n)]).astype(np.uint8)


def frame_ids(frames):
    """Recover source indices from coded_frames (mean of the left column is 8 * i)."""
    return np.round(frames[:, :, :2].mean(axis=(1, 2, 3)) / 8).astype(int)


def smooth_frames(n, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W] / max(H, W)
    out = []
    for i in range(n):
        a, b, c = rng.uniform(0, 2 * np.pi, 3)
        img = np.stack([np.sin(3 * x + a + 0.2 * i), np.cos(2 * y + b), np.sin(2 * (x + y) + c)], -1)
        out.append(((img + 1) * 127.5).astype(np.uint8))
    return np.stack(out)


def test_round_trip_frames_and_audio(tmp_path):
    frames = smooth_frames(20)
    t = np.arange(int(0.8 * 16000)) / 16000
    rng = np.random.default_rng(1)
    wav = (0.3 * np.sin(2 * np.pi * 330 * t) * (np.sin(2 * np.pi * 4 * t) > 0)
           + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    path = tmp_path / "clip.mp4"
    write_video(path, frames, fps=25, audio=wav, sample_rate=16000)
    info = probe_video(path)
    assert (info.num_frames, info.width, info.height, info.fps, info.is_vfr) == (20, W, H, 25.0, False)
    assert info.duration_s == pytest.approx(0.8) and info.has_audio and info.audio_sample_rate == 16000
    assert info.codec == "h264"
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"
        assert c.streams.audio[0].codec_context.name == "aac"
    back = read_video(path)
    assert back.shape == frames.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - frames).mean() < 3.0
    audio = load_audio(path)
    n = wav.size
    corr = max(np.corrcoef(audio[lag:lag + n - 64], wav[: n - 64])[0, 1] for lag in range(0, 64))
    assert corr > 0.9
    assert np.corrcoef(audio[: n - 64], wav[: n - 64])[0, 1] > 0.9  # and already aligned at lag 0


def test_30_to_25_fps_picks_nearest_frames(tmp_path):
    path = tmp_path / "thirty.mp4"
    write_video(path, coded_frames(27), fps=30, **FAST)  # 0.9 s
    info = probe_video(path)
    assert info.fps == pytest.approx(30) and info.num_frames == 27 and info.duration_s == pytest.approx(0.9)
    out = read_video(path, fps=25)
    assert len(out) == round(0.9 * 25)
    expected = [round(k * 30 / 25) for k in range(len(out))]  # nearest source time to k/25 (no ties here)
    assert frame_ids(out).tolist() == expected
    streamed = np.stack(list(iter_video_frames(path, 25)))
    assert np.array_equal(streamed, out)
    assert len(read_video(path, 25, max_frames=5)) == 5
    assert len(read_video(path, 30)) == 27  # same rate: every frame once
    with pytest.raises(MediaError, match="thirty.mp4.*iter_video_frames"):
        read_video(path, 25, max_bytes=10 * H * W * 3)  # 23 frames would not fit


def _write_vfr(path, pts_ms):
    frames = coded_frames(len(pts_ms))
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.time_base = Fraction(1, 1000)
        s.codec_context.time_base = Fraction(1, 1000)
        s.options = {"preset": "ultrafast"}
        for img, t in zip(frames, pts_ms):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = t, Fraction(1, 1000)
            c.mux(s.encode(f))
        c.mux(s.encode(None))


def test_variable_frame_rate_resampled_by_timestamps(tmp_path):
    rng = np.random.default_rng(3)
    gaps = rng.choice([17, 33, 50, 80], size=24)
    pts = np.concatenate([[0], np.cumsum(gaps)[:-1]]).tolist()
    path = tmp_path / "phone.mp4"
    _write_vfr(path, pts)
    info = probe_video(path)
    assert info.is_vfr and info.num_frames == 24
    out = read_video(path, fps=25)
    assert len(out) == round(info.duration_s * 25)
    times = np.array(pts) / 1000
    want = [int(np.argmin(np.abs(times - k / 25))) for k in range(len(out))]
    got = frame_ids(out).tolist()
    # nearest by timestamp; an exact tie between two frames may go either way
    for k, (g, w) in enumerate(zip(got, want)):
        assert g == w or abs(abs(times[g] - k / 25) - abs(times[w] - k / 25)) < 1e-9, (k, g, w)


def test_chunked_writer_and_atomicity(tmp_path):
    path = tmp_path / "out.mp4"
    frames = coded_frames(12)
    with VideoWriter(path, fps=25, **FAST) as w:
        w.write(frames[0])  # single (H, W, 3) frame
        w.write(frames[1:5])  # a chunk
        w.write(iter(frames[5:]))  # an iterable of frames
        assert not path.exists()  # only a temp file until close()
    assert frame_ids(read_video(path)).tolist() == list(range(12))
    before = path.read_bytes()

    with pytest.raises(RuntimeError, match="render failed"):
        with VideoWriter(path, fps=25, **FAST) as w:
            w.write(coded_frames(3))
            raise RuntimeError("render failed")
    assert path.read_bytes() == before  # the old video is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]

    new = tmp_path / "never.mp4"
    with pytest.raises(MediaError, match="never.mp4.*frame size changed"):
        with VideoWriter(new, **FAST) as w:
            w.write(coded_frames(2))
            w.write(coded_frames(2, h=32))
    with pytest.raises(MediaError, match="never.mp4.*no frames"):
        with VideoWriter(new, **FAST):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_writer_rejects_bad_frames_clearly(tmp_path):
    path = tmp_path / "bad.mp4"
    for frames, pattern in [
        (np.zeros((2, 47, 64, 3), np.uint8), r"64x47.*even.*64x46"),
        (np.zeros((2, 48, 64, 3), np.float32), "dtype float32.*astype"),
        (np.zeros((2, 48, 64, 4), np.uint8), "alpha"),
        (np.zeros((48, 64), np.uint8), "shape"),
    ]:
        with pytest.raises(MediaError, match=f"bad.mp4.*{pattern}"):
            write_video(path, frames, **FAST)
    with pytest.raises(MediaError, match="bad.avi.*suffix"):
        write_video(tmp_path / "bad.avi", coded_frames(2))
    with pytest.raises(MediaError, match="bad.mp4.*NaN"):
        write_video(path, coded_frames(2), audio=np.array([np.nan] * 100))
    assert list(tmp_path.iterdir()) == []


def test_bad_video_inputs_raise_media_error(tmp_path):
    good = tmp_path / "good.mp4"
    write_video(good, coded_frames(50), fps=25, faststart=False, **FAST)  # index at the end of the file
    data = good.read_bytes()
    (tmp_path / "cut_index.mp4").write_bytes(data[: len(data) // 2])  # moov lost
    write_video(good, coded_frames(50), fps=25, **FAST)  # index first: the frames are cut instead
    data = good.read_bytes()
    (tmp_path / "cut_frames.mp4").write_bytes(data[: int(len(data) * 0.6)])
    (tmp_path / "notes.mp4").write_text("not a video at all\n" * 50)
    (tmp_path / "zero.mp4").write_bytes(b"")
    from physavatar.io.audio import write_wav
    write_wav(tmp_path / "speech.wav", np.sin(np.arange(8000) / 5) * 0.5)
    from PIL import Image
    Image.fromarray(coded_frames(1)[0]).save(tmp_path / "still.png")
    cases = {
        "cut_index.mp4": "not a readable",
        "cut_frames.mp4": "truncated",
        "notes.mp4": "not a readable",
        "zero.mp4": "empty",
        "speech.wav": "no video stream",
        "still.png": "still image.*load_image",
    }
    for name, pattern in cases.items():
        for fn in (probe_video, read_video):
            with pytest.raises(MediaError, match=f"{name}.*{pattern}"):
                fn(tmp_path / name)
    with pytest.raises(MediaNotFoundError, match="ghost.mp4"):
        read_video(tmp_path / "ghost.mp4")


def test_display_rotation_is_applied(tmp_path):
    frame = np.zeros((32, 64, 3), np.uint8)
    frame[:8, :8] = 255  # white block top-left
    path = tmp_path / "phone_portrait.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt, s.options = 64, 32, "yuv420p", {"preset": "ultrafast"}
        s.set_display_rotation(90)  # shown rotated 90 degrees counter-clockwise
        for i in range(5):
            f = av.VideoFrame.from_ndarray(frame, format="rgb24")
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    info = probe_video(path)
    assert (info.rotation, info.width, info.height) == (90, 32, 64)
    out = read_video(path)
    assert out.shape == (5, 64, 32, 3)
    assert out[0, -4, 4].mean() > 200 and out[0, 4, 4].mean() < 50  # top-left went to bottom-left


def test_cover_art_is_not_a_video(tmp_path):
    """An mp3 with embedded cover art has a one-frame 'video' stream: audio loads, probe says audio-only."""
    from physavatar.io.audio import load_audio
    path = tmp_path / "song_with_art.mp3"
    with av.open(str(path), "w") as c:
        a = c.add_stream("libmp3lame", rate=16000)
        a.layout = "mono"
        v = c.add_stream("png")
        v.width, v.height, v.pix_fmt = 32, 32, "rgb24"
        v.disposition = av.stream.Disposition.attached_pic
        art = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
        art.pts = 0
        art_packets = v.encode(art) + v.encode(None)
        wav = (0.3 * np.sin(np.arange(16000) / 3)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(wav[None], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        c.mux(a.encode(frame) + a.encode(None))
        c.mux(art_packets)
    assert abs(load_audio(path).size - 16000) < 1200
    with pytest.raises(MediaError, match="song_with_art.mp3.*audio-only"):
        probe_video(path)


def test_written_video_gets_normal_file_permissions(tmp_path):
    import os

    from physavatar.io.atomic import umask_mode
    from physavatar.io.video import write_video

    out = tmp_path / "perm.mp4"
    write_video(out, np.zeros((5, 16, 16, 3), np.uint8))
    assert os.stat(out).st_mode & 0o777 == umask_mode()  # not mkstemp's 0600
