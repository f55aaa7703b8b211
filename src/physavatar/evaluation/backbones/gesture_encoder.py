"""Gesture feature encoder for FGD (Yoon et al., 2020): a 1-D conv encoder over pose windows.

FGD is the Fréchet distance between encoder features of real and generated pose windows; the encoder is
the encoder half of an autoencoder trained on real gestures. None ships (no public one fits this pose
layout), so FGD is "not computed" unless the user gives a trained one. The file format is ours: a torch file
{"config": {...GestureEncoderConfig fields}, "state_dict": {...}} read with weights_only=True; the
architecture follows Yoon et al.'s PoseEncoderConv (conv1d stack over time, then a linear to the latent).
"""

from __future__ import annotations

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
            nn.AdaptiveAvgPool1d(1),
        )
        self.out = nn.Linear(h, config.latent_dim)

    def forward(self, poses: torch.Tensor) -> torch.Tensor:
        b, t, j, _ = poses.shape
        x = poses.reshape(b, t, j * 2).transpose(1, 2)  # (B, 2J, T)
        return self.out(self.net(x).flatten(1))


def save_gesture_encoder(model: GestureEncoder, path: str | os.PathLike) -> None:
    from physavatar.io.atomic import atomic_write

    with atomic_write(path, "wb") as f:
        torch.save({"config": asdict(model.config), "state_dict": model.state_dict()}, f)


class GestureFeatures:
    def __init__(self, path: str | os.PathLike | None):
        if path is None or not Path(path).is_file():
            raise weights_not_found("gesture encoder (FGD)", path if path is not None else "(none given)",
                                    "train one on real pose windows and give --gesture-weights PATH "
                                    "(format: physavatar.evaluation.backbones.gesture_encoder)")
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            config = GestureEncoderConfig(**blob["config"])
            self.model = GestureEncoder(config)
            self.model.load_state_dict(blob["state_dict"], strict=True)
        except (KeyError, TypeError, RuntimeError, ValueError) as err:
            raise BackboneUnavailable(f"{path}: not a gesture encoder file ({err})") from err
        self.model.eval()
        self.window = config.window
        self.name = f"gesture encoder conv1d {config.latent_dim}-d ({path})"

    @torch.inference_mode()
    def features(self, windows: np.ndarray) -> np.ndarray:
        """(N, window, J, 2) -> (N, latent_dim)."""
        if len(windows) == 0:
            return np.zeros((0, self.model.config.latent_dim))
        return self.model(torch.from_numpy(np.asarray(windows, np.float32))).numpy().astype(np.float64)
