"""Exact sample <-> frame <-> latent arithmetic."""

import numpy as np
import pytest

from physavatar.constants import SAMPLES_PER_FRAME
from physavatar.io.timing import (
    frame_sample_range, frames_for_latents, frames_for_samples, frames_for_seconds, latent_frame_range,
    latent_sample_range, latents_for_frames, pad_or_trim_audio, samples_for_frames, samples_for_latents,
    valid_num_frames,
)


def test_defaults_are_640_samples_per_frame():
    assert samples_for_frames(1) == SAMPLES_PER_FRAME == 640
    assert samples_for_frames(81) == 81 * 640
    assert frames_for_samples(81 * 640) == 81
    assert frames_for_samples(81 * 640 - 1) == 80
    assert frames_for_samples(81 * 640 - 1, rounding="ceil") == 81
    assert frames_for_samples(80 * 640 + 320, rounding="round") == 81
    assert frames_for_samples(80 * 640 + 319, rounding="round") == 80


def test_non_integer_ratio_tiles_without_drift():
    # 16 kHz at 30 fps is 533.33 samples a frame: boundaries must tile exactly and never drift
    n = 30 * 3600  # an hour of frames
    bounds = [frame_sample_range(k, 16000, 30) for k in range(0, n, 997)]
    for k, (a, b) in zip(range(0, n, 997), bounds):
        assert a == round(k * 16000 / 30) and b - a in (533, 534)
    starts = [frame_sample_range(k, 16000, 30)[0] for k in range(100)]
    ends = [frame_sample_range(k, 16000, 30)[1] for k in range(100)]
    assert starts[1:] == ends[:-1]
    assert samples_for_frames(n, 16000, 30) == 16000 * 3600
    assert frames_for_samples(samples_for_frames(12345, 44100, 30), 44100, 30) == 12345


def test_latents_follow_the_wan_vae():
    assert latents_for_frames(81) == 21 and frames_for_latents(21) == 81
    assert latent_frame_range(0) == (0, 1) and latent_frame_range(1) == (1, 5) and latent_frame_range(20) == (77, 81)
    covered = [f for j in range(21) for f in range(*latent_frame_range(j))]
    assert covered == list(range(81))  # every video frame in exactly one latent
    assert latent_sample_range(1) == (640, 5 * 640)
    assert samples_for_latents(21) == 81 * 640
    assert valid_num_frames(100) == 97 and valid_num_frames(100, "ceil") == 101 and valid_num_frames(81) == 81
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        latents_for_frames(80)
    with pytest.raises(ValueError):
        frames_for_latents(0)


def test_frames_for_seconds_and_bad_arguments():
    assert frames_for_seconds(0.9) == round(0.9 * 25) and frames_for_seconds(3.24) == 81
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError):
            samples_for_frames(bad)
    with pytest.raises(ValueError):
        frames_for_samples(10, 0)
    with pytest.raises(ValueError):
        frames_for_samples(10, rounding="up")
    with pytest.raises(ValueError):
        frames_for_seconds(float("nan"))


def test_pad_or_trim_audio():
    wav = np.arange(1000, dtype=np.float32)
    out = pad_or_trim_audio(wav, 2)
    assert out.shape == (1280,) and np.array_equal(out[:1000], wav) and not out[1000:].any()
    assert np.array_equal(pad_or_trim_audio(wav, 1), wav[:640])
    batch = np.ones((2, 3, 700))
    assert pad_or_trim_audio(batch, 1).shape == (2, 3, 640)
    with pytest.raises(ValueError):
        pad_or_trim_audio(np.float32(1.0), 1)
