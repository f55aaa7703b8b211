"""Q-Align (Wu et al., 2024) for VQA (quality) and ASE (aesthetics), from a local copy of its weights.

No Q-Align weights ship here and hubs are unreachable, so by default both metrics are "not computed". Given a
local folder of the released model (e.g. a download of `q-future/one-align`, whose mPLUG-Owl2 code is loaded
with trust_remote_code from that folder), videos are scored as in Q-Align's video evaluation: frames
sampled at 1 fps passed as one video to `model.score(..., task_=..., input_="video")`, which returns the
expected rating on its 1-5 scale. This path is not exercised by the tests (no weights, no tiny model in the
same format: the remote code fixes the architecture), and it needs a GPU to run at a useful speed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from physavatar.constants import FPS
from physavatar.evaluation.backbones import BackboneUnavailable, weights_not_found

TASKS = {"vqa": "quality", "ase": "aesthetics"}


class QAlign:
    def __init__(self, path: str | os.PathLike | None):
        if path is None or not (Path(path) / "config.json").is_file():
            raise weights_not_found("Q-Align", path if path is not None else "(none given)",
                                    "give --qalign-weights DIR holding a local copy of q-future/one-align "
                                    "(config.json, weights and its remote code)")
        try:
            import torch
            from transformers import AutoModelForCausalLM
        except ImportError as err:
            raise BackboneUnavailable(f"Q-Align needs transformers ({err})") from err
        dtype = torch.float16 if torch.cuda.is_available() else torch.float32  # never bf16/fp16 on CPU
        self.model = AutoModelForCausalLM.from_pretrained(
            str(path), trust_remote_code=True, torch_dtype=dtype, local_files_only=True,
            device_map="auto" if torch.cuda.is_available() else None,
        ).eval()
        self.name = f"Q-Align ({path})"

    def score(self, frames: np.ndarray, metric: str) -> float:
        from PIL import Image

        picked = [Image.fromarray(f) for f in frames[::FPS]]  # 1 fps, as Q-Align's video protocol
        out = self.model.score([picked], task_=TASKS[metric], input_="video")
        return float(np.asarray(out.detach().cpu() if hasattr(out, "detach") else out).reshape(-1)[0])
