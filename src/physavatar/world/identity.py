"""Identities of the synthetic world: appearance, framing and personal gesture style, all from one seed.

An `Identity` is a plain frozen dataclass, so it can be stored in a clip's meta.json and rebuilt exactly.
Body proportions are in "head units" u (half the face width); `Framing.unit` turns u into a fraction of
the frame size, which is how the world varies between PATS-like (small subject, lots of room for the
hands) and Vlogger-like (big, close subject) framing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

RGB = tuple[int, int, int]

SKIN_TONES: tuple[RGB, ...] = (
    (255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 140, 100), (161, 110, 75),
    (120, 80, 55), (92, 60, 40), (232, 190, 172),
)  # fmt: skip
HAIR_COLOURS: tuple[RGB, ...] = (
    (20, 16, 14), (60, 40, 25), (110, 70, 40), (170, 120, 60), (220, 190, 120), (150, 150, 150),
    (120, 40, 20), (235, 235, 230),
)  # fmt: skip
EYE_COLOURS: tuple[RGB, ...] = ((60, 40, 25), (90, 60, 30), (50, 90, 140), (70, 110, 70), (40, 30, 25))
HAIR_STYLES = ("short", "long", "bob", "bald", "bun")
PATTERNS = ("solid", "stripes", "dots", "checks")
BACKGROUNDS = ("flat", "gradient", "textured")


@dataclass(frozen=True)
class Appearance:
    skin: RGB
    hair: RGB
    hair_style: str
    eyes: RGB
    lips: RGB
    face_width: float  # half face width / half face height ratio (0.72 narrow .. 0.9 round)
    chin: float  # 0 = round jaw, 1 = pointed chin
    brow_thickness: float  # in head units
    shirt: RGB
    shirt_accent: RGB
    pattern: str
    short_sleeves: bool
    trousers: RGB
    background: str
    bg_colour_a: RGB
    bg_colour_b: RGB


@dataclass(frozen=True)
class Framing:
    unit: float  # head unit u as a fraction of the frame size
    center_x: float  # head centre, fraction of the frame width
    head_y: float  # head centre, fraction of the frame height


@dataclass(frozen=True)
class Style:
    """How this person moves: the many-to-one part of audio -> motion."""

    gesture_rate: float  # probability that an emphasis starts a beat gesture
    gesture_amp: float  # how far the hands travel (head units)
    favoured_hand: str  # "left" | "right" | "both"
    head_amp: float  # head motion amplitude (radians at full energy)
    brow_amp: float  # eyebrow raise on emphasis (head units)
    mouth_gain: float  # how wide this person opens the mouth
    blink_rate: float  # blinks per second


@dataclass(frozen=True)
class Identity:
    seed: int
    appearance: Appearance
    framing: Framing
    style: Style

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Identity:
        app = {k: tuple(v) if isinstance(v, list) else v for k, v in d["appearance"].items()}
        return cls(d["seed"], Appearance(**app), Framing(**d["framing"]), Style(**d["style"]))


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _jitter(rng: np.random.Generator, rgb: RGB, amount: int) -> RGB:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)


def _random_colour(rng: np.random.Generator, lo: int = 20, hi: int = 235, grey: float = 0.0) -> RGB:
    rgb = rng.integers(lo, hi, size=3).astype(float)
    rgb = (1 - grey) * rgb + grey * rgb.mean()  # pull toward grey: less garish walls
    return tuple(int(c) for c in rgb)


# Head unit as a fraction of the frame: "mixed" spans PATS-like wide shots to Vlogger-like close-ups;
# "portrait" is head and chest, the hands when they gesture, with the face about twice as large as the mixed
# mean (the lips span ~2 latent pixels of an 8x VAE at 128 px instead of ~1: configs/demo_portrait.yaml).
_UNIT_RANGE = {"mixed": (0.08, 0.135), "portrait": (0.16, 0.2)}
FRAMINGS = tuple(_UNIT_RANGE)


def make_identity(seed: int, framing: str = "mixed") -> Identity:
    """A distinct avatar from a seed (same seed and framing -> same identity, on every machine).

    The framing changes only the size and placement of the person: appearance and style are the same draws.
    """
    if framing not in FRAMINGS:
        raise ValueError(f"framing {framing!r}: choose from {FRAMINGS}")
    rng = np.random.default_rng([seed, 0x1D])
    skin = _jitter(rng, _pick(rng, SKIN_TONES), 10)
    bg = _pick(rng, BACKGROUNDS)
    shirt = _random_colour(rng)
    # Keep the background apart from the skin and the shirt so the silhouette always reads.
    while True:
        bg_a = _random_colour(rng, 30, 230, grey=0.35)
        if min(np.abs(np.subtract(bg_a, skin)).sum(), np.abs(np.subtract(bg_a, shirt)).sum()) > 120:
            break
    bg_b = _jitter(rng, bg_a, 70)
    appearance = Appearance(
        skin=skin,
        hair=_jitter(rng, _pick(rng, HAIR_COLOURS), 12),
        hair_style=_pick(rng, HAIR_STYLES),
        eyes=_pick(rng, EYE_COLOURS),
        lips=tuple(int(c) for c in np.clip(np.array(skin) * [0.78, 0.52, 0.52] + [20, 0, 5], 0, 255)),
        face_width=float(rng.uniform(0.74, 0.9)),
        chin=float(rng.uniform(0.0, 1.0)),
        brow_thickness=float(rng.uniform(0.06, 0.13)),
        shirt=shirt,
        shirt_accent=_random_colour(rng),
        pattern=_pick(rng, PATTERNS),
        short_sleeves=bool(rng.random() < 0.35),
        trousers=_pick(rng, ((40, 45, 60), (30, 30, 32), (90, 80, 70), (60, 70, 100), (120, 110, 95))),
        background=bg,
        bg_colour_a=bg_a,
        bg_colour_b=bg_b,
    )
    # Framing: small unit = PATS-like wide shot, large unit = Vlogger-like close-up.
    unit = float(rng.uniform(*_UNIT_RANGE[framing]))  # one draw in either framing: the rest stays the same
    shot = Framing(
        unit=unit,
        center_x=float(rng.uniform(0.4, 0.6)),
        head_y=float(rng.uniform(0.2, 0.25) + (0.135 - unit) * 0.8),
    )
    style = Style(
        gesture_rate=float(rng.uniform(0.25, 0.9)),
        gesture_amp=float(rng.uniform(0.6, 1.4)),
        favoured_hand=_pick(rng, ("left", "right", "right", "both")),
        head_amp=float(rng.uniform(0.06, 0.2)),
        brow_amp=float(rng.uniform(0.05, 0.14)),
        mouth_gain=float(rng.uniform(0.8, 1.2)),
        blink_rate=float(rng.uniform(0.15, 0.45)),
    )
    return Identity(seed=int(seed), appearance=appearance, framing=shot, style=style)
