"""X-Pose backend (the paper's): its missing-install errors and the Appendix B token selection on fake outputs.

X-Pose itself cannot be installed here (not on PyPI, weights on model hubs), so the model call is not run.
"""

import numpy as np
import pytest

from physavatar.encoders.pose import load_pose_encoder
from physavatar.encoders.pose_xpose import XPoseNotAvailableError, object_candidates, select_object_tokens
from physavatar.physstate.layout import BODY, FACE, LEFT_HAND, RIGHT_HAND, B


def test_missing_xpose_names_the_install(tmp_path):
    with pytest.raises(XPoseNotAvailableError, match="github.com/IDEA-Research/X-Pose"):
        load_pose_encoder("xpose")
    with pytest.raises(XPoseNotAvailableError, match="no such X-Pose folder"):
        load_pose_encoder("xpose", repo=str(tmp_path / "nope"), checkpoint=str(tmp_path / "x.pth"))
    with pytest.raises(XPoseNotAvailableError, match="no such X-Pose checkpoint"):
        load_pose_encoder("xpose", repo=str(tmp_path), checkpoint=str(tmp_path / "x.pth"))
    (tmp_path / "x.pth").write_bytes(b"")
    with pytest.raises(XPoseNotAvailableError, match="config"):
        load_pose_encoder("xpose", repo=str(tmp_path), checkpoint=str(tmp_path / "x.pth"))
    (tmp_path / "cfg.py").write_text("")
    with pytest.raises(XPoseNotAvailableError, match="not an X-Pose clone"):
        load_pose_encoder("xpose", repo=str(tmp_path), checkpoint=str(tmp_path / "x.pth"),
                          config=str(tmp_path / "cfg.py"))
    # A folder that looks like a clone but whose packages do not import: still the same clear error type
    (tmp_path / "models").mkdir()
    (tmp_path / "util").mkdir()
    with pytest.raises(XPoseNotAvailableError, match="importing X-Pose"):
        load_pose_encoder("xpose", repo=str(tmp_path), checkpoint=str(tmp_path / "x.pth"),
                          config=str(tmp_path / "cfg.py"))
    assert issubclass(XPoseNotAvailableError, ImportError)


def _fake_outputs(rng, scores, num_kpts, num_body_points=68):
    """X-Pose-shaped outputs for len(scores) object queries with known object tokens and scores."""
    q = len(scores)
    hs = rng.standard_normal((q * (num_body_points + 1), 256)).astype(np.float32)
    logits = np.full((q, 350), -np.inf, np.float32)  # text padding columns are -inf in X-Pose
    logits[:, 0] = np.log(np.asarray(scores) / (1 - np.asarray(scores)))
    kps = rng.uniform(0, 1, (q, num_body_points * 3)).astype(np.float32)
    return hs, logits, kps


def test_object_candidates_takes_object_queries_and_scores():
    rng = np.random.default_rng(0)
    scores = [0.2, 0.9, 0.05]
    hs, logits, kps = _fake_outputs(rng, scores, 17)
    tok, sc, kp = object_candidates(hs, logits, kps, num_body_points=68, num_kpts=17)
    assert tok.shape == (3, 256) and kp.shape == (3, 17, 2)
    np.testing.assert_array_equal(tok[1], hs[69])  # the object query of group 1, not a keypoint query
    np.testing.assert_allclose(sc, scores, rtol=1e-5)
    np.testing.assert_array_equal(kp[2, 4], kps[2, 8:10])  # x, y pairs come first
    with pytest.raises(ValueError, match="3 groups x 69"):
        object_candidates(hs[:-1], logits, kps, num_body_points=68, num_kpts=17)
    # leading denoising rows (training-time only in X-Pose) are skipped
    pad = np.full((5, 256), 7.0, np.float32)
    tok2, _, _ = object_candidates(np.concatenate([pad, hs]), logits, kps, num_body_points=68, num_kpts=17)
    np.testing.assert_array_equal(tok2, tok)


def test_select_top1_body_face_top2_hands():
    rng = np.random.default_rng(1)
    n = {"body": 17, "face": 68, "hand": 21}
    scores = {"body": [0.3, 0.8, 0.1], "face": [0.6, 0.7], "hand": [0.5, 0.05, 0.9, 0.4]}
    cand = {p: object_candidates(*_fake_outputs(rng, s, n[p]), num_body_points=68, num_kpts=n[p])
            for p, s in scores.items()}
    # Put the chosen body's wrists where hand 0 and hand 2 are: hand 2 at the subject's left wrist.
    body_kp = cand["body"][2][1]
    body_kp[B["left wrist"]] = cand["hand"][2][2][0] + 0.01
    body_kp[B["right wrist"]] = cand["hand"][2][0][0] - 0.01
    tokens, kp, picks = select_object_tokens(cand, min_score=0.1)
    assert picks == {"body": 1, "face": 1, "left_hand": 2, "right_hand": 0}
    np.testing.assert_array_equal(tokens[0], cand["body"][0][1])
    np.testing.assert_array_equal(tokens[1], cand["face"][0][1])
    np.testing.assert_array_equal(tokens[2], cand["hand"][0][2])
    np.testing.assert_array_equal(tokens[3], cand["hand"][0][0])
    np.testing.assert_allclose(kp[BODY, 2], 0.8, rtol=1e-5)
    np.testing.assert_allclose(kp[LEFT_HAND, 2], 0.9, rtol=1e-5)
    np.testing.assert_array_equal(kp[FACE, :2], np.clip(cand["face"][2][1], 0, 1))
    # Swap the body's wrists: the same two hands swap slots.
    body_kp[[B["left wrist"], B["right wrist"]]] = body_kp[[B["right wrist"], B["left wrist"]]]
    _, _, picks = select_object_tokens(cand, min_score=0.1)
    assert (picks["left_hand"], picks["right_hand"]) == (0, 2)


def test_select_leaves_weak_slots_empty():
    rng = np.random.default_rng(2)
    cand = {"body": object_candidates(*_fake_outputs(rng, [0.05, 0.02], 17), num_body_points=68, num_kpts=17),
            "face": object_candidates(*_fake_outputs(rng, [0.5], 68), num_body_points=68, num_kpts=68),
            "hand": object_candidates(*_fake_outputs(rng, [0.6, 0.01], 21), num_body_points=68, num_kpts=21)}
    tokens, kp, picks = select_object_tokens(cand, min_score=0.1)
    assert picks["body"] == -1 and picks["face"] == 0
    assert (tokens[0] == 0).all() and (kp[BODY, 2] == 0).all()
    # One hand above threshold, no body: placed by image position (facing the camera), the other slot empty
    side = "left_hand" if cand["hand"][2][0][0, 0] >= 0.5 else "right_hand"
    other = "right_hand" if side == "left_hand" else "left_hand"
    assert picks[side] == 0 and picks[other] == -1
    assert (kp[RIGHT_HAND if other == "right_hand" else LEFT_HAND, 2] == 0).all()
