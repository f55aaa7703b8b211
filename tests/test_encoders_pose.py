"""Pose encoder (Appendix B), offline default: MediaPipe landmarkers on real photos and synthetic-world frames."""

import numpy as np
import pytest

from physavatar.encoders.backend import BackendMismatchError, ModelFolderError, require_same_backend
from physavatar.encoders.pose import (
    KEYPOINT_CODE,
    XPOSE_OBJECT,
    PoseFeatures,
    assign_hands,
    check_frames,
    concat_pose,
    load_pose_encoder,
    token_space,
)
from physavatar.physstate.layout import BODY, FACE, LEFT_HAND, RIGHT_HAND, B
from physavatar.physstate.tokens import decode_tokens, encode_keypoints

pytest.importorskip("mediapipe")
skdata = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def encoder():
    enc = load_pose_encoder("mediapipe")
    yield enc
    enc.close()


@pytest.fixture(scope="module")
def astronaut(encoder):
    img = skdata.astronaut()  # real upper-body portrait, 512 x 512, subject facing the camera
    return img, encoder.encode_frames(img)


@pytest.fixture(scope="module")
def world_clip():
    world = pytest.importorskip("physavatar.world")
    try:
        return world.make_clip(identity_seed=1, clip_seed=5, num_frames=9, size=256)
    except (FileNotFoundError, RuntimeError) as err:  # espeak-ng missing
        pytest.skip(f"synthetic world unavailable: {err}")


def test_astronaut_body_is_found_subject_sided(astronaut):
    img, feats = astronaut
    assert feats.backend == "mediapipe" and feats.token_space == KEYPOINT_CODE
    assert feats.keypoints.shape == (1, 127, 3) and feats.keypoints.dtype == np.float32
    assert feats.tokens.shape == (1, 4, 256) and feats.tokens.dtype == np.float32
    kp = feats.keypoints[0]
    assert (kp[:, :2] >= 0).all() and (kp[:, :2] <= 1).all() and (kp[:, 2] >= 0).all() and (kp[:, 2] <= 1).all()
    head = [B[n] for n in ("nose", "left eye", "right eye", "left shoulder", "right shoulder")]
    assert (kp[head, 2] > 0.8).all()
    # The head is in the upper third, shoulders below it; she faces the camera, so her left is the image's right.
    assert 0.3 < kp[B["nose"], 0] < 0.6 and kp[B["nose"], 1] < 0.35
    assert kp[B["left shoulder"], 0] > kp[B["nose"], 0] > kp[B["right shoulder"], 0]
    assert kp[B["left eye"], 0] > kp[B["right eye"], 0]
    assert min(kp[B["left shoulder"], 1], kp[B["right shoulder"], 1]) > kp[B["nose"], 1] + 0.1
    # Ankles are out of the 512 x 512 frame: confidence 0 (clip format: outside -> 0, clipped to [0, 1]).
    assert kp[B["left ankle"], 2] == 0 and kp[B["right ankle"], 2] == 0


def test_astronaut_face68_geometry(astronaut):
    """The mesh -> iBUG-68 table puts each point where iBUG says, checked by relations any frontal face obeys."""
    _, feats = astronaut
    f = feats.keypoints[0, FACE]
    assert (f[:, 2] == 1).all()
    x, y = f[:, 0], f[:, 1]
    # subject's right on the image's left: eye corners 36 < 39 < 42 < 45, mouth corners 48 < 54, jaw 0 < 8 < 16
    assert x[36] < x[39] < x[42] < x[45] and x[48] < x[54] and x[0] < x[8] < x[16]
    assert x[17] < x[21] < x[22] < x[26]  # brows, outer -> inner, inner -> outer
    # vertical order: brows above eyes above nose tip above mouth above chin; the chin is the jaw's lowest point
    assert y[19] < y[37] < y[30] < y[51] < y[57] < y[8] and np.argmax(y[:17]) == 8
    assert y[27] < y[28] < y[29] < y[30]  # nasal bridge runs down
    assert y[62] < y[66] and y[51] < y[62] and y[66] < y[57]  # inner lips inside the outer ones (teeth show)
    # The face lies inside the body landmarker's head: nose tip near the body's nose
    body_nose = feats.keypoints[0, B["nose"], :2]
    width = x[16] - x[0]
    assert np.linalg.norm(f[30, :2] - body_nose) < 0.25 * width
    # Roughly left-right symmetric: the eye centres are equally far from the nasal bridge (within 20 %)
    mid = x[27]
    assert abs((mid - x[36:42].mean()) / (x[42:48].mean() - mid) - 1) < 0.2


def test_non_square_real_photo(encoder):
    """matplotlib's Grace Hopper portrait (600 x 512, H > W): x is a fraction of the width, y of the height."""
    cbook = pytest.importorskip("matplotlib.cbook")
    from matplotlib import image as mpimg

    img = np.ascontiguousarray(mpimg.imread(cbook.get_sample_data("grace_hopper.jpg"))[..., :3]).astype(np.uint8)
    assert img.shape == (600, 512, 3)
    kp = encoder.encode_frames(img).keypoints[0]
    assert (kp[[B["nose"], B["left shoulder"], B["right shoulder"]], 2] > 0.8).all() and (kp[FACE, 2] == 1).all()
    f = kp[FACE]
    assert f[36, 0] < f[45, 0] and f[48, 0] < f[54, 0] and f[19, 1] < f[30, 1] < f[57, 1] < f[8, 1]
    # measured: nose (0.53, 0.38), shoulders at y 0.71 near both image edges; hips out of frame
    assert 0.45 < kp[B["nose"], 0] < 0.6 and 0.3 < kp[B["nose"], 1] < 0.45
    assert kp[B["left shoulder"], 0] > 0.75 and kp[B["right shoulder"], 0] < 0.25
    assert 0.6 < kp[B["left shoulder"], 1] < 0.8 and kp[B["left hip"], 2] == 0
    # the face's pixel width / height ratio is that of a face (~0.7-1), which needs x * W and y * H
    w_px = (f[16, 0] - f[0, 0]) * img.shape[1]
    h_px = (f[8, 1] - f[27, 1]) * img.shape[0]
    assert 1.0 < w_px / h_px < 2.0


def test_body_face_consistency():
    from physavatar.encoders.pose_mediapipe import body_agrees_with_face

    body = np.zeros((17, 3), np.float32)
    face = np.zeros((68, 3), np.float32)
    face[:, 2] = body[:, 2] = 1
    face[0, :2], face[16, :2], face[30, :2] = (0.4, 0.3), (0.6, 0.3), (0.5, 0.35)  # face 0.2 wide
    body[B["nose"], :2] = (0.51, 0.36)
    assert body_agrees_with_face(body, face)
    body[B["nose"], :2] = (0.5, 0.8)  # a "body" whose head is at the hands
    assert not body_agrees_with_face(body, face)
    assert body_agrees_with_face(body, face, tol=None)
    # 0.45 below the nose tip; the face is 0.2 wide at aspect 1 but only 0.1 (of the height) at aspect 0.5
    assert body_agrees_with_face(body, face, aspect=1.0, tol=2.5)
    assert not body_agrees_with_face(body, face, aspect=0.5, tol=2.5)
    body[B["nose"], 2] = 0
    assert body_agrees_with_face(body, face)  # nothing to compare


def test_tokens_are_the_world_code(astronaut):
    _, feats = astronaut
    np.testing.assert_array_equal(feats.tokens, encode_keypoints(feats.keypoints))
    # decoding returns the keypoints; undetected hands decode to the "missing" point (0.5, 0.5, 0)
    dec = decode_tokens(feats.tokens)
    seen = feats.keypoints[..., 2] > 0
    np.testing.assert_allclose(dec[seen], feats.keypoints[seen], atol=1e-5)
    assert np.allclose(dec[~seen], [0.5, 0.5, 0.0], atol=1e-5)


def test_world_frames_roughly_match_ground_truth(encoder, world_clip):
    """MediaPipe on cartoon avatars: body and face found near the ground truth; hands on the right sides."""
    feats = encoder.encode_frames(world_clip.frames)
    gt, kp = world_clip.keypoints, feats.keypoints
    assert feats.keypoints.shape == (9, 127, 3)
    for part, tol in ((BODY, 0.06), (FACE, 0.03)):  # median error in frame fractions (measured 0.016 / 0.004)
        assert (kp[:, part, 2].max(-1) > 0).mean() >= 0.8, "part missed in most frames"
        both = (kp[:, part, 2] > 0.3) & (gt[:, part, 2] > 0)
        err = np.linalg.norm(kp[:, part, :2] - gt[:, part, :2], axis=-1)[both]
        assert both.sum() > 0 and np.median(err) < tol
    # Side assignment: where both hands are found, each is nearer its own ground-truth hand than the other.
    ok, n = 0, 0
    for t in range(len(kp)):
        if kp[t, LEFT_HAND, 2].max() > 0 and kp[t, RIGHT_HAND, 2].max() > 0:
            n += 1
            lh, rh = kp[t, LEFT_HAND, :2].mean(0), kp[t, RIGHT_HAND, :2].mean(0)
            glh, grh = gt[t, LEFT_HAND, :2].mean(0), gt[t, RIGHT_HAND, :2].mean(0)
            kept = np.linalg.norm(lh - glh) + np.linalg.norm(rh - grh)
            ok += kept < np.linalg.norm(lh - grh) + np.linalg.norm(rh - glh)
    assert n >= 3 and ok == n


def test_video_and_image_modes_agree(world_clip):
    frames = world_clip.frames[:3]
    with load_pose_encoder("mediapipe", mode="image") as enc:
        img = enc.encode_frames(frames)
    with load_pose_encoder("mediapipe", mode="video") as enc:
        vid = enc.encode_frames(frames)
    assert img.backend == vid.backend == "mediapipe"
    err = np.abs(img.keypoints[:, BODY, :2] - vid.keypoints[:, BODY, :2]).max()
    assert err < 0.05  # tracking refines, it does not move the body elsewhere


def test_skeleton_visualiser(astronaut):
    img, feats = astronaut
    over = feats.skeleton(frames=img[None])
    assert over.shape == (1, 512, 512, 3) and over.dtype == np.uint8
    assert (over != img).any(axis=-1).mean() > 0.002  # something was drawn
    black = feats.skeleton(size=128, from_tokens=True)
    assert black.shape == (1, 128, 128, 3) and black.max() > 0
    xpose_like = PoseFeatures(feats.keypoints, feats.tokens, "xpose:unipose_swint")
    with pytest.raises(ValueError, match="cannot be decoded"):
        xpose_like.skeleton(from_tokens=True)


def test_features_save_load_and_backend_checks(astronaut, tmp_path):
    _, feats = astronaut
    feats.save(tmp_path / "pose.npz")
    back = PoseFeatures.load(tmp_path / "pose.npz")
    assert back.backend == "mediapipe"
    np.testing.assert_array_equal(back.tokens, feats.tokens)
    assert concat_pose([feats, back]).num_frames == 2
    other = PoseFeatures(feats.keypoints, feats.tokens, "xpose:unipose_swint")
    with pytest.raises(BackendMismatchError):
        concat_pose([feats, other])
    with pytest.raises(BackendMismatchError):
        require_same_backend([feats, other])
    assert token_space("world-gt") == token_space("mediapipe") == KEYPOINT_CODE
    assert token_space("xpose:unipose_swint") == XPOSE_OBJECT
    with pytest.raises(ValueError, match="unknown pose backend"):
        token_space("openpose")


def test_bad_inputs_get_clear_errors(encoder, tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        check_frames(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(F, H, W, 3\)"):
        check_frames(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        check_frames(np.zeros((0, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="choose one of"):
        load_pose_encoder("openpose")
    with pytest.raises(ModelFolderError, match="face_landmarker.task"):
        load_pose_encoder("mediapipe", model_dir=str(tmp_path))
    with pytest.raises(ValueError, match="mode"):
        load_pose_encoder("mediapipe", mode="stream")
    # a frame with no person: everything confidence 0, tokens = the "all missing" code
    blank = encoder.encode_frames(np.full((64, 64, 3), 127, np.uint8))
    assert (blank.keypoints[..., 2] == 0).all()
    np.testing.assert_array_equal(blank.tokens, encode_keypoints(np.zeros((1, 127, 3), np.float32)))


def test_assign_hands():
    body = np.array([[0.7, 0.8], [0.3, 0.8]])  # subject's left wrist on the image's right
    assert assign_hands(np.array([[0.32, 0.75], [0.68, 0.79]]), body) == ["right_hand", "left_hand"]
    assert assign_hands(np.array([[0.65, 0.7]]), body) == ["left_hand"]
    # labels decide without a body; a duplicate label sends the second hand to the other side
    assert assign_hands(np.array([[0.3, 0.5], [0.7, 0.5]]), None, ["Right", "Right"]) == ["right_hand", "left_hand"]
    assert assign_hands(np.array([[0.3, 0.5]]), None, ["Left"]) == ["left_hand"]
    # neither: a subject facing the camera has their left hand on the image's right
    assert assign_hands(np.array([[0.3, 0.5], [0.7, 0.5]])) == ["right_hand", "left_hand"]
    assert assign_hands(np.zeros((0, 2))) == []
    with pytest.raises(ValueError, match="two hand slots"):
        assign_hands(np.zeros((3, 2)))


def test_command_line_options():
    import argparse

    from physavatar.encoders.pose import add_pose_arguments, pose_encoder_from_args
    from physavatar.encoders.pose_xpose import XPoseNotAvailableError

    parser = argparse.ArgumentParser()
    add_pose_arguments(parser)
    args = parser.parse_args(["--pose-mode", "image"])
    with pose_encoder_from_args(args) as enc:
        assert enc.backend == "mediapipe" and enc.config.mode == "image"
    args = parser.parse_args(["--pose-backend", "xpose", "--xpose-checkpoint", "/nonexistent/x.pth"])
    with pytest.raises(XPoseNotAvailableError, match="repo"):
        pose_encoder_from_args(args)
