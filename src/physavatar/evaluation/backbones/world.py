"""The world backbones that ship with the package, and when the evaluation uses them.

world-SyncNet (Sync-C / Sync-D) and world-gesture-AE (FGD) are small networks trained on the synthetic
world's clips (backbones/train_world.py; cards beside the weights in evaluation/assets/). They are the
default only for world data: a clip whose meta.json says "source": "world" (docs/clip_format.md). Real
videos keep "not computed" unless the user gives weights, since these nets have never seen a real face.
"""

from __future__ import annotations

import json
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"
WORLD_SYNCNET = ASSETS / "world_syncnet.safetensors"
WORLD_GESTURE_AE = ASSETS / "world_gesture_ae.safetensors"
WORLD_SYNC_LABEL = "world-SyncNet"
WORLD_GESTURE_LABEL = "world-gesture-AE"


def is_world_clip(clip_dir: str | Path) -> bool:
    """True when `clip_dir`/meta.json exists and says "source": "world"."""
    meta = Path(clip_dir) / "meta.json"
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text()).get("source") == "world"
    except (json.JSONDecodeError, OSError, AttributeError):
        return False


def card(weights: Path) -> dict:
    """The JSON card beside shipped weights (`<name>.json`): data, seed, steps, losses, validation."""
    return json.loads(weights.with_suffix(".json").read_text())
