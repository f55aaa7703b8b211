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


@pytest.mark.parametrize("adversarial", [{}, {"adv_weight": 0.5, "adv_start": 3}], ids=["plain", "adversarial"])
def test_train_vae_resumes_where_a_crash_stopped_it(tmp_path, monkeypatch, adversarial):
    from physavatar.training import vae as vae_training
    from physavatar.training.vae import VaeTrainArgs, train_vae

    data = make_clips(tmp_path / "data")
    common = dict(data=str(data), batch_size=2, base_dim=4, z_dim=4, crop=16, steps=12, save_every=5, lr=3e-3,
                  device="cpu", **adversarial)
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
    # a device is where a run happens, not what it is: a state saved by a run on a GPU resumes on the CPU
    state_path = tmp_path / "resumed.ckpt" / "state.pt"
    state = torch.load(state_path, weights_only=True)
    state["args"]["device"] = "cuda"
    torch.save(state, state_path)
    resumed = train_vae(VaeTrainArgs(out=str(out), **common), progress=False)
    assert not (tmp_path / "resumed.ckpt").exists()
    assert resumed["final_reconstruction_loss"] == whole["final_reconstruction_loss"]
    assert resumed["held_out_psnr_db"] == whole["held_out_psnr_db"]
    # the discriminator and its optimizer resume too (it started at step 3, before the checkpoint of step 5)
    assert resumed["discriminator_loss_curve"] == whole["discriminator_loss_curve"]
    assert bool(whole["discriminator_loss_curve"]) == bool(adversarial)
    with pytest.raises(ValueError, match="other arguments"):  # a changed run never mixes with an old state
        train_vae(VaeTrainArgs(out=str(tmp_path / "other"), **{**common, "lr": 1e-3}), progress=False)
    (tmp_path / "other.ckpt" / "state.pt").write_text("{not a checkpoint")
    with pytest.raises(ValueError, match="unreadable"):
        train_vae(VaeTrainArgs(out=str(tmp_path / "other"), **common), progress=False)


def _write_face_keypoints(root, frames=9):
    """Keypoints (F, 127, 3) whose face points circle the disc of make_clips (x 8 + t, y 16, radius 6)."""
    from physavatar.physstate.layout import FACE

    for clip in sorted((root / "clips").iterdir()):
        kp = np.zeros((frames, 127, 3), np.float32)
        angles = np.linspace(0, 2 * np.pi, FACE.stop - FACE.start, endpoint=False)
        for t in range(frames):
            kp[t, FACE, 0] = (8 + t + 5 * np.cos(angles)) / 32
            kp[t, FACE, 1] = (16 + 5 * np.sin(angles)) / 32
        kp[..., 2] = 1
        np.save(clip / "keypoints.npy", kp)


def test_face_weights_cover_the_face_box(tmp_path):
    from physavatar.training.vae import _face_weights

    data = make_clips(tmp_path / "data")
    _write_face_keypoints(data)
    inside = _face_weights(data / "clips" / "000000" / "keypoints.npy", (9, 32, 32))
    assert inside.shape == (9, 32, 32) and inside[0, 16, 8] == 1 and inside[0, 2, 30] == 0
    assert inside[8, 16, 16] == 1 and inside[0, 16, 16] == 0  # the box follows the face


def test_decoder_fine_tune_keeps_the_latent_space(tmp_path, capsys):
    """--freeze-encoder: encoder and normalisation bit for bit the init's, the decoder learns."""
    from safetensors.torch import load_file

    data = make_clips(tmp_path / "data")
    base = ["train-vae", "--data", str(data), "--batch-size", "2", "--base-dim", "4", "--z-dim", "4", "--quiet"]
    assert main(base + ["--out", str(tmp_path / "vae"), "--steps", "8", "--lr", "3e-3", "--crop", "16"]) == 0
    before = json.loads(capsys.readouterr().out)["held_out_psnr_db"]
    assert main(base + ["--out", str(tmp_path / "x"), "--init", str(tmp_path / "vae"), "--face-weight", "4"]) != 0
    assert "keypoints.npy" in capsys.readouterr().err
    assert main(base + ["--out", str(tmp_path / "x"), "--freeze-encoder"]) != 0
    assert "--init" in capsys.readouterr().err and not (tmp_path / "x").exists()
    out = tmp_path / "decoder"
    assert main(base + ["--out", str(out), "--init", str(tmp_path / "vae"), "--freeze-encoder", "--steps", "60",
                        "--lr", "3e-3", "--crop", "16", "--window", "5"]) == 0
    after = json.loads(capsys.readouterr().out)["held_out_psnr_db"]
    assert after > before + 0.5  # the decoder alone improved the reconstructions
    old, new = load_file(tmp_path / "vae" / "diffusion_pytorch_model.safetensors"), load_file(
        out / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(old[k], new[k]) for k in old if k.startswith(("encoder.", "quant_conv.")))
    assert any(not torch.equal(old[k], new[k]) for k in old if k.startswith("decoder."))
    old_cfg, new_cfg = (json.loads((p / "config.json").read_text()) for p in (tmp_path / "vae", out))
    assert new_cfg["latents_mean"] == old_cfg["latents_mean"] and new_cfg["latents_std"] == old_cfg["latents_std"]


def test_face_weight_changes_what_the_decoder_learns(tmp_path):
    from physavatar.training.vae import VaeTrainArgs, train_vae

    data = make_clips(tmp_path / "data")
    _write_face_keypoints(data)
    common = dict(data=str(data), batch_size=2, base_dim=4, z_dim=4, crop=16, steps=4, window=5, lr=3e-3)
    train_vae(VaeTrainArgs(out=str(tmp_path / "vae"), **common), progress=False)
    cards = [train_vae(VaeTrainArgs(out=str(tmp_path / f"w{w}"), init=str(tmp_path / "vae"), freeze_encoder=True,
                                    face_weight=w, **common), progress=False) for w in (0.0, 4.0)]
    assert cards[0]["final_reconstruction_loss"] != cards[1]["final_reconstruction_loss"]


def test_wider_decoder_on_the_init_latent_space(tmp_path, capsys):
    """--decoder-base-dim with --init --freeze-encoder: a new decoder of that width learns to draw the init's
    latents; encoder, normalisation and so every latent stay the init's."""
    from physavatar.models.vae import LatentCodec

    data = make_clips(tmp_path / "data")
    base = ["train-vae", "--data", str(data), "--batch-size", "2", "--base-dim", "4", "--z-dim", "4", "--quiet",
            "--lr", "3e-3", "--crop", "16", "--window", "5"]
    assert main(base + ["--out", str(tmp_path / "vae"), "--steps", "8"]) == 0
    capsys.readouterr()
    wide = ["--out", str(tmp_path / "wide"), "--init", str(tmp_path / "vae"), "--freeze-encoder",
            "--decoder-base-dim", "8"]
    assert main(base + wide + ["--steps", "1"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(base + wide + ["--steps", "60"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["held_out_psnr_db"] > first["held_out_psnr_db"] + 1  # the fresh decoder learned
    narrow, wider = LatentCodec.from_pretrained(tmp_path / "vae"), LatentCodec.from_pretrained(tmp_path / "wide")
    assert wider.vae.config.decoder_base_dim == 8 and wider.vae.config.base_dim == 4
    assert wider.vae.config.latents_mean == narrow.vae.config.latents_mean
    assert wider.vae.config.latents_std == narrow.vae.config.latents_std
    assert card["parameters"] > sum(p.numel() for p in narrow.vae.parameters())
    x = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    assert torch.equal(wider.encode(x), narrow.encode(x))
    assert wider.decode(wider.encode(x)).shape == x.shape


def test_patch_discriminator_learns_to_tell_sharp_frames_from_blurred_ones():
    """What the adversarial loss rests on: the hinge loss trains the discriminator to separate real frames from
    the blur an L1 + MSE decoder draws, and a generator loss that rewards looking real."""
    from physavatar.training.discriminator import PatchDiscriminator, discriminator_loss, generator_loss

    torch.manual_seed(0)
    disc = PatchDiscriminator(channels=8)
    optimizer = torch.optim.Adam(disc.parameters(), lr=2e-3, betas=(0.5, 0.9))

    def sharp_and_blurred():
        sharp = (torch.rand(4, 3, 2, 32, 32) > 0.5).float() * 2 - 1  # hard-edged noise
        flat = sharp.permute(0, 2, 1, 3, 4).reshape(8, 3, 32, 32)
        blurred = torch.nn.functional.avg_pool2d(flat, 3, 1, 1).reshape(4, 2, 3, 32, 32).permute(0, 2, 1, 3, 4)
        return sharp, blurred

    sharp, blurred = sharp_and_blurred()
    assert disc(sharp).shape == (8, 1, 4, 4)  # frames folded into the batch, a logit per patch
    first = discriminator_loss(disc(sharp), disc(blurred)).item()
    for _ in range(40):
        sharp, blurred = sharp_and_blurred()
        loss = discriminator_loss(disc(sharp), disc(blurred))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    sharp, blurred = sharp_and_blurred()
    with torch.no_grad():
        assert discriminator_loss(disc(sharp), disc(blurred)).item() < 0.5 * first
        assert generator_loss(disc(sharp)) < generator_loss(disc(blurred))  # looking real lowers the generator's loss


def test_adaptive_weight_balances_the_two_gradients():
    from physavatar.training.discriminator import adaptive_weight

    layer = torch.nn.Parameter(torch.randn(3, 3))
    rec, adv = (layer ** 2).sum(), 4 * layer.sum()
    w = adaptive_weight(rec, adv, layer)
    g_rec, g_adv = 2 * layer.detach(), 4 * torch.ones(3, 3)
    assert torch.allclose(w, g_rec.norm() / (g_adv.norm() + 1e-4))
    assert torch.allclose(adaptive_weight(rec, 10 * adv, layer), w / 10, rtol=1e-3)  # a louder loss gets less weight


def test_patchified_residual_vae_keeps_the_models_latent_grid(tmp_path, capsys):
    """Wan2.2's layout (pixel unshuffle by 2, one level fewer, residual blocks) still gives the 8x / 4x latent
    grid the model expects, learns, and loads through the pipeline's codec."""
    from physavatar.models.vae import LatentCodec

    data = make_clips(tmp_path / "data")
    out = tmp_path / "vae"
    args = ["train-vae", "--data", str(data), "--out", str(out), "--batch-size", "2", "--base-dim", "4", "--z-dim",
            "4", "--crop", "16", "--dim-mult", "1,2,2", "--patch-size", "2", "--residual", "--quiet"]
    assert main(args + ["--steps", "1"]) == 0
    before = json.loads(capsys.readouterr().out)["final_reconstruction_loss"]
    assert main(args + ["--steps", "30"]) == 0
    assert json.loads(capsys.readouterr().out)["final_reconstruction_loss"] < 0.9 * before
    codec = LatentCodec.from_pretrained(out)
    assert codec.vae.config.patch_size == 2 and codec.vae.config.is_residual
    assert codec.encode(torch.zeros(1, 3, 9, 32, 48)).shape == (1, 4, 3, 4, 6)
    assert codec.decode(torch.zeros(1, 4, 3, 4, 6)).shape == (1, 3, 9, 32, 48)
    # a stage started from it keeps its layout whatever the layout flags say, and its card says so
    assert main(["train-vae", "--data", str(data), "--out", str(tmp_path / "stage2"), "--init", str(out), "--steps",
                 "1", "--batch-size", "2", "--crop", "16", "--quiet"]) == 0
    layout = json.loads(capsys.readouterr().out)["layout"]
    assert (layout["patch_size"], layout["is_residual"], layout["dim_mult"], layout["base_dim"]) == (2, True,
                                                                                                    [1, 2, 2], 4)
    # a layout whose spatial stride is not the model's 8 is refused before any data is read
    refused = ["train-vae", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "x"), "--dim-mult", "1,2,2"]
    assert main(refused) == 2
    assert "downsamples 4x" in capsys.readouterr().err
