"""World -> extract -> train -> export -> generate, with the real offline encoders and a tiny model."""

import shutil

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKLWan

from physavatar.cli import main
from physavatar.io.video import probe_video

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt-get install espeak-ng)")


def test_world_to_video(tmp_path, capsys):
    data, vae = tmp_path / "world", tmp_path / "vae"
    assert main(["world", "make", "--clips", "4", "--out", str(data), "--frames", "17", "--size", "128",
                 "--quiet"]) == 0
    torch.manual_seed(0)
    AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 2, 2, 2], num_res_blocks=1, latents_mean=[0.0] * 4,
                     latents_std=[1.0] * 4).save_pretrained(vae)
    assert main(["extract", str(data), "--vae", str(vae), "--quiet"]) == 0
    assert "skipped 0" in capsys.readouterr().out
    run = tmp_path / "run"
    assert main(["train", "--config", "configs/tiny.yaml", "--no-progress", f"--data.root={data}",
                 "--data.num_frames=17", f"--data.vae={vae}", "--data.known_frames_prob=0.5",
                 "--model.audio_dim=384", "--model.mllm_dim=384", f"--run.out_dir={run}", "--run.max_steps=3",
                 "--run.val_every=3", "--run.val_steps=1", "--run.val_split=train", "--run.tensorboard=false"]) == 0
    sample = run / "samples" / "step_0000003.mp4"
    assert probe_video(sample).num_frames == 17  # the validation clip (17 frames) regenerated
    out = tmp_path / "gen" / "avatar.mp4"
    image = next((data / "clips").iterdir()) / "reference.png"
    audio = next((data / "clips").iterdir()) / "audio.wav"
    assert main(["generate", "--model", str(run / "pipeline"), "--image", str(image), "--audio", str(audio),
                 "--out", str(out), "--steps", "2", "--quiet", "--skeleton"]) == 0
    info = probe_video(out)
    assert (info.num_frames, info.width, info.has_audio) == (17, 128, True)
    assert np.load(out.with_name("avatar.phys.npy")).shape == (17, 4, 256)
    assert "[VIDEO]" in out.with_name("avatar.plan.txt").read_text()
