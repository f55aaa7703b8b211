"""The visual Turing test's five dimensions and their scoring rubric, worded as in the paper's Appendix D.

Scores run from 1 to 5 in 0.5 steps (§4.2); the rubric describes the whole points, and a half point sits
between the two descriptions around it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dimension:
    key: str  # stored in the database and used in the CSV files
    title: str
    question: str  # what the dimension assesses
    levels: tuple[tuple[int, str], ...]  # (score, description), 5 down to 1


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension(
        "gesture", "Gesture Plausibility",
        "Assesses the semantic compatibility of gestures with the accompanying audio.",
        ((5, "Gestures align naturally and convincingly with the audio."),
         (4, "Gestures generally reflect the audio’s intent, with minor inconsistencies."),
         (3, "Gestures show partial or ambiguous relevance to the audio."),
         (2, "Gestures appear unrelated or incongruent with audio."),
         (1, "Gestures are absent, static, or clearly contradict the audio.")),
    ),
    Dimension(
        "expression", "Expression Appropriateness",
        "Evaluates how well facial expressions convey the affective content of the audio.",
        ((5, "Expressions consistently and convincingly reflect emotional prosody."),
         (4, "Generally appropriate with minor mismatches."),
         (3, "Partially aligned but often ambiguous."),
         (2, "Weak or inconsistent affective cues."),
         (1, "Expressions absent or clearly misaligned with the audio.")),
    ),
    Dimension(
        "visual_quality", "Visual Quality",
        "Captures the perceived realism and rendering quality of the generated video.",
        ((5, "High perceptual realism with minimal artifacts."),
         (4, "Visually convincing with minor imperfections."),
         (3, "Moderate quality with visible artifacts."),
         (2, "Noticeable degradation in texture or stability."),
         (1, "Severe visual artifacts and low overall quality.")),
    ),
    Dimension(
        "identity", "Identity Consistency",
        "Assesses whether the avatar’s facial identity remains stable throughout the video.",
        ((5, "Identity is consistently preserved across all frames."),
         (4, "Mostly stable with minor temporal variations."),
         (3, "Occasional drift but generally recognizable."),
         (2, "Frequent identity instability."),
         (1, "Significant identity loss or distortion.")),
    ),
    Dimension(
        "lip_sync", "Lip Synchronization",
        "Assesses how accurately lip movements correspond to the audio.",
        ((5, "Precise phoneme-level alignment with natural articulation."),
         (4, "Generally well-synchronized with minor deviations."),
         (3, "Adequate synchronization but with noticeable timing issues."),
         (2, "Frequent desynchronization that disrupts perception."),
         (1, "Severe mismatch between lip motion and speech.")),
    ),
)

DIMENSION_KEYS: tuple[str, ...] = tuple(d.key for d in DIMENSIONS)
SCORES: tuple[float, ...] = tuple(s / 2 for s in range(2, 11))  # 1.0, 1.5, ..., 5.0
SCORE_MIN, SCORE_MAX = SCORES[0], SCORES[-1]


def check_score(value: object, dimension: str) -> float:
    """The score as a float if it is one of 1, 1.5, ..., 5; ValueError naming the dimension otherwise.

    JSON booleans are rejected although Python counts them as ints (`True == 1`).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"score for {dimension!r} must be a number from 1 to 5 in steps of 0.5, got {value!r}")
    if not (SCORE_MIN <= value <= SCORE_MAX) or float(value) * 2 != int(float(value) * 2):
        raise ValueError(f"score for {dimension!r} must be one of 1, 1.5, ..., 5 (steps of 0.5), got {value!r}")
    return float(value)


def as_json() -> list[dict]:
    """The rubric for the rating page (the browser renders it; nothing here names a method)."""
    return [{"key": d.key, "title": d.title, "question": d.question,
             "levels": [{"score": s, "text": t} for s, t in d.levels]} for d in DIMENSIONS]
