"""Speech for the synthetic world: varied phrases spoken by espeak-ng, joined with pauses.

`make_speech(seed, num_frames)` returns exactly `num_frames * SAMPLES_PER_FRAME` samples of 16 kHz mono
float32 audio plus the text, the voice settings and the sample ranges of the inserted pauses. Most clips
(`1 - RUNNING_P`) are phrases with pauses of 0.3-0.8 s between them and hold at least one pause of >= 0.3 s,
so silence (and the closed mouth it must show) is always present in them. The others (`running`, version 4)
are cut from one long utterance and start and end inside it: speech that runs on with only espeak's own short
gaps at commas and full stops, as a talk does for many seconds, and as no short phrase-and-pause clip can hold.
espeak-ng is called as a subprocess writing WAV to stdout (~15 ms a phrase).

Phrases come from three sources (`make_phrase`): a small grammar per language (sentences that sound like
sentences), a shuffle of ~480 everyday English words, and pronounceable made-up words built from each
language's spelling. World version 1 spoke the grammars only, about 60 English words; version 2 spends most
phrases on the open-ended sources, so a model hears far more of a language's sounds (what that changed for the
demo model is measured in docs/demo.md, "Pauses against syllables"); version 3 adds commas and full stops inside
those phrases, so the clips also hold the short gaps of free speech; version 4 adds the running clips (what
they changed for the demo model: docs/demo.md, "Speech that runs on").
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass, field

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from physavatar.constants import SAMPLE_RATE, SAMPLES_PER_FRAME

ESPEAK = "espeak-ng"
RUNNING_P = 0.4  # share of clips cut from one long utterance (version 4)

# language -> (espeak voice, subjects, verbs, objects, connectives): small grammars, many sentences.
_LEXICON: dict[str, tuple[str, list[str], list[str], list[str], list[str]]] = {
    "en": (
        "en-us",
        ["I", "we", "my sister", "the teacher", "our team", "nobody", "the old man", "everyone here",
         "this camera", "the people next door"],
        ["really love", "never forget", "always find", "can hardly believe", "just painted",
         "carefully explained", "quickly forgot", "will remember", "honestly prefer", "built"],
        ["the blue bicycle", "that strange story", "a quiet morning", "the whole project",
         "three cups of coffee", "this amazing idea", "the little garden", "every single word",
         "the last train home", "a very loud party"],
        ["and then", "but honestly,", "so", "because", "although", "and you know,"],
    ),
    "en-gb": (
        "en-gb",
        ["you", "the children", "my neighbour", "a friend of mine", "the manager", "they"],
        ["absolutely adore", "rarely mention", "finally finished", "suddenly noticed", "painted"],
        ["the rainy weekend", "a cup of tea", "the football match", "the long walk", "that letter"],
        ["and", "but", "so", "whereas"],
    ),
    "de": (
        "de",
        ["ich", "wir", "meine Mutter", "der Lehrer", "niemand", "das Team"],
        ["liebe", "vergesse nie", "finde immer", "erkläre gern", "baue"],
        ["das blaue Fahrrad", "die alte Geschichte", "einen ruhigen Morgen", "das ganze Projekt"],
        ["und dann", "aber", "also", "weil"],
    ),
    "fr": (
        "fr-fr",
        ["je", "nous", "mon frère", "le professeur", "personne", "toute l'équipe"],
        ["adore", "n'oublie jamais", "trouve toujours", "explique", "construis"],
        ["le vélo bleu", "cette histoire étrange", "un matin calme", "le projet entier"],
        ["et puis", "mais", "donc", "parce que"],
    ),
    "es": (
        "es",
        ["yo", "nosotros", "mi hermana", "el profesor", "nadie", "todo el equipo"],
        ["quiero", "nunca olvido", "siempre encuentro", "explico", "construyo"],
        ["la bicicleta azul", "esa historia extraña", "una mañana tranquila", "el proyecto entero"],
        ["y luego", "pero", "así que", "porque"],
    ),
    "it": (
        "it",
        ["io", "noi", "mia sorella", "il maestro", "nessuno"],
        ["amo", "non dimentico mai", "trovo sempre", "spiego", "costruisco"],
        ["la bicicletta blu", "quella storia strana", "una mattina tranquilla", "il progetto intero"],
        ["e poi", "ma", "quindi", "perché"],
    ),
    "pt": (
        "pt",
        ["eu", "nós", "minha irmã", "o professor", "ninguém"],
        ["adoro", "nunca esqueço", "sempre encontro", "explico", "construo"],
        ["a bicicleta azul", "aquela história estranha", "uma manhã tranquila", "o projeto inteiro"],
        ["e depois", "mas", "então", "porque"],
    ),
}  # fmt: skip
# Everyday English words for word-salad phrases: real words, in orders no grammar would produce. No content word
# of benchmarks/bench_demo.py's held-out sentences is here, so that benchmark stays free speech the model never heard.
_WORDS = """
apple answer army baby bag ball bank basket bath beach bean bear bed bell belt bird birthday biscuit blanket
blood boat body bone book boot bottle bottom box boy brain bread bridge brother brush bucket butter button
cake camera candle cap car card carpet cat chain chair cheese chicken child chin church circle city cloud coat
collar colour comb cook copper corner cotton cow crack cup curtain cushion dinner doctor dog door dragon drawer
dress drink dust ear earth egg elbow engine eye face farm feather finger fire fish flag floor flower fly foot
fork fruit glass glove goat gold grass guitar hair hammer hand hat head heart hill holiday honey hook horse
hospital house island jacket jelly jewel judge kettle key king kitchen kite knee knife knot lamp lemon library
lip lock machine map market match meal milk mirror money monkey moon mother mountain mouse mouth nail neck
needle nest net nose nut ocean office onion orange oven owl page paint paper parcel parrot pencil pepper piano
picture pig pillow pin pipe plane plate pocket potato prison pump puzzle queen rabbit radio rail ring river road
robot roof room root rope rose salt sand school scissors sheep shelf ship shirt shoe silver sister skirt sky
snake sock soup spoon square stamp star stick stone street sugar sun table tail teeth thumb ticket tiger toe
tomato tongue tooth towel tower town toy tree truck umbrella uncle valley village violin wall watch water wheel
whistle wing winter wire wolf wood wool yellow zebra zero
angry bitter bright broken busy careful cheap clever cold crooked curly dark deep delicious dizzy dry dusty
early empty enormous fancy fast fierce flat fluffy fresh friendly funny gentle giant golden greedy happy heavy
hollow honest hungry icy jolly kind lazy little lonely lucky magic messy narrow noisy odd polite proud
purple quick quiet rapid rich rotten rough round sharp shiny short silly slippery slow smooth soft sour spicy
sticky strong sweet tall tender thick thin tidy tiny ugly warm wet wide wild wise wooden young
ask bake bite blow borrow bounce breathe bring build burn carry catch chase cheer chew climb clap cough crawl
cry cut dance dig dive draw dream drop eat explain fall feed fight fill find fix float fold follow forgive
giggle grab grow hang hide hop hug hunt invent jump kick kiss knock laugh lift listen lose march measure melt
mix move nod obey pick plant play point pour pull push reach read ride roll run scream search shake
shout sing sit skip sleep slide sneeze spill spin splash squeeze stand stir swim swing teach throw tickle
travel wander wash whisper wink wish wobble worry write yawn yell
also almost always anyway away behind below beside beyond during every maybe never often perhaps quite
rather really since so still through under until very where while why without yet yesterday
""".split()
# Spelling pieces for made-up words: onsets, vowels, codas; espeak-ng reads them with the language's own rules.
_SYLLABLES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "en": ("b d f g h j k l m n p r s t v w y z ch sh th br bl cr dr fl gr pl pr sk sl sp st tr".split(),
           "a e i o u ee oo ai ay ea oa ou ow ie".split(), ["", "", "", ""] + "n m t k s l p d ng st nd rk".split()),
    "de": ("b d f g h j k l m n p r s t w z sch pf kr st sp tr".split(),
           "a e i o u ä ö ü ei au ie eu".split(), ["", "", ""] + "n m t ch s l r ng nd".split()),
    "fr": ("b d f g j l m n p r s t v ch gr pr tr".split(),
           "a e i o u ou eau é è oi an on in".split(), ["", "", "", ""] + "r l s".split()),
    "es": ("b d f g j l m n p r s t v ll ch br pr tr".split(),
           "a e i o u ia ue".split(), ["", "", "", ""] + "n s r l".split()),
    "it": ("b d f g l m n p r s t v z gn sc br pr tr".split(),
           "a e i o u ia io".split(), ["", "", "", ""] + "n l r".split()),
    "pt": ("b d f g j l m n p r s t v lh nh ch br tr".split(),
           "a e i o u ão ei ou".split(), ["", "", "", ""] + "s r l m".split()),
}  # fmt: skip
LANGUAGES = tuple(_LEXICON)
# Weights: mostly English (the paper's data), some of every other language.
_LANGUAGE_P = np.array([0.45, 0.15, 0.08, 0.08, 0.08, 0.08, 0.08])
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
            "croak", "adam", "linda", "steph", "robert", "paul", "anika", "Andrea")  # fmt: skip
_ESPEAK_RATE = 22050


class SpeechSynthesisError(RuntimeError):
    """espeak-ng is missing or failed."""


class EspeakNotFoundError(SpeechSynthesisError, FileNotFoundError):
    """espeak-ng is not installed (a FileNotFoundError, so the CLI prints it as one clear line)."""


@dataclass
class Speech:
    wav: np.ndarray  # (num_frames * 640,) float32 in [-1, 1], 16 kHz mono
    text: str
    language: str
    voice: str  # espeak -v argument, e.g. "en-us+f3"
    rate: int  # words per minute (-s)
    pitch: int  # 0-99 (-p)
    pauses: list[tuple[int, int]] = field(default_factory=list)  # [start, stop) sample ranges of silence
    running: bool = False  # cut from one long utterance: no inserted pauses (version 4)

    def silent_frames(self) -> np.ndarray:
        """Boolean (F,): frames whose 640 samples all lie inside an inserted pause."""
        num_frames = len(self.wav) // SAMPLES_PER_FRAME
        silent = np.zeros(len(self.wav), bool)
        for a, b in self.pauses:
            silent[a:b] = True
        return silent[: num_frames * SAMPLES_PER_FRAME].reshape(num_frames, -1).all(axis=1)


def make_phrase(rng: np.random.Generator, language: str = "en") -> str:
    """One phrase: a grammar sentence (1/3), everyday words in random order (English, 1/3), or made-up words."""
    u = rng.random()
    if u < 1 / 3:
        return make_sentence(rng, language)
    if u < 2 / 3 and language.startswith("en"):
        words = [_WORDS[int(i)] for i in rng.integers(len(_WORDS), size=int(rng.integers(2, 9)))]
    else:
        words = [make_word(rng, language) for _ in range(int(rng.integers(2, 7)))]
    if rng.random() < 0.15:  # espeak reads digits as number words: another set of mouth shapes
        words.insert(int(rng.integers(len(words) + 1)), str(int(rng.integers(0, 10_000))))
    # Commas and full stops inside the phrase: espeak-ng leaves gaps of ~2-7 and ~6-13 frames there, the short
    # pauses of free speech, where the inserted pauses between phrases (0.3-0.8 s) are all long (version 3).
    text = words[0]
    for word in words[1:]:
        u = rng.random()
        if u < 0.15:
            text += f", {word}"
        elif u < 0.25:
            text += f". {word[0].upper()}{word[1:]}"
        else:
            text += f" {word}"
    return text[0].upper() + text[1:] + ("?" if rng.random() < 0.15 else ".")


def make_word(rng: np.random.Generator, language: str = "en") -> str:
    """A pronounceable made-up word of 1-3 syllables in the language's spelling."""
    onsets, vowels, codas = _SYLLABLES[language[:2]]
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    return "".join(pick(onsets) + pick(vowels) + pick(codas) for _ in range(int(rng.integers(1, 4))))


def make_sentence(rng: np.random.Generator, language: str = "en") -> str:
    """One varied sentence from the language's small grammar."""
    _, subj, verb, obj, conj = _LEXICON[language]
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    text = f"{pick(subj)} {pick(verb)} {pick(obj)}"
    if rng.random() < 0.35:
        text += f", {pick(conj)} {pick(subj)} {pick(verb)} {pick(obj)}"
    text = text[0].upper() + text[1:]
    return text + ("?" if rng.random() < 0.15 else "!" if rng.random() < 0.15 else ".")


def synthesize(text: str, voice: str = "en-us", rate: int = 160, pitch: int = 50) -> np.ndarray:
    """espeak-ng speech for `text` -> float32 16 kHz mono, espeak's own leading/trailing silence trimmed."""
    exe = shutil.which(ESPEAK)
    if exe is None:
        raise EspeakNotFoundError(
            "espeak-ng is not installed; the synthetic world needs it for speech: apt-get install espeak-ng"
        )
    cmd = [exe, "--stdout", "-v", voice, "-s", str(int(rate)), "-p", str(int(pitch)), text]
    proc = subprocess.run(cmd, capture_output=True, timeout=30)
    if proc.returncode != 0 or not proc.stdout:
        raise SpeechSynthesisError(f"espeak-ng failed for voice {voice!r}: {proc.stderr.decode()[-300:]}")
    wav, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    if sr != _ESPEAK_RATE:
        raise SpeechSynthesisError(f"espeak-ng wrote {sr} Hz audio; expected {_ESPEAK_RATE}")
    wav = resample_poly(wav, 320, 441).astype(np.float32)  # 22050 -> 16000 Hz
    loud = np.flatnonzero(np.abs(wav) > 1e-3)
    return wav[loud[0] : loud[-1] + 1] if len(loud) else wav[:0]


def make_speech(seed: int, num_frames: int, language: str | None = None, running_p: float = RUNNING_P) -> Speech:
    """Speech of exactly num_frames video frames, deterministic from seed: phrases separated by pauses, or
    (with probability running_p; 0 gives world version 3) a cut from one long utterance."""
    rng = np.random.default_rng([seed, 0x5EEC])
    language = language or LANGUAGES[int(rng.choice(len(LANGUAGES), p=_LANGUAGE_P))]
    if language not in _LEXICON:
        raise ValueError(f"language {language!r} is not in the world's lexicon; choose from {LANGUAGES}")
    variant = VARIANTS[int(rng.integers(len(VARIANTS)))]
    voice = f"{_LEXICON[language][0]}+{variant}"
    rate, pitch = int(rng.integers(130, 200)), int(rng.integers(25, 80))
    total = num_frames * SAMPLES_PER_FRAME
    # Drawn from its own stream so that the phrase-and-pause clips of a seed stay those of version 3.
    running = bool(np.random.default_rng([seed, 0x4E1]).random() < running_p)
    if running:
        wav, text = _running_speech(rng, language, voice, rate, pitch, total)
        pauses: list[tuple[int, int]] = []
    else:
        wav, text, pauses = _phrases_and_pauses(rng, language, voice, rate, pitch, total)
    # a faint noise floor (-70 dBFS), like a quiet room, so silence is not digital zero.
    wav += rng.standard_normal(total).astype(np.float32) * 3e-4
    return Speech(np.clip(wav, -1.0, 1.0), text, language, voice, rate, pitch, sorted(pauses), running)


def _phrases_and_pauses(
    rng: np.random.Generator, language: str, voice: str, rate: int, pitch: int, total: int
) -> tuple[np.ndarray, str, list[tuple[int, int]]]:
    wav = np.zeros(total, np.float32)
    pauses: list[tuple[int, int]] = []
    texts: list[str] = []
    # 1. lay out: optional lead-in silence, then phrase / pause / phrase ... until the clip is full.
    pos = int(rng.uniform(0.0, 0.5) * SAMPLE_RATE)
    if pos:
        pauses.append((0, pos))
    while pos < total:
        phrase = make_phrase(rng, language)
        if rng.random() < 0.5:  # short phrases make more pauses per clip
            words = phrase.rstrip(".!?").split()
            phrase = " ".join(words[: int(rng.integers(2, max(3, len(words))))]).rstrip(",") + "."
        audio = synthesize(phrase, voice, rate, pitch)
        n = min(len(audio), total - pos)
        wav[pos : pos + n] = audio[:n] * rng.uniform(0.5, 0.95) / max(1e-6, float(np.abs(audio).max()))
        texts.append(phrase if n == len(audio) else phrase + " …")
        pos += n
        gap = int(rng.uniform(0.3, 0.8) * SAMPLE_RATE)
        if pos < total:
            pauses.append((pos, min(total, pos + gap)))
        pos += gap
    # 2. guarantee a pause of >= 0.3 s: if the layout made none that long, silence the clip's tail.
    if not any(b - a >= 0.3 * SAMPLE_RATE for a, b in pauses):
        start = total - int(0.4 * SAMPLE_RATE)
        wav[start:] = 0.0
        pauses.append((start, total))
    return wav, " ".join(texts), pauses


def _running_speech(
    rng: np.random.Generator, language: str, voice: str, rate: int, pitch: int, total: int
) -> tuple[np.ndarray, str]:
    """`total` samples cut at a random place from one utterance of whole phrases, spoken in one espeak call
    (so the joins are espeak's own sentence gaps, not inserted pauses)."""
    text = ""
    audio = np.zeros(0, np.float32)
    while len(audio) < total + SAMPLE_RATE // 2:  # room for a start offset of up to half a second
        phrase = make_phrase(rng, language)
        if text:  # a sentence goes on after a comma or none as often as it ends: ~85 % voiced frames
            u = rng.random()
            text = text if u < 0.4 else text[:-1] + ("," if u < 0.7 else "")
            phrase = phrase if u < 0.4 else phrase[0].lower() + phrase[1:]
        text = f"{text} {phrase}".strip()
        audio = synthesize(text, voice, rate, pitch)
    start = int(rng.integers(0, len(audio) - total + 1))
    wav = audio[start : start + total] * rng.uniform(0.5, 0.95) / max(1e-6, float(np.abs(audio).max()))
    return wav.astype(np.float32), f"… {text} …"
