"""MFCCs exactly as `python_speech_features.mfcc` with its defaults (what SyncNet's audio stream was trained on).

25 ms windows every 10 ms, pre-emphasis 0.97, 512-point power spectrum, 26 mel filters, log, orthonormal
DCT-II, 13 cepstra, lifter 22, c0 replaced by the log frame energy. Reimplemented (≈ 40 lines) instead of
adding the dependency; syncnet_python feeds it int16-scaled samples, so callers pass audio × 32768.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.fft import dct


def _hz2mel(hz):
    return 2595 * np.log10(1 + hz / 700.0)


def _mel2hz(mel):
    return 700 * (10 ** (mel / 2595.0) - 1)


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def mel_filterbank(nfilt: int = 26, nfft: int = 512, samplerate: int = 16000) -> np.ndarray:
    melpoints = np.linspace(_hz2mel(0.0), _hz2mel(samplerate / 2), nfilt + 2)
    bins = np.floor((nfft + 1) * _mel2hz(melpoints) / samplerate)
    fb = np.zeros((nfilt, nfft // 2 + 1))
    for j in range(nfilt):
        for i in range(int(bins[j]), int(bins[j + 1])):
            fb[j, i] = (i - bins[j]) / (bins[j + 1] - bins[j])
        for i in range(int(bins[j + 1]), int(bins[j + 2])):
            fb[j, i] = (bins[j + 2] - i) / (bins[j + 2] - bins[j + 1])
    return fb


def mfcc(signal: np.ndarray, samplerate: int = 16000, winlen: float = 0.025, winstep: float = 0.01,
         numcep: int = 13, nfilt: int = 26, nfft: int = 512, preemph: float = 0.97, ceplifter: int = 22) -> np.ndarray:
    """(N,) samples -> (num_frames, numcep) MFCCs; num_frames = 1 + ceil((N − 400) / 160) at 16 kHz."""
    sig = np.asarray(signal, dtype=np.float64).reshape(-1)
    sig = np.append(sig[0], sig[1:] - preemph * sig[:-1])
    frame_len, frame_step = _round_half_up(winlen * samplerate), _round_half_up(winstep * samplerate)
    n = 1 if len(sig) <= frame_len else 1 + int(math.ceil((len(sig) - frame_len) / frame_step))
    padded = np.concatenate([sig, np.zeros((n - 1) * frame_step + frame_len - len(sig))])
    idx = np.arange(frame_len)[None, :] + frame_step * np.arange(n)[:, None]
    frames = padded[idx]
    pspec = np.abs(np.fft.rfft(frames, nfft)) ** 2 / nfft
    energy = pspec.sum(1)
    energy = np.where(energy == 0, np.finfo(float).eps, energy)
    feat = pspec @ mel_filterbank(nfilt, nfft, samplerate).T
    feat = np.where(feat == 0, np.finfo(float).eps, feat)
    feat = dct(np.log(feat), type=2, axis=1, norm="ortho")[:, :numcep]
    if ceplifter > 0:
        feat = feat * (1 + (ceplifter / 2.0) * np.sin(np.pi * np.arange(numcep) / ceplifter))
    feat[:, 0] = np.log(energy)
    return feat
