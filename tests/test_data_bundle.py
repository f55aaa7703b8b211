"""Stored features packed into compressed parts and written back: what the trainer reads survives, the keypoints
and physical-state tokens exactly (tokens of the keypoints recomputed, others carried), float32 features to
float16 precision."""

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from _fake_features import make_feature_dataset
from physavatar.data.bundle import main, pack, unpack
from physavatar.data.dataset import ClipDataset
from physavatar.physstate.tokens import encode_keypoints


def _dataset(root):
    make_feature_dataset(root, clips=3, frames=9, z=4, hw=8)
    rng = np.random.default_rng(1)
    for clip in sorted((root / "clips").iterdir()):
        kp = np.concatenate([rng.uniform(0.2, 0.8, (9, 127, 2)), np.ones((9, 127, 1))], -1)
        np.save(clip / "keypoints.npy", kp.astype(np.float32))
        if clip.name == "000000":  # as every world clip: its tokens are its keypoints' (the others' are random)
            np.save(clip / "phys_tokens.npy", encode_keypoints(kp).astype(np.float16))
        save_file({"known": torch.randn(4, 3, 8, 8)}, clip / "features" / "known.vae.m5n4.safetensors",
                  metadata={"vae": "vae"})
    return root


def test_round_trip_keeps_what_the_trainer_reads(tmp_path):
    src = _dataset(tmp_path / "src")
    report = pack(src, tmp_path / "bundle", vae_name="vae", part_mib=0.02)
    first = src / "clips/000000/phys_tokens.npy"
    tokens = np.load(first)
    np.save(first, tokens + np.float16(0.01))  # no longer its keypoints' tokens: they travel
    carried = pack(src, tmp_path / "carried", vae_name="vae")
    np.save(first, tokens)
    assert 0 < carried.raw_bytes - report.raw_bytes - tokens.nbytes < 200  # only the index entry differs
    assert report.clips == 3 and len(report.parts) > 1  # small parts: the split and the join are exercised
    assert report.packed_bytes < report.raw_bytes
    unpack(tmp_path / "bundle", tmp_path / "dst")

    kwargs = dict(num_frames=9, face_masks=True, known_frames=(5, 4))
    a, b = ClipDataset(src, **kwargs), ClipDataset(tmp_path / "dst", **kwargs)
    assert len(a) == len(b) == 3 and b.audio_backend == a.audio_backend and b.plan_backend == a.plan_backend
    for x, y in zip(a.samples, b.samples):
        for name in ("latents", "reference", "audio", "known", "e_con", "e_tok"):
            u, v = getattr(x, name), getattr(y, name)
            assert v.dtype == u.dtype and v.shape == u.shape
            torch.testing.assert_close(v, u, rtol=2**-10, atol=1e-4)
        assert torch.equal(x.phys, y.phys) and torch.equal(x.face, y.face) and torch.equal(x.mouth, y.mouth)
        assert torch.equal(x.hands, y.hands)
    clip = "clips/000001"
    kp = [np.load(root / clip / "keypoints.npy") for root in (src, tmp_path / "dst")]
    np.testing.assert_array_equal(kp[0], kp[1])
    with safe_open(str(tmp_path / "dst" / clip / "features" / "known.vae.m5n4.safetensors"), "pt") as f:
        assert f.metadata() == {"vae": "vae"}
    assert (tmp_path / "dst" / "manifest.jsonl").read_text() == (src / "manifest.jsonl").read_text()
    with pytest.raises(FileExistsError, match="--overwrite"):  # never over the exact files by accident
        unpack(tmp_path / "bundle", src)
    assert unpack(tmp_path / "bundle", tmp_path / "dst", overwrite=True) == report.files


def test_missing_feature_and_broken_bundle_are_named(tmp_path, capsys):
    src = _dataset(tmp_path / "src")
    with pytest.raises(FileNotFoundError, match="latents.vae_p2.safetensors"):
        pack(src, tmp_path / "b0", vae_name="vae_p2")
    assert not (tmp_path / "b0").exists()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "part_999.xz").write_bytes(b"an older, longer bundle's last part")
    main(["pack", str(src), "--out", str(tmp_path / "b"), "--vae", "vae", "--part-mib", "0.02"])
    assert not (tmp_path / "b" / "part_999.xz").exists()
    assert "3 clips" in capsys.readouterr().out
    parts = sorted((tmp_path / "b").glob("part_*.xz"))
    parts[-1].write_bytes(parts[-1].read_bytes()[:-100])
    with pytest.raises(ValueError, match="missing or truncated"):
        unpack(tmp_path / "b", tmp_path / "dst")
    assert not (tmp_path / "dst").exists()
    with pytest.raises(FileNotFoundError, match="no part_"):
        unpack(tmp_path / "src", tmp_path / "dst")


def test_media_without_latents_for_a_new_vae_there(tmp_path):
    src = _dataset(tmp_path / "src")
    rng = np.random.default_rng(2)
    for clip in (src / "clips").iterdir():  # stand-ins: the bundle carries these files' bytes, whatever they hold
        (clip / "video.mp4").write_bytes(rng.bytes(3000))
        (clip / "reference.png").write_bytes(rng.bytes(500))
    with pytest.raises(FileNotFoundError, match="latents.vae_new"):
        pack(src, tmp_path / "b0", vae_name="vae_new", media=True)
    main(["pack", str(src), "--out", str(tmp_path / "b"), "--vae", "none", "--known", "none", "--media"])
    assert unpack(tmp_path / "b", tmp_path / "dst") == 1 + 3 * 7  # manifest; meta, kp, tokens, audio, plan, media
    for clip in (src / "clips").iterdir():
        there = tmp_path / "dst" / "clips" / clip.name
        for name in ("video.mp4", "reference.png"):
            assert (there / name).read_bytes() == (clip / name).read_bytes()
        assert not list((there / "features").glob("*.safetensors"))  # encoded afresh where they arrive
        assert (there / "features" / "audio.default.npz").exists()
    # the media ahead of the features, then the features over them (the shared files are the same bytes)
    main(["pack", str(src), "--out", str(tmp_path / "m"), "--vae", "none", "--known", "none", "--media",
          "--no-features"])
    assert unpack(tmp_path / "m", tmp_path / "two") == 1 + 3 * 5
    assert not list((tmp_path / "two").glob("clips/*/features/*"))
    main(["pack", str(src), "--out", str(tmp_path / "f"), "--vae", "none", "--known", "none"])
    assert unpack(tmp_path / "f", tmp_path / "two", overwrite=True) == 1 + 3 * 5
    assert len(list((tmp_path / "two").rglob("*.*"))) == len(list((tmp_path / "dst").rglob("*.*")))
