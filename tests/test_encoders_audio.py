"""Audio encoders: Whisper from a local folder (tiny random model in the real format), the offline default
(real Whisper tiny.en converted from CTranslate2), windowing, 50 Hz -> 25 fps, backend bookkeeping."""

import numpy as np
import pytest
import torch

from physavatar.constants import SAMPLE_RATE, SAMPLES_PER_FRAME
from physavatar.encoders.audio import (AudioEncoderConfig, AudioFeatures, concat_features, load_audio_encoder,
                                       stack_neighbour_frames)
from physavatar.encoders.audio_whisper import WhisperWindowing, plan_windows, states_to_video_frames
from physavatar.encoders.backend import BackendMismatchError, ModelFolderError, require_same_backend


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    """A random Whisper written by save_pretrained, exactly as a real checkpoint folder looks."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(0)
    config = WhisperConfig(vocab_size=64, d_model=16, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                           decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=80,
                           max_source_positions=1500, max_target_positions=32, pad_token_id=0, bos_token_id=1,
                           eos_token_id=2, decoder_start_token_id=3, suppress_tokens=[], begin_suppress_tokens=[])
    model = WhisperForConditionalGeneration(config).eval()
    folder = tmp_path_factory.mktemp("whisper-tiny-random")
    model.save_pretrained(folder)
    return folder, model


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    audio = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / SAMPLE_RATE) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
    return (audio + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def test_whisper_folder_matches_transformers_encoder(tiny_whisper):
    folder, model = tiny_whisper
    enc = load_audio_encoder(AudioEncoderConfig(backend="whisper", path=str(folder)))
    audio = speechlike(2.0)
    feats = enc.encode(audio)
    assert feats.features.shape == (50, 16) and feats.features.dtype == np.float32
    assert feats.backend.endswith(":layers=-1") and folder.name in feats.backend
    mel = torch.from_numpy(enc.whisper.log_mel(audio))[None]
    with torch.no_grad():
        ref = model.model.encoder(mel).last_hidden_state[0].numpy()  # (1500, 16) at 50 Hz
    # video frame i = mean of encoder states 2i and 2i+1 (40 ms = 2 x 20 ms)
    np.testing.assert_allclose(feats.features, ref[:100].reshape(50, 2, 16).mean(1), atol=1e-5)


def test_layer_selection_and_errors(tiny_whisper):
    folder, _ = tiny_whisper
    enc = load_audio_encoder(AudioEncoderConfig(backend="whisper", path=str(folder), layers=(0, 1, -1)))
    out = enc.encode(speechlike(0.5))
    assert out.features.shape == (13, 48) and out.backend.endswith("layers=0,1,-1")
    with pytest.raises(ValueError, match="choose indices"):
        load_audio_encoder(AudioEncoderConfig(backend="whisper", path=str(folder), layers=(5,)))
    with pytest.raises(ModelFolderError, match="no such Whisper folder"):
        load_audio_encoder(AudioEncoderConfig(backend="whisper", path=str(folder / "missing")))
    with pytest.raises(ValueError, match="needs path"):
        load_audio_encoder(AudioEncoderConfig(backend="whisper"))
    not_whisper = folder.parent / "bert-folder"
    not_whisper.mkdir(exist_ok=True)
    (not_whisper / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ModelFolderError, match="not a Whisper config"):
        load_audio_encoder(AudioEncoderConfig(backend="whisper", path=str(not_whisper)))
    with pytest.raises(ValueError, match="choose one of"):
        load_audio_encoder(AudioEncoderConfig(backend="wav2vec"))


def test_incomplete_checkpoint_is_refused(tiny_whisper, tmp_path):
    from safetensors.torch import load_file, save_file

    folder, _ = tiny_whisper
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    state = load_file(str(folder / "model.safetensors"))
    state.pop("model.encoder.layers.1.fc2.weight")
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(ModelFolderError, match="complete Whisper encoder"):
        load_audio_encoder(AudioEncoderConfig(backend="whisper", path=str(tmp_path)))


def test_whisper_model_folder_without_lm_head_loads(tiny_whisper, tmp_path):
    from transformers import WhisperModel

    folder, model = tiny_whisper
    bare = WhisperModel(model.config)
    bare.load_state_dict(model.model.state_dict())
    bare.save_pretrained(tmp_path)  # keys "encoder.*" / "decoder.*", as WhisperModel checkpoints have
    audio = speechlike(1.0)
    a = load_audio_encoder(AudioEncoderConfig(backend="whisper", path=str(folder))).encode(audio)
    b = load_audio_encoder(AudioEncoderConfig(backend="whisper", path=str(tmp_path))).encode(audio)
    np.testing.assert_allclose(a.features, b.features, atol=1e-6)


def test_frame_count_follows_25_fps(tiny_whisper):
    folder, _ = tiny_whisper
    enc = load_audio_encoder(AudioEncoderConfig(backend="whisper", path=str(folder)))
    audio = speechlike(4.0)
    assert enc.encode(audio[: 81 * SAMPLES_PER_FRAME]).num_frames == 81
    assert enc.encode(audio[: 10 * SAMPLES_PER_FRAME + 1]).num_frames == 11  # partial last frame counts
    assert enc.encode(audio[:16000], num_frames=30).num_frames == 30  # longer video than audio: last state repeats
    states = np.arange(10, dtype=np.float32)[:, None]
    np.testing.assert_array_equal(states_to_video_frames(states, 5)[:, 0], [0.5, 2.5, 4.5, 6.5, 8.5])


@pytest.mark.parametrize("seconds", [29.0, 30.0, 31.0, 75.0, 200.0])
def test_window_plan_covers_every_state_once(seconds):
    n = int(seconds * 50)
    plan = plan_windows(n)
    total = np.zeros(n)
    win = WhisperWindowing()
    for start, w in plan:
        assert 0 <= start and start + len(w) <= n and len(w) <= 1500
        total[start:start + len(w)] += w
        used = np.flatnonzero(w > 0)
        # a used state is >= context_s from an inner window edge (audio start / end are not inner edges)
        if start > 0:
            assert used[0] >= win.context_s * 50
        if start + len(w) < n:
            assert len(w) - 1 - used[-1] >= win.context_s * 50
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_long_audio_is_windowed_without_seams(tiny_whisper):
    folder, _ = tiny_whisper
    enc = load_audio_encoder(AudioEncoderConfig(backend="whisper", path=str(folder))).whisper
    audio = speechlike(50.0, seed=1)
    states = enc.encode_states(audio)
    assert states.shape == (2500, 16)
    first = enc._encode_window(audio[: 30 * SAMPLE_RATE])
    (s0, w0), (s1, w1) = plan_windows(2500)
    second = enc._encode_window(audio[s1 * 320:])
    only0 = np.flatnonzero(w0 == 1.0)
    np.testing.assert_allclose(states[only0], first[only0], atol=1e-5)  # exactly window 0 where it alone counts
    blend = np.arange(s1, 1500)
    expect = w0[blend, None] * first[blend] + w1[blend - s1, None] * second[blend - s1]
    np.testing.assert_allclose(states[blend], expect, atol=1e-5)
    # no seam: the largest frame-to-frame jump across the blend zone is no larger than elsewhere
    jumps = np.linalg.norm(np.diff(states, axis=0), axis=1)
    zone = jumps[s1:1500]
    assert zone.max() <= 1.5 * np.percentile(jumps, 99.5)


def test_bad_waveforms_get_clear_errors(tiny_whisper):
    folder, _ = tiny_whisper
    enc = load_audio_encoder(AudioEncoderConfig(backend="whisper", path=str(folder)))
    with pytest.raises(ValueError, match="mono"):
        enc.encode(np.zeros((2, 16000), np.float32))
    with pytest.raises(ValueError, match="float32"):
        enc.encode(np.zeros(16000, np.int16))
    with pytest.raises(ValueError, match="NaN"):
        enc.encode(np.full(16000, np.nan, np.float32))
    with pytest.raises(ValueError, match="no samples"):
        enc.encode(np.zeros(0, np.float32))


def test_backends_are_recorded_and_never_mixed(tmp_path):
    a = AudioFeatures(np.ones((3, 4), np.float32), "whisper-tiny.en-ct2:layers=-1")
    b = AudioFeatures(np.zeros((2, 4), np.float32), "logmel-80")
    a.save(tmp_path / "a.npz")
    back = AudioFeatures.load(tmp_path / "a.npz")
    assert back.backend == a.backend and back.fps == 25
    np.testing.assert_array_equal(back.features, a.features)
    assert concat_features([a, back]).num_frames == 6
    with pytest.raises(BackendMismatchError, match="logmel-80"):
        concat_features([a, b])
    with pytest.raises(BackendMismatchError):
        require_same_backend([a, "whisper-large-v3:layers=-1"])


def test_stack_neighbour_frames_mirror_pads():
    feats = np.arange(5, dtype=np.float32)[:, None]
    out = stack_neighbour_frames(feats, 2)
    assert out.shape == (5, 5, 1)
    np.testing.assert_array_equal(out[0, :, 0], [2, 1, 0, 1, 2])
    np.testing.assert_array_equal(out[4, :, 0], [2, 3, 4, 3, 2])
    np.testing.assert_array_equal(out[2, :, 0], [0, 1, 2, 3, 4])


def test_default_is_real_whisper_tiny_en(tmp_path, monkeypatch):
    """The converted default equals CTranslate2's own Whisper tiny.en encoder (faster-whisper's engine)."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    from physavatar.encoders.whisper_ct2 import default_whisper_ct2_dir

    monkeypatch.setenv("PHYSAVATAR_CACHE", str(tmp_path))
    enc = load_audio_encoder(AudioEncoderConfig(backend="default"))
    assert (tmp_path / "whisper").is_dir() and enc.backend == "whisper-tiny.en-ct2:layers=-1" and enc.dim == 384
    assert not list((tmp_path / "whisper").glob(".*"))  # no temp folder left behind
    audio = speechlike(3.0)
    mel = enc.whisper.log_mel(audio)
    ct2 = ctranslate2.models.Whisper(str(default_whisper_ct2_dir()), device="cpu", compute_type="float32")
    ref = np.array(ct2.encode(ctranslate2.StorageView.from_array(mel[None]), to_cpu=True))[0]
    ours = enc.whisper._encode_window(audio)
    assert np.abs(ours - ref).max() < 1e-3 * np.abs(ref).max()


def test_importing_the_encoders_is_cheap():
    import subprocess
    import sys

    code = ("import sys, physavatar.encoders as e, physavatar.encoders.audio, physavatar.encoders.planner; "
            "assert callable(e.load_audio_encoder); "
            "print(sorted(m for m in ('torch', 'transformers', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
