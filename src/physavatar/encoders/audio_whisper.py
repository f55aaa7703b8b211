"""Whisper audio tokens (paper §3.3): a transformers Whisper encoder loaded from a local folder.

Whisper's encoder sees fixed 30-s windows (3000 log-mel frames at 100 Hz -> 1500 states at 50 Hz). Longer
audio is cut into overlapping windows; every output frame is taken from windows in which it lies at least
`context_s` seconds from an inner window edge, and neighbouring windows are cross-faded over `crossfade_s`,
so there is no seam. Two 50 Hz states make exactly one 25 fps video frame (20 ms + 20 ms = 40 ms).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physavatar.constants import SAMPLE_RATE
from physavatar.encoders.backend import ModelFolderError, read_json, require_model_folder

WINDOW_S = 30.0  # Whisper's fixed input length
STATE_HZ = 50  # encoder states per second
STATES_PER_VIDEO_FRAME = 2  # 50 Hz / 25 fps


@dataclass(frozen=True)
class WhisperWindowing:
    """How audio longer than one 30-s window is split. Defaults keep >= 4 s of context on every side."""

    context_s: float = 4.0  # frames closer than this to an inner window edge are never used
    crossfade_s: float = 2.0  # linear blend between neighbouring windows

    def hop_s(self) -> float:
        return WINDOW_S - 2 * self.context_s - self.crossfade_s


def plan_windows(num_states: int, win: WhisperWindowing = WhisperWindowing()) -> list[tuple[int, np.ndarray]]:
    """Window starts (in 50 Hz states) and per-state blend weights; weights sum to 1 on every state.

    Pure function, so the seam handling is testable without a model. Window k covers states
    [start_k, start_k + 1500); inside the overlap with window k+1, the weight of k falls linearly from 1 to 0
    over `crossfade_s`, centred in the overlap.
    """
    n_win = int(WINDOW_S * STATE_HZ)
    if num_states <= n_win:
        return [(0, np.ones(num_states, np.float32))]
    hop = int(round(win.hop_s() * STATE_HZ))
    if hop <= 0:
        raise ValueError(f"windowing {win}: context and crossfade leave no hop inside a {WINDOW_S:.0f}-s window")
    starts = list(range(0, num_states - n_win, hop)) + [num_states - n_win]
    starts = sorted(set(starts))
    fade = max(1, int(round(win.crossfade_s * STATE_HZ)))
    t = np.arange(num_states, dtype=np.float64)
    # Blend position between windows k and k+1: centred in their overlap [start_{k+1}, start_k + n_win).
    ramps = []
    for a, b in zip(starts[:-1], starts[1:]):
        centre = (b + a + n_win) / 2.0
        ramps.append(np.clip((centre + fade / 2.0 - t) / fade, 0.0, 1.0))  # 1 before the fade, 0 after
    out = []
    for k, start in enumerate(starts):
        w = np.ones(num_states)
        if k > 0:
            w *= 1.0 - ramps[k - 1]
        if k < len(starts) - 1:
            w *= ramps[k]
        out.append((start, w[start:start + n_win].astype(np.float32)))
    return out


def states_to_video_frames(states: np.ndarray, num_frames: int) -> np.ndarray:
    """(T, C) 50 Hz states -> (num_frames, C): video frame i is the mean of states 2i and 2i+1.

    Missing trailing states (audio shorter than the video) repeat the last state rather than inventing zeros.
    """
    need = num_frames * STATES_PER_VIDEO_FRAME
    if states.shape[0] < need:
        pad = np.repeat(states[-1:], need - states.shape[0], axis=0)
        states = np.concatenate([states, pad], axis=0)
    pairs = states[:need].reshape(num_frames, STATES_PER_VIDEO_FRAME, -1)
    return pairs.mean(axis=1)


class WhisperAudioEncoder:
    """A Whisper encoder from a local transformers folder; `encode_states` -> (T, C * len(layers)) at 50 Hz.

    `layers` index hidden states: 0 = the embeddings (conv stem + positions), i = output of block i, and
    -1 (= num_layers) = the last block after the final layer norm (the usual "last_hidden_state").
    Several layers are concatenated along channels, in the order given.
    """

    def __init__(self, folder: str | os.PathLike, layers: tuple[int, ...] = (-1,), *, name: str | None = None,
                 windowing: WhisperWindowing = WhisperWindowing(), num_threads: int | None = None,
                 device: str = "cpu"):
        import torch
        from transformers import WhisperConfig, WhisperFeatureExtractor
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        folder = require_model_folder(folder, ["config.json"], "Whisper")
        if read_json(folder / "config.json").get("model_type") != "whisper":
            raise ModelFolderError(f"{folder}: config.json is not a Whisper config (model_type "
                                   f"{read_json(folder / 'config.json').get('model_type')!r}); give a Whisper folder")
        config = WhisperConfig.from_pretrained(folder)  # a local folder: nothing is fetched
        n = config.encoder_layers
        resolved = tuple(l % (n + 1) if -n - 1 <= l <= n else None for l in layers)
        if not layers or None in resolved:
            raise ValueError(f"Whisper layers {layers}: choose indices in [-{n + 1}, {n}] "
                             f"(0 = embeddings, {n} or -1 = final output) for this {n}-layer encoder")
        self.folder, self.layers, self.windowing = Path(folder), resolved, windowing
        self.num_threads = num_threads
        self.encoder = WhisperEncoder(config).eval()
        self.encoder.load_state_dict(_load_encoder_state(folder, self.encoder.state_dict().keys()), strict=True)
        self.encoder.to(device)  # float32 everywhere: features must not depend on the machine's dtype
        self.device = device
        self.feature_extractor = (
            WhisperFeatureExtractor.from_pretrained(folder) if (folder / "preprocessor_config.json").is_file()
            else WhisperFeatureExtractor(feature_size=config.num_mel_bins))
        if self.feature_extractor.feature_size != config.num_mel_bins:
            raise ModelFolderError(f"{folder}: preprocessor_config.json gives {self.feature_extractor.feature_size} "
                                   f"mel bins but the encoder expects {config.num_mel_bins}; fix the folder")
        self.dim = config.d_model * len(resolved)
        label = name or (folder.name if folder.name.lower().startswith("whisper") else f"whisper-{folder.name}")
        self.backend = f"{label}:layers={','.join(str(l) for l in layers)}"
        self._torch = torch

    def log_mel(self, window: np.ndarray) -> np.ndarray:
        """(samples <= 30 s,) -> (mel_bins, 3000) normalised log-mel, zero-padded to 30 s as Whisper expects."""
        feats = self.feature_extractor(window, sampling_rate=SAMPLE_RATE, return_tensors="np",
                                       padding="max_length")
        return feats["input_features"][0].astype(np.float32)

    def _encode_window(self, window: np.ndarray) -> np.ndarray:
        torch = self._torch
        mel = torch.from_numpy(self.log_mel(window))[None].to(self.device)  # (1, n_mels, 3000)
        enc, keep, last = self.encoder, sorted(set(self.layers)), max(self.layers)
        with torch.inference_mode():
            h = torch.nn.functional.gelu(enc.conv1(mel))
            h = torch.nn.functional.gelu(enc.conv2(h)).permute(0, 2, 1)  # (1, 1500, C)
            h = h + enc.embed_positions.weight[: h.shape[1]]
            states = {0: h} if 0 in keep else {}
            for i, layer in enumerate(enc.layers[:last], start=1):  # later blocks are never run
                h = layer(h, None)
                h = h[0] if isinstance(h, tuple) else h
                states[i] = h
            n = len(enc.layers)
            if n in keep:
                states[n] = enc.layer_norm(h)
            out = torch.cat([states[l] for l in self.layers], dim=-1)[0]  # (1500, C * len(layers))
        return out.cpu().numpy()

    def encode_states(self, audio: np.ndarray) -> np.ndarray:
        """(samples,) float32 16 kHz mono -> (T, dim) 50 Hz states, T = ceil(samples / 320)."""
        torch = self._torch
        num_states = max(1, math.ceil(len(audio) * STATE_HZ / SAMPLE_RATE))
        samples_per_state = SAMPLE_RATE // STATE_HZ
        out = np.zeros((num_states, self.dim), np.float32)
        threads = torch.get_num_threads()
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        try:
            for start, weight in plan_windows(num_states, self.windowing):
                seg = audio[start * samples_per_state:(start + len(weight)) * samples_per_state]
                states = self._encode_window(seg)[: len(weight)]
                out[start:start + len(states)] += weight[: len(states), None] * states
        finally:
            torch.set_num_threads(threads)
        return out


def _load_encoder_state(folder: Path, expected_keys) -> dict:
    """Encoder weights from model.safetensors / pytorch_model.bin (sharded too), any of the usual prefixes.

    Accepts checkpoints of WhisperForConditionalGeneration ("model.encoder."), WhisperModel ("encoder.")
    and a bare encoder (""); every key of the encoder must be present (missing ones raise).
    """
    import torch
    from safetensors import safe_open

    files = sorted(folder.glob("model*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
    if not files:
        raise ModelFolderError(f"{folder}: no model.safetensors or pytorch_model.bin; give a Whisper folder "
                               "saved by transformers' save_pretrained")
    raw: dict = {}
    for f in files:
        if f.suffix == ".safetensors":  # read only encoder tensors: large-v3's decoder is ~half the file
            with safe_open(str(f), framework="pt") as st:
                raw.update({k: st.get_tensor(k) for k in st.keys() if "decoder" not in k})
        else:
            raw.update(torch.load(f, map_location="cpu", weights_only=True))
    expected = set(expected_keys)
    for prefix in ("model.encoder.", "encoder.", ""):
        state = {k[len(prefix):]: v.float() for k, v in raw.items() if k.startswith(prefix)}
        if expected <= set(state):
            return {k: state[k] for k in expected}
    have = sorted(k for k in raw if "encoder" in k)[:5]
    raise ModelFolderError(f"{folder}: the checkpoint does not hold a complete Whisper encoder matching "
                           f"config.json (first encoder keys found: {have}); give a matching folder")
