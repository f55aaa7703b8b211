"""Audio -> behaviour: per-frame motion controls of a talking person, driven only by the waveform.

Only the audio is used (not the text or the pause list), so any 16 kHz speech can drive a world avatar.
The mapping is many-to-one-ish: the audio fixes *when* things happen (mouth follows energy, emphasis
triggers nods, brow raises and beat gestures, pauses bring rest); the identity's `Style` and the clip
seed decide *how much* and *which* (which hand, how far, which emphases gesture, when blinks fall).

    features = audio_features(wav)                (F,) energy, voiced, brightness + emphasis frames
    motion = drive(features, style, seed)         (F,) controls, consumed by world.body.pose_keypoints
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

from physavatar.constants import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from physavatar.world.identity import Style


@dataclass
class AudioFeatures:
    rms: np.ndarray  # (F,) linear RMS of each frame's 640 samples (the raw speech envelope)
    energy: np.ndarray  # (F,) log energy mapped to [0, 1] (0 = 30 dB below the clip's loud level)
    voiced: np.ndarray  # (F,) bool: the frame holds speech
    brightness: np.ndarray  # (F,) spectral centroid mapped to [0, 1] (0 ~ "oo", 1 ~ "ee"/"s")
    emphasis: np.ndarray  # (E,) int frame indices of stressed / energetic syllables


@dataclass
class Motion:
    mouth_open: np.ndarray  # (F,) 0 closed .. 1 wide open; exactly 0 on unvoiced frames
    mouth_width: np.ndarray  # (F,) -1 rounded .. +1 spread
    head: np.ndarray  # (F, 3) pitch (nod, + = down), yaw, roll in radians
    brow: np.ndarray  # (F,) eyebrow raise in head units
    blink: np.ndarray  # (F,) eyelid closure 0 open .. 1 shut
    lift: np.ndarray  # (F, 2) left, right hand: 0 rest .. 1 full gesture
    reach: np.ndarray  # (F, 2, 2) gesture target offsets (outward, up) in head units per hand
    beat: np.ndarray  # (F, 2) downward beat stroke of each wrist, head units
    curl: np.ndarray  # (F, 2) finger curl 0 open .. 1 fist
    sway: np.ndarray  # (F, 2) torso offset (x, y) in head units


def _frames(wav: np.ndarray) -> np.ndarray:
    wav = np.asarray(wav, np.float32)
    if wav.ndim != 1:
        raise ValueError(f"audio has shape {wav.shape}; expected mono (samples,) at {SAMPLE_RATE} Hz")
    num_frames = len(wav) // SAMPLES_PER_FRAME
    if num_frames < 1:
        raise ValueError(f"audio has {len(wav)} samples; need at least one frame ({SAMPLES_PER_FRAME})")
    return wav[: num_frames * SAMPLES_PER_FRAME].reshape(num_frames, SAMPLES_PER_FRAME)


def audio_features(wav: np.ndarray) -> AudioFeatures:
    """Per-frame speech features of 16 kHz mono audio; frame t covers samples [640 t, 640 (t + 1))."""
    frames = _frames(wav)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    db = 20 * np.log10(rms + 1e-8)
    loud = np.percentile(db, 95)
    # Voiced: above an absolute floor (-55 dBFS) and within 35 dB of the clip's loud level.
    voiced = (db > -55.0) & (db > loud - 35.0)
    energy = np.clip((db - (loud - 30.0)) / 30.0, 0.0, 1.0) * voiced
    spec = np.abs(np.fft.rfft(frames * np.hanning(SAMPLES_PER_FRAME), axis=1)) ** 2
    freqs = np.fft.rfftfreq(SAMPLES_PER_FRAME, 1.0 / SAMPLE_RATE)
    centroid = (spec * freqs).sum(1) / (spec.sum(1) + 1e-12)
    brightness = np.clip((centroid - 400.0) / 2600.0, 0.0, 1.0) * voiced
    # Emphasis: peaks of the smoothed energy that are loud and rise steeply (syllable nuclei with stress).
    smooth = gaussian_filter1d(energy, 1.0)
    rise = smooth - np.concatenate([np.repeat(smooth[:1], 4), smooth[:-4]])
    peaks, _ = find_peaks(smooth, height=0.55, distance=6, prominence=0.12)
    emphasis = peaks[rise[peaks] > 0.15] if len(peaks) else peaks
    return AudioFeatures(rms.astype(np.float32), energy.astype(np.float32), voiced, brightness, emphasis)


def _bump(num_frames: int, centres, width: float, amps) -> np.ndarray:
    """Sum of smooth raised-cosine bumps (half width `width` frames) at `centres` with `amps`."""
    t = np.arange(num_frames)[:, None]
    d = (t - np.asarray(centres, float)[None, :]) / width
    return ((np.abs(d) < 1) * 0.5 * (1 + np.cos(np.pi * d)) * np.asarray(amps)[None, :]).sum(1)


def _smooth_noise(rng: np.random.Generator, num_frames: int, period_s: float) -> np.ndarray:
    """Band-limited noise of unit-ish amplitude: a few random sinusoids around `period_s`."""
    t = np.arange(num_frames) / FPS
    out = np.zeros(num_frames)
    for _ in range(3):
        f = 1.0 / (period_s * rng.uniform(0.6, 1.6))
        out += np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) / 3.0
    return out


def drive(features: AudioFeatures, style: Style, seed: int) -> Motion:
    """Motion controls for one clip; deterministic from (features, style, seed)."""
    rng = np.random.default_rng([seed, 0xBE4A])
    n = len(features.energy)
    voiced = features.voiced.astype(float)
    # Speaking activity over ~0.5 s: high inside phrases, falls to 0 in pauses (the body comes to rest).
    active = np.clip(gaussian_filter1d(voiced, 5.0) * 1.6, 0.0, 1.0)

    # 1. mouth: aperture follows energy (lip inertia: fast opening, slower closing), closed when unvoiced.
    target = style.mouth_gain * features.energy**1.3
    mouth = np.zeros(n)
    level = 0.0
    for t in range(n):
        level += (0.7 if target[t] > level else 0.45) * (target[t] - level)
        mouth[t] = level
    mouth = np.clip(mouth * features.voiced, 0.0, 1.0)
    width = np.clip(gaussian_filter1d((features.brightness - 0.45) * 2.2, 1.0), -1, 1) * features.voiced

    # 2. emphasis events -> nods, brow raises and beat gestures (which emphases act is the seed's choice).
    emph = features.emphasis
    strength = features.energy[emph] if len(emph) else np.zeros(0)
    nod_amp = style.head_amp * strength * rng.uniform(0.5, 1.2, len(emph))
    nod = _bump(n, emph + 2, 5.0, nod_amp)  # the nod lands just after the stressed syllable
    raised = rng.random(len(emph)) < 0.6
    brow = _bump(n, emph[raised], 7.0, style.brow_amp * rng.uniform(0.6, 1.2, raised.sum()))
    # Idle head motion, larger while speaking.
    amp = style.head_amp * (0.35 + 0.65 * active)
    head = np.stack(
        [
            nod + 0.4 * amp * _smooth_noise(rng, n, 2.5),
            0.9 * amp * _smooth_noise(rng, n, 3.0),
            0.45 * amp * _smooth_noise(rng, n, 3.5),
        ],
        axis=1,
    )

    # 3. blinks: a Poisson process; each blink closes over 2 frames and opens over 3.
    blink = np.zeros(n)
    t = rng.exponential(1.0 / style.blink_rate) * FPS * 0.5
    while t < n:
        k = int(t)
        for dt, v in zip(range(-2, 4), (0.4, 0.9, 1.0, 0.7, 0.35, 0.1)):
            if 0 <= k + dt < n:
                blink[k + dt] = max(blink[k + dt], v)
        t += max(6.0, rng.exponential(1.0 / style.blink_rate) * FPS)

    # 4. beat gestures: an emphasis lifts a hand (favoured one mostly) to a reach target and strokes down.
    lift_t = np.zeros((n, 2))
    reach = np.zeros((n, 2, 2))
    beats = np.zeros((n, 2))
    reach[:] = (0.4, 1.0)
    for k, s in zip(emph, strength):
        if rng.random() > style.gesture_rate:
            continue
        if style.favoured_hand == "both":
            hands = [0, 1] if rng.random() < 0.6 else [int(rng.integers(2))]
        else:
            fav = 0 if style.favoured_hand == "left" else 1
            hands = [fav] if rng.random() < 0.8 else [1 - fav]
        hold = int(rng.integers(10, 22))
        lo, hi = max(0, k - 4), min(n, k + hold)
        for h in hands:
            a = style.gesture_amp * (0.6 + 0.6 * s) * rng.uniform(0.7, 1.1)
            lift_t[lo:hi, h] = np.maximum(lift_t[lo:hi, h], min(1.0, a))
            reach[lo:hi, h] = (min(2.0, rng.uniform(-0.4, 1.4) * a), min(3.0, rng.uniform(1.4, 2.6) * a))
            beats[:, h] += _bump(n, [k], 3.0, [0.45 * a * s])
    lift = gaussian_filter1d(lift_t * active[:, None], 3.0, axis=0)
    reach = gaussian_filter1d(reach, 4.0, axis=0)
    beats *= active[:, None]
    curl = 0.6 - 0.5 * np.clip(lift, 0, 1) + 0.08 * np.stack(
        [_smooth_noise(rng, n, 1.5), _smooth_noise(rng, n, 1.7)], axis=1
    )
    sway = 0.12 * np.stack([_smooth_noise(rng, n, 4.0), 0.3 * _smooth_noise(rng, n, 3.0)], axis=1)
    sway[:, 1] += 0.08 * lift.max(axis=1)  # a small lean into the gesture
    return Motion(
        mouth_open=mouth.astype(np.float32),
        mouth_width=width.astype(np.float32),
        head=head.astype(np.float32),
        brow=brow.astype(np.float32),
        blink=blink.astype(np.float32),
        lift=np.clip(lift, 0, 1).astype(np.float32),
        reach=reach.astype(np.float32),
        beat=beats.astype(np.float32),
        curl=np.clip(curl, 0, 1).astype(np.float32),
        sway=sway.astype(np.float32),
    )


def neutral_motion(num_frames: int = 1) -> Motion:
    """The reference pose: mouth closed, eyes open, hands at rest, head straight."""
    z = lambda *shape: np.zeros((num_frames, *shape), np.float32)  # noqa: E731
    reach = z(2, 2)
    reach[:] = (0.4, 1.0)
    return Motion(
        mouth_open=z(), mouth_width=z(), head=z(3), brow=z(), blink=z(), lift=z(2), reach=reach,
        beat=z(2), curl=np.full((num_frames, 2), 0.6, np.float32), sway=z(2),
    )  # fmt: skip
