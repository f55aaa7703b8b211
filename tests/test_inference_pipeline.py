"""The generation pipeline on a tiny random model: single chunk, interleaved and AR long-form, resume, bad input."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler
from PIL import Image

from physavatar.cli import main
from physavatar.config import tiny
from physavatar.inference.chunks import plan_interleaved
from physavatar.inference.long_video import WorkDir, correct_chunk, join_offsets, known_frames
from physavatar.inference.pipeline import PhysAvatarPipeline
from physavatar.inference.sampler import combine_guidance, denoise_window, phys_to_frames
from physavatar.io.audio import load_audio, write_wav
from physavatar.io.video import probe_video, read_video


def tiny_pipeline(context_mode="none", planner="", **model):
    torch.manual_seed(0)
    args = dataclasses.replace(tiny(), audio_dim=80, context_mode=context_mode, mllm_dim=384, **model)
    vae = AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 2, 2, 2], num_res_blocks=1,
                           latents_mean=[0.0] * 4, latents_std=[1.0] * 4)
    return PhysAvatarPipeline(args.build(), vae, FlowMatchEulerDiscreteScheduler(shift=5.0), size=32,
                              chunk_frames=13, audio_backend="logmel", planner=planner)


@pytest.fixture(scope="module")
def pipe_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("pipe") / "tiny_pipeline"
    tiny_pipeline().save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def pipe(pipe_dir):
    return PhysAvatarPipeline.from_pretrained(pipe_dir)


def speech(seconds, seed=0):
    t = np.arange(int(16000 * seconds)) / 16000
    syllables = (np.sin(2 * np.pi * 3 * t) > 0).astype(np.float32)
    rng = np.random.default_rng(seed)
    return (0.3 * syllables * np.sin(2 * np.pi * 180 * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def portrait(size=48):
    rng = np.random.default_rng(1)
    return Image.fromarray((rng.random((size, size, 3)) * 255).astype(np.uint8))


@pytest.mark.parametrize("seconds,long_form,chunks", [(0.4, "interleaved", 1), (1.5, "interleaved", 4),
                                                      (1.5, "ar", 5)])
def test_video_is_exactly_as_long_as_the_audio(pipe, tmp_path, seconds, long_form, chunks):
    wav = speech(seconds)
    out = tmp_path / "v.mp4"
    result = pipe.generate(portrait(), wav, out, num_steps=2, long_form=long_form, progress=False)
    frames = int(np.ceil(len(wav) / 640))
    info = probe_video(out)
    assert result.num_frames == frames == info.num_frames and info.has_audio
    assert (info.width, info.height) == (32, 32)
    assert result.report["chunks"] == chunks
    assert result.report["passes"] == (1 if chunks == 1 else 2 if long_form == "interleaved" else chunks)
    assert np.load(result.files["phys"]).shape == (frames, 4, 256)
    assert len(result.report["joins"]["joins"]) == chunks - 1
    # the muxed audio is the input audio
    back = load_audio(out, validate=False)[: len(wav)]
    assert np.corrcoef(back[2000:-2000], wav[2000 : len(back) - 2000])[0, 1] > 0.9


def test_same_seed_same_video_and_resume_reuses_chunks(pipe, tmp_path):
    wav = speech(1.5)
    work = tmp_path / "work"
    a = pipe.generate(portrait(), wav, tmp_path / "a.mp4", num_steps=2, seed=5, work_dir=work, progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in work.glob("chunk_*.npz")}
    assert len(stamps) == a.report["chunks"]
    (work / "chunk_0001.npz").unlink()  # as if the job had died before chunk 1 was written
    b = pipe.generate(portrait(), wav, tmp_path / "b.mp4", num_steps=2, seed=5, work_dir=work, progress=False)
    again = {p.name: p.stat().st_mtime_ns for p in work.glob("chunk_*.npz")}
    assert all(again[name] == stamp for name, stamp in stamps.items() if name != "chunk_0001.npz")
    assert np.array_equal(read_video(a.video), read_video(b.video))
    with pytest.raises(ValueError, match="holds chunks of another job"):
        pipe.generate(portrait(), wav, tmp_path / "c.mp4", num_steps=2, seed=6, work_dir=work, progress=False)


def test_each_window_gets_the_features_of_its_own_audio_as_in_training(pipe, tmp_path, monkeypatch):
    import physavatar.inference.pipeline as pipeline_module

    seen = []

    def spy(*args, audio, **kwargs):
        seen.append(audio[0].float().numpy())
        return denoise_window(*args, audio=audio, **kwargs)

    monkeypatch.setattr(pipeline_module, "denoise_window", spy)
    wav = speech(1.5) * np.linspace(0.2, 1.0, 24000, dtype=np.float32)  # louder over time: log-mel scaling differs
    result = pipe.generate(portrait(), wav, tmp_path / "v.mp4", num_steps=1, progress=False)
    chunks = plan_interleaved(result.num_frames, 13).chunks
    windows = [c.window for c in sorted(chunks, key=lambda c: (c.kind != "odd", c.index))]
    assert len(seen) == len(windows) == 4
    padded = np.pad(wav, (0, max(b for _, b in windows) * 640 - len(wav)))
    whole = pipe.audio_encoder.encode(padded, num_frames=len(padded) // 640).features
    for got, (a, b) in zip(seen, windows):
        # what `physavatar extract` computes for a training clip of this audio, not a slice of the whole speech
        assert np.allclose(got, pipe.audio_encoder.encode(padded[a * 640 : b * 640], num_frames=b - a).features)
    assert not all(np.allclose(got, whole[a:b], atol=1e-3) for got, (a, b) in zip(seen, windows))


@pytest.mark.parametrize("in_place", [False, True])
def test_reference_every_frame_reaches_every_window_context(tmp_path, monkeypatch, in_place):
    import physavatar.inference.pipeline as pipeline_module

    contexts = []

    def spy(*args, control, **kwargs):
        contexts.append(control[0])
        return denoise_window(*args, control=control, **kwargs)

    monkeypatch.setattr(pipeline_module, "denoise_window", spy)
    pipe = tiny_pipeline(reference_every_frame=in_place)
    saved = tmp_path / "saved"
    pipe.save_pretrained(saved)  # the switch travels with the model
    pipe = PhysAvatarPipeline.from_pretrained(saved)
    assert pipe.transformer.config.reference_every_frame is in_place
    result = pipe.generate(portrait(), speech(1.5), tmp_path / "v.mp4", num_steps=1, progress=False)
    assert result.report["chunks"] == len(contexts) == 4  # two odd windows, then two interpolated even ones
    for context in contexts:  # (2z + 64, 1 + f, h, w), z = 4: inactive, reactive, generate-mask; reference first
        reference, reactive, generate = context[:4, 0], context[4:8, 1:], context[8, 1:, 0, 0] > 0
        holds_reference = [torch.equal(reactive[:, i], reference) for i in range(reactive.shape[1])]
        assert holds_reference == (generate.tolist() if in_place else [False] * len(holds_reference))
    assert not all(context[8, 1:].all() for context in contexts)  # the even windows know some latents


def test_even_chunks_get_their_neighbours_frames(tmp_path):
    plan = plan_interleaved(40, 13)
    work = WorkDir(tmp_path / "w", {"job": 1})
    for chunk in plan.chunks:
        if chunk.kind == "odd":
            frames = np.full((13, 8, 8, 3), chunk.index * 10, np.uint8)
            frames[:, 0, 0, 0] = np.arange(13)  # frame number inside the window
            work.save(chunk, frames, np.zeros((13, 4, 256)))
    even = plan.chunks[1]
    request = known_frames(even, work, (8, 8))
    c, d = even.tail.window_positions
    assert (request.known[c:d, 1, 1] == 0).all()  # from chunk 0
    assert request.known[c:d, 0, 0, 0].tolist() == list(range(*even.tail.source_positions))
    c, d = even.head.window_positions
    assert (request.known[c:d, 1, 1] == 20).all()  # from chunk 2
    assert request.frame_mask.tolist() == list(even.generate_mask())


def test_join_correction_removes_a_colour_jump():
    frames = np.full((10, 4, 4, 3), 100, np.uint8)
    before, after = np.full((4, 4, 3), 90, np.uint8), np.full((4, 4, 3), 110, np.uint8)
    start, end = join_offsets(before, frames[0]), join_offsets(after, frames[-1])
    fixed = correct_chunk(frames, start, end)
    assert fixed[0].mean() == 90 and fixed[-1].mean() == 110
    assert 90 < fixed[5].mean() < 110


def test_guidance_combination_and_phys_frames():
    full, noaudio, none = torch.tensor(3.0), torch.tensor(1.0), torch.tensor(0.0)
    assert combine_guidance(full, noaudio, None, 2.0, 1.0) == 5.0  # 1 + 2 (3 - 1)
    assert combine_guidance(full, noaudio, none, 2.0, 3.0) == 7.0  # 0 + 3 (1 - 0) + 2 (3 - 1)
    phys = torch.arange(3 * 4).float().view(1, 3, 4, 1).expand(1, 3, 4, 1024)
    frames = phys_to_frames(phys, 9)
    assert frames.shape == (9, 4, 256)
    assert frames[:, 0, 0].tolist() == [0, 4, 5, 6, 7, 8, 9, 10, 11]


def test_planner_plan_is_saved_and_edit_reaches_it(tmp_path):
    pipe = tiny_pipeline(context_mode="mllm", planner="default")
    result = pipe.generate(portrait(), speech(0.5), tmp_path / "p.mp4", num_steps=1, edit="very excited",
                           skeleton=True, progress=False)
    assert result.plan_text and "[AUDIO]" in result.plan_text
    assert (tmp_path / "p.plan.txt").read_text().strip() == result.plan_text
    assert json.loads((tmp_path / "p.plan.json").read_text())["edit"] == "very excited"
    skeleton = probe_video(result.files["skeleton"])
    assert (skeleton.width, skeleton.num_frames) == (64, result.num_frames)


def _cli(pipe_dir, tmp_path, image, audio, out, *extra):
    return main(["generate", "--model", str(pipe_dir), "--image", str(image), "--audio", str(audio),
                 "--out", str(out), "--steps", "1", "--quiet", *extra])


def test_cli_writes_video_and_cleans_its_work_folder(pipe_dir, tmp_path, capsys):
    portrait().save(tmp_path / "me.png")
    write_wav(tmp_path / "s.wav", speech(0.6))
    assert _cli(pipe_dir, tmp_path, tmp_path / "me.png", tmp_path / "s.wav", tmp_path / "new" / "o.mp4",
                "--phys-pass", "no_audio") == 0
    assert probe_video(tmp_path / "new" / "o.mp4").num_frames == 15
    assert json.loads((tmp_path / "new" / "o.json").read_text())["phys_pass"] == "no_audio"
    assert not (tmp_path / "new" / ".o.work").exists()
    assert "wrote" in capsys.readouterr().out


def test_cli_bad_inputs_are_one_line_errors_and_write_nothing(pipe_dir, tmp_path, capsys):
    portrait().save(tmp_path / "me.png")
    write_wav(tmp_path / "s.wav", speech(0.6))
    write_wav(tmp_path / "silent.wav", np.zeros(16000, np.float32))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    (tmp_path / "outdir.mp4").mkdir()
    cases = [
        (tmp_path / "broken.png", tmp_path / "s.wav", tmp_path / "o1.mp4", "broken.png"),
        (tmp_path / "me.png", tmp_path / "silent.wav", tmp_path / "o2.mp4", "silent"),
        (tmp_path / "me.png", tmp_path / "missing.wav", tmp_path / "o3.mp4", "missing.wav"),
        (tmp_path / "me.png", tmp_path / "s.wav", tmp_path / "outdir.mp4", "is a folder"),
        (tmp_path / "me.png", tmp_path / "s.wav", tmp_path / "o4.txt", "ending in .mp4"),
    ]
    for image, audio, out, message in cases:
        assert _cli(pipe_dir, tmp_path, image, audio, out) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
        assert not out.is_file()
    assert main(["generate", "--model", str(tmp_path / "nope"), "--image", "a", "--audio", "b", "--out", "c.mp4"]) == 2


def _write_mp3(path, wav, rate=44100):
    import av

    from physavatar.io.audio import resample_audio

    samples = resample_audio(wav, 16000, rate)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mp3", rate=rate)
        frame = av.AudioFrame.from_ndarray((samples[None] * 32767).astype(np.int16), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def test_cli_corrects_image_modes_and_reads_any_audio_container(pipe_dir, tmp_path):
    base = portrait(64)
    rotated = base.rotate(90, expand=True)
    exif = rotated.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": load_image undoes it
    images = {
        "gray.png": base.convert("L"), "cmyk.jpg": base.convert("CMYK"), "rgba.png": base.convert("RGBA"),
    }
    for name, image in images.items():
        image.save(tmp_path / name)
    rotated.save(tmp_path / "exif.jpg", exif=exif)
    _write_mp3(tmp_path / "speech.mp3", speech(0.6))
    for name in [*images, "exif.jpg"]:
        out = tmp_path / f"{name}.mp4"
        assert _cli(pipe_dir, tmp_path, tmp_path / name, tmp_path / "speech.mp3", out) == 0, name
        assert probe_video(out).num_frames >= 15


def test_cli_refuses_tiny_image_and_too_short_or_empty_audio(pipe_dir, tmp_path, capsys):
    portrait(16).save(tmp_path / "tiny.png")
    portrait().save(tmp_path / "me.png")
    write_wav(tmp_path / "blip.wav", speech(0.05))
    (tmp_path / "empty.wav").write_bytes(b"")
    for image, audio, message in [("tiny.png", "blip.wav", "too small"), ("me.png", "blip.wav", "short"),
                                  ("me.png", "empty.wav", "empty")]:
        out = tmp_path / f"{image}-{audio}.mp4"
        assert _cli(pipe_dir, tmp_path, tmp_path / image, tmp_path / audio, out) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
        assert not out.exists()


def test_shift_reaches_the_sampling_schedule(pipe, tmp_path):
    result = pipe.generate(portrait(), speech(0.3), tmp_path / "s.mp4", num_steps=4, shift=3.0, progress=False)
    expected = FlowMatchEulerDiscreteScheduler(shift=3.0)
    expected.set_timesteps(4)
    assert result.report["sigmas"] == [round(float(x), 5) for x in expected.sigmas]
    assert pipe.scheduler.config.shift == 5.0  # the pipeline's own scheduler is left as saved
    # without a shift (and without steps) the pipeline samples as it was saved: its scheduler's shift, its steps
    default = pipe.generate(portrait(), speech(0.3), tmp_path / "d.mp4", progress=False)
    assert default.report["shift"] == 5.0 and default.report["steps"] == 50
    assert default.report["audio_scale"] == 2.0  # the paper's, for a model that does not set its own


def test_model_sets_its_own_audio_guidance(pipe, tmp_path):
    # a model saved with its own audio_scale (the demo model's model_index.json) samples with it unless told otherwise
    pipe.register_to_config(audio_scale=3.5)
    try:
        pipe.save_pretrained(tmp_path / "pipe")
    finally:
        pipe.register_to_config(audio_scale=2.0)
    loaded = PhysAvatarPipeline.from_pretrained(tmp_path / "pipe")
    assert json.loads((tmp_path / "pipe" / "model_index.json").read_text())["audio_scale"] == 3.5
    own = loaded.generate(portrait(), speech(0.3), tmp_path / "a.mp4", num_steps=1, progress=False)
    told = loaded.generate(portrait(), speech(0.3), tmp_path / "b.mp4", num_steps=1, audio_scale=1.0, progress=False)
    assert own.report["audio_scale"] == 3.5 and told.report["audio_scale"] == 1.0


def test_phys_pass_reads_the_physical_state_from_the_chosen_pass_of_the_same_video(tmp_path):
    pipe = tiny_pipeline()
    for block in pipe.transformer.blocks:  # a fresh model's audio branch adds zero: open it so the passes differ
        torch.nn.init.normal_(block.audio_attn.to_out[0].weight, std=0.5)
    wav = speech(0.4)
    audio = pipe.generate(portrait(), wav, tmp_path / "a.mp4", num_steps=2, seed=3, progress=False)
    silent = pipe.generate(portrait(), wav, tmp_path / "n.mp4", num_steps=2, seed=3, phys_pass="no_audio",
                           progress=False)
    # both passes run at every step either way: the video is the same, only the reading of Proj_Phys differs
    assert np.array_equal(read_video(audio.video), read_video(silent.video))
    assert not np.allclose(np.load(audio.files["phys"]), np.load(silent.files["phys"]))
    assert (audio.report["phys_pass"], silent.report["phys_pass"]) == ("audio", "no_audio")
    with pytest.raises(ValueError, match="phys_pass='both'; choose one of"):
        pipe.generate(portrait(), wav, tmp_path / "x.mp4", num_steps=2, phys_pass="both", progress=False)
    assert not (tmp_path / "x.mp4").exists()
