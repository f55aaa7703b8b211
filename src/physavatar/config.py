"""Typed configuration. Every stage reads a dataclass from here; YAML files hold only overrides.

`ModelArgs` is what a checkpoint needs to rebuild the network; it is saved beside every checkpoint.
Presets: `tiny()` for tests, `demo()` for the shipped CPU model, `vace_1_3b()` for the paper's model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

# The arguments of diffusers' WanVACETransformer3DModel that ModelArgs holds: the base network.
BASE_MODEL_KEYS = (
    "patch_size", "num_attention_heads", "attention_head_dim", "in_channels", "out_channels", "text_dim",
    "freq_dim", "ffn_dim", "num_layers", "cross_attn_norm", "qk_norm", "eps", "rope_max_seq_len", "vace_layers",
    "vace_in_channels",
)
ContextMode = Literal["mllm", "t5", "none"]
MLLMBlocks = Literal["vace", "all"]


@dataclass
class ModelArgs:
    # --- the base Wan2.1-VACE transformer (diffusers' WanVACETransformer3DModel arguments) ---
    patch_size: tuple[int, int, int] = (1, 2, 2)
    num_attention_heads: int = 12
    attention_head_dim: int = 128
    in_channels: int = 16
    out_channels: int = 16
    text_dim: int = 4096
    freq_dim: int = 256
    ffn_dim: int = 8960
    num_layers: int = 30
    cross_attn_norm: bool = True
    qk_norm: str | None = "rms_norm_across_heads"
    eps: float = 1e-6
    rope_max_seq_len: int = 1024
    vace_layers: tuple[int, ...] = tuple(range(0, 30, 2))
    vace_in_channels: int = 96
    # --- PhysAvatar additions ---
    audio_dim: int = 1280  # C_aud: width of the per-frame audio features (Whisper-large: 1280, tiny: 384)
    audio_window: int = 2  # k of eq. 3: each frame sees frames i-k..i+k
    audio_hidden_dim: int = 1024  # hidden width of Proj_aud
    audio_rope_theta: float = 10000.0
    audio_attention_window: int | None = None  # None: every video latent attends to every audio token, aligned
    # only by the temporal RoPE (the paper); w: only to the audio tokens of latents within +-w of its own
    audio_hidden_norm: bool = True  # Proj_aud normalises its hidden units before the GELU (not in the paper: without
    # it the demo models' projectors died in training, their audio tokens barely changing with the sound)
    phys_layer: int | None = 15  # J_Phys: Proj_Phys reads the output of this main block (1-based); None = off
    phys_hidden_dim: int = 1024
    phys_token_dim: int = 1024  # one frame's physical state: 4 tokens x 256 (body, face, left, right hand)
    mllm_dim: int = 2048  # C_MLLM: 2048 for Qwen2.5-Omni-3B, 3584 for 7B
    context_mode: ContextMode = "mllm"  # "mllm": Proj_MLLM(e_con + e_tok); "t5": Wan's T5 path; "none"
    mllm_blocks: MLLMBlocks = "vace"  # which blocks cross-attend the MLLM context (see docs/model.md)
    reference_every_frame: bool = False  # the VACE context's reactive part holds the reference latent at every
    # latent to generate, not E(zeros) (not in the paper; no weights: a small model then copies the person in place
    # instead of carrying them over from the leading reference latent through attention; docs/demo.md)

    @property
    def dim(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    def to_model_kwargs(self) -> dict[str, Any]:
        kwargs = dataclasses.asdict(self)
        kwargs["patch_size"] = tuple(self.patch_size)
        kwargs["vace_layers"] = list(self.vace_layers)
        return kwargs

    def build_base(self):
        """The base diffusers `WanVACETransformer3DModel` of this config (fresh weights), e.g. for comparisons."""
        from diffusers import WanVACETransformer3DModel

        kwargs = self.to_model_kwargs()
        return WanVACETransformer3DModel(**{k: kwargs[k] for k in BASE_MODEL_KEYS})

    def build(self):
        """Instantiate `PhysAvatarTransformer3DModel` with freshly initialised weights."""
        from physavatar.models.transformer import PhysAvatarTransformer3DModel

        return PhysAvatarTransformer3DModel(**self.to_model_kwargs())


@dataclass
class LoraArgs:
    rank: int = 128
    alpha: int = 64
    dropout: float = 0.0
    # Which base blocks get LoRA. Anchored regexes: a bare "to_q" would also match new modules.
    main_blocks: bool = True
    vace_blocks: bool = True


def tiny() -> ModelArgs:
    """Test-sized model: 2 heads x 8, 4 main + 2 VACE blocks; builds and runs in milliseconds."""
    return ModelArgs(
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=4,
        out_channels=4,
        text_dim=32,
        freq_dim=32,
        ffn_dim=48,
        num_layers=4,
        rope_max_seq_len=64,
        vace_layers=(0, 2),
        vace_in_channels=4 + 4 + 64,
        audio_dim=24,
        audio_window=2,
        audio_hidden_dim=32,
        phys_layer=2,
        phys_hidden_dim=32,
        mllm_dim=20,
    )


def demo() -> ModelArgs:
    """The CPU demo model trained on the synthetic world (offline-default encoders: Whisper tiny.en, MiniLM)."""
    return ModelArgs(
        num_attention_heads=4,
        attention_head_dim=32,
        in_channels=16,
        out_channels=16,
        text_dim=384,
        freq_dim=64,
        ffn_dim=512,
        num_layers=8,
        rope_max_seq_len=256,
        vace_layers=(0, 2, 4, 6),
        vace_in_channels=96,
        audio_dim=384,
        audio_window=2,
        audio_hidden_dim=256,
        phys_layer=4,
        phys_hidden_dim=256,
        mllm_dim=384,
    )


def vace_1_3b() -> ModelArgs:
    """The paper's model: Wan2.1-VACE-1.3B (30 main + 15 VACE blocks, dim 1536) with Qwen2.5-Omni-3B."""
    return ModelArgs()


PRESETS = {"tiny": tiny, "demo": demo, "vace-1.3b": vace_1_3b}


def preset(name: str) -> ModelArgs:
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]()


def model_args_from_dict(values: dict[str, Any]) -> ModelArgs:
    """Rebuild `ModelArgs` from a saved config, naming any key this version does not know."""
    known = {f.name for f in dataclasses.fields(ModelArgs)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown model config keys {unknown}; known keys: {sorted(known)}")
    values = dict(values)
    for key in ("patch_size", "vace_layers"):
        if key in values:
            values[key] = tuple(values[key])
    return ModelArgs(**values)


__all__ = ["BASE_MODEL_KEYS", "ModelArgs", "LoraArgs", "tiny", "demo", "vace_1_3b", "preset", "model_args_from_dict"]
