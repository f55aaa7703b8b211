"""Known-answer tests of the pure metric math (no networks)."""

import numpy as np
import pytest

from physavatar.constants import NUM_KEYPOINTS
from physavatar.evaluation.metrics import (
    GaussianStats,
    csim,
    diversity,
    frechet_distance,
    frechet_from_features,
    hand_confidence,
    hand_variance,
    normalize_pose,
    pose_windows,
    sync_offset_search,
)


def test_frechet_closed_form_1d_and_diagonal():
    # 1-D: (μ1−μ2)² + (σ1 − σ2)²
    assert frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(9 + 1)
    # diagonal covariances: sum over dims
    d = frechet_distance([0, 0], np.diag([1.0, 9.0]), [1, 1], np.diag([4.0, 1.0]))
    assert d == pytest.approx(2 + (1 - 2) ** 2 + (3 - 1) ** 2)


def test_frechet_identical_sets_is_zero_even_when_singular():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(40, 64))  # fewer samples than dims: singular covariance
    assert frechet_from_features(feats, feats) == pytest.approx(0.0, abs=1e-5)
    full = rng.normal(size=(500, 16))
    assert frechet_from_features(full, full.copy()) == pytest.approx(0.0, abs=1e-8)


def test_frechet_grows_with_shift_and_matches_gaussian_answer():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20000, 4))
    b = rng.normal(size=(20000, 4)) * 2.0 + 1.0
    # N(0, I) vs N(1, 4I): 4·1 + 4·(2 − 1)² = 8
    assert frechet_from_features(a, b) == pytest.approx(8.0, rel=0.03)
    near = rng.normal(size=(20000, 4)) + 0.1
    assert frechet_from_features(a, near) < frechet_from_features(a, b)


def test_frechet_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2 samples"):
        GaussianStats.from_features(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="same backbone"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def _static_keypoints(frames=60):
    rng = np.random.default_rng(2)
    one = np.concatenate([rng.uniform(0.2, 0.8, size=(NUM_KEYPOINTS, 2)), np.ones((NUM_KEYPOINTS, 1))], -1)
    return np.repeat(one[None], frames, axis=0).astype(np.float32)


def test_div_is_zero_for_static_pose_and_positive_for_motion():
    kp = _static_keypoints()
    windows = pose_windows(normalize_pose(kp), window=20, stride=10)
    assert windows.shape[0] == 5
    assert diversity(windows) == 0.0
    moving = kp.copy()
    t = np.arange(len(kp))
    moving[:, 85:, 0] += 0.1 * np.sin(t / 3.0)[:, None]  # waving hands
    assert diversity(pose_windows(normalize_pose(moving), 20, 10)) > 0.05


def test_normalize_pose_removes_translation_and_fills_dropouts():
    kp = _static_keypoints(10)
    shifted = kp.copy()
    shifted[:, :, 0] += 0.05
    np.testing.assert_allclose(normalize_pose(kp), normalize_pose(shifted), atol=1e-5)
    dropped = kp.copy()
    dropped[4, 85:, 2] = 0.0  # hands vanish for one frame
    np.testing.assert_allclose(normalize_pose(dropped), normalize_pose(kp), atol=1e-6)
    with pytest.raises(ValueError, match="clip format"):
        normalize_pose(np.zeros((3, 17, 3)))


def test_hand_confidence_and_variance():
    assert hand_confidence(np.array([[0.9, 0.0], [0.9, 0.5]])) == pytest.approx((0.9 + 0.9 + 0.5) / 4)
    lm = np.zeros((10, 2, 21, 2))
    det = np.ones((10, 2), bool)
    assert hand_variance(lm, det) == 0.0  # static hands
    lm[::2, 0, :, 0] = 0.1  # left hand jumps 0.1 in x every other frame: var = 0.0025
    det[:, 1] = False
    assert hand_variance(lm, det) == pytest.approx(0.0025 * 100)
    assert np.isnan(hand_variance(lm, np.zeros((10, 2), bool)))


def test_csim_of_identical_embeddings_is_one():
    e = np.random.default_rng(3).normal(size=128)
    assert csim(np.stack([e, e]), e) == pytest.approx(1.0)
    assert csim(-e[None], e) == pytest.approx(-1.0)


@pytest.mark.parametrize("shift", [0, 3, -7, 10])
def test_sync_offset_search_recovers_constructed_shift(shift):
    rng = np.random.default_rng(4)
    t, d = 80, 16
    content = rng.normal(size=(t + 40, d))
    video = content[20 : 20 + t]
    audio = content[20 - shift : 20 - shift + t]  # audio[i + shift] == video[i]: audio runs `shift` late
    res = sync_offset_search(video, audio, vshift=15)
    assert res.offset == -shift
    assert res.mean_dists.shape == (31,)
    aligned = sync_offset_search(content[20 : 20 + t], content[20 : 20 + t])
    assert aligned.offset == 0 and aligned.min_dist == pytest.approx(0.0, abs=1e-4)


def test_sync_aligned_beats_shifted_by_ten():
    rng = np.random.default_rng(5)
    content = rng.normal(size=(120, 8))
    aligned = sync_offset_search(content[10:110], content[10:110])
    shifted = sync_offset_search(content[10:110], content[0:100])
    assert aligned.confidence > shifted.confidence
    assert aligned.min_dist < shifted.min_dist
    assert shifted.offset == -10  # audio[i + 10] == video[i]: the audio runs 10 frames late


def test_frechet_sample_space_path_matches_sqrtm():
    from physavatar.evaluation.metrics.frechet import GaussianStats

    rng = np.random.default_rng(6)
    a = rng.normal(size=(30, 48))
    b = rng.normal(size=(25, 48)) * 1.5 + 0.2
    sa, sb = GaussianStats.from_features(a), GaussianStats.from_features(b)
    reference = frechet_distance(sa.mu, sa.sigma, sb.mu, sb.sigma)  # scipy sqrtm path
    assert frechet_from_features(a, b) == pytest.approx(reference, rel=1e-4)
    assert frechet_from_features(a, a) == pytest.approx(0.0, abs=1e-9)
