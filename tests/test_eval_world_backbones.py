"""The shipped world backbones (world-SyncNet, world-gesture-AE): load, behave on unseen world clips, wired in."""

from __future__ import annotations

import json

import numpy as np
import pytest

from physavatar.evaluation.backbones.world import WORLD_GESTURE_AE, WORLD_SYNCNET, card

# Identity seeds far from any `physavatar world make` dataset's (derived 32-bit seeds): unseen in training.
_IDENTITIES = (7, 11, 13, 17)


@pytest.fixture(scope="module")
def clips():
    from physavatar.world.clip import make_clip

    return [make_clip(identity_seed=i, clip_seed=1000 + i, num_frames=41, size=128) for i in _IDENTITIES]


def test_shipped_weights_load_with_cards():
    from physavatar.evaluation.backbones.gesture_encoder import GestureFeatures
    from physavatar.evaluation.backbones.world_sync import WorldSyncBackbone

    assert WORLD_SYNCNET.stat().st_size + WORLD_GESTURE_AE.stat().st_size < 3_000_000
    sync = WorldSyncBackbone(WORLD_SYNCNET)
    gesture = GestureFeatures(WORLD_GESTURE_AE, label="world-gesture-AE")
    assert sync.name.startswith("world-SyncNet") and gesture.name.startswith("world-gesture-AE")
    assert gesture.window == 34 and not sync.model.training
    for weights in (WORLD_SYNCNET, WORLD_GESTURE_AE):
        c = card(weights)
        assert {"data", "seed", "steps", "wall_time_s", "validation"} <= set(c)
        assert c["weights"] == weights.name


def test_world_syncnet_finds_the_offset_on_unseen_clips(clips):
    from physavatar.evaluation.backbones.train_world import shift_audio
    from physavatar.evaluation.backbones.world_sync import WorldSyncBackbone
    from physavatar.evaluation.metrics import sync_offset_search

    sync = WorldSyncBackbone(WORLD_SYNCNET)
    conf_aligned, conf_late, errors = [], [], []
    for clip in clips:
        for shift in (0, 10):  # audio 10 frames late: the offset search should say −10
            res = sync_offset_search(*sync.embed(clip.frames, shift_audio(clip.wav, shift), clip.keypoints))
            (conf_aligned if shift == 0 else conf_late).append(res.confidence)
            errors.append(abs(res.offset + shift))
    assert np.mean(conf_aligned) > np.mean(conf_late)
    assert sum(a > b for a, b in zip(conf_aligned, conf_late)) >= 3
    assert sum(e <= 1 for e in errors) >= 6, errors  # of 8 (4 clips × aligned / late)


def test_world_syncnet_rejects_a_bad_file(tmp_path):
    from physavatar.evaluation.backbones import BackboneUnavailable
    from physavatar.evaluation.backbones.world_sync import load_world_syncnet

    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(BackboneUnavailable, match="not a world-SyncNet safetensors file"):
        load_world_syncnet(bad)
    with pytest.raises(BackboneUnavailable, match="world-SyncNet weights not found"):
        load_world_syncnet(tmp_path / "missing.safetensors")


def test_world_gesture_fgd_orders_real_over_static():
    from physavatar.evaluation.backbones.gesture_encoder import GestureFeatures
    from physavatar.evaluation.metrics import frechet_from_features, normalize_pose, pose_windows
    from physavatar.world.clip import make_clip

    enc = GestureFeatures(WORLD_GESTURE_AE)

    def windows(clip_seed: int) -> np.ndarray:  # 8 unseen identities, one 81-frame clip each: 48 windows
        kps = [make_clip(identity_seed=i, clip_seed=clip_seed + i, num_frames=81, size=128).keypoints
               for i in range(100, 108)]
        return np.concatenate([pose_windows(normalize_pose(k), enc.window, 8) for k in kps])

    # A Fréchet distance of 32-d features needs tens of windows from several identities: with 4 short clips
    # the estimate is dominated by which identities were drawn. Reference and "other real" are the same
    # identities saying other sentences; "static" is the other set with every window frozen on its first pose.
    ref, other = windows(1000), windows(2000)
    static = np.repeat(other[:, :1], enc.window, axis=1)
    f_ref = enc.features(ref)
    assert frechet_from_features(f_ref, f_ref) == pytest.approx(0.0, abs=1e-6)
    assert frechet_from_features(f_ref, enc.features(static)) > frechet_from_features(f_ref, enc.features(other))
    with pytest.raises(ValueError, match="set the gesture window to 34"):
        enc.features(ref[:, :20])


def test_runner_labels_world_backbones_and_keeps_real_data_not_computed(tmp_path):
    from physavatar.evaluation.config import EvalConfig
    from physavatar.evaluation.runner import POSE_DIV_BACKBONE, evaluate
    from physavatar.world.dataset import WorldDatasetConfig, make_dataset

    data = tmp_path / "world"
    make_dataset(WorldDatasetConfig(out=str(data), clips=2, frames=41, size=128), progress=False)
    cfg = EvalConfig(metrics=("fgd", "div", "sync_c", "sync_d"), gesture_stride=2)
    (res,), _ = evaluate({"m": data}, data, cfg)
    m = res.metrics
    assert m["fgd"].backbone.startswith("world-gesture-AE") and m["fgd"].value == pytest.approx(0.0, abs=1e-6)
    assert m["sync_c"].backbone.startswith("world-SyncNet") and m["sync_d"].backbone.startswith("world-SyncNet")
    assert m["sync_c"].value is not None and set(m["sync_c"].details["offset"]) == {"000000", "000001"}
    assert m["div"].backbone == POSE_DIV_BACKBONE  # the world AE is FGD's default only
    # 2. the same clips, no longer marked as world data: no shipped net stands in for SyncNet or the encoder
    for meta in data.glob("clips/*/meta.json"):
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "source": "curated"}))
    (res,), _ = evaluate({"m": data}, data, cfg)
    assert res.metrics["sync_c"].status.startswith("not computed: SyncNet weights not found")
    assert res.metrics["fgd"].status.startswith("not computed: gesture encoder (FGD) weights not found")


def test_shift_audio_sign_matches_the_offset_convention():
    from physavatar.constants import SAMPLES_PER_FRAME
    from physavatar.evaluation.backbones.train_world import shift_audio

    audio = np.arange(10 * SAMPLES_PER_FRAME, dtype=np.float32) + 1
    late = shift_audio(audio, 2)  # audio 2 frames late: silence first, sync_offset_search says −2
    assert len(late) == len(audio) and not late[: 2 * SAMPLES_PER_FRAME].any()
    np.testing.assert_array_equal(late[2 * SAMPLES_PER_FRAME :], audio[: -2 * SAMPLES_PER_FRAME])
    early = shift_audio(audio, -2)
    np.testing.assert_array_equal(early[: -2 * SAMPLES_PER_FRAME], audio[2 * SAMPLES_PER_FRAME :])


def test_train_world_refuses_bad_inputs(tmp_path):
    from physavatar.evaluation.backbones.train_world import main

    with pytest.raises(ValueError, match="give a .safetensors path"):
        main(["--what", "sync", "--data", str(tmp_path), "--out", str(tmp_path / "w.pt")])
    with pytest.raises(FileNotFoundError, match="no manifest.jsonl rows"):
        main(["--what", "gesture", "--data", str(tmp_path), "--out", str(tmp_path / "w.safetensors")])


def test_train_world_runs_end_to_end_on_a_tiny_dataset(tmp_path):
    """Both trainers for a few steps on 40 clips (val/test identities exist from 40 clips on): files + cards."""
    from physavatar.evaluation.backbones.gesture_encoder import GestureFeatures
    from physavatar.evaluation.backbones.train_world import main
    from physavatar.evaluation.backbones.world_sync import load_world_syncnet
    from physavatar.world.dataset import WorldDatasetConfig, make_dataset

    data = tmp_path / "w"
    make_dataset(WorldDatasetConfig(out=str(data), clips=40, frames=41, size=128, workers=2), progress=False)
    for what in ("gesture", "sync"):
        out = tmp_path / f"{what}.safetensors"
        assert main(["--what", what, "--data", str(data), "--out", str(out), "--steps", "3", "--batch", "4"]) == 0
        c = json.loads(out.with_suffix(".json").read_text())
        assert c["steps"] == 3 and c["seed"] == 0 and c["data"]["clips"]["train"] == 32
    assert GestureFeatures(tmp_path / "gesture.safetensors").window == 34
    load_world_syncnet(tmp_path / "sync.safetensors")
