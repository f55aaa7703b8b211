"""Checkpoints: the base Wan2.1-VACE weights in, PhysAvatar adapters and merged models out.

Base weights load from
  * a diffusers folder (config.json + diffusion_pytorch_model[-0000x-of-0000y].safetensors), or a pipeline
    folder with a `transformer/` subfolder;
  * the original Wan2.1-VACE release (one .safetensors, keys such as `blocks.0.self_attn.q.weight`,
    `vace_blocks.0.before_proj.weight`), converted by diffusers' own `convert_wan_transformer_to_diffusers`;
  * a .pth/.pt/.bin file, only through `torch.load(weights_only=True)` (never unrestricted pickle).
Missing, unexpected and mis-shaped keys are reported by name before anything is copied.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import warnings
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from physavatar.config import BASE_MODEL_KEYS, LoraArgs, ModelArgs, model_args_from_dict
from physavatar.io.atomic import atomic_dir, atomic_path, atomic_write
from physavatar.models.lora import add_lora, is_full_trainable
from physavatar.models.transformer import NEW_MODULE_PATTERN, PhysAvatarTransformer3DModel

ADAPTER_WEIGHTS = "physavatar_adapter.safetensors"
ADAPTER_CONFIG = "physavatar_config.json"
ADAPTER_FORMAT = "physavatar-adapter/1"
_PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")


class CheckpointError(ValueError):
    """A checkpoint that does not match the model; the message lists the offending keys."""


# ----------------------------------------------------------------------------- reading
def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a weights file or a diffusers folder, on the CPU, without conversion."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint file or folder")
    if path.is_dir():
        if (path / "transformer").is_dir() and not (path / "config.json").exists():
            path = path / "transformer"
        index = path / "diffusion_pytorch_model.safetensors.index.json"
        if index.exists():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            state: dict[str, torch.Tensor] = {}
            for shard in shards:
                state.update(load_file(path / shard))
            return state
        files = sorted(path.glob("*.safetensors"))
        if len(files) != 1:
            raise CheckpointError(
                f"{path}: expected one diffusion_pytorch_model.safetensors (or a sharded index), found "
                f"{[f.name for f in files] or 'none'}"
            )
        path = files[0]
    if path.suffix == ".safetensors":
        try:
            return load_file(path)
        except Exception as err:  # safetensors raises its own types for truncated/corrupt files
            raise CheckpointError(f"{path}: not a readable safetensors file ({err}); re-download or re-save it") from None
    if path.suffix in _PICKLE_SUFFIXES:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise CheckpointError(
                f"{path}: cannot be loaded with torch.load(weights_only=True) ({type(err).__name__}); only plain "
                "tensor state dicts are accepted from pickle files: convert it to .safetensors"
            ) from None
        if isinstance(state, dict) and set(state) <= {"state_dict", "module", "model"} and len(state) == 1:
            state = next(iter(state.values()))
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(f"{path}: expected a dict of tensors, got {type(state).__name__}")
        return state
    raise CheckpointError(f"{path}: unknown weights format {path.suffix!r}; give .safetensors, .pth/.pt/.bin or a folder")


def is_original_wan_format(state_dict: dict[str, torch.Tensor]) -> bool:
    return any(".self_attn." in k or k.startswith(("head.", "text_embedding.")) for k in state_dict)


def load_base_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Base weights with diffusers names, whichever release format `path` holds."""
    state = read_state_dict(path)
    if is_original_wan_format(state) or any(k.startswith("model.diffusion_model.") for k in state):
        from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers

        state = convert_wan_transformer_to_diffusers(dict(state))
    return state


# diffusers name fragment -> original Wan release name fragment (the inverse of diffusers' converter).
_TO_ORIGINAL = (
    ("condition_embedder.time_embedder.linear_1", "time_embedding.0"),
    ("condition_embedder.time_embedder.linear_2", "time_embedding.2"),
    ("condition_embedder.text_embedder.linear_1", "text_embedding.0"),
    ("condition_embedder.text_embedder.linear_2", "text_embedding.2"),
    ("condition_embedder.time_proj", "time_projection.1"),
    (".attn2.", ".cross_attn."),
    (".attn1.", ".self_attn."),
    (".to_out.0.", ".o."),
    (".to_q.", ".q."),
    (".to_k.", ".k."),
    (".to_v.", ".v."),
    ("ffn.net.0.proj", "ffn.0"),
    ("ffn.net.2", "ffn.2"),
    (".norm2.", ".norm__swap."),  # diffusers' norm2 is the original norm3 (cross-attention norm) ...
    (".norm3.", ".norm2."),  # ... and its norm3 the original norm2
    (".norm__swap.", ".norm3."),
    (".proj_in.", ".before_proj."),
    (".proj_out.", ".after_proj."),
)


def to_original_wan_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a diffusers-format base state dict to the original Wan2.1-VACE release names, e.g. for tools
    built on the original code. `load_base_state_dict` converts such a file back."""
    out = {}
    for key, tensor in state_dict.items():
        if NEW_MODULE_PATTERN.search(key):
            raise CheckpointError(f"{key}: PhysAvatar modules have no original Wan name; export the base only")
        if key == "scale_shift_table":
            new = "head.modulation"
        elif key.startswith("proj_out."):
            new = "head.head." + key.removeprefix("proj_out.")
        else:
            new = key.replace(".scale_shift_table", ".modulation")
            for old, orig in _TO_ORIGINAL:
                new = new.replace(old, orig)
        out[new] = tensor
    return out


def check_base_config(path: str | os.PathLike, args: ModelArgs) -> None:
    """A diffusers folder's config.json must describe the same base network as `args`."""
    path = Path(path)
    config_file = path / "config.json" if path.is_dir() else None
    if config_file is None or not config_file.exists():
        if path.is_dir() and (path / "transformer" / "config.json").exists():
            config_file = path / "transformer" / "config.json"
        else:
            return
    saved = json.loads(config_file.read_text())
    ours = args.to_model_kwargs()
    diffs = [
        f"{key}: checkpoint {saved[key]!r} vs config {ours[key]!r}"
        for key in BASE_MODEL_KEYS
        if key in saved and _norm(saved[key]) != _norm(ours[key])
    ]
    if diffs:
        raise CheckpointError(f"{config_file}: base checkpoint does not match the model config: " + "; ".join(diffs))


def _norm(value):
    return list(value) if isinstance(value, (list, tuple)) else value


# ----------------------------------------------------------------------------- loading into a model
def _describe(keys, limit: int = 12) -> str:
    keys = sorted(keys)
    more = f" ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_base_weights(model: PhysAvatarTransformer3DModel, state_dict: dict[str, torch.Tensor], source: str = "") -> None:
    """Copy base weights into `model`; the only keys allowed to be missing are PhysAvatar's new modules."""
    own = model.state_dict()
    unexpected = set(state_dict) - set(own)
    missing = {k for k in set(own) - set(state_dict) if not NEW_MODULE_PATTERN.search(k)}
    mismatched = [
        f"{k} {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(state_dict) & set(own)
        if state_dict[k].shape != own[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_describe(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_describe(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches: {_describe(mismatched)}")
    if problems:
        raise CheckpointError(
            f"{source or 'state dict'} is not a Wan VACE checkpoint for this model config: " + "; ".join(problems)
        )
    model.load_state_dict(state_dict, strict=False)


def from_base(path: str | os.PathLike, args: ModelArgs, dtype: torch.dtype = torch.float32) -> PhysAvatarTransformer3DModel:
    """A PhysAvatar model whose base weights come from `path` and whose new modules are freshly initialised."""
    check_base_config(path, args)
    state = load_base_state_dict(path)
    model = args.build()
    load_base_weights(model, state, os.fspath(path))
    return cast_model(model, dtype)


def compute_dtype(requested: torch.dtype, device: torch.device | str) -> torch.dtype:
    """The dtype to run in: half precision only on accelerators (a bf16 matmul is ~200x slower on CPU)."""
    if torch.device(device).type == "cpu" and requested in (torch.bfloat16, torch.float16):
        warnings.warn(f"{requested} compute is very slow on the CPU; running in float32 instead", stacklevel=2)
        return torch.float32
    return requested


def cast_model(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Cast weights to `dtype`, keeping the modules Wan needs in float32 (`_keep_in_fp32_modules`)."""
    keep = set(getattr(model, "_keep_in_fp32_modules", None) or [])
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        target = torch.float32 if keep & set(name.split(".")) else dtype
        if tensor.is_floating_point() and tensor.dtype != target:
            tensor.data = tensor.data.to(target)
    return model


# ----------------------------------------------------------------------------- adapters
def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """What PhysAvatar training changes: LoRA weights and the fully trained modules."""
    return {
        name: param.detach().cpu().contiguous()
        for name, param in model.named_parameters()
        if "lora_" in name or is_full_trainable(model.config, name)
    }


def model_args_of(model: PhysAvatarTransformer3DModel) -> ModelArgs:
    names = {f.name for f in dataclasses.fields(ModelArgs)}
    return model_args_from_dict({k: v for k, v in model.config.items() if k in names})


def save_adapter(model: PhysAvatarTransformer3DModel, out_dir: str | os.PathLike, lora: LoraArgs | None = None) -> Path:
    """Write `physavatar_adapter.safetensors` + `physavatar_config.json` into out_dir, each atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / ADAPTER_WEIGHTS) as tmp:
        save_file(adapter_state_dict(model), tmp, metadata={"format": ADAPTER_FORMAT})
    config = {
        "format": ADAPTER_FORMAT,
        "model": dataclasses.asdict(model_args_of(model)),
        "lora": dataclasses.asdict(lora) if lora is not None else None,
    }
    with atomic_write(out_dir / ADAPTER_CONFIG, "w") as f:
        json.dump(config, f, indent=2)
    return out_dir


def read_adapter_config(adapter_dir: str | os.PathLike) -> tuple[ModelArgs, LoraArgs | None]:
    path = Path(adapter_dir) / ADAPTER_CONFIG
    if not path.exists():
        raise FileNotFoundError(f"{path}: no PhysAvatar adapter config here; give the folder that save_adapter wrote")
    config = json.loads(path.read_text())
    if config.get("format") != ADAPTER_FORMAT:
        raise CheckpointError(f"{path}: format {config.get('format')!r} is not {ADAPTER_FORMAT!r}")
    lora = LoraArgs(**config["lora"]) if config.get("lora") else None
    return model_args_from_dict(config["model"]), lora


def load_adapter_weights(model: nn.Module, adapter_dir: str | os.PathLike) -> None:
    """Load adapter weights into a model that already has the same LoRA layers; keys must match exactly."""
    path = Path(adapter_dir) / ADAPTER_WEIGHTS
    if not path.exists():
        raise FileNotFoundError(f"{path}: adapter weights not found")
    state = load_file(path)
    expected = adapter_state_dict(model)
    missing, unexpected = set(expected) - set(state), set(state) - set(expected)
    mismatched = [k for k in set(state) & set(expected) if state[k].shape != expected[k].shape]
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"{path} does not fit this model: missing {_describe(missing) or 'none'}; unexpected "
            f"{_describe(unexpected) or 'none'}; shape mismatches {_describe(mismatched) or 'none'}"
        )
    model.load_state_dict(state, strict=False)


def load_physavatar(
    adapter_dir: str | os.PathLike, base: str | os.PathLike | None = None, dtype: torch.dtype = torch.float32
) -> PhysAvatarTransformer3DModel:
    """Rebuild a trained model: base weights (from `base`, or fresh when None) + the saved adapter."""
    args, lora = read_adapter_config(adapter_dir)
    model = from_base(base, args) if base is not None else args.build()
    if lora is not None:
        add_lora(model, lora)
    load_adapter_weights(model, adapter_dir)
    return cast_model(model, dtype)


# ----------------------------------------------------------------------------- merged export
def merged_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Full weights with LoRA folded in and peft's wrapper names removed (the model itself is untouched)."""
    from peft.tuners.lora import LoraLayer

    merged = copy.deepcopy(model)
    for module in merged.modules():
        if isinstance(module, LoraLayer):
            module.merge()
    return {
        name.replace(".base_layer", ""): tensor.detach().cpu().contiguous()
        for name, tensor in merged.state_dict().items()
        if "lora_" not in name
    }


def export_merged(model: PhysAvatarTransformer3DModel, out_dir: str | os.PathLike, *, overwrite: bool = False,
                  dtype: torch.dtype | None = None) -> Path:
    """A plain diffusers folder of the merged model, loadable with `PhysAvatarTransformer3DModel.from_pretrained`.

    dtype: store the weights in this dtype (e.g. float16 halves a shipped model; `from_pretrained(...,
    torch_dtype=torch.float32)` upcasts on load); None keeps the model's.
    """
    state = merged_state_dict(model)
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    with torch.device("meta"):
        plain = PhysAvatarTransformer3DModel.from_config(model.config)
    plain.load_state_dict(state, strict=True, assign=True)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        plain.save_pretrained(tmp, safe_serialization=True)
    return Path(out_dir)
