"""Gesture feature encoder for FGD (Yoon et al., 2020): a 1-D conv encoder over pose windows.

FGD is the Fréchet distance between encoder features of real and generated pose windows; the encoder is
the encoder half of an autoencoder trained on real gestures. No public one fits this pose layout, so for
real videos FGD is "not computed" unless the user gives a trained one; for world clips the package ships
world-gesture-AE (evaluation/assets/world_gesture_ae.safetensors, trained by backbones/train_world.py).
Two file formats, both ours, read by `GestureFeatures`:
- a torch file {"config": {...GestureEncoderConfig fields}, "state_dict": {...}} read with weights_only=True;
- a `.safetensors` file with the encoder's state dict and metadata {"format": FORMAT, "config": JSON}.
The architecture follows Yoon et al.'s PoseEncoderConv: a conv1d stack over time, then a linear to the
latent, either from the time-averaged features (`temporal_pool=True`, the older default) or from the
flattened (channels × time) features as in Yoon et al. (`temporal_pool=False`, used by world-gesture-AE:
averaging over time would make the latent blind to the order of the poses).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from physavatar.evaluation.backbones import BackboneUnavailable, weights_not_found
from physavatar.evaluation.metrics.gesture import GESTURE_ROWS


@dataclass
class GestureEncoderConfig:
    window: int = 34  # frames per pose window (Yoon et al.)
    num_joints: int = len(GESTURE_ROWS)  # normalised gesture joints (gesture.GESTURE_ROWS)
    hidden: int = 64
    latent_dim: int = 32
    temporal_pool: bool = True  # False: flatten (hidden × window/4) into the latent linear (Yoon et al.)


FORMAT = "physavatar-gesture-encoder-v1"


class GestureEncoder(nn.Module):
    """(B, window, J, 2) normalised poses -> (B, latent_dim)."""

    def __init__(self, config: GestureEncoderConfig):
        super().__init__()
        self.config = config
        c, h = 2 * config.num_joints, config.hidden
        self.net = nn.Sequential(
            nn.Conv1d(c, h, 3, padding=1), nn.BatchNorm1d(h), nn.LeakyReLU(0.2),
            nn.Conv1d(h, h, 3, stride=2, padding=1), nn.BatchNorm1d(h), nn.LeakyReLU(0.2),
            nn.Conv1d(h, h, 3, stride=2, padding=1), nn.BatchNorm1d(h), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool1d(1) if config.temporal_pool else nn.Identity(),
        )
        steps = 1 if config.temporal_pool else (config.window + 3) // 4  # two stride-2 convs: ceil(ceil(T/2)/2)
        self.out = nn.Linear(h * steps, config.latent_dim)

    def forward(self, poses: torch.Tensor) -> torch.Tensor:
        b, t, j, _ = poses.shape
        x = poses.reshape(b, t, j * 2).transpose(1, 2)  # (B, 2J, T)
        return self.out(self.net(x).flatten(1))


def save_gesture_encoder(model: GestureEncoder, path: str | os.PathLike) -> None:
    """Torch format, or safetensors when `path` ends in .safetensors."""
    from physavatar.io.atomic import atomic_write

    if str(path).endswith(".safetensors"):
        from safetensors.torch import save

        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        blob = save(state, metadata={"format": FORMAT, "config": json.dumps(asdict(model.config))})
        with atomic_write(path, "wb") as f:
            f.write(blob)
        return
    with atomic_write(path, "wb") as f:
        torch.save({"config": asdict(model.config), "state_dict": model.state_dict()}, f)


def _read(path: str | os.PathLike) -> tuple[dict, dict]:
    """(config dict, state dict) from either file format."""
    if str(path).endswith(".safetensors"):
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
        if meta.get("format") != FORMAT:
            raise ValueError(f"metadata format {meta.get('format')!r}, expected {FORMAT!r}")
        return json.loads(meta["config"]), state
    blob = torch.load(path, map_location="cpu", weights_only=True)
    return blob["config"], blob["state_dict"]


class GestureFeatures:
    def __init__(self, path: str | os.PathLike | None, label: str = "gesture encoder"):
        if path is None or not Path(path).is_file():
            raise weights_not_found("gesture encoder (FGD)", path if path is not None else "(none given)",
                                    "train one on real pose windows and give --gesture-weights PATH "
                                    "(format: physavatar.evaluation.backbones.gesture_encoder)")
        from safetensors import SafetensorError

        try:
            config_dict, state = _read(path)
            config = GestureEncoderConfig(**config_dict)
            self.model = GestureEncoder(config)
            self.model.load_state_dict(state, strict=True)
        except (KeyError, TypeError, RuntimeError, ValueError, SafetensorError) as err:
            raise BackboneUnavailable(f"{path}: not a gesture encoder file ({err})") from err
        self.model.eval()
        self.window = config.window
        self.name = f"{label} conv1d {config.latent_dim}-d ({path})"

    @torch.inference_mode()
    def features(self, windows: np.ndarray) -> np.ndarray:
        """(N, window, J, 2) -> (N, latent_dim)."""
        if len(windows) == 0:
            return np.zeros((0, self.model.config.latent_dim))
        if np.ndim(windows) != 4 or np.shape(windows)[1:] != (self.window, self.model.config.num_joints, 2):
            raise ValueError(f"{self.name}: expected (N, {self.window}, {self.model.config.num_joints}, 2) pose "
                             f"windows, got {np.shape(windows)}; set the gesture window to {self.window}")
        return self.model(torch.from_numpy(np.asarray(windows, np.float32))).numpy().astype(np.float64)
