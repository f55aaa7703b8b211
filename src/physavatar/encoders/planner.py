"""Physical planning guidance (paper §3.4, Appendix C): (reference image, audio, edit) -> plan + embeddings.

The planner writes a short plan in the fixed [AUDIO]/[IMAGE]/[VIDEO] format of Figure S3 and returns two
(L, C_MLLM) embeddings of its L plan tokens: `e_con` (contextual: the model's final hidden states over the
plan tokens) and `e_tok` (tokenized: the input embeddings of the same tokens); eq. (5) sums them before
Proj_MLLM. Backends:
- "qwen-omni": the paper's Qwen2.5-Omni Thinker (3B / 7B) from a local folder (planner_qwen.py).
- "default"  : a transparent *heuristic* planner that measures the audio and image with shipped models
               and writes the plan by rules; embedded by all-MiniLM-L6-v2 (planner_heuristic.py).
- text_encoder="t5": the "MLLM via T5" ablation (Table 2): the plan text re-encoded by a local UMT5
               encoder (planner_text.py); combines with either backend.
Plans are cached by a hash of (image, audio, edit, model) under ~/.cache/physavatar/plans.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from physavatar.encoders.backend import (atomic_save_npz, atomic_write_text, cache_dir, hash_parts,
                                         require_same_backend)

# Figure S3, verbatim (bold markers as printed in the paper).
PLAN_PROMPT = (
    "You are a creative director. **Analyze** the audio and reference image **together**. Your output must "
    "consist entirely of concise phrases and follow this fixed format:\n"
    "- **[AUDIO]**: [Analyze **the speaker's vocal tone, emotional nuances, pacing, rhythm, intonation, and "
    "volume**. Limit to 3-5 concise phrases without questions.]\n"
    "- **[IMAGE]**: [Describe **the person's key appearance, facial and pose expression, outfit, and "
    "environmental setting**. Limit to 3-5 concise phrases without questions.]\n"
    "- **[VIDEO]**: [Focus on **how audio influences future human changes**: posture shifts, gaze alterations, "
    "and expression dynamics. **Indicate emotional states. Limit to 3-5 concise phrases without questions.**]\n"
    "- **Constraints**: All content combined must not exceed 80 words. No filler words, conjunctions, or "
    "articles are allowed."
)
PLAN_WORD_LIMIT = 80
PLANNER_BACKENDS = ("default", "qwen-omni")
TEXT_ENCODERS = ("native", "t5")


def build_prompt(edit: str | None = None) -> str:
    """Figure S3's prompt; an edit is appended at its end as a description (Appendix C, text editing)."""
    if edit is None or not edit.strip():
        return PLAN_PROMPT
    return f"{PLAN_PROMPT}\n{' '.join(edit.split())}"


@dataclass
class PlanOutput:
    """A plan and its embeddings. `e_con`, `e_tok`: float32 (L, C) over the same L plan tokens."""

    text: str
    e_con: np.ndarray
    e_tok: np.ndarray
    backend: str  # e.g. "heuristic-planner+all-MiniLM-L6-v2" or "qwen2.5-omni-7b:max_new_tokens=160"
    prompt: str
    edit: str | None = None
    tokens: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # backend-specific, e.g. the heuristic's measurements

    def __post_init__(self):
        if self.e_con.shape != self.e_tok.shape or self.e_con.ndim != 2:
            raise ValueError(f"plan embeddings must both be (L, C); got e_con {self.e_con.shape}, "
                             f"e_tok {self.e_tok.shape}")

    @property
    def is_heuristic(self) -> bool:
        return self.backend.startswith("heuristic")

    def save(self, folder: str | os.PathLike, stem: str = "plan") -> dict[str, Path]:
        """Write <stem>.txt (the plan), <stem>.json (backend, prompt, edit, info) and <stem>.npz (embeddings)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"text": folder / f"{stem}.txt", "meta": folder / f"{stem}.json", "embeddings": folder / f"{stem}.npz"}
        atomic_write_text(paths["text"], self.text + "\n")
        meta = {k: v for k, v in asdict(self).items() if k not in ("e_con", "e_tok")}
        meta["heuristic"] = self.is_heuristic
        meta["shape"] = list(self.e_con.shape)
        atomic_write_text(paths["meta"], json.dumps(meta, indent=2, default=_jsonable) + "\n")
        atomic_save_npz(paths["embeddings"], e_con=self.e_con, e_tok=self.e_tok, backend=np.array(self.backend),
                        text=np.array(self.text))
        return paths

    @classmethod
    def load(cls, folder: str | os.PathLike, stem: str = "plan") -> "PlanOutput":
        folder = Path(folder)
        meta = json.loads((folder / f"{stem}.json").read_text(encoding="utf-8"))
        with np.load(folder / f"{stem}.npz") as data:
            e_con, e_tok = data["e_con"], data["e_tok"]
        return cls(meta["text"], e_con, e_tok, meta["backend"], meta["prompt"], meta.get("edit"),
                   meta.get("tokens", []), meta.get("info", {}))


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def check_plans(plans: list[PlanOutput]) -> str:
    """Training calls this: all plans must come from one planner + text encoder (raises otherwise)."""
    return require_same_backend(plans, "plan embeddings")


@dataclass
class PlannerConfig:
    backend: str = "default"  # PLANNER_BACKENDS
    path: str | None = None  # local Qwen2.5-Omni folder ("qwen-omni")
    text_encoder: str = "native"  # "native": the planner's own embeddings; "t5": the T5 ablation
    t5_path: str | None = None  # local UMT5 folder (text_encoder="t5")
    max_new_tokens: int = 160  # length cap of the greedy plan (80 words ~ 110-130 tokens)
    device: str = "cpu"
    dtype: str = "auto"  # "auto": bfloat16 on CUDA, float32 on CPU (bf16 is ~200x slower on these CPUs)
    max_image_pixels: int = 448 * 448  # Qwen image budget; the paper's 512^2 references fit ~ 256 tokens
    use_cache: bool = True


class Planner:
    """Common interface. Subclasses implement `_plan`; `plan` adds validation, the edit and caching."""

    backend: str
    model_id: str  # what identifies the weights in the cache key

    def _plan(self, image, audio: np.ndarray, prompt: str, edit: str | None) -> PlanOutput:
        raise NotImplementedError

    def plan(self, image, audio, edit: str | None = None, use_cache: bool = True) -> PlanOutput:
        from physavatar.encoders.audio import check_waveform

        image = check_image(image)
        audio = check_waveform(audio, "planner audio")
        edit = " ".join(edit.split()) if edit and edit.strip() else None
        prompt = build_prompt(edit)
        key = plan_cache_key(image, audio, edit, self.model_id)
        path = cache_dir("plans") / key
        if use_cache and (path / "plan.npz").is_file():
            return PlanOutput.load(path)
        out = self._plan(image, audio, prompt, edit)
        if use_cache:
            out.save(path)
        return out


def check_image(image):
    """Accept a PIL image (any mode) or an (H, W, 3) uint8 array; return a PIL RGB image."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"reference image array has shape {image.shape} and dtype {image.dtype}; give (H, W, 3) "
                             "uint8 RGB or a PIL image")
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise ValueError(f"reference image is a {type(image).__name__}; give a PIL image (physavatar.io loads one)")
    if min(image.size) < 16:
        raise ValueError(f"reference image is {image.size[0]}x{image.size[1]}; give at least 16x16 pixels")
    return image.convert("RGB")


def plan_cache_key(image, audio: np.ndarray, edit: str | None, model_id: str) -> str:
    """Hash of (image pixels + size, audio samples, edit, model): equal inputs share one cached plan."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return hash_parts(str(pixels.shape), pixels.tobytes(), np.ascontiguousarray(audio, np.float32).tobytes(),
                      edit or "", model_id, PLAN_PROMPT)[:32]


def load_planner(config: PlannerConfig | None = None) -> Planner:
    """Build the planner a config names (heavy imports happen here, not at package import)."""
    config = config or PlannerConfig()
    if config.backend == "default":
        from physavatar.encoders.planner_heuristic import HeuristicPlanner

        planner: Planner = HeuristicPlanner()
    elif config.backend == "qwen-omni":
        if not config.path:
            raise ValueError("planner 'qwen-omni' needs path= a local Qwen2.5-Omni (3B/7B) folder; or use the "
                             "offline default planner ('default', a heuristic)")
        from physavatar.encoders.planner_qwen import QwenOmniPlanner

        planner = QwenOmniPlanner(config)
    else:
        raise ValueError(f"planner {config.backend!r}: choose one of {', '.join(PLANNER_BACKENDS)}")
    if config.text_encoder == "t5":
        if not config.t5_path:
            raise ValueError("text_encoder 't5' needs t5_path= a local UMT5 encoder folder (Wan's umt5-xxl)")
        from physavatar.encoders.planner_text import T5Replanner

        planner = T5Replanner(planner, config.t5_path, device=config.device)
    elif config.text_encoder != "native":
        raise ValueError(f"text encoder {config.text_encoder!r}: choose one of {', '.join(TEXT_ENCODERS)}")
    return planner


def count_plan_words(text: str) -> int:
    """Words of the plan content, not counting the [AUDIO]/[IMAGE]/[VIDEO] labels."""
    return sum(1 for w in text.replace(";", " ").split() if not (w.startswith("[") and w.rstrip(":").endswith("]")))
