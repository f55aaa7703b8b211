"""Conditioning encoders: audio features (§3.3), the physical planner (§3.4), pose (Appendix B).

Every heavy backbone sits behind a small interface with two backends: the paper's (loaded from a local
folder) and an offline default that runs here with weights shipped in registry packages. Every feature
records its backend; `require_same_backend` refuses to mix them. See docs/encoders.md.

Names resolve lazily, so `import physavatar.encoders` costs nothing (no torch / transformers import).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "backend": ["BackendMismatchError", "ModelFolderError", "require_same_backend", "cache_dir"],
    "audio": ["AudioFeatures", "AudioEncoderConfig", "AudioEncoder", "load_audio_encoder", "concat_features",
              "stack_neighbour_frames", "AUDIO_BACKENDS"],
    "audio_whisper": ["WhisperAudioEncoder", "WhisperWindowing"],
    "whisper_ct2": ["convert_ct2_whisper", "default_whisper_folder"],
    "planner": ["PlanOutput", "PlannerConfig", "Planner", "load_planner", "build_prompt", "check_plans",
                "PLAN_PROMPT", "PLANNER_BACKENDS"],
    "planner_heuristic": ["HeuristicPlanner"],
    "planner_qwen": ["QwenOmniPlanner"],
    "planner_text": ["TextTokenEncoder", "T5Replanner"],
    # pose.py is maintained separately; keep this list in step with its public names.
    "pose": ["PoseFeatures", "PoseEncoder", "load_pose_encoder", "concat_pose"],
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'physavatar.encoders' has no attribute {name!r}")
    return getattr(importlib.import_module(f"physavatar.encoders.{_WHERE[name]}"), name)
