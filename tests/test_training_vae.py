"""Training a small Wan VAE on clips written in the test."""

import json

import numpy as np
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
            "--base-dim", "4", "--z-dim", "4", "--quiet"]
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
