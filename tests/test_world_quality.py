"""The demo's quality measures (evaluation/world_quality.py) on ground-truth world renderings."""

import numpy as np
import pytest

from physavatar.evaluation import world_quality as wq
from physavatar.world.clip import drive_avatar
from physavatar.world.identity import make_identity
from physavatar.world.speech import make_speech


@pytest.fixture(scope="module")
def clip():
    speech = make_speech(seed=3, num_frames=100, language="en")
    return drive_avatar(make_identity(5), speech.wav, clip_seed=1), speech


def test_mouth_area_follows_the_speech_and_finds_a_known_offset(clip):
    truth, speech = clip
    area = wq.mouth_area(truth.frames, truth.keypoints, truth.identity.framing.unit)
    pauses = wq.pause_frames(truth.wav, len(area))
    assert pauses.any() and not pauses.all()
    assert area[~pauses].mean() > 3 * area[pauses].mean()  # open while talking, (nearly) shut in pauses
    same = wq.lip_sync(area, area)
    assert same["corr"] == pytest.approx(1.0) and same["offset_frames"] == 0
    late = np.concatenate([np.zeros(3, area.dtype), area[:-3]])  # a video 3 frames behind its audio
    found = wq.lip_sync(late, area)
    assert found["offset_frames"] == 3 and found["best_corr"] > found["corr"]
    # a still face does not correlate with anything
    assert wq.lip_sync(np.zeros_like(area), area) == {"corr": 0.0, "best_corr": 0.0, "offset_frames": None}
    assert wq.silence(area, pauses)["pause_open_ratio"] < 0.3
    # the blur-tolerant measure follows the same opening, also through a strong blur
    import cv2

    unit = truth.identity.framing.unit
    dark = wq.mouth_darkness(truth.frames, truth.keypoints, unit)
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 1.5) for f in truth.frames])
    assert wq.lip_sync(dark, area)["corr"] > 0.8
    assert wq.lip_sync(wq.mouth_darkness(blurred, truth.keypoints, unit), area)["corr"] > 0.6
    assert wq.mouth_area(blurred, truth.keypoints, unit).max() < area.max() / 2  # the exact colour is lost
    assert wq.silence(np.full_like(area, area.mean()), pauses)["pause_open_ratio"] == pytest.approx(1.0)


def test_pause_frames_need_a_long_enough_quiet_run():
    wav = np.concatenate([np.ones(640 * 10), np.zeros(640 * 3), np.ones(640 * 5), np.zeros(640 * 12)]) * 0.5
    pauses = wq.pause_frames(wav.astype(np.float32), 30)
    assert not pauses[:18].any()  # the 3-frame gap is not a pause
    assert pauses[20:30].all() and not pauses[18:20].any()  # the mouth gets 2 frames to close


def test_reference_similarity_drift_and_motion(clip):
    truth, _ = clip
    sim = wq.reference_similarity(truth.frames, truth.reference)
    assert sim["hist_corr"].min() > 0.9 and sim["psnr"].mean() > 20  # the truth looks like its reference
    noise = np.random.default_rng(0).integers(0, 256, truth.frames.shape, dtype=np.uint8)
    other = wq.reference_similarity(noise, truth.reference)
    assert other["hist_corr"].mean() < 0.5 and other["psnr"].mean() < sim["psnr"].mean() - 10
    fading = np.concatenate([truth.frames[:40], noise[40:]])
    d = wq.drift(wq.reference_similarity(fading, truth.reference)["psnr"], 33)
    assert d["drop"] > 10 and d["first_chunk"] > d["last_chunk"]
    moving = wq.motion_stats(truth.keypoints)
    still = wq.motion_stats(np.repeat(truth.keypoints[:1], len(truth.keypoints), axis=0))
    assert moving["wrist_speed_mean"] > 0 and still["wrist_speed_mean"] == 0 and still["wrist_position_std"] == 0
    assert wq.pixel_motion(truth.frames) > 0 == wq.pixel_motion(truth.frames[:1].repeat(5, 0))


def test_hand_skin_sees_a_raised_hand_and_not_the_resting_pose(clip):
    import cv2

    truth, _ = clip
    skin, unit = truth.identity.appearance.skin, truth.identity.framing.unit
    drawn = wq.hand_skin(truth.frames, truth.keypoints, skin, unit)
    raised = np.isfinite(drawn)
    assert 0 < raised.sum() < len(drawn)  # this clip raises a hand for part of its frames
    still = wq.hand_skin(truth.reference[None].repeat(len(truth.frames), 0), truth.keypoints, skin, unit)
    assert np.array_equal(np.isfinite(still), raised)  # the truth's raised hands decide where to look
    assert np.nanmean(drawn) > 0.35 and np.nanmean(still) < 0.15
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 1.5) for f in truth.frames])
    assert np.nanmean(wq.hand_skin(blurred, truth.keypoints, skin, unit)) > 0.3  # a blurred hand is still a hand
    resting = truth.keypoints.copy()
    resting[:] = truth.keypoints[np.argmax(~raised)]  # every frame the clip's resting pose: nothing raised
    assert not np.isfinite(wq.hand_skin(truth.frames, resting, skin, unit)).any()
