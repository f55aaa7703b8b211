"""Measurements behind the heuristic planner: what the audio and reference image objectively show.

Audio: speech segments and pauses (silero-vad, shipped weights), loudness (dBFS over speech), pitch (F0 by
normalised autocorrelation), intonation range and final contour, speech rate (syllable nuclei per second
of speech). Image: face position and size (OpenCV's shipped Haar cascade), smile, lighting, and the named
dominant colours of the outfit (below the face) and the background (the borders).
All functions are pure apart from loading the two small shipped models once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from physavatar.constants import SAMPLE_RATE

HOP = 160  # 10 ms analysis hop
WIN = 800  # 50 ms window: three periods of the lowest F0 (60 Hz)
F0_MIN, F0_MAX = 60.0, 400.0


@dataclass
class AudioMeasures:
    duration_s: float
    speech_s: float
    pauses: int  # silences >= 0.3 s between speech segments
    vad: str  # "silero" or "energy" (fallback when silero misses clearly voiced audio, e.g. synthetic voices)
    loudness_dbfs: float  # RMS level of the speech parts
    loudness_std_db: float  # spread of 10-ms levels within speech (volume variation)
    f0_median_hz: float  # nan when nothing is voiced
    f0_range_st: float  # 10th-90th percentile F0 span, semitones
    f0_end_slope_st: float  # F0 slope over the last voiced second, semitones / s
    syllable_rate: float  # energy peaks per second of speech


@dataclass
class ImageMeasures:
    width: int  # of the analysed image (downscaled to <= 640 px on its long side)
    height: int
    face: tuple[int, int, int, int] | None  # x, y, w, h of the largest face, in the analysed image
    smiling: bool | None
    brightness: float  # mean luma 0..1
    warmth: float  # mean (R - B) / 255
    outfit_colour: str
    background_colour: str


@lru_cache(maxsize=1)
def _vad_model():
    from silero_vad import load_silero_vad

    return load_silero_vad(onnx=True)


def speech_segments(audio: np.ndarray) -> list[tuple[int, int]]:
    """Speech (start, end) sample ranges by silero-vad."""
    import torch
    from silero_vad import get_speech_timestamps

    peak = float(np.abs(audio).max()) if len(audio) else 0.0
    if peak < 1e-4:
        return []
    # Silero's scores depend on level; quiet recordings are normalised (for the VAD only).
    scaled = audio * min(0.5 / peak, 1000.0) if peak < 0.5 else audio
    stamps = get_speech_timestamps(torch.from_numpy(np.ascontiguousarray(scaled, np.float32)), _vad_model(),
                                   sampling_rate=SAMPLE_RATE)
    return [(int(s["start"]), int(s["end"])) for s in stamps]


def energy_segments(audio: np.ndarray, min_silence_s: float = 0.1) -> list[tuple[int, int]]:
    """Speech ranges by a level gate (35 dB below the loudest 10-ms frame), gaps < min_silence_s bridged."""
    frames = _frames(audio, HOP, HOP)
    level = 10 * np.log10((frames ** 2).mean(axis=1) + 1e-10)
    active = level > max(level.max() - 35, -60)
    segments, start, silent = [], None, 0
    for i, a in enumerate(active):
        if a:
            start = i if start is None else start
            silent = 0
        elif start is not None:
            silent += 1
            if silent * HOP >= min_silence_s * SAMPLE_RATE:
                segments.append((start * HOP, (i - silent + 1) * HOP))
                start, silent = None, 0
    if start is not None:
        segments.append((start * HOP, (len(active) - silent) * HOP))
    return segments


def _frames(audio: np.ndarray, win: int = WIN, hop: int = HOP) -> np.ndarray:
    if len(audio) < win:
        audio = np.pad(audio, (0, win - len(audio)))
    return np.lib.stride_tricks.sliding_window_view(audio, win)[::hop]


def pitch_track(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(f0 Hz per 10-ms frame, voiced mask) from the normalised autocorrelation peak in 60-400 Hz."""
    frames = _frames(audio) * np.hanning(WIN)
    frames = frames - frames.mean(axis=1, keepdims=True)
    spec = np.fft.rfft(frames, n=2048, axis=1)
    acf = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :WIN]
    acf = acf / np.maximum(acf[:, :1], 1e-12)
    # Correct the window's own taper so long lags are not penalised (Boersma 1993).
    win_acf = np.fft.irfft(np.abs(np.fft.rfft(np.hanning(WIN), n=2048)) ** 2)[:WIN]
    acf = acf / np.maximum(win_acf / win_acf[0], 1e-3)
    lo, hi = int(SAMPLE_RATE / F0_MAX), int(SAMPLE_RATE / F0_MIN)
    lag = lo + acf[:, lo:hi].argmax(axis=1)
    peak = acf[np.arange(len(acf)), lag]
    level = 10 * np.log10((frames ** 2).mean(axis=1) + 1e-12)
    voiced = (peak > 0.6) & (level > level.max() - 35)
    return SAMPLE_RATE / lag, voiced


def measure_audio(audio: np.ndarray) -> AudioMeasures:
    from scipy.signal import find_peaks

    duration = len(audio) / SAMPLE_RATE
    segments, vad = speech_segments(audio), "silero"
    f0, voiced = pitch_track(audio)
    voiced_at = np.flatnonzero(voiced) * HOP + WIN // 2  # centre sample of each periodic (voiced) frame
    covered = sum(((voiced_at >= s) & (voiced_at < e)).sum() for s, e in segments)
    if len(voiced_at) >= 20 and covered < 0.7 * len(voiced_at):
        # Silero is trained on natural speech and can miss robotic/synthetic voices (partly or entirely);
        # when it leaves most clearly periodic frames outside its segments, an energy gate describes the
        # audio better than silence would. Recorded in `vad`.
        segments, vad = energy_segments(audio), "energy"
    speech = np.zeros(len(audio), bool)
    for s, e in segments:
        speech[s:e] = True
    gaps = [(b[0] - a[1]) / SAMPLE_RATE for a, b in zip(segments[:-1], segments[1:])]
    pauses = sum(g >= 0.3 for g in gaps)
    speech_s = speech.sum() / SAMPLE_RATE

    frames = _frames(audio, 160, 160)
    level = 10 * np.log10((frames ** 2).mean(axis=1) + 1e-10)  # 10-ms dBFS
    in_speech = speech[: len(frames) * 160].reshape(-1, 160).any(axis=1) if len(frames) * 160 <= len(audio) \
        else np.ones(len(frames), bool)
    sel = in_speech if in_speech.any() else np.ones(len(frames), bool)
    rms = np.sqrt((audio[speech] ** 2).mean()) if speech.any() else np.sqrt((audio ** 2).mean())
    loud = 20 * np.log10(rms + 1e-10)
    loud_std = float(np.std(level[sel][level[sel] > loud - 30])) if (level[sel] > loud - 30).any() else 0.0

    n = min(len(f0), len(in_speech))
    voiced = voiced[:n] & (in_speech[:n] if in_speech.any() else True)
    f0v = f0[:n][voiced]
    if len(f0v) >= 5:
        st = 12 * np.log2(f0v / np.median(f0v))
        f0_med, f0_range = float(np.median(f0v)), float(np.percentile(st, 90) - np.percentile(st, 10))
        idx = np.flatnonzero(voiced)
        last = idx[idx >= idx[-1] - 100]  # voiced frames in the last second of voicing
        slope = float(np.polyfit(last / 100.0, 12 * np.log2(f0[:n][last] / np.median(f0v)), 1)[0]) \
            if len(last) >= 10 else 0.0
    else:
        f0_med, f0_range, slope = float("nan"), 0.0, 0.0

    # Syllable nuclei: peaks of the 50-ms smoothed level inside speech, >= 100 ms apart, 3 dB prominent.
    smooth = np.convolve(level, np.ones(5) / 5, mode="same")
    peaks, _ = find_peaks(np.where(sel, smooth, smooth.min()), distance=10, prominence=3.0)
    peaks = peaks[smooth[peaks] > loud - 20]
    rate = len(peaks) / speech_s if speech_s > 0.2 else 0.0
    return AudioMeasures(duration, float(speech_s), int(pauses), vad, float(loud), loud_std, f0_med, f0_range, slope,
                         float(rate))


# ---- image --------------------------------------------------------------------------------------------

@lru_cache(maxsize=2)
def _cascade(name: str):
    """An OpenCV Haar cascade, or None where this OpenCV has none: the plan then lacks the face cues, with a
    warning."""
    import warnings

    from physavatar.io.image import haar_cascade

    cascade = haar_cascade(name)
    if cascade is None:
        import cv2

        warnings.warn(f"OpenCV {cv2.__version__} has no {name}: the planner describes the image without face "
                      "detection; pip install opencv-contrib-python for the face cues", stacklevel=2)
    return cascade


def colour_name(rgb) -> str:
    """A plain colour word for an RGB triple (0-255), from its hue, saturation and value."""
    import colorsys

    h, s, v = colorsys.rgb_to_hsv(*(np.asarray(rgb, float) / 255.0))
    if v < 0.18:
        return "black"
    if s < 0.18:
        return "white" if v > 0.85 else ("light grey" if v > 0.55 else "grey" if v > 0.3 else "dark grey")
    hue = h * 360
    if (hue < 40 or hue >= 345) and v < 0.6 and s > 0.3:
        return "brown" if hue < 40 else "dark red"
    for limit, name in ((12, "red"), (40, "orange"), (70, "yellow"), (165, "green"), (195, "teal"),
                        (255, "blue"), (290, "purple"), (345, "pink"), (361, "red")):
        if hue < limit:
            return name
    return "red"


def dominant_colour(pixels: np.ndarray) -> str:
    """Name of the largest of 3 k-means colour clusters of (N, 3) uint8 pixels."""
    import cv2

    pixels = pixels.reshape(-1, 3).astype(np.float32)
    if len(pixels) > 4000:
        pixels = pixels[np.random.default_rng(0).choice(len(pixels), 4000, replace=False)]
    if len(pixels) < 3:
        return "unknown"
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    cv2.setRNGSeed(0)
    _, labels, centres = cv2.kmeans(pixels, 3, None, crit, 2, cv2.KMEANS_PP_CENTERS)
    return colour_name(centres[np.bincount(labels.ravel(), minlength=3).argmax()])


def measure_image(image) -> ImageMeasures:
    import cv2

    image = image.convert("RGB")
    if max(image.size) > 640:  # measurements are relative; a bounded size keeps the cascades fast
        scale = 640 / max(image.size)
        image = image.resize((max(16, round(image.width * scale)), max(16, round(image.height * scale))))
    rgb = np.asarray(image)
    h, w = rgb.shape[:2]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    gray_eq = cv2.equalizeHist(gray)
    detector = _cascade("haarcascade_frontalface_default.xml")
    faces = () if detector is None else detector.detectMultiScale(
        gray_eq, scaleFactor=1.1, minNeighbors=5, minSize=(max(12, min(h, w) // 12),) * 2)
    face, smiling = None, None
    if len(faces):
        fx, fy, fw, fh = (int(v) for v in max(faces, key=lambda f: f[2] * f[3]))
        face = (fx, fy, fw, fh)
        mouth = gray_eq[fy + fh // 2: fy + fh, fx: fx + fw]
        smile_detector = _cascade("haarcascade_smile.xml")
        if smile_detector is not None:
            smiles = smile_detector.detectMultiScale(mouth, 1.5, 15, minSize=(fw // 4, fh // 8))
            smiling = bool(len(smiles))
        # Haar boxes cover brow to mouth; the neck and hair lie within ~0.7 face heights below the box.
        top, bottom = min(h, fy + int(1.7 * fh)), min(h, fy + int(3.5 * fh))
        left, right = max(0, fx - fw // 2), min(w, fx + fw + fw // 2)
    else:  # no face: take the lower middle of the frame as the body
        top, bottom, left, right = h // 2, h, w // 4, 3 * w // 4
    outfit = rgb[top:bottom, left:right] if bottom > top + 2 and right > left + 2 else rgb[h // 2:, w // 4: 3 * w // 4]
    b = max(2, min(h, w) // 8)
    mask = np.zeros((h, w), bool)
    mask[:b], mask[:, :b], mask[:, -b:] = True, True, True
    if face is not None:  # keep the person out of the background sample
        fx, fy, fw, fh = face
        mask[max(0, fy - fh // 2):, max(0, fx - fw): fx + 2 * fw] = False
    background = rgb[mask] if mask.any() else rgb[:b].reshape(-1, 3)
    return ImageMeasures(w, h, face, smiling, float(gray.mean() / 255.0),
                         float((rgb[..., 0].astype(float) - rgb[..., 2]).mean() / 255.0),
                         dominant_colour(outfit), dominant_colour(background))
