"""Audio in and out: any container FFmpeg reads (wav/flac/mp3/m4a/ogg, a video's audio track) to 16 kHz
mono float32, validation with clear errors, and atomic 16-bit PCM wav writing."""

from __future__ import annotations

import math
import os
import warnings
import wave

import av
import numpy as np
from scipy.signal import resample_poly

from physavatar.constants import SAMPLE_RATE
from physavatar.io._av import FFMPEG_ERRORS, decode_error, open_input, video_streams
from physavatar.io.atomic import atomic_write
from physavatar.io.errors import MediaError, MediaWarning, describe, media_error

CLIP_LEVEL = 0.999  # |x| at or above this counts as a clipped sample
CLIP_FRACTION = 0.01  # warn when more than 1% of samples are clipped
LONG_SECONDS = 600.0  # warn above 10 minutes (memory and time grow linearly)


def _to_float(wav: np.ndarray, name: str | None) -> np.ndarray:
    """float32 view of integer PCM or float audio; other dtypes are a MediaError."""
    wav = np.asarray(wav)
    if wav.dtype == np.int16:
        return wav.astype(np.float32) / 32768.0
    if wav.dtype == np.int32:
        return (wav.astype(np.float64) / 2147483648.0).astype(np.float32)
    if wav.dtype == np.uint8:  # 8-bit PCM is offset binary
        return (wav.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(wav.dtype, np.floating):
        return wav.astype(np.float32, copy=False)
    raise media_error(name, f"audio has dtype {wav.dtype}, not float or int16 PCM",
                      "pass a float array in [-1, 1] (or int16 PCM)")


def validate_audio(wav: np.ndarray, sample_rate: int = SAMPLE_RATE, *, name: str | os.PathLike | None = None,
                   min_seconds: float = 0.2, silence_peak: float = 1e-3) -> np.ndarray:
    """Check a mono waveform and return it as float32; raise MediaError for unusable audio.

    Errors: wrong type/shape, empty, NaN/Inf, shorter than `min_seconds`, silent (peak < `silence_peak`).
    Warnings (MediaWarning): clipping (> 1% of samples at |x| >= 0.999), longer than 10 minutes.
    """
    if not isinstance(wav, (np.ndarray, list, tuple)) and not hasattr(wav, "__array__"):
        raise media_error(name, f"audio is a {type(wav).__name__}, not an array", "pass a 1-D numpy array")
    wav = _to_float(wav, name)
    if wav.ndim == 2 and 1 in wav.shape:
        wav = wav.reshape(-1)
    if wav.ndim != 1:
        raise media_error(name, f"audio has shape {wav.shape}, not 1-D mono",
                          "mix the channels down first, e.g. wav.mean(axis=channel_axis)")
    if wav.size == 0:
        raise media_error(name, "audio is empty (0 samples)", "give a recording with speech in it")
    bad = ~np.isfinite(wav)
    if bad.any():
        first = int(np.argmax(bad))
        raise media_error(name, f"audio has {int(bad.sum())} NaN/Inf samples (first at {first / sample_rate:.3f} s)",
                          "fix the code that produced it or re-export the file")
    seconds = wav.size / sample_rate
    if seconds < min_seconds:
        raise media_error(name, f"audio is too short ({seconds:.3f} s < {min_seconds} s)",
                          f"give at least {min_seconds} s of audio")
    peak = float(np.abs(wav).max())
    if peak < silence_peak:
        raise media_error(name, f"audio is silent (peak {peak:.2g} < {silence_peak:g})",
                          "give a recording with audible speech, or check the input level / muted track")
    clipped = float(np.mean(np.abs(wav) >= CLIP_LEVEL))
    if clipped > CLIP_FRACTION:
        warnings.warn(f"{describe(name)}: audio clips ({clipped:.1%} of samples at full scale); results may "
                      "suffer: lower the recording gain if you can", MediaWarning, stacklevel=2)
    if seconds > LONG_SECONDS:
        warnings.warn(f"{describe(name)}: audio is very long ({seconds / 60:.1f} min); memory and time grow with "
                      "length: cut it into shorter pieces if this is not intended", MediaWarning, stacklevel=2)
    return wav


def _decode(path: str) -> tuple[np.ndarray, int, float]:
    """Decode the first audio stream: (mono float32 samples, native rate, audio start - video start in s)."""
    with open_input(path, "audio or video file") as container:
        videos = video_streams(container)
        if not container.streams.audio:
            if videos:
                raise media_error(path, "is a video with no audio track",
                                  "give a video with sound, or pass the speech as a separate audio file")
            raise media_error(path, "contains no audio stream", "give an audio file (wav/flac/mp3/m4a/ogg) "
                              "or a video with sound")
        stream = container.streams.audio[0]
        # Convert every frame to planar float at its own rate and layout; we downmix and resample ourselves.
        resampler = av.AudioResampler(format="fltp")
        chunks: list[np.ndarray] = []
        rate = None
        video = videos[0] if videos else None
        video_start = float(video.start_time * video.time_base) if video is not None and video.start_time else 0.0
        audio_start = None

        def take(frames):
            nonlocal rate
            for f in frames:
                rate = rate or f.sample_rate
                chunks.append(f.to_ndarray().mean(axis=0, dtype=np.float32))  # (C, n) -> (n,)

        try:
            for frame in container.decode(stream):
                if audio_start is None and frame.pts is not None:
                    audio_start = float(frame.pts * frame.time_base)
                take(resampler.resample(frame))
            take(resampler.resample(None))
        except FFMPEG_ERRORS as e:
            if not chunks:
                raise decode_error(path, "audio", e) from None
            got = sum(c.size for c in chunks) / (rate or 1)
            warnings.warn(f"{path}: audio decoding stopped after {got:.2f} s (FFmpeg: {e}); the file looks "
                          "truncated: using the part that decoded", MediaWarning, stacklevel=3)
        rate = rate or stream.rate or stream.codec_context.sample_rate
    offset = (audio_start or 0.0) - video_start if video is not None else 0.0
    if not chunks:
        return np.zeros(0, np.float32), int(rate or SAMPLE_RATE), offset
    return np.concatenate(chunks).astype(np.float32, copy=False), int(rate), offset


def resample_audio(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Exact-ratio polyphase resampling (e.g. 44100 -> 16000 = x160/441); identity when the rates match."""
    if orig_sr == target_sr:
        return wav.astype(np.float32, copy=False)
    g = math.gcd(int(orig_sr), int(target_sr))
    return resample_poly(wav, int(target_sr) // g, int(orig_sr) // g).astype(np.float32)


def load_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, *, validate: bool = True,
               min_seconds: float = 0.2, silence_peak: float = 1e-3, align_to_video: bool = False) -> np.ndarray:
    """Read an audio file (or a video's audio track) as float32 mono in [-1, 1] at `sample_rate`.

    Multichannel audio is averaged to mono, resampled with an exact rational ratio. With validate=True the
    result goes through `validate_audio` (empty / silent / too short / NaN raise MediaError).
    align_to_video=True (video files): sample 0 is the time of the first video frame, i.e. the same clock as
    `read_video`'s frame 0 (audio that starts later is zero-padded, earlier audio is cut).
    """
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"load_audio({os.fspath(path)!r}): sample_rate {sample_rate!r} must be a positive integer")
    path = os.fspath(path)
    wav, native, offset = _decode(path)
    wav = resample_audio(wav, native, int(sample_rate))
    shift = int(round(offset * sample_rate)) if align_to_video else 0
    if shift > 0:
        wav = np.concatenate([np.zeros(shift, np.float32), wav])
    elif shift < 0:
        wav = wav[-shift:]
    if validate:
        wav = validate_audio(wav, sample_rate, name=path, min_seconds=min_seconds, silence_peak=silence_peak)
    elif wav.size and not np.isfinite(wav).all():
        raise media_error(path, "decoded audio contains NaN/Inf", "re-export the file")
    # Lossy decoders and resampling overshoot full scale slightly; the contract is [-1, 1].
    return np.clip(wav, -1.0, 1.0)


def audio_to_int16(wav: np.ndarray, name: str | os.PathLike | None = None) -> np.ndarray:
    """float [-1, 1] (clipped) or int16 -> int16 PCM, shape kept; NaN/Inf and other dtypes are MediaErrors."""
    wav = np.asarray(wav)
    if wav.dtype == np.int16:
        return wav
    if not np.issubdtype(wav.dtype, np.floating):
        raise media_error(name, f"audio has dtype {wav.dtype}", "pass float audio in [-1, 1] or int16 PCM")
    if not np.isfinite(wav).all():
        raise media_error(name, "audio contains NaN/Inf", "fix the code that produced it before writing")
    # Scale by 32768 (the reader's divisor) so a write/read round trip is exact to half an LSB; +1.0 saturates.
    return np.clip(np.round(wav.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def write_wav(path: str | os.PathLike, wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM wav atomically. `wav` is (n,) mono or (n, channels), float in [-1, 1] or int16."""
    path = os.fspath(path)
    wav = np.asarray(wav)
    if wav.ndim not in (1, 2) or wav.size == 0:
        raise media_error(path, f"audio to write has shape {wav.shape}", "pass a non-empty (samples,) or "
                          "(samples, channels) array")
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise MediaError(f"{path}: sample_rate {sample_rate!r} is not a positive integer; pass e.g. 16000",
                         source=path)
    pcm = audio_to_int16(wav, path)
    channels = 1 if pcm.ndim == 1 else pcm.shape[1]
    with atomic_write(path, "wb") as f:
        with wave.open(f, "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(2)
            w.setframerate(int(sample_rate))
            w.writeframes(np.ascontiguousarray(pcm, dtype="<i2").tobytes())
