"""World identities and speech."""

import json

import numpy as np
import pytest

from physavatar.constants import SAMPLE_RATE, SAMPLES_PER_FRAME
from physavatar.world import speech as speech_mod
from physavatar.world.identity import BACKGROUNDS, HAIR_STYLES, Identity, make_identity
from physavatar.world.speech import (
    _WORDS, LANGUAGES, SpeechSynthesisError, make_phrase, make_speech, make_word, synthesize,
)


def test_identities_are_varied_and_serialisable():
    ids = [make_identity(s) for s in range(60)]
    assert len({i.appearance.skin for i in ids}) > 30
    assert {i.appearance.background for i in ids} == set(BACKGROUNDS)
    assert {i.appearance.hair_style for i in ids} == set(HAIR_STYLES)
    assert {i.style.favoured_hand for i in ids} == {"left", "right", "both"}
    units = [i.framing.unit for i in ids]
    assert max(units) / min(units) > 1.4  # wide (PATS-like) and close (Vlogger-like) framing
    # the identity stored in a clip's meta.json rebuilds exactly
    assert Identity.from_dict(json.loads(json.dumps(ids[3].to_dict()))) == ids[3]


def test_portrait_framing_is_the_same_person_closer():
    for seed in range(20):
        mixed, portrait = make_identity(seed), make_identity(seed, "portrait")
        # same appearance and style draws; only the size and placement change
        assert portrait.appearance == mixed.appearance and portrait.style == mixed.style
        assert portrait.framing.center_x == mixed.framing.center_x
        assert 0.08 <= mixed.framing.unit <= 0.135 and 0.16 <= portrait.framing.unit <= 0.2
        # the larger the person, the higher the head sits, so the chest stays in the frame
        assert portrait.framing.head_y < mixed.framing.head_y
    # mixed framing draws exactly the people of datasets made before framings existed (clip 0 of seed 0)
    old = make_identity(3964924996)
    assert (old.framing.unit, old.framing.center_x, old.framing.head_y) == (
        0.08553738099944674, 0.5803457530188784, 0.2529245250297177)
    assert old.appearance.skin == (230, 178, 133) and old.appearance.hair_style == "bald"
    with pytest.raises(ValueError, match="framing 'tight'"):
        make_identity(0, "tight")


def test_synthesize_real_speech():
    wav = synthesize("Hello there, how are you today?", "en-us+f3", 160, 50)
    assert wav.dtype == np.float32 and 0.8 * SAMPLE_RATE < len(wav) < 4 * SAMPLE_RATE
    assert np.abs(wav).max() > 0.05
    # a different voice gives a different waveform
    assert not np.array_equal(wav[:1000], synthesize("Hello there, how are you today?", "en-us+m3", 160, 50)[:1000])


def test_make_speech_length_pauses_and_determinism():
    for seed in range(6):
        sp = make_speech(seed, 81)
        assert sp.wav.shape == (81 * SAMPLES_PER_FRAME,)
        assert sp.running or any(b - a >= 0.3 * SAMPLE_RATE for a, b in sp.pauses)
        for a, b in sp.pauses:  # pauses are quiet (noise floor only)
            assert np.abs(sp.wav[a:b]).max() < 0.01
        assert np.abs(sp.wav).max() > 0.3 and sp.text
    a, b = make_speech(4, 81), make_speech(4, 81)
    np.testing.assert_array_equal(a.wav, b.wav)
    assert a.text == b.text


def _voiced_share(wav: np.ndarray) -> float:
    frames = wav[: len(wav) // SAMPLES_PER_FRAME * SAMPLES_PER_FRAME].reshape(-1, SAMPLES_PER_FRAME)
    return float((np.sqrt((frames**2).mean(axis=1)) > 0.01).mean())


def test_running_clips_are_speech_that_runs_on():
    speeches = [make_speech(seed, 33) for seed in range(40)]
    running = [sp for sp in speeches if sp.running]
    assert 8 <= len(running) <= 24  # RUNNING_P = 0.4 of 40 clips
    for sp in running:
        assert sp.wav.shape == (33 * SAMPLES_PER_FRAME,) and not sp.pauses and sp.text.startswith("…")
    # about as voiced as sentences spoken straight through (~0.9), far more than the clips of phrases and pauses
    voiced_running = np.mean([_voiced_share(sp.wav) for sp in running])
    voiced_paused = np.mean([_voiced_share(sp.wav) for sp in speeches if not sp.running])
    straight = _voiced_share(synthesize("Please remember to close the window before you leave, it might rain."))
    assert voiced_running > voiced_paused + 0.15, (voiced_running, voiced_paused)
    assert abs(voiced_running - straight) < 0.15, (voiced_running, straight)
    # the running draw has its own stream: the same seed with another length keeps its kind
    assert all(make_speech(seed, 81).running == sp.running for seed, sp in enumerate(speeches[:10]))


def test_languages_and_voices_vary():
    langs = {make_speech(s, 41).language for s in range(40)}
    assert len(langs) >= 4 and langs <= set(LANGUAGES)
    assert make_speech(1, 41, language="de").voice.startswith("de+")
    with pytest.raises(ValueError, match="lexicon"):
        make_speech(1, 41, language="xx")


def test_missing_espeak_names_the_fix(monkeypatch):
    monkeypatch.setattr(speech_mod.shutil, "which", lambda name: None)
    with pytest.raises(SpeechSynthesisError, match="apt-get install espeak-ng"):
        synthesize("hello")


def test_speech_is_varied_beyond_the_grammar():
    # version 1 spoke ~60 grammar words; version 2 speaks hundreds, real and made up, in every language
    texts = [make_speech(seed, 81, language="en").text for seed in range(30)]
    words = {w.strip(".,?!…").lower() for t in texts for w in t.split()} - {""}
    assert len(words) > 150
    rng = np.random.default_rng(0)
    for lang in LANGUAGES:
        made_up = {make_word(rng, lang) for _ in range(50)}
        assert len(made_up) > 40 and all(w and " " not in w for w in made_up)
        phrases = [make_phrase(rng, lang) for _ in range(40)]
        assert all(p[-1] in ".?!" for p in phrases)
        assert sum("," in p[:-1] or "." in p[:-1] for p in phrases) >= 10  # short gaps inside phrases too
    assert not {w.lower() for w in _WORDS} & {"garden", "weather", "station", "museum", "window", "autumn"}
