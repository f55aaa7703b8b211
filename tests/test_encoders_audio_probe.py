"""The offline default audio encoder is a real speech encoder: on held-out voices its features classify
vowels better than the log-mel frames it starts from (espeak-ng syllables, leave-one-voice-out)."""

import shutil

import pytest

from physavatar.encoders.audio import AudioEncoderConfig, load_audio_encoder
from physavatar.encoders.phoneme_probe import VOICES, make_utterance, run_probe

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


def test_vowel_centres_land_on_voiced_frames():
    utt = make_utterance("en-us")
    assert len(utt.labels) == 36 and utt.vowel_frames.max() < len(utt.audio) // 640
    frames = utt.audio[: len(utt.audio) // 640 * 640].reshape(-1, 640)
    rms = (frames ** 2).mean(1) ** 0.5
    assert (rms[utt.vowel_frames] > 0.2 * rms.max()).all()  # every centre is inside a loud vowel


def test_whisper_default_separates_vowels_better_than_logmel():
    encoders = {"whisper": load_audio_encoder(AudioEncoderConfig(backend="default")),
                "logmel": load_audio_encoder(AudioEncoderConfig(backend="logmel"))}
    res = run_probe(encoders, voices=VOICES)
    print(res)
    assert res["whisper"]["ridge"] > 0.6
    assert res["whisper"]["ridge"] > res["logmel"]["ridge"] + 0.1
    assert res["whisper"]["nearest_centroid"] > res["chance"]["nearest_centroid"] * 3
