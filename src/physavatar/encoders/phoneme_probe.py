"""Does an audio encoder separate phonemes? A cross-voice vowel probe on espeak-ng speech.

For each voice we synthesise consonant-vowel syllables (6 consonants x 6 vowels), trim and join them with
short pauses into one utterance, encode it, and take the feature of the video frame at each vowel's
centre (the loudest frame of the syllable's second half: the vowel, not the consonant onset). A linear
probe is then trained on all voices but one and tested on the held-out voice (leave-one-voice-out), so the
score measures vowel identity that generalises across speakers, not speaker memorisation.
Two classifiers, both closed-form on z-scored features: nearest class centroid, and ridge regression to
one-hot labels (a linear probe). Used by tests/test_encoders_audio_probe.py and benchmarks/bench_encoders.py.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from physavatar.constants import SAMPLE_RATE, SAMPLES_PER_FRAME

# espeak-ng phoneme mnemonics: close front, open-mid front, open back, open-mid back, close back, mid central.
VOWELS = ("i:", "E", "A:", "O:", "u:", "V")
CONSONANTS = ("b", "d", "g", "m", "s", "k")
VOICES = ("en-us", "en-us+f2", "en-gb+m3", "en-gb-scotland+f4", "en-029+m5", "en-gb-x-rp+f3")
GAP_S = 0.2


@dataclass
class ProbeUtterance:
    voice: str
    audio: np.ndarray  # float32 16 kHz
    vowel_frames: np.ndarray  # (N,) video-frame index of each vowel centre
    labels: np.ndarray  # (N,) index into VOWELS


def synthesize(text: str, voice: str, rate_wpm: int = 140) -> np.ndarray:
    """espeak-ng -> float32 mono 16 kHz (espeak speaks at 22.05 kHz; resampled by 160/441 exactly)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise FileNotFoundError("espeak-ng is not installed; the phoneme probe needs it (apt install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run([exe, "-v", voice, "-s", str(rate_wpm), "-w", str(wav), text], check=True,
                       capture_output=True, timeout=30)
        audio, sr = sf.read(wav, dtype="float32")
    if sr != 22050:
        raise RuntimeError(f"espeak-ng wrote {sr} Hz audio; expected 22050")
    return resample_poly(audio, 160, 441).astype(np.float32)


def _frame_rms(audio: np.ndarray) -> np.ndarray:
    n = len(audio) // SAMPLES_PER_FRAME
    return np.sqrt((audio[: n * SAMPLES_PER_FRAME].reshape(n, -1) ** 2).mean(axis=1) + 1e-12)


def make_utterance(voice: str, vowels=VOWELS, consonants=CONSONANTS, seed: int = 0) -> ProbeUtterance:
    """All C+V syllables of one voice in a shuffled order, each trimmed of silence, joined by GAP_S pauses."""
    rng = np.random.default_rng(seed)
    pairs = [(c, v) for c in consonants for v in range(len(vowels))]
    order = rng.permutation(len(pairs))
    pieces, frames, labels = [], [], []
    gap = np.zeros(int(GAP_S * SAMPLE_RATE), np.float32)
    pos = len(gap)
    pieces.append(gap)
    for i in order:
        cons, v = pairs[i]
        syl = synthesize(f"[[{cons}{vowels[v]}]]", voice)
        loud = np.flatnonzero(np.abs(syl) > 0.02 * np.abs(syl).max())
        syl = syl[loud[0]:loud[-1] + 1]
        # Align the syllable to a video-frame boundary so frame indices are exact.
        syl = np.pad(syl, (0, (-len(syl)) % SAMPLES_PER_FRAME))
        rms = _frame_rms(syl)
        half = len(rms) // 2
        centre = half + int(np.argmax(rms[half:]))
        frames.append(pos // SAMPLES_PER_FRAME + centre)
        labels.append(v)
        pieces += [syl, gap]
        pos += len(syl) + len(gap)
    return ProbeUtterance(voice, np.concatenate(pieces), np.array(frames), np.array(labels))


def _zscore(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sd = train.mean(0), train.std(0) + 1e-6
    return (train - mu) / sd, (test - mu) / sd


def nearest_centroid(train_x, train_y, test_x, num_classes: int) -> np.ndarray:
    train_x, test_x = _zscore(train_x, test_x)
    centroids = np.stack([train_x[train_y == c].mean(0) for c in range(num_classes)])
    d = ((test_x[:, None, :] - centroids[None]) ** 2).sum(-1)
    return d.argmin(1)


def ridge_probe(train_x, train_y, test_x, num_classes: int, lam: float = 10.0) -> np.ndarray:
    """Linear probe: ridge regression onto one-hot labels, solved in the dual (few samples, many channels)."""
    train_x, test_x = _zscore(train_x, test_x)
    onehot = np.eye(num_classes)[train_y]
    gram = train_x @ train_x.T
    alpha = np.linalg.solve(gram + lam * np.eye(len(gram)), onehot - onehot.mean(0))
    return (test_x @ train_x.T @ alpha).argmax(1)


def cross_voice_accuracy(feats: list[np.ndarray], labels: list[np.ndarray], num_classes: int) -> dict[str, float]:
    """Leave-one-voice-out accuracy of both classifiers; feats[i]: (N_i, C) for voice i."""
    scores = {"nearest_centroid": [], "ridge": []}
    for held in range(len(feats)):
        tr_x = np.concatenate([f for i, f in enumerate(feats) if i != held])
        tr_y = np.concatenate([l for i, l in enumerate(labels) if i != held])
        for name, clf in (("nearest_centroid", nearest_centroid), ("ridge", ridge_probe)):
            pred = clf(tr_x, tr_y, feats[held], num_classes)
            scores[name].append(float((pred == labels[held]).mean()))
    return {k: float(np.mean(v)) for k, v in scores.items()}


def run_probe(encoders: dict, voices=VOICES, vowels=VOWELS, consonants=CONSONANTS) -> dict[str, dict[str, float]]:
    """{encoder label: {classifier: accuracy}} for each encoder (objects with `.encode(audio)`)."""
    utts = [make_utterance(v, vowels, consonants, seed=i) for i, v in enumerate(voices)]
    results = {}
    for label, encoder in encoders.items():
        feats = [encoder.encode(u.audio).features[u.vowel_frames] for u in utts]
        results[label] = cross_voice_accuracy(feats, [u.labels for u in utts], len(vowels))
    results["chance"] = {"nearest_centroid": 1 / len(vowels), "ridge": 1 / len(vowels)}
    return results
