"""Training configuration: nested dataclasses, YAML files that hold only overrides, dotted CLI overrides.

    cfg = load_train_config("configs/demo.yaml", ["--optim.lr=1e-4", "--run.max_steps=10"])

A key that does not exist is an error that names it and lists the keys that do.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from physavatar.config import LoraArgs, ModelArgs, preset

Supervision = Literal["discrete", "full", "none"]


@dataclass
class DataArgs:
    root: str = "data/world"  # a clip dataset (docs/clip_format.md) with extracted features
    split: str = "train"
    num_frames: int = 33  # frames per clip (1 + 4k); clips of another length are skipped and logged
    audio_backend: str = "default"  # which features/audio.<backend>.npz to read
    planner: str = "default"  # which features/plan.<planner>.* to read ("" = no plan: context-free model)
    vae: str = ""  # AutoencoderKLWan folder; its latents are read from features/latents.<vae name>.safetensors
    batch_size: int = 1
    known_frames_prob: float = 0.25  # share of steps that teach VACE frame interpolation (long-form even chunks)
    tail_frames: int = 5  # m: known frames at the start of an interpolation window
    head_frames: int = 4  # n: known frames at its end


@dataclass
class OptimArgs:
    lr: float = 2e-5
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100
    decay: Literal["constant", "cosine"] = "constant"  # after warmup; cosine ends at a tenth at run.max_steps
    grad_clip: float = 1.0
    grad_accum: int = 1


@dataclass
class LossArgs:
    lambda_discrete: float = 10.0  # λ of eq. 7
    supervision: Supervision = "discrete"  # Algorithm 1; "full": every latent, audio visible; "none": L_cont only
    shift: float = 5.0  # Wan's timestep shift
    audio_drop: float = 0.1  # classifier-free guidance: share of samples trained with all audio masked
    context_drop: float = 0.1  # share of steps trained without the planner context
    face_weight: float = 0.0  # L_cont weight 1 + face_weight on the face's latent pixels (needs keypoints.npy);
    # not in the paper: a small model from scratch learns the face, a few latent pixels of 256, far sooner
    mouth_weight: float = 0.0  # and + mouth_weight on the lips' box (needs keypoints.npy); not in the paper: at
    # 128 px the lips are 6x4 pixels, inside one or two latent pixels, and barely move L_cont
    hand_weight: float = 0.0  # and + hand_weight on the boxes of the hands in view (needs keypoints.npy); not in the
    # paper: a raised hand covers a few latent pixels of a few frames, and a small model draws the resting pose


@dataclass
class RunArgs:
    out_dir: str = "runs/physavatar"
    base: str | None = None  # base Wan2.1-VACE weights; None trains every weight from scratch (demo)
    use_lora: bool = True  # with a base: LoRA on it (paper); ignored without a base
    init_from: str | None = None  # start the trainable weights from a checkpoint folder or an exported
    # transformer folder (step 0, fresh optimizer): fine-tuning a trained model, e.g. on a new VAE's latents
    init_fresh_audio_proj: bool = False  # with init_from: Proj_aud starts afresh, its output layer zero so the audio
    # tokens begin as the loaded model's output bias: revives a model whose projector died (docs/model.md)
    max_steps: int = 1000
    save_every: int = 200
    keep_last: int = 3
    log_every: int = 10
    val_every: int = 0  # generate a sample from a held-out clip every N steps (0 = never; needs data.vae)
    val_split: str = "val"  # the split the sample's reference image and audio come from
    val_steps: int = 10  # denoising steps of the sample
    export_steps: int = 50  # default denoising steps written into the exported pipeline (paper: 50)
    export_audio_scale: float = 2.0  # default audio guidance scale written into the exported pipeline (paper: 2.0)
    export_dtype: str = "float32"  # weights dtype of the exported transformer: float32 | float16 | bfloat16
    seed: int = 0
    device: str = "auto"  # "auto": CUDA when available, else CPU
    mixed_precision: str = "auto"  # "auto": bf16 autocast on GPU, none on CPU; or "no" / "bf16"
    gradient_checkpointing: bool = False
    tensorboard: bool = True


@dataclass
class TrainConfig:
    model_preset: str = "demo"  # base of `model`: tiny | demo | vace-1.3b
    model: dict[str, Any] = field(default_factory=dict)  # ModelArgs overrides on top of the preset
    lora: LoraArgs = field(default_factory=LoraArgs)
    data: DataArgs = field(default_factory=DataArgs)
    optim: OptimArgs = field(default_factory=OptimArgs)
    loss: LossArgs = field(default_factory=LossArgs)
    run: RunArgs = field(default_factory=RunArgs)

    def model_args(self) -> ModelArgs:
        args = preset(self.model_preset)
        known = {f.name for f in dataclasses.fields(ModelArgs)}
        unknown = sorted(set(self.model) - known)
        if unknown:
            raise ValueError(f"unknown model keys {unknown}; known: {sorted(known)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in self.model.items()}
        return dataclasses.replace(args, **values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _set(obj: Any, dotted: str, value: Any, path: str = "") -> None:
    head, _, rest = dotted.partition(".")
    where = f"{path}{head}"
    if isinstance(obj, dict):  # free-form section (model overrides): any key, checked later
        if rest:
            raise ValueError(f"{where}: nested keys are not supported here")
        obj[head] = value
        return
    names = {f.name: f for f in dataclasses.fields(obj)}
    if head not in names:
        raise ValueError(f"unknown config key {where!r}; valid keys here: {sorted(names)}")
    if rest:
        _set(getattr(obj, head), rest, value, where + ".")
        return
    current = getattr(obj, head)
    if dataclasses.is_dataclass(current) or isinstance(current, dict):
        if not isinstance(value, dict):
            raise ValueError(f"{where} is a section; give its keys, e.g. {where}.<key>=...")
        for key, sub in value.items():
            _set(current, key, sub, where + ".")
        return
    setattr(obj, head, _coerce(value, current, where))


def _coerce(value: Any, current: Any, where: str) -> Any:
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true/false, got {value!r}")
        return value
    if isinstance(current, tuple):
        return tuple(value) if isinstance(value, (list, tuple)) else value
    if isinstance(current, float) and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            return float(value)  # YAML 1.1 reads "1e-4" in a file as a string
        except ValueError:
            raise ValueError(f"{where}: expected a number, got {value!r}") from None
    if current is not None and value is not None and not isinstance(value, type(current)):
        raise ValueError(f"{where}: expected {type(current).__name__}, got {value!r}")
    return value


def parse_overrides(argv: list[str]) -> dict[str, Any]:
    """["--optim.lr=1e-4", "--run.seed", "3"] -> {"optim.lr": 1e-4, "run.seed": 3} (values parsed as YAML)."""
    out: dict[str, Any] = {}
    items = list(argv)
    while items:
        item = items.pop(0)
        if not item.startswith("--"):
            raise ValueError(f"override {item!r}: write --section.key=value")
        key, eq, value = item[2:].partition("=")
        if not eq:
            if not items:
                raise ValueError(f"override --{key} has no value")
            value = items.pop(0)
        out[key] = _parse_value(value)
    return out


def _parse_value(text: str) -> Any:
    if text == "":
        return ""
    value = yaml.safe_load(text)
    if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string; a number is meant
        try:
            return float(value)
        except ValueError:
            pass
    return value


def _read_chain(path: str | os.PathLike, seen: tuple = ()) -> list[dict]:
    """A YAML file and, first, the files it `inherit`s (paths relative to it): ablations hold only the switch."""
    path = os.path.abspath(path)
    if path in seen:
        raise ValueError(f"{path}: `inherit` loops back to itself")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such config file")
    with open(path) as f:
        values = yaml.safe_load(f) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a config file must be a mapping of sections")
    parent = values.pop("inherit", None)
    if parent is None:
        return [values]
    return _read_chain(os.path.join(os.path.dirname(path), parent), seen + (path,)) + [values]


def load_train_config(path: str | os.PathLike | None = None, overrides: list[str] | dict | None = None) -> TrainConfig:
    cfg = TrainConfig()
    if path is not None:
        for values in _read_chain(path):
            for key, value in values.items():
                _set(cfg, key, value)
    items = overrides if isinstance(overrides, dict) else parse_overrides(overrides or [])
    for key, value in items.items():
        _set(cfg, key, value)
    cfg.model_args()  # validates the model section now, not after minutes of data loading
    return cfg


def save_train_config(cfg: TrainConfig, path: str | os.PathLike) -> None:
    from physavatar.io.atomic import atomic_write

    with atomic_write(path, "w") as f:
        yaml.safe_dump(_plain(cfg.to_dict()), f, sort_keys=False)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
