"""The trainer on a tiny model and a feature dataset written in the test."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from _fake_features import make_feature_dataset
from physavatar.training.config import load_train_config, parse_overrides
from physavatar.training.trainer import Trainer

GOLDEN = Path(__file__).parent / "golden" / "tiny_loss_curve.json"


def config(tmp_path, data, **overrides):
    values = {
        "model_preset": "tiny", "data.root": str(data), "data.num_frames": 9, "data.known_frames_prob": 0.0,
        "run.out_dir": str(tmp_path / "run"), "run.max_steps": 4, "run.save_every": 100, "optim.lr": 1e-3,
        "optim.warmup_steps": 1, "run.tensorboard": False, "run.seed": 3,
    }
    values.update(overrides)
    return load_train_config(None, values)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_feature_dataset(tmp_path_factory.mktemp("features") / "data", clips=4)


def test_config_overrides_are_typed_and_checked(tmp_path):
    assert parse_overrides(["--optim.lr=1e-4", "--run.seed", "3", "--model.phys_layer=null"]) == {
        "optim.lr": 1e-4, "run.seed": 3, "model.phys_layer": None}
    with pytest.raises(ValueError, match="unknown config key 'optim.learning_rate'"):
        load_train_config(None, ["--optim.learning_rate=1"])
    with pytest.raises(ValueError, match="run.max_steps: expected int"):
        load_train_config(None, ["--run.max_steps=many"])
    with pytest.raises(ValueError, match=r"unknown model keys \['depth'\]"):
        load_train_config(None, ["--model.depth=3"])
    child = tmp_path / "child.yaml"
    (tmp_path / "parent.yaml").write_text("optim:\n  lr: 0.5\nrun:\n  seed: 9\n")
    child.write_text("inherit: parent.yaml\nrun:\n  seed: 1\n")
    cfg = load_train_config(child)
    assert (cfg.optim.lr, cfg.run.seed) == (0.5, 1)


def test_every_shipped_config_loads():
    root = Path(__file__).parents[1] / "configs"
    files = sorted(root.glob("*.yaml")) + sorted((root / "ablations").glob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        load_train_config(path)


@pytest.mark.parametrize("switch", [
    {"loss.supervision": "none", "model.phys_layer": None},  # only continuous
    {"model.phys_layer": 1},  # J_Phys variants (tiny has 4 blocks)
    {"model.phys_layer": 3},
    {"loss.supervision": "full"},
    {"model.context_mode": "none", "data.planner": ""},  # w/o MLLM
    {"model.context_mode": "mllm", "model.mllm_blocks": "all"},
])
def test_each_ablation_switch_runs_a_step(tmp_path, data, switch):
    trainer = Trainer(config(tmp_path, data, **{"run.max_steps": 1, **switch}), progress=False)
    history = trainer.train()
    assert len(history) == 1 and np.isfinite(history[0].total)
    if switch.get("loss.supervision") == "none":
        assert history[0].disc == 0.0


def test_mllm_via_t5_feeds_the_plan_as_wan_text(tmp_path):
    data = make_feature_dataset(tmp_path / "t5data", clips=2, mllm_dim=32, planner="t5")
    trainer = Trainer(config(tmp_path, data, **{"model.context_mode": "t5", "data.planner": "t5",
                                                 "run.max_steps": 1}), progress=False)
    assert np.isfinite(trainer.train()[0].total)


def test_mismatched_config_and_data_are_clear_errors(tmp_path, data):
    with pytest.raises(ValueError, match="model expects audio_dim=16"):
        Trainer(config(tmp_path, data, **{"model.audio_dim": 16}), progress=False)
    with pytest.raises(ValueError, match="needs the physical-state head"):
        Trainer(config(tmp_path, data, **{"model.phys_layer": None}), progress=False)
    with pytest.raises(ValueError, match="no usable train clip"):
        Trainer(config(tmp_path, data, **{"data.num_frames": 13}), progress=False)


def test_bad_clip_is_skipped_and_mixed_backends_refused(tmp_path):
    from physavatar.encoders.audio import AudioFeatures
    from physavatar.encoders.backend import BackendMismatchError

    data = make_feature_dataset(tmp_path / "d", clips=3)
    np.save(data / "clips" / "000001" / "phys_tokens.npy", np.zeros((5, 4, 256), np.float16))  # wrong length
    trainer = Trainer(config(tmp_path, data, **{"run.max_steps": 1}), progress=False)
    assert len(trainer.dataset) == 2 and "000001" in trainer.dataset.skipped[0]
    path = data / "clips" / "000002" / "features" / "audio.default.npz"
    AudioFeatures(AudioFeatures.load(path).features, "another-encoder").save(path)
    with pytest.raises(BackendMismatchError, match="different encoder backends"):
        Trainer(config(tmp_path, data), progress=False)


def test_face_weight_weighs_the_face_latents_and_needs_keypoints(tmp_path):
    from physavatar.data.dataset import region_latent_mask
    from physavatar.physstate.layout import FACE, LEFT_HAND, MOUTH, RIGHT_HAND

    kp = np.zeros((9, 127, 3), np.float32)
    kp[:, FACE, 0] = np.linspace(0.3, 0.5, FACE.stop - FACE.start)  # the face spans x 0.3-0.5, y 0.1-0.3
    kp[:, FACE, 1] = np.linspace(0.1, 0.3, FACE.stop - FACE.start)
    kp[5:, FACE, 0] += 0.4  # from frame 5 on (latent 2 on) it stands further right
    mask = region_latent_mask(kp, (8, 8))
    assert mask.shape == (3, 8, 8)
    assert mask[0, 1, 2] == 1 and mask[0, 1, 6] == 0 and mask[0, 6, 2] == 0
    assert mask[1].sum() == mask[0].sum() and mask[2, 1, 6] == 1 and mask[2, 1, 2] == 0
    lips = np.zeros((9, 127, 3), np.float32)
    lips[:, MOUTH, 0] = np.linspace(0.40, 0.45, MOUTH.stop - MOUTH.start)  # one latent pixel of 8 x 8: (2, 3)
    lips[:, MOUTH, 1] = np.linspace(0.27, 0.30, MOUTH.stop - MOUTH.start)
    mouth = region_latent_mask(lips, (8, 8), region="mouth")
    assert mouth.sum() == 3 and (mouth[:, 2, 3] == 1).all()
    hands = kp.copy()
    hands[:, LEFT_HAND, :2] = 0.7  # the left hand rests below the frame until frame 5, then at latent pixel (5, 5)
    hands[:5, LEFT_HAND, 1] = 1.3
    hands[:, RIGHT_HAND, :2] = -0.5  # the right one never in view
    in_view = region_latent_mask(hands, (8, 8), region="hands")
    assert in_view[:2].sum() == 0 and in_view[2].sum() == 1 and in_view[2, 5, 5] == 1

    data = make_feature_dataset(tmp_path / "d", clips=2)
    with pytest.raises(ValueError, match="keypoints.npy"):  # every clip skipped: the error says why
        Trainer(config(tmp_path, data, **{"loss.face_weight": 4.0}), progress=False)
    for clip in (data / "clips").iterdir():
        np.save(clip / "keypoints.npy", kp)
    losses = []
    for clip in (data / "clips").iterdir():
        np.save(clip / "keypoints.npy", hands)
    for face, mouth, hand in ((0.0, 0.0, 0.0), (4.0, 0.0, 0.0), (4.0, 8.0, 0.0), (4.0, 8.0, 8.0), (0.0, 0.0, 8.0)):
        overrides = {"run.max_steps": 1, "loss.face_weight": face, "loss.mouth_weight": mouth,
                     "loss.hand_weight": hand}
        trainer = Trainer(config(tmp_path / f"{face}-{mouth}-{hand}", data, **overrides), progress=False)
        losses.append(trainer.train()[0].cont)
    # same draws, other weightings of the same errors
    assert np.isfinite(losses).all() and len(set(losses)) == 5
    with pytest.raises(ValueError, match="loss.mouth_weight=-1"):
        Trainer(config(tmp_path / "bad", data, **{"loss.mouth_weight": -1.0}), progress=False)
    with pytest.raises(ValueError, match="loss.hand_weight=-1"):
        Trainer(config(tmp_path / "bad", data, **{"loss.hand_weight": -1.0}), progress=False)


def test_known_frames_latents_come_from_extract_or_are_encoded(tmp_path, caplog, monkeypatch):
    from diffusers import AutoencoderKLWan

    from physavatar.data.features import extract_features, known_frames_path
    from physavatar.io.video_writer import write_video
    from safetensors.torch import save_file

    data = make_feature_dataset(tmp_path / "d", clips=2)
    rng = np.random.default_rng(0)
    for clip in sorted((data / "clips").iterdir()):
        write_video(clip / "video.mp4", rng.integers(0, 255, (9, 64, 64, 3), dtype=np.uint8))
    torch.manual_seed(0)
    AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 2, 2, 2], num_res_blocks=1, latents_mean=[0.0] * 4,
                     latents_std=[1.0] * 4).save_pretrained(tmp_path / "vae")
    known = {"data.vae": str(tmp_path / "vae"), "data.known_frames_prob": 1.0, "data.tail_frames": 2,
             "data.head_frames": 1}

    encoding = Trainer(config(tmp_path / "a", data, **known), progress=False)  # no known.* files yet
    batch = encoding._next_batch()
    assert batch["known"] == [None]
    encoded = encoding._context(batch, torch.tensor([True]))
    assert "--known-frames 2,1" in caplog.text  # says how to precompute them
    assert not torch.equal(encoded, encoding._context(batch, torch.tensor([False])))  # the known frames went in

    def unavailable(*args, **kwargs):
        raise AssertionError("an encoder was loaded although every clip has its features")

    # audio and plans are done, so neither Whisper nor the text encoder is needed (a GPU machine without them)
    monkeypatch.setattr("physavatar.encoders.audio.load_audio_encoder", unavailable)
    monkeypatch.setattr("physavatar.encoders.planner.load_planner", unavailable)
    report = extract_features(data, planner="default", vae=tmp_path / "vae", pose=None, known_frames=(2, 1),
                              progress=False, device="auto")
    assert report.written["known"] == 2 and report.written["latents"] == 0  # only what was missing
    assert not report.skipped
    reading = Trainer(config(tmp_path / "b", data, **known), progress=False)
    batch = reading._next_batch()
    assert batch["known"][0] is not None
    torch.testing.assert_close(reading._context(batch, torch.tensor([True])), encoded)
    assert reading.train()[-1].total > 0

    # model.reference_every_frame: the reference latent is the reactive part of every latent to generate
    in_place = Trainer(config(tmp_path / "e", data, **known, **{"model.reference_every_frame": True}),
                       progress=False)
    reference = batch["reference"]  # (1, z, 1, h, w); the clip has 3 latents, the first one known (2 tail frames)
    for draw_known, generated in ((False, [0, 1, 2]), (True, [1, 2])):
        context = in_place._context(batch, torch.tensor([draw_known]))
        plain = reading._context(batch, torch.tensor([draw_known]))
        reactive = context[:, 4:8, 1:]
        assert torch.equal(reactive[:, :, generated], reference.expand_as(reactive[:, :, generated]))
        known_latents = [i for i in range(3) if i not in generated]
        assert torch.equal(reactive[:, :, known_latents], plain[:, 4:8, 1:][:, :, known_latents])
        torch.testing.assert_close(context[:, :4], plain[:, :4])  # inactive part and reference slot unchanged
        torch.testing.assert_close(context[:, 8:], plain[:, 8:])  # masks unchanged

    path = known_frames_path(Path(batch["clip_dir"][0]), "vae", 2, 1)
    save_file({"known": torch.zeros(4, 2, 8, 8)}, path)  # stale: another clip length
    stale = Trainer(config(tmp_path / "c", data, **known), progress=False)
    assert len(stale.dataset) == 1 and "delete it and run `physavatar extract`" in stale.dataset.skipped[0]


def _weights(trainer):
    return {k: v.clone() for k, v in trainer.accelerator.unwrap_model(trainer.model).state_dict().items()}


def test_resume_continues_bit_for_bit(tmp_path, data):
    straight = Trainer(config(tmp_path / "a", data, **{"run.max_steps": 6}), progress=False)
    straight.train()
    first = Trainer(config(tmp_path / "b", data, **{"run.max_steps": 3, "run.save_every": 3}), progress=False)
    first.train()
    resumed = Trainer(config(tmp_path / "b", data, **{"run.max_steps": 6}), progress=False)
    assert resumed.resume() and resumed.step == 3
    resumed.train()
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a model switch without weights of its own would load silently into the wrong architecture
    other = Trainer(config(tmp_path / "b", data, **{"run.max_steps": 6, "model.audio_hidden_norm": False}),
                    progress=False)
    with pytest.raises(ValueError, match="another model config.*model.audio_hidden_norm: True there, False here"):
        other.resume()
    # a checkpoint saved before model.reference_every_frame existed was trained without it
    saved = resumed.list_checkpoints()[-1] / "model.json"
    saved.write_text(json.dumps({k: v for k, v in json.loads(saved.read_text()).items()
                                 if k != "reference_every_frame"}))
    assert Trainer(config(tmp_path / "b", data, **{"run.max_steps": 6}), progress=False).resume()
    in_place = Trainer(config(tmp_path / "b", data, **{"run.max_steps": 6, "model.reference_every_frame": True}),
                       progress=False)
    with pytest.raises(ValueError, match="model.reference_every_frame: False there, True here"):
        in_place.resume()


def test_resume_after_sigkill(tmp_path, data):
    """Kill a training process with SIGKILL, resume from its last checkpoint in a new process, and compare with an
    uninterrupted process. All three are separate processes, so they share the same floating-point setup."""
    from safetensors.torch import load_file

    config_file = tmp_path / "c.yaml"
    config_file.write_text(json.dumps({
        "model_preset": "tiny", "data": {"root": str(data), "num_frames": 9, "known_frames_prob": 0.0},
        "optim": {"lr": 1e-3, "warmup_steps": 1},
        "run": {"save_every": 2, "keep_last": 1000, "tensorboard": False, "seed": 3}}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def train(out_dir, *extra, wait=True):
        args = [sys.executable, "-m", "physavatar.train", "--no-progress", "--config", str(config_file),
                f"--run.out_dir={out_dir}", *extra]
        if wait:
            subprocess.run(args, env=env, check=True, capture_output=True)
            return None
        return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    killed = tmp_path / "killed"
    proc = train(killed, "--run.max_steps=100000", wait=False)
    deadline = time.time() + 120
    while not (killed / "checkpoints" / "step_0000004").exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "no checkpoint within 120 s"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    train(tmp_path / "resumed", "--run.max_steps=6", "--resume", str(killed / "checkpoints" / "step_0000004"))
    train(tmp_path / "straight", "--run.max_steps=6")
    final = "checkpoints/step_0000006/trainable.safetensors"
    a, b = load_file(tmp_path / "straight" / final), load_file(tmp_path / "resumed" / final)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)



def test_init_from_starts_a_new_run_from_trained_weights(tmp_path, data):
    """Fine-tuning (e.g. on a new VAE's latents): weights from a checkpoint or an export, step and optimizer fresh."""
    first = Trainer(config(tmp_path / "a", data, **{"run.max_steps": 3, "run.save_every": 3}), progress=False)
    first.train()
    trained = _weights(first)
    for source in (tmp_path / "a" / "run" / "checkpoints" / "step_0000003", first.export()):
        tuned = Trainer(config(tmp_path / "b", data, **{"run.init_from": str(source)}), progress=False)
        assert tuned.step == 0 and not tuned.optimizer.state
        start = _weights(tuned)
        assert all(torch.equal(start[k], trained[k]) for k in trained)
        assert tuned.training_card()["init"] == {"from": str(source), "fresh_audio_proj": False, "card": None}
    assert first.training_card()["init"] is None
    # a pipeline export's transformer/ sits beside the pipeline's card, which the fine-tune's card then carries
    (source.parent / "training_card.json").write_text(json.dumps(first.training_card()))
    init = Trainer(config(tmp_path / "b2", data, **{"run.init_from": str(source)}), progress=False).training_card()
    assert init["init"]["card"]["steps"] == 3 and init["init"]["card"]["init"] is None
    fresh = _weights(Trainer(config(tmp_path / "c", data), progress=False))
    assert not all(torch.equal(fresh[k], trained[k]) for k in trained)  # the check above can fail
    with pytest.raises(FileNotFoundError, match="run.init_from=.*trainable.safetensors"):
        Trainer(config(tmp_path / "d", data, **{"run.init_from": str(tmp_path)}), progress=False)
    other = config(tmp_path / "e", data, **{"run.init_from": str(source), "model.ffn_dim": 64})
    with pytest.raises(ValueError, match="does not fit this model"):
        Trainer(other, progress=False)
    # a dead audio projector revived: fresh Proj_aud, output layer zero, every other weight as loaded
    revived = Trainer(config(tmp_path / "f", data, **{"run.init_from": str(source), "run.init_fresh_audio_proj": True}),
                      progress=False)
    start = _weights(revived)
    proj = {k for k in trained if k.startswith("audio_proj.") and k != "audio_proj.proj_out.bias"}
    assert proj and all(torch.equal(start[k], trained[k]) for k in set(trained) - proj)
    assert not torch.equal(start["audio_proj.proj_in.weight"], trained["audio_proj.proj_in.weight"])
    assert not start["audio_proj.proj_out.weight"].any()
    with pytest.raises(ValueError, match="init_fresh_audio_proj.*run.init_from"):
        Trainer(config(tmp_path / "g", data, **{"run.init_fresh_audio_proj": True}), progress=False)


def _smoothed(values, window=10):
    return [float(np.mean(values[i : i + window])) for i in range(0, len(values), window)]


def test_loss_goes_down_and_matches_the_golden_curve(tmp_path, data):
    trainer = Trainer(config(tmp_path, data, **{"run.max_steps": 60, "loss.audio_drop": 0.0}), progress=False)
    curve = [h.cont for h in trainer.train()]
    smooth = _smoothed(curve)
    assert smooth[-1] < 0.7 * smooth[0], smooth
    if os.environ.get("PHYSAVATAR_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps({"cont_loss_per_10_steps": smooth}, indent=1))
    golden = json.loads(GOLDEN.read_text())["cont_loss_per_10_steps"]
    np.testing.assert_allclose(smooth, golden, rtol=0.05)


def test_export_loads_in_the_model_class(tmp_path, data):
    from physavatar.models.transformer import PhysAvatarTransformer3DModel

    trainer = Trainer(config(tmp_path, data, **{"run.max_steps": 2}), progress=False)
    trainer.train()
    out = trainer.export()
    model = PhysAvatarTransformer3DModel.from_pretrained(out)
    trained = trainer.accelerator.unwrap_model(trainer.model).state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in model.state_dict().items())


def test_two_process_data_parallel_training_on_cpu(tmp_path, data):
    """`torchrun --nproc_per_node 2 -m physavatar.train` on the CPU (gloo DDP): two ranks train, rank 0 saves.

    (`accelerate launch --cpu --num_processes 2` would start ONE process: accelerate's simple launcher.)"""
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "physavatar.train", "--config", "configs/tiny.yaml", "--no-progress", f"--data.root={data}",
           f"--run.out_dir={out}", "--run.max_steps=2", "--run.save_every=2", "--run.tensorboard=false"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=Path(__file__).parents[1], timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on 2 processes" in done.stdout, done.stdout[-2000:]
    assert (out / "checkpoints" / "step_0000002" / "trainable.safetensors").exists()
    assert (out / "transformer" / "config.json").exists()
    # both ranks resume from rank 0's checkpoint (rank 1 with a random stream of its own) and go on
    more = [a if a != "--run.max_steps=2" else "--run.max_steps=3" for a in cmd] + ["--resume"]
    done = subprocess.run(more, capture_output=True, text=True, env=env, cwd=Path(__file__).parents[1], timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("resumed at step 2") == 2 and "step 3: loss" in done.stdout, done.stdout[-2000:]


def test_cosine_decay_ends_at_a_tenth_and_constant_stays():
    from physavatar.training.trainer import lr_factor

    cfg = load_train_config(None, {"optim.warmup_steps": 10, "run.max_steps": 110, "optim.decay": "cosine"})
    assert lr_factor(0, cfg) == pytest.approx(0.1) and lr_factor(10, cfg) == pytest.approx(1.0)
    assert lr_factor(60, cfg) == pytest.approx(0.55) and lr_factor(110, cfg) == pytest.approx(0.1)
    assert lr_factor(500, cfg) == pytest.approx(0.1)
    constant = load_train_config(None, {"optim.warmup_steps": 10})
    assert lr_factor(500, constant) == 1.0
    with pytest.raises(ValueError, match="decay"):
        lr_factor(0, load_train_config(None, {"optim.decay": "linear"}))
