"""Physical-state layout, token code and skeleton drawer."""

import numpy as np
import pytest

from physavatar.constants import NUM_KEYPOINTS, PHYS_PARTS
from physavatar.physstate import (
    BODY_NAMES,
    EDGES,
    FACE_NAMES,
    HAND_NAMES,
    KEYPOINT_NAMES,
    PART_SLICES,
    decode_tokens,
    draw_skeleton,
    encode_keypoints,
    part_basis,
    skeleton_video,
)
from physavatar.physstate.tokens import ROUND_TRIP_TOL_FP16, ROUND_TRIP_TOL_FP32


def _random_kp(frames=5, seed=0):
    rng = np.random.default_rng(seed)
    kp = rng.random((frames, NUM_KEYPOINTS, 3)).astype(np.float32)
    kp[..., 2] = (kp[..., 2] > 0.2).astype(np.float32)  # some invisible points
    return kp


def test_layout_matches_figure_s2():
    assert len(BODY_NAMES) == 17 and len(FACE_NAMES) == 68 and len(HAND_NAMES) == 21
    assert len(KEYPOINT_NAMES) == NUM_KEYPOINTS == 127
    assert BODY_NAMES[0] == "nose" and BODY_NAMES[9] == "left wrist" and BODY_NAMES[16] == "right ankle"
    assert FACE_NAMES[8] == "chin center" and FACE_NAMES[48] == "right mouth corner"
    assert FACE_NAMES[67] == "lower lip inter edge 1" and HAND_NAMES[20] == "pinky finger's first knuckle"
    assert [PART_SLICES[p].start for p in PHYS_PARTS] == [0, 17, 85, 106]
    assert all(0 <= a < NUM_KEYPOINTS and 0 <= b < NUM_KEYPOINTS and a != b for a, b in EDGES)
    # every keypoint belongs to at least one edge (the skeleton draws every point)
    assert set(np.ravel(EDGES)) == set(range(NUM_KEYPOINTS))


def test_basis_is_orthonormal_and_fixed():
    for part in PHYS_PARTS:
        q = part_basis(part)
        n = PART_SLICES[part].stop - PART_SLICES[part].start
        assert q.shape == (256, 3 * n)
        np.testing.assert_allclose(q.T @ q, np.eye(3 * n), atol=1e-12)
    # golden values: stored phys_tokens.npy files depend on this exact basis (TOKEN_SEED, QR sign fix)
    assert part_basis("body")[0, 0] == pytest.approx(0.07888666053630056, abs=1e-12)
    assert part_basis("right_hand")[255, 62] == pytest.approx(-0.051987531104384144, abs=1e-12)
    with pytest.raises(ValueError, match="unknown physical-state part"):
        part_basis("tail")


def test_round_trip_fp32_and_fp16():
    kp = _random_kp()
    tokens = encode_keypoints(kp)
    assert tokens.shape == (5, 4, 256) and tokens.dtype == np.float32
    vis = kp[..., 2] > 0
    back = decode_tokens(tokens)
    err32 = np.abs(back - kp)[vis].max()
    back16 = decode_tokens(tokens.astype(np.float16))
    err16 = np.abs(back16 - kp)[vis].max()
    print(f"round-trip max error: fp32 {err32:.2e}, fp16 {err16:.2e}")
    assert err32 < ROUND_TRIP_TOL_FP32
    assert err16 < ROUND_TRIP_TOL_FP16
    # invisible points decode to the centre with confidence 0
    np.testing.assert_allclose(back[~vis], np.tile([0.5, 0.5, 0.0], ((~vis).sum(), 1)), atol=1e-5)


def test_parts_are_separate_tokens():
    kp = _random_kp(1)
    kp[..., 2] = 1
    moved = kp.copy()
    moved[0, PART_SLICES["left_hand"], 0] += 0.1
    diff = np.abs(encode_keypoints(moved) - encode_keypoints(kp)).max(axis=-1)[0]
    assert diff[2] > 0 and diff[0] == diff[1] == diff[3] == 0


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match=r"\(F, 127, 3\)"):
        encode_keypoints(np.zeros((3, 126, 3)))
    with pytest.raises(ValueError, match=r"\(F, 4, 256\)"):
        decode_tokens(np.zeros((3, 1024)))
    with pytest.raises(ValueError, match="exactly one"):
        skeleton_video()


def test_skeleton_drawing():
    kp = _random_kp(3, seed=1)
    img = draw_skeleton(kp[0], 64)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and img.max() > 0
    hidden = kp[0].copy()
    hidden[:, 2] = 0
    assert draw_skeleton(hidden, 64).max() == 0  # nothing visible, nothing drawn
    from_kp = skeleton_video(kp=kp, size=(48, 64))
    from_tok = skeleton_video(tokens=encode_keypoints(kp).astype(np.float16), size=(48, 64))
    assert from_kp.shape == (3, 48, 64, 3)
    # the same skeleton up to anti-aliasing of the fp16 error, far from a different pose
    assert np.abs(from_kp.astype(int) - from_tok).mean() < 1.0
    assert np.abs(from_kp.astype(int) - skeleton_video(kp=kp[::-1], size=(48, 64))).mean() > 5.0
    over = skeleton_video(kp=kp, frames=np.full((3, 32, 32, 3), 100, np.uint8))
    assert over.shape == (3, 32, 32, 3) and (over == 100).any()
