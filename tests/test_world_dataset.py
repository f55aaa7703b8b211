"""World dataset writer: the clip format exactly, resumable, deterministic; the `physavatar world` CLI."""

import json

import numpy as np
import pytest

from physavatar.cli import main
from physavatar.constants import SAMPLES_PER_FRAME
from physavatar.physstate.layout import FACE
from physavatar.world.dataset import WORLD_VERSION, WorldDatasetConfig, clip_plan, make_dataset, read_manifest

FRAMES = 17


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    rows = make_dataset(WorldDatasetConfig(out=str(out), clips=3, seed=5, frames=FRAMES, workers=2), progress=False)
    return out, rows


def test_clip_format(dataset):
    from physavatar.io.audio import load_audio
    from physavatar.io.video import probe_video
    from PIL import Image

    out, rows = dataset
    manifest = read_manifest(out)
    assert [r["id"] for r in manifest] == ["000000", "000001", "000002"] and manifest == rows
    for row in manifest:
        assert set(row) == {"id", "path", "num_frames", "duration_s", "split", "source"}
        assert row["num_frames"] == FRAMES and row["source"] == "world" and row["split"] in ("train", "val", "test")
        clip = out / row["path"]
        assert sorted(p.name for p in clip.iterdir()) == [
            "audio.wav", "keypoints.npy", "meta.json", "phys_tokens.npy", "reference.png", "video.mp4",
        ]  # fmt: skip
        info = probe_video(clip / "video.mp4")
        assert (info.num_frames, info.width, info.height, info.fps) == (FRAMES, 128, 128, 25.0)
        assert info.codec == "h264" and info.has_audio
        assert load_audio(clip / "audio.wav").shape == (FRAMES * SAMPLES_PER_FRAME,)
        kp, tok = np.load(clip / "keypoints.npy"), np.load(clip / "phys_tokens.npy")
        assert kp.dtype == np.float32 and kp.shape == (FRAMES, 127, 3) and 0 <= kp.min() and kp.max() <= 1
        assert tok.dtype == np.float16 and tok.shape == (FRAMES, 4, 256)
        assert Image.open(clip / "reference.png").size == (128, 128)
        meta = json.loads((clip / "meta.json").read_text())
        assert meta["fps"] == 25 and meta["sample_rate"] == 16000 and meta["num_frames"] == FRAMES
        assert meta["size"] == [128, 128] and meta["backends"] == {"pose": "world-gt"}


def test_deterministic_and_resumable(dataset, tmp_path):
    out, _ = dataset
    # same seed elsewhere, one worker -> identical ground truth
    make_dataset(WorldDatasetConfig(out=str(tmp_path), clips=2, seed=5, frames=FRAMES), progress=False)
    for cid in ("000000", "000001"):
        a, b = out / "clips" / cid, tmp_path / "clips" / cid
        for name in ("keypoints.npy", "phys_tokens.npy"):
            np.testing.assert_array_equal(np.load(a / name), np.load(b / name))
        assert (a / "audio.wav").read_bytes() == (b / "audio.wav").read_bytes()
    # rerun: nothing to do; more clips: only the new one is made
    cfg = WorldDatasetConfig(out=str(tmp_path), clips=2, seed=5, frames=FRAMES)
    assert make_dataset(cfg, progress=False) == []
    before = (tmp_path / "clips" / "000000" / "keypoints.npy").stat().st_mtime_ns
    added = make_dataset(WorldDatasetConfig(out=str(tmp_path), clips=3, seed=5, frames=FRAMES), progress=False)
    assert [r["id"] for r in added] == ["000002"]
    assert (tmp_path / "clips" / "000000" / "keypoints.npy").stat().st_mtime_ns == before
    # a crash mid-append leaves a torn line (its clip folder already renamed in): the line is dropped and
    # the clip rebuilt over the leftover folder
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(manifest.read_text()[:-20])
    assert [r["id"] for r in read_manifest(tmp_path)] == ["000000", "000001"]
    cfg3 = WorldDatasetConfig(out=str(tmp_path), clips=3, seed=5, frames=FRAMES)
    assert [r["id"] for r in make_dataset(cfg3, progress=False)] == ["000002"]
    assert [r["id"] for r in read_manifest(tmp_path)] == ["000000", "000001", "000002"]
    assert not list((tmp_path / "clips").glob(".*"))  # no temporary folders left behind


def test_resume_with_other_settings_is_refused(dataset):
    out, _ = dataset
    with pytest.raises(ValueError, match="was made with --seed 5 --size 128 --frames 17"):
        make_dataset(WorldDatasetConfig(out=str(out), clips=4, seed=6, frames=FRAMES), progress=False)
    assert len(read_manifest(out)) == 3


def test_resume_of_another_world_version_is_refused(tmp_path):
    out = tmp_path / "old"
    make_dataset(WorldDatasetConfig(out=str(out), clips=1, seed=5, frames=FRAMES), progress=False)
    meta_path = out / "clips" / "000000" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["world_version"] = 1  # as written before the speech became varied
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=f"world version 1, this run writes version {WORLD_VERSION}"):
        make_dataset(WorldDatasetConfig(out=str(out), clips=2, seed=5, frames=FRAMES), progress=False)
    assert len(read_manifest(out)) == 1


def test_world_version_3_is_version_4_without_running_speech(tmp_path):
    made = {}
    for version in (3, 4):
        out = tmp_path / f"v{version}"
        make_dataset(WorldDatasetConfig(out=str(out), clips=6, seed=1, frames=FRAMES, version=version), progress=False)
        metas = [json.loads((out / "clips" / f"{i:06d}" / "meta.json").read_text()) for i in range(6)]
        assert {m["world_version"] for m in metas} == {version}
        made[version] = out, [m["speech"]["running"] for m in metas]
    assert not any(made[3][1]) and made[4][1] == [False, True, True, False, True, False]  # dataset seed 1
    for i, running in enumerate(made[4][1]):  # the other clips are the same in both versions
        wavs = [(made[v][0] / "clips" / f"{i:06d}" / "audio.wav").read_bytes() for v in (3, 4)]
        assert (wavs[0] == wavs[1]) == (not running)
    with pytest.raises(ValueError, match="world version 3, this run writes version 4"):
        make_dataset(WorldDatasetConfig(out=str(made[3][0]), clips=7, seed=1, frames=FRAMES), progress=False)
    with pytest.raises(ValueError, match="--world-version 2"):
        make_dataset(WorldDatasetConfig(out=str(tmp_path / "v2"), clips=1, frames=FRAMES, version=2), progress=False)


def test_portrait_framing_is_recorded_and_kept_on_resume(tmp_path):
    out = tmp_path / "portrait"
    make_dataset(WorldDatasetConfig(out=str(out), clips=1, seed=5, frames=FRAMES, framing="portrait"), progress=False)
    meta = json.loads((out / "clips" / "000000" / "meta.json").read_text())
    assert meta["framing"] == "portrait" and 0.16 <= meta["identity"]["framing"]["unit"] <= 0.2
    # the same clip plan in mixed framing is the same person, smaller: a bigger face in portrait
    kp = np.load(out / "clips" / "000000" / "keypoints.npy")
    mixed = tmp_path / "mixed"
    make_dataset(WorldDatasetConfig(out=str(mixed), clips=1, seed=5, frames=FRAMES), progress=False)
    kp_mixed = np.load(mixed / "clips" / "000000" / "keypoints.npy")
    width = lambda k: np.ptp(k[:, FACE, 0], axis=1).mean()  # noqa: E731
    assert width(kp) > 1.2 * width(kp_mixed)
    with pytest.raises(ValueError, match="--framing portrait"):
        make_dataset(WorldDatasetConfig(out=str(out), clips=2, seed=5, frames=FRAMES), progress=False)
    with pytest.raises(ValueError, match="--framing 'close'"):
        make_dataset(WorldDatasetConfig(out=str(tmp_path / "x"), clips=1, frames=FRAMES, framing="close"),
                     progress=False)


def test_plan_is_independent_of_dataset_size():
    assert clip_plan(0, 37) == clip_plan(0, 37)
    assert clip_plan(0, 0).identity_seed == clip_plan(0, 3).identity_seed != clip_plan(0, 4).identity_seed
    splits = [clip_plan(0, i).split for i in range(40)]
    assert splits.count("val") == 4 and splits.count("test") == 4


def test_bad_config_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        make_dataset(WorldDatasetConfig(out=str(tmp_path), clips=1, frames=80), progress=False)
    with pytest.raises(ValueError, match="--size"):
        make_dataset(WorldDatasetConfig(out=str(tmp_path), clips=1, size=100), progress=False)


def test_cli_make_show_skeleton(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["world", "make", "--clips", "1", "--out", str(out), "--frames", "9", "--quiet"]) == 0
    assert "1 clips written" in capsys.readouterr().out
    old = tmp_path / "v3"
    assert main(["world", "make", "--clips", "1", "--out", str(old), "--frames", "9", "--quiet",
                 "--world-version", "3"]) == 0  # fmt: skip
    assert json.loads((old / "clips" / "000000" / "meta.json").read_text())["world_version"] == 3
    sheet = tmp_path / "sheet.png"
    assert main(["world", "show", "--identity", "2", "--frames", "21", "--size", "128", "--out", str(sheet)]) == 0
    from PIL import Image

    assert Image.open(sheet).size[0] == 128 * 9
    # drive an identity with a user's audio file: a video with the skeleton beside it
    from physavatar.io.audio import write_wav

    tone = 0.3 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 220).astype(np.float32)  # 1 s = 25 frames
    write_wav(tmp_path / "me.wav", tone)
    talk = tmp_path / "talk.mp4"
    assert main(["world", "show", "--audio", str(tmp_path / "me.wav"), "--size", "128", "--out", str(talk)]) == 0
    from physavatar.io.video import probe_video

    info = probe_video(talk)
    assert (info.num_frames, info.width, info.height, info.has_audio) == (25, 256, 128, True)
    video = tmp_path / "pose.mp4"
    assert main(["world", "skeleton", "--clip", str(out / "clips" / "000000"), "--out", str(video)]) == 0
    assert video.stat().st_size > 0
    assert main(["world", "make", "--clips", "1", "--out", str(out), "--frames", "10", "--quiet"]) == 2
    assert "1 + 4k" in capsys.readouterr().err
