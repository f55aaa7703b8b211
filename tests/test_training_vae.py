"""Training a small Wan VAE on clips written in the test."""

import json

import numpy as np
import pytest
import torch

from physavatar.cli import main
from physavatar.io.video import write_video


def make_clips(root, n=3, frames=9, size=32):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        clip = root / "clips" / f"{i:06d}"
        clip.mkdir(parents=True)
        yy, xx = np.mgrid[:size, :size]
        video = []
        for t in range(frames):  # a moving disc on a flat colour: simple, learnable content
            frame = np.full((size, size, 3), rng.integers(40, 200, 3), np.uint8)
            frame[(yy - 16) ** 2 + (xx - 8 - t) ** 2 < 36] = 230
            video.append(frame)
        write_video(clip / "video.mp4", np.stack(video))
        rows.append({"id": f"{i:06d}", "path": f"clips/{i:06d}", "split": "val" if i == n - 1 else "train"})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_train_vae_learns_and_writes_normalisation(tmp_path, capsys):
    data = make_clips(tmp_path / "data")
    out = tmp_path / "vae"
    args = ["train-vae", "--data", str(data), "--out", str(out), "--batch-size", "2", "--lr", "3e-3",
            "--base-dim", "4", "--z-dim", "4", "--crop", "16", "--quiet"]
    assert main(args + ["--steps", "1"]) == 0
    before = json.loads(capsys.readouterr().out)["held_out_psnr_db"]
    assert main(args + ["--steps", "30"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["held_out_psnr_db"] > before + 2  # it learned something about these frames
    from physavatar.models.vae import LatentCodec

    codec = LatentCodec.from_pretrained(out)
    z = codec.encode(torch.zeros(1, 3, 5, 32, 32))
    assert z.shape == (1, 4, 2, 4, 4)
    assert len(codec.vae.config.latents_mean) == 4 and (out / "training_card.json").exists()


def test_train_vae_resumes_where_a_crash_stopped_it(tmp_path, monkeypatch):
    from physavatar.training import vae as vae_training
    from physavatar.training.vae import VaeTrainArgs, train_vae

    data = make_clips(tmp_path / "data")
    common = dict(data=str(data), batch_size=2, base_dim=4, z_dim=4, crop=16, steps=12, save_every=5, lr=3e-3)
    whole = train_vae(VaeTrainArgs(out=str(tmp_path / "whole"), **common), progress=False)

    real_batch, calls = vae_training._batch, []

    def crashing_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 8:  # after the checkpoint of step 5
            raise KeyboardInterrupt
        return real_batch(*args, **kwargs)

    monkeypatch.setattr(vae_training, "_batch", crashing_batch)
    out = tmp_path / "resumed"
    try:
        train_vae(VaeTrainArgs(out=str(out), **common), progress=False)
    except KeyboardInterrupt:
        pass
    assert (tmp_path / "resumed.ckpt" / "state.pt").exists() and not out.exists()
    import shutil

    shutil.copytree(tmp_path / "resumed.ckpt", tmp_path / "other.ckpt")
    monkeypatch.setattr(vae_training, "_batch", real_batch)
    resumed = train_vae(VaeTrainArgs(out=str(out), **common), progress=False)
    assert not (tmp_path / "resumed.ckpt").exists()
    assert resumed["final_reconstruction_loss"] == whole["final_reconstruction_loss"]
    assert resumed["held_out_psnr_db"] == whole["held_out_psnr_db"]
    with pytest.raises(ValueError, match="other arguments"):  # a changed run never mixes with an old state
        train_vae(VaeTrainArgs(out=str(tmp_path / "other"), **{**common, "lr": 1e-3}), progress=False)
    (tmp_path / "other.ckpt" / "state.pt").write_text("{not a checkpoint")
    with pytest.raises(ValueError, match="unreadable"):
        train_vae(VaeTrainArgs(out=str(tmp_path / "other"), **common), progress=False)
