"""The planner interface, the offline heuristic planner (shipped VAD, face cascade and MiniLM), the plan
cache and the `physavatar plan` command."""

import shutil

import numpy as np
import pytest
from PIL import Image

from physavatar.constants import SAMPLE_RATE
from physavatar.encoders.backend import BackendMismatchError
from physavatar.encoders.planner import (PLAN_PROMPT, PLAN_WORD_LIMIT, PlannerConfig, PlanOutput, build_prompt,
                                         check_plans, load_planner)
from physavatar.encoders.planner_heuristic import compose_plan, describe_audio, plan_video
from physavatar.encoders.planner_measure import AudioMeasures, ImageMeasures, measure_audio, measure_image

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


@pytest.fixture(scope="module")
def speech():
    from physavatar.encoders.phoneme_probe import synthesize

    return synthesize("Hello everyone. Today I want to tell you about something wonderful.", "en-us", 140)


@pytest.fixture(scope="module")
def portrait():
    from skimage import data

    return Image.fromarray(data.astronaut())  # a real upper-body portrait, orange suit


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PHYSAVATAR_CACHE", str(tmp_path / "cache"))


def sections(text):
    lines = text.splitlines()
    assert [l.split(":")[0] for l in lines] == ["[AUDIO]", "[IMAGE]", "[VIDEO]"]
    return [l.split(":", 1)[1].split(";") for l in lines]


def test_prompt_is_figure_s3_and_edits_are_appended():
    for part in ("You are a creative director.", "**[AUDIO]**", "**[IMAGE]**", "**[VIDEO]**",
                 "must not exceed 80 words", "No filler words, conjunctions, or articles are allowed."):
        assert part in PLAN_PROMPT
    assert build_prompt(None) == build_prompt("   ") == PLAN_PROMPT
    assert build_prompt(" make  her\nsmile ") == PLAN_PROMPT + "\nmake her smile"


@needs_espeak
def test_heuristic_plan_format_and_embeddings(portrait, speech):
    out = load_planner().plan(portrait, speech)
    assert out.is_heuristic and out.backend.startswith("heuristic-planner") and out.info["heuristic"] is True
    assert len(out.text.split()) <= PLAN_WORD_LIMIT
    for phrases in sections(out.text):
        assert 3 <= len(phrases) <= 5
    assert "orange outfit" in out.text and "face centred" in out.text
    L = len(out.tokens)
    assert L > 20 and out.e_con.shape == out.e_tok.shape == (L, 384)
    assert not np.allclose(out.e_con, out.e_tok)  # contextual states differ from the word embeddings
    # identical words get identical e_tok rows but context-dependent e_con rows
    idx = [i for i, t in enumerate(out.tokens) if t == ";"]
    assert len(idx) >= 2 and np.allclose(out.e_tok[idx[0]], out.e_tok[idx[1]])
    assert not np.allclose(out.e_con[idx[0]], out.e_con[idx[1]])


@needs_espeak
def test_audio_measures_know_the_answer(speech):
    tone = (0.1 * np.sin(2 * np.pi * 200 * np.arange(SAMPLE_RATE) / SAMPLE_RATE)).astype(np.float32)
    gap = np.zeros(SAMPLE_RATE // 2, np.float32)
    m = measure_audio(np.concatenate([tone, gap, tone, gap, tone]))
    assert abs(m.f0_median_hz - 200) < 6 and m.pauses == 2 and m.f0_range_st < 0.5
    assert abs(m.loudness_dbfs - 20 * np.log10(0.1 / np.sqrt(2))) < 1.0
    talk = measure_audio(np.concatenate([speech, np.zeros(SAMPLE_RATE, np.float32), speech]))
    assert talk.vad == "silero" and talk.pauses >= 1 and 2 < talk.syllable_rate < 8
    assert 80 < talk.f0_median_hz < 250
    silent = measure_audio(np.zeros(SAMPLE_RATE, np.float32))
    assert silent.speech_s == 0 and np.isnan(silent.f0_median_hz)
    assert describe_audio(silent)[0][0] == "no clear speech"


def test_image_measures(portrait):
    m = measure_image(portrait)
    x, y, w, h = m.face
    assert 150 < x + w / 2 < 300 and y < 200 and m.outfit_colour == "orange"
    big = measure_image(portrait.resize((1536, 1536)))  # analysed at <= 640 px: same answers
    assert big.width == 640 and big.face is not None and big.outfit_colour == "orange"
    blue = Image.new("RGB", (128, 128), (30, 60, 200))
    b = measure_image(blue)
    assert b.face is None and b.background_colour == "blue" and b.outfit_colour == "blue"


def test_rules_follow_measures_and_edits():
    loud = AudioMeasures(5, 4.5, 0, "silero", -15, 12, 200, 9, 3, 6)
    quiet = AudioMeasures(5, 4.5, 3, "silero", -40, 3, 120, 1, -3, 2)
    assert describe_audio(loud)[1] == "energetic" and describe_audio(quiet)[1] == "subdued"
    assert "frequent pauses" in describe_audio(quiet)[0][2] and "falling ending" in describe_audio(quiet)[0][3]
    img = ImageMeasures(512, 512, (200, 80, 110, 110), True, 0.5, 0.1, "blue", "white")
    assert plan_video(loud, "energetic", img, None)[0] == "excited emotional state"
    sad = plan_video(loud, "energetic", img, "Make the person look sad")
    assert sad[0] == "sad emotional state" and "slumped shoulders" in sad
    free = plan_video(loud, "energetic", img, "she turns toward the window")
    assert free[1] == "edit: she turns toward the window" and len(free) == 5


def test_compose_plan_fits_the_word_limit():
    long = ["very long phrase " * 4] * 5
    text = compose_plan(long, long, long)
    assert len(text.split()) <= PLAN_WORD_LIMIT
    assert all(len(s) == 3 for s in sections(text))


@needs_espeak
def test_plans_are_cached_by_inputs(portrait, speech, tmp_path, monkeypatch):
    from physavatar.encoders import planner_heuristic

    calls = []
    real = planner_heuristic.HeuristicPlanner._plan
    monkeypatch.setattr(planner_heuristic.HeuristicPlanner, "_plan", lambda self, *a: calls.append(1) or real(self, *a))
    p = load_planner()
    first = p.plan(portrait, speech)
    second = p.plan(portrait, speech)
    assert len(calls) == 1 and second.text == first.text and np.array_equal(second.e_con, first.e_con)
    p.plan(portrait, speech, edit="angry")
    p.plan(portrait, speech[: len(speech) // 2])
    assert len(calls) == 3 and len(list((tmp_path / "cache" / "plans").iterdir())) == 3


def test_bad_inputs_and_backend_mixing(portrait, tmp_path):
    p = load_planner()
    audio = np.zeros(SAMPLE_RATE, np.float32)
    with pytest.raises(ValueError, match="uint8 RGB"):
        p.plan(np.zeros((64, 64), np.float32), audio)
    with pytest.raises(ValueError, match="at least 16x16"):
        p.plan(Image.new("RGB", (8, 8)), audio)
    with pytest.raises(ValueError, match="mono"):
        p.plan(portrait, np.zeros((2, SAMPLE_RATE), np.float32))
    with pytest.raises(ValueError, match="choose one of"):
        load_planner(PlannerConfig(backend="gpt"))
    with pytest.raises(ValueError, match="t5_path"):
        load_planner(PlannerConfig(text_encoder="t5"))
    a = PlanOutput("x", np.zeros((2, 4), np.float32), np.zeros((2, 4), np.float32), "heuristic-planner-v1+m", "p")
    b = PlanOutput("x", np.zeros((2, 4), np.float32), np.zeros((2, 4), np.float32), "qwen2.5-omni-thinker:7B", "p")
    with pytest.raises(BackendMismatchError, match="different encoder backends"):
        check_plans([a, b])
    with pytest.raises(ValueError, match="both be"):
        PlanOutput("x", np.zeros((2, 4)), np.zeros((3, 4)), "b", "p")
    a.save(tmp_path / "out")
    back = PlanOutput.load(tmp_path / "out")
    assert back.backend == a.backend and (tmp_path / "out" / "plan.txt").read_text() == "x\n"


@needs_espeak
def test_plan_command_prints_and_saves(portrait, speech, tmp_path, capsys):
    from physavatar.cli import main
    from physavatar.io.audio import write_wav

    portrait.save(tmp_path / "ref.png")
    write_wav(tmp_path / "speech.wav", speech)
    out = tmp_path / "plan_out"
    rc = main(["plan", "--image", str(tmp_path / "ref.png"), "--audio", str(tmp_path / "speech.wav"),
               "--edit", "the person is angry", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0 and "heuristic planner" in printed and "[VIDEO]: angry emotional state" in printed
    assert str(out / "plan.npz") in printed
    saved = PlanOutput.load(out)
    assert saved.edit == "the person is angry" and saved.text in printed
    rc = main(["plan", "--image", str(tmp_path / "missing.png"), "--audio", str(tmp_path / "speech.wav")])
    assert rc == 2 and "missing.png" in capsys.readouterr().err


def test_opencv_without_cascade_files_degrades_to_no_face(portrait, monkeypatch):
    """OpenCV 5.x headless wheels ship no Haar cascade files: no face cues, a warning, no crash."""
    import cv2

    from physavatar.encoders import planner_measure
    from physavatar.io import image as image_io

    monkeypatch.setattr(cv2.data, "haarcascades", "/nonexistent/")
    planner_measure._cascade.cache_clear()
    image_io._face_cascade.cache_clear()
    try:
        with pytest.warns(UserWarning, match="opencv-contrib-python"):
            m = measure_image(portrait)
        assert m.face is None and m.smiling is None and m.outfit_colour
        with pytest.warns(UserWarning, match="opencv-contrib-python"):
            assert image_io.detect_face(portrait) is None
    finally:
        planner_measure._cascade.cache_clear()
        image_io._face_cascade.cache_clear()
