"""Audio loading from every container, validation errors/warnings, and atomic wav writing."""

import warnings
from fractions import Fraction

import av
import numpy as np
import pytest

from physavatar.io.audio import load_audio, resample_audio, validate_audio, write_wav
from physavatar.io.errors import MediaError, MediaNotFoundError, MediaWarning

SR_IN = 44100


def _signal(sr, seconds=1.0, seed=0):
    """A 440 Hz tone plus seeded noise bursts: the bursts make any time offset show up in the correlation."""
    t = np.arange(int(sr * seconds)) / sr
    rng = np.random.default_rng(seed)
    env = (np.sin(2 * np.pi * 3 * t) > 0.3).astype(np.float32)
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * env * rng.standard_normal(t.size)).astype(np.float32)


def encode_audio(path, wav, sr, fmt, codec, rate=None, layout="stereo"):
    """Write `wav` through PyAV/FFmpeg in the given container and codec (PyAV converts format and rate)."""
    planes = np.stack([wav, wav]) if layout == "stereo" else wav[None]
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=rate or sr)
        s.layout = layout
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planes), format="fltp", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = sr, 0, Fraction(1, sr)
        c.mux(s.encode(frame))
        c.mux(s.encode(None))


def _aligned_corr(y, ref):
    """Best correlation over lags of up to +-50 ms (lossy codecs may shift a few samples) and that lag."""
    n = min(y.size, ref.size)
    best = (-1.0, 0)
    for lag in range(-800, 801, 4):
        a, b = (y[lag:n], ref[: n - lag]) if lag >= 0 else (y[: n + lag], ref[-lag:n])
        best = max(best, (float(np.corrcoef(a, b)[0, 1]), lag))
    return best


@pytest.mark.parametrize("ext,fmt,codec,rate", [
    ("wav", "wav", "pcm_s16le", None),
    ("flac", "flac", "flac", None),
    ("mp3", "mp3", "libmp3lame", None),
    ("m4a", "ipod", "aac", None),
    ("ogg", "ogg", "libopus", 48000),
])
def test_load_audio_every_container(tmp_path, ext, fmt, codec, rate):
    src = _signal(SR_IN)
    path = tmp_path / f"speech.{ext}"
    encode_audio(path, src, SR_IN, fmt, codec, rate)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert np.abs(y).max() <= 1.0
    assert abs(y.size - 16000) <= 1200  # lossy codecs pad up to a frame or so at the end
    ref = resample_audio(src, SR_IN, 16000)
    corr, lag = _aligned_corr(y, ref)
    assert corr > 0.95, (ext, corr)
    assert abs(lag) <= 40, (ext, lag)  # decoders drop encoder delay: output starts where the input did


def test_resample_is_exact_length_and_preserves_tone():
    x = np.sin(2 * np.pi * 440 * np.arange(44100) / 44100).astype(np.float32)
    y = resample_audio(x, 44100, 16000)
    assert y.size == 16000
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) == 440  # 1 s at 16 kHz: bin k is k Hz


def test_wav_round_trip_is_16bit_exact(tmp_path):
    x = _signal(16000, 0.5)
    path = tmp_path / "a.wav"
    write_wav(path, x)
    y = load_audio(path)
    assert y.shape == x.shape
    assert np.abs(y - x).max() <= 0.5 / 32768 + 1e-7
    import soundfile as sf
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")


def test_write_wav_clips_and_keeps_old_file_on_error(tmp_path):
    path = tmp_path / "a.wav"
    write_wav(path, np.array([2.0, -2.0, 0.5], np.float32))
    before = path.read_bytes()
    y = load_audio(path, validate=False)
    assert y[0] == pytest.approx(1.0, abs=1e-4) and y[1] == pytest.approx(-1.0, abs=1e-4)
    with pytest.raises(MediaError, match="a.wav.*NaN"):
        write_wav(path, np.array([0.1, np.nan]))
    with pytest.raises(MediaError, match="a.wav"):
        write_wav(path, np.zeros(0))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


def test_stereo_and_other_rates_are_mixed_and_resampled(tmp_path):
    left = _signal(22050, 1.0)
    path = tmp_path / "st.wav"
    write_wav(path, np.stack([left, -0.5 * left], axis=1), 22050)
    y = load_audio(path)
    ref = resample_audio(0.25 * left, 22050, 16000)  # mean of L and -L/2
    assert y.size == 16000
    assert np.abs(y - ref).max() < 2e-3


def test_video_audio_track_and_video_without_audio(tmp_path):
    from physavatar.io.video import write_video
    frames = np.zeros((10, 32, 32, 3), np.uint8)
    wav = _signal(16000, 0.4)
    write_video(tmp_path / "talk.mp4", frames, audio=wav, preset="ultrafast")
    y = load_audio(tmp_path / "talk.mp4")
    corr, lag = _aligned_corr(y, wav)
    assert corr > 0.9 and abs(lag) <= 40
    write_video(tmp_path / "mute.mp4", frames, preset="ultrafast")
    with pytest.raises(MediaError, match="mute.mp4.*no audio track"):
        load_audio(tmp_path / "mute.mp4")


def test_bad_files_raise_media_error_naming_the_file(tmp_path):
    with pytest.raises(MediaNotFoundError, match="missing.wav"):
        load_audio(tmp_path / "missing.wav")
    with pytest.raises(FileNotFoundError):  # also usable as the builtin
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "notes.mp3").write_text("this is text, not audio\n" * 20)
    with pytest.raises(MediaError, match="notes.mp3.*not a readable"):
        load_audio(tmp_path / "notes.mp3")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(MediaError, match="empty.wav.*empty"):
        load_audio(tmp_path / "empty.wav")
    with pytest.raises(MediaError, match="is a folder"):
        load_audio(tmp_path)
    write_wav(tmp_path / "quiet.wav", np.full(16000, 1e-4, np.float32))
    with pytest.raises(MediaError, match="quiet.wav.*silent"):
        load_audio(tmp_path / "quiet.wav")
    write_wav(tmp_path / "short.wav", _signal(16000, 0.05))
    with pytest.raises(MediaError, match="short.wav.*too short"):
        load_audio(tmp_path / "short.wav")
    assert load_audio(tmp_path / "short.wav", validate=False).size == 800


def test_validate_audio_errors_and_warnings():
    ok = _signal(16000, 1.0)
    assert validate_audio(ok, 16000, name="ok") is not None
    cases = {
        "empty": (np.zeros(0, np.float32), "empty"),
        "nan": (np.where(np.arange(16000) == 8000, np.nan, ok), r"NaN/Inf .*0\.500 s"),
        "inf": (np.where(np.arange(16000) == 3, np.inf, ok), "NaN/Inf"),
        "silent": (np.zeros(16000, np.float32), "silent"),
        "short": (ok[:1000], "too short"),
        "stereo": (np.stack([ok, ok]), "1-D mono"),
        "strings": (np.array(["a", "b"]), "dtype"),
    }
    for name, (wav, pattern) in cases.items():
        with pytest.raises(MediaError, match=f"{name}: .*{pattern}"):
            validate_audio(wav, 16000, name=name)
    with pytest.raises(MediaError, match="list-of-nothing"):
        validate_audio([], 16000, name="list-of-nothing")
    assert validate_audio((ok * 32767).astype(np.int16), 16000, name="pcm").dtype == np.float32

    clipped = np.clip(ok * 10, -1, 1)
    with pytest.warns(MediaWarning, match="hot.wav.*clips"):
        validate_audio(clipped, 16000, name="hot.wav")
    with pytest.warns(MediaWarning, match="very long"):
        validate_audio(np.tile(ok, 601), 16000, name="long")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_audio(ok, 16000, name="clean")  # no warning for normal speech-level audio


def test_align_to_video_uses_the_video_clock(tmp_path):
    """Audio that starts 0.2 s after the first video frame is padded so sample 0 is video frame 0."""
    wav = _signal(16000, 0.6, seed=4)
    path = tmp_path / "late_audio.mp4"
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt, v.options = 32, 32, "yuv420p", {"preset": "ultrafast"}
        a = c.add_stream("aac", rate=16000)
        a.layout = "mono"
        for i in range(25):
            f = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            f.pts = i
            c.mux(v.encode(f))
        for start in range(0, wav.size, 1024):
            f = av.AudioFrame.from_ndarray(wav[None, start:start + 1024], format="fltp", layout="mono")
            f.sample_rate, f.pts, f.time_base = 16000, 3200 + start, Fraction(1, 16000)
            c.mux(a.encode(f))
        c.mux(v.encode(None))
        c.mux(a.encode(None))
    aligned = load_audio(path, align_to_video=True)
    corr, lag = _aligned_corr(aligned, np.concatenate([np.zeros(3200, np.float32), wav]))
    assert corr > 0.9 and abs(lag) <= 40
    assert np.abs(aligned[:2100]).max() < 0.01  # (AAC priming, 1024 samples before the start, may ring)
    raw = load_audio(path)  # without alignment the track starts at its own first (priming) sample
    start = aligned.size - raw.size
    assert 2100 <= start <= 3200 and np.array_equal(aligned[start:], raw) and not aligned[:start].any()
