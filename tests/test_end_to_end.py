"""World -> extract -> train -> export -> generate, with the real offline encoders and a tiny model."""

import json
import shutil

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKLWan
from safetensors import safe_open

from physavatar.cli import main
from physavatar.io.video import probe_video
from physavatar.world.dataset import WORLD_VERSION

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt-get install espeak-ng)")


def test_world_to_video(tmp_path, capsys):
    data, vae = tmp_path / "world", tmp_path / "vae"
    assert main(["world", "make", "--clips", "4", "--out", str(data), "--frames", "17", "--size", "128",
                 "--quiet"]) == 0
    torch.manual_seed(0)
    AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 2, 2, 2], num_res_blocks=1, latents_mean=[0.0] * 4,
                     latents_std=[1.0] * 4).save_pretrained(vae)
    for shard in ("0/2", "1/2"):  # two processes would share the clips like this
        assert main(["extract", str(data), "--vae", str(vae), "--quiet", "--shard", shard]) == 0
        assert "2 clips: wrote audio 2, plan 2, latents 2" in capsys.readouterr().out
    assert main(["extract", str(data), "--vae", str(vae), "--quiet"]) == 0
    assert "4 clips: wrote audio 0, plan 0, latents 0" in capsys.readouterr().out  # all done: nothing recomputed
    assert main(["extract", str(data), "--shard", "2/2"]) == 2
    run = tmp_path / "run"
    assert main(["train", "--config", "configs/tiny.yaml", "--no-progress", f"--data.root={data}",
                 "--data.num_frames=17", f"--data.vae={vae}", "--data.known_frames_prob=0.5",
                 "--model.audio_dim=384", "--model.mllm_dim=384", f"--run.out_dir={run}", "--run.max_steps=3",
                 "--run.val_every=3", "--run.val_steps=1", "--run.val_split=train", "--run.tensorboard=false",
                 "--run.log_every=1", "--run.device=cpu", "--run.export_steps=2", "--run.export_audio_scale=3.5",
                 "--run.export_dtype=float16", "--optim.decay=cosine"]) == 0
    sample = run / "samples" / "step_0000003.mp4"
    assert probe_video(sample).num_frames == 17  # the validation clip (17 frames) regenerated
    card = json.loads((run / "pipeline" / "training_card.json").read_text())
    assert card["steps"] == 3 and card["wall_time_s"] > 0 and len(card["loss_curve"]) == 3
    assert card["data"]["clips_by_split"] == {"train": 4} and np.isfinite(card["final_losses"]["total"])
    assert card["config"]["optim"]["decay"] == "cosine"
    # how its people were drawn, so `physavatar demo` draws new ones the same way
    assert card["data"]["world"] == {"framing": "mixed", "size": 128, "world_version": WORLD_VERSION}
    assert card["device"] == "cpu"
    with safe_open(str(run / "pipeline" / "transformer" / "diffusion_pytorch_model.safetensors"), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}
    out = tmp_path / "gen" / "avatar.mp4"
    image = next((data / "clips").iterdir()) / "reference.png"
    audio = next((data / "clips").iterdir()) / "audio.wav"
    assert main(["generate", "--model", str(run / "pipeline"), "--image", str(image), "--audio", str(audio),
                 "--out", str(out), "--quiet", "--skeleton"]) == 0
    info = probe_video(out)
    assert (info.num_frames, info.width, info.has_audio) == (17, 128, True)
    assert np.load(out.with_name("avatar.phys.npy")).shape == (17, 4, 256)
    assert "[VIDEO]" in out.with_name("avatar.plan.txt").read_text()
    settings = json.loads(out.with_suffix(".json").read_text())
    assert (settings["steps"], settings["audio_scale"]) == (2, 3.5)  # the model's export_steps / export_audio_scale
