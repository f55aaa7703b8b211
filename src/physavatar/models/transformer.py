"""PhysAvatarTransformer3DModel: Wan2.1-VACE with audio, physical-state and MLLM-planner branches (§3.2-3.5).

Every base parameter keeps its diffusers name, so official Wan2.1-VACE weights load unchanged. New modules
live only under new names (see `NEW_MODULE_PATTERN`) and every additive branch starts at zero, so a fresh
model computes exactly what the base model computes.

Token layout: hidden states are (B, T*h*w, C) with T latent frames (leading reference-image latents
first, then the f latents of the clip), h*w patches per frame, C = heads * head_dim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from diffusers.configuration_utils import register_to_config
from diffusers.models.normalization import FP32LayerNorm
from diffusers.models.transformers.transformer_wan import WanTransformerBlock
from diffusers.models.transformers.transformer_wan_vace import WanVACETransformer3DModel
from diffusers.utils import BaseOutput, apply_lora_scale

from physavatar.constants import num_latent_frames
from physavatar.models.audio import AudioProjector, make_audio_attention, temporal_rope
from physavatar.models.mllm import MLLMProjector
from physavatar.models.phys import PhysStateHead

# Parameters that the base Wan2.1-VACE checkpoint does not have.
NEW_MODULE_PATTERN = re.compile(r"^(audio_proj|audio_mask_embed|phys_head|mllm_proj)\b|^blocks\.\d+\.(audio_attn|norm_audio)\.")
CONTEXT_MODES = ("mllm", "t5", "none")
MLLM_BLOCKS = ("vace", "all")


@dataclass
class PhysAvatarTransformerOutput(BaseOutput):
    sample: torch.Tensor  # (B, C_out, T, H, W) velocity prediction
    phys_tokens: torch.Tensor | None = None  # (B, f, 4, phys_token_dim) when asked for


class PhysAvatarTransformerBlock(WanTransformerBlock):
    """A Wan main block with an audio cross-attention after the text cross-attention."""

    def __init__(self, dim, ffn_dim, num_heads, qk_norm, cross_attn_norm, eps, added_kv_proj_dim):
        super().__init__(dim, ffn_dim, num_heads, qk_norm, cross_attn_norm, eps, added_kv_proj_dim)
        self.norm_audio = FP32LayerNorm(dim, eps, elementwise_affine=True)
        self.audio_attn = make_audio_attention(dim, num_heads, eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        temb: torch.Tensor,
        rotary_emb: tuple[torch.Tensor, torch.Tensor],
        audio_tokens: torch.Tensor | None = None,
        audio_rotary_emb: tuple | None = None,
        audio_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if temb.ndim != 3:
            raise ValueError("PhysAvatar blocks take one timestep per sample (Wan2.1), not per token")
        shift_msa, scale_msa, gate_msa, c_shift_msa, c_scale_msa, c_gate_msa = (
            self.scale_shift_table + temb.float()
        ).chunk(6, dim=1)

        # 1. Self-attention (as in WanTransformerBlock)
        norm_hidden_states = (self.norm1(hidden_states.float()) * (1 + scale_msa) + shift_msa).type_as(hidden_states)
        attn_output = self.attn1(norm_hidden_states, None, None, rotary_emb)
        hidden_states = (hidden_states.float() + attn_output * gate_msa).type_as(hidden_states)

        # 2. Text / planner cross-attention
        norm_hidden_states = self.norm2(hidden_states.float()).type_as(hidden_states)
        hidden_states = hidden_states + self.attn2(norm_hidden_states, encoder_hidden_states, None, None)

        # 3. Audio cross-attention (new; its output projection starts at zero)
        if audio_tokens is not None:
            norm_hidden_states = self.norm_audio(hidden_states.float()).type_as(hidden_states)
            hidden_states = hidden_states + self.audio_attn(
                norm_hidden_states, audio_tokens, audio_attention_mask, audio_rotary_emb)

        # 4. Feed-forward
        norm_hidden_states = (self.norm3(hidden_states.float()) * (1 + c_scale_msa) + c_shift_msa).type_as(
            hidden_states
        )
        ff_output = self.ffn(norm_hidden_states)
        return (hidden_states.float() + ff_output.float() * c_gate_msa).type_as(hidden_states)


class PhysAvatarTransformer3DModel(WanVACETransformer3DModel):
    _no_split_modules = ["PhysAvatarTransformerBlock", "WanVACETransformerBlock"]
    _repeated_blocks = ["PhysAvatarTransformerBlock", "WanVACETransformerBlock"]
    _skip_layerwise_casting_patterns = WanVACETransformer3DModel._skip_layerwise_casting_patterns + ["audio_mask_embed"]

    @register_to_config
    def __init__(
        self,
        patch_size: tuple[int, ...] = (1, 2, 2),
        num_attention_heads: int = 12,
        attention_head_dim: int = 128,
        in_channels: int = 16,
        out_channels: int = 16,
        text_dim: int = 4096,
        freq_dim: int = 256,
        ffn_dim: int = 8960,
        num_layers: int = 30,
        cross_attn_norm: bool = True,
        qk_norm: str | None = "rms_norm_across_heads",
        eps: float = 1e-6,
        image_dim: int | None = None,
        added_kv_proj_dim: int | None = None,
        rope_max_seq_len: int = 1024,
        pos_embed_seq_len: int | None = None,
        vace_layers: list[int] = list(range(0, 30, 2)),
        vace_in_channels: int = 96,
        audio_dim: int = 1280,
        audio_window: int = 2,
        audio_hidden_dim: int = 1024,
        audio_rope_theta: float = 10000.0,
        audio_attention_window: int | None = None,
        audio_hidden_norm: bool = False,  # True for every model trained since (ModelConfig); False: as saved before
        phys_layer: int | None = 15,
        phys_hidden_dim: int = 1024,
        phys_token_dim: int = 1024,
        mllm_dim: int = 2048,
        context_mode: str = "mllm",
        mllm_blocks: str = "vace",
        reference_every_frame: bool = False,  # no weights: read by whoever builds the VACE context (models/vae.py)
    ) -> None:
        super().__init__(
            patch_size=patch_size,
            num_attention_heads=num_attention_heads,
            attention_head_dim=attention_head_dim,
            in_channels=in_channels,
            out_channels=out_channels,
            text_dim=text_dim,
            freq_dim=freq_dim,
            ffn_dim=ffn_dim,
            num_layers=num_layers,
            cross_attn_norm=cross_attn_norm,
            qk_norm=qk_norm,
            eps=eps,
            image_dim=image_dim,
            added_kv_proj_dim=added_kv_proj_dim,
            rope_max_seq_len=rope_max_seq_len,
            pos_embed_seq_len=pos_embed_seq_len,
            vace_layers=vace_layers,
            vace_in_channels=vace_in_channels,
        )
        if context_mode not in CONTEXT_MODES:
            raise ValueError(f"context_mode={context_mode!r}; choose one of {CONTEXT_MODES}")
        if mllm_blocks not in MLLM_BLOCKS:
            raise ValueError(f"mllm_blocks={mllm_blocks!r}; choose one of {MLLM_BLOCKS}")
        if phys_layer is not None and not 1 <= phys_layer <= num_layers:
            raise ValueError(f"phys_layer={phys_layer} must be in 1..{num_layers} (1-based block index) or None")
        dim = num_attention_heads * attention_head_dim

        # Main blocks gain the audio cross-attention; their base parameter names are unchanged.
        self.blocks = nn.ModuleList(
            [
                PhysAvatarTransformerBlock(
                    dim, ffn_dim, num_attention_heads, qk_norm, cross_attn_norm, eps, added_kv_proj_dim
                )
                for _ in range(num_layers)
            ]
        )
        self.audio_proj = AudioProjector(audio_dim, audio_window, audio_hidden_dim, dim, audio_hidden_norm)
        # e^m of §3.1: replaces the audio token of every masked latent frame.
        self.audio_mask_embed = nn.Parameter(torch.randn(dim) * dim**-0.5)
        self.phys_head = PhysStateHead(dim, phys_hidden_dim, phys_token_dim, eps) if phys_layer else None
        self.mllm_proj = MLLMProjector(mllm_dim, dim, eps) if context_mode == "mllm" else None

    # ------------------------------------------------------------------ helpers
    def _run(self, block: nn.Module, *args):
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            return self._gradient_checkpointing_func(block, *args)
        return block(*args)

    def _embed_time(self, timestep: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        # WanTimeTextImageEmbedding's time path; the text path is chosen by `_embed_context`.
        embedder = self.condition_embedder
        t = embedder.timesteps_proj(timestep)
        time_dtype = next(iter(embedder.time_embedder.parameters())).dtype
        if t.dtype != time_dtype and time_dtype != torch.int8:
            t = t.to(time_dtype)
        temb = embedder.time_embedder(t).to(dtype)
        timestep_proj = embedder.time_proj(embedder.act_fn(temb)).unflatten(1, (6, -1))
        return temb, timestep_proj

    def _embed_context(
        self,
        batch_size: int,
        dtype: torch.dtype,
        device: torch.device,
        encoder_hidden_states: torch.Tensor | None,
        encoder_hidden_states_image: torch.Tensor | None,
        mllm_hidden_states: torch.Tensor | None,
        mllm_token_embeds: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-attention contexts (main blocks, VACE blocks), each (B, L, C).

        A missing context (dropped for classifier-free guidance, or the "w/o MLLM" ablation) is one all-zero
        token: every cross-attention then adds a constant that carries no information.
        """
        null = torch.zeros(batch_size, 1, self.config.num_attention_heads * self.config.attention_head_dim,
                           dtype=dtype, device=device)
        mode = self.config.context_mode
        if mode == "t5" and encoder_hidden_states is not None:
            main = vace = self.condition_embedder.text_embedder(encoder_hidden_states)
        elif mode == "mllm" and mllm_hidden_states is not None:
            vace = self.mllm_proj(mllm_hidden_states, mllm_token_embeds)
            main = vace if self.config.mllm_blocks == "all" else null
        else:
            main = vace = null
        if encoder_hidden_states_image is not None:
            image = self.condition_embedder.image_embedder(encoder_hidden_states_image)
            main, vace = torch.cat([image, main], dim=1), torch.cat([image, vace], dim=1)
        return main, vace

    def audio_tokens(
        self, audio_features: torch.Tensor | None, audio_mask: torch.Tensor | None, batch_size: int, num_latents: int
    ) -> torch.Tensor:
        """(B, F, C_aud) features + (B, f) mask (1 keep, 0 masked) -> (B, f, C) tokens; None -> all masked."""
        mask_embed = self.audio_mask_embed.view(1, 1, -1)
        if audio_features is None:
            return mask_embed.expand(batch_size, num_latents, -1)
        if audio_features.ndim != 3 or audio_features.shape[-1] != self.config.audio_dim:
            raise ValueError(
                f"audio_features must be (batch, frames, {self.config.audio_dim}), got {tuple(audio_features.shape)}"
            )
        got = num_latent_frames(audio_features.shape[1])
        if got != num_latents:
            raise ValueError(
                f"{audio_features.shape[1]} audio frames make {got} latent frames but the video has {num_latents}; "
                "give 1 + 4(f-1) frames of audio features per clip"
            )
        tokens = self.audio_proj(audio_features.to(mask_embed.dtype))
        if audio_mask is None:
            return tokens
        if audio_mask.shape != tokens.shape[:2]:
            raise ValueError(f"audio_mask must be (batch, {num_latents}), got {tuple(audio_mask.shape)}")
        return torch.where(audio_mask.bool().unsqueeze(-1), tokens, mask_embed.to(tokens.dtype))

    def _audio_rotary(self, num_frames: int, tokens_per_frame: int, num_latents: int, device: torch.device):
        head_dim = self.config.attention_head_dim
        theta = self.config.audio_rope_theta
        video_pos = torch.arange(num_frames, device=device).repeat_interleave(tokens_per_frame)
        audio_pos = torch.arange(num_frames - num_latents, num_frames, device=device)
        return temporal_rope(video_pos, head_dim, theta), temporal_rope(audio_pos, head_dim, theta)

    def _audio_attention_mask(self, num_frames: int, tokens_per_frame: int, num_latents: int, device: torch.device):
        """(L_v, L_a) bool, True where a video token may attend an audio token (`audio_attention_window`), or None.
        Reference latents, which have no audio of their own, count as the first audio latent."""
        window = self.config.get("audio_attention_window")
        if window is None:
            return None
        if window < 0:
            raise ValueError(f"audio_attention_window={window}: use None (global) or a window of 0 or more latents")
        first = num_frames - num_latents
        video_pos = torch.arange(num_frames, device=device).clamp(min=first).repeat_interleave(tokens_per_frame)
        audio_pos = torch.arange(first, num_frames, device=device)
        return (video_pos[:, None] - audio_pos[None, :]).abs() <= window

    # ------------------------------------------------------------------ forward
    @apply_lora_scale("attention_kwargs")
    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_hidden_states_image: torch.Tensor | None = None,
        control_hidden_states: torch.Tensor | None = None,
        control_hidden_states_scale: torch.Tensor | None = None,
        return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None,
        *,
        audio_features: torch.Tensor | None = None,
        audio_mask: torch.Tensor | None = None,
        mllm_hidden_states: torch.Tensor | None = None,
        mllm_token_embeds: torch.Tensor | None = None,
        num_reference_latents: int = 0,
        return_phys: bool = False,
    ) -> PhysAvatarTransformerOutput | tuple:
        """Velocity prediction for noisy latents `hidden_states` (B, C, T, H, W).

        `num_reference_latents` leading latent frames are VACE reference frames; the audio tokens and the
        physical-state prediction cover the remaining f = T - num_reference_latents frames.
        `audio_features=None` is the all-masked ("no audio") input used for classifier-free guidance.
        """
        batch_size, _, num_frames, height, width = hidden_states.shape
        p_t, p_h, p_w = self.config.patch_size
        post_t, post_h, post_w = num_frames // p_t, height // p_h, width // p_w
        num_latents = post_t - num_reference_latents
        if num_latents < 1:
            raise ValueError(f"num_reference_latents={num_reference_latents} leaves no frame to generate")

        # 1. VACE control input (zeros = nothing known) and per-layer scales
        if control_hidden_states is None:
            control_hidden_states = hidden_states.new_zeros(
                batch_size, self.config.vace_in_channels, num_frames, height, width
            )
        if control_hidden_states_scale is None:
            control_hidden_states_scale = control_hidden_states.new_ones(len(self.config.vace_layers))
        scales = torch.unbind(control_hidden_states_scale)
        if len(scales) != len(self.config.vace_layers):
            raise ValueError(f"control_hidden_states_scale needs {len(self.config.vace_layers)} values, got {len(scales)}")

        # 2. Rotary embedding and patch embedding (main and VACE)
        rotary_emb = self.rope(hidden_states)
        hidden_states = self.patch_embedding(hidden_states).flatten(2).transpose(1, 2)
        control = self.vace_patch_embedding(control_hidden_states).flatten(2).transpose(1, 2)
        control = torch.cat(
            [control, control.new_zeros(batch_size, hidden_states.size(1) - control.size(1), control.size(2))], dim=1
        )

        # 3. Time embedding and cross-attention contexts
        temb, timestep_proj = self._embed_time(timestep, hidden_states.dtype)
        main_context, vace_context = self._embed_context(
            batch_size, hidden_states.dtype, hidden_states.device, encoder_hidden_states,
            encoder_hidden_states_image, mllm_hidden_states, mllm_token_embeds,
        )

        # 4. Audio tokens (masked latents -> mask embedding) and their temporal RoPE
        audio = self.audio_tokens(audio_features, audio_mask, batch_size, num_latents).to(hidden_states.dtype)
        audio_rotary = self._audio_rotary(post_t, post_h * post_w, num_latents, hidden_states.device)
        audio_window_mask = self._audio_attention_mask(post_t, post_h * post_w, num_latents, hidden_states.device)

        # 5. VACE branch: one hint per VACE layer
        hints = []
        for block, scale in zip(self.vace_blocks, scales):
            hint, control = self._run(block, hidden_states, vace_context, control, timestep_proj, rotary_emb)
            hints.append(hint * scale)

        # 6. Main branch; Proj_Phys reads the output of block J_Phys (1-based, after its VACE hint)
        phys_tokens = None
        hint_iter = iter(hints)
        for index, block in enumerate(self.blocks):
            hidden_states = self._run(block, hidden_states, main_context, timestep_proj, rotary_emb, audio, audio_rotary,
                                      audio_window_mask)
            if index in self.config.vace_layers:
                hidden_states = hidden_states + next(hint_iter).to(hidden_states.device)
            if return_phys and self.phys_head is not None and index + 1 == self.config.phys_layer:
                phys_tokens = self.phys_head(hidden_states, post_t, num_latents)

        # 7. Output norm, projection and unpatchify (as in the base model)
        shift, scale = (self.scale_shift_table.to(temb.device) + temb.unsqueeze(1)).chunk(2, dim=1)
        hidden_states = (self.norm_out(hidden_states.float()) * (1 + scale) + shift).type_as(hidden_states)
        hidden_states = self.proj_out(hidden_states)
        hidden_states = hidden_states.reshape(batch_size, post_t, post_h, post_w, p_t, p_h, p_w, -1)
        output = hidden_states.permute(0, 7, 1, 4, 2, 5, 3, 6).flatten(6, 7).flatten(4, 5).flatten(2, 3)

        if not return_dict:
            return (output, phys_tokens) if return_phys else (output,)
        return PhysAvatarTransformerOutput(sample=output, phys_tokens=phys_tokens)


def new_parameter_names(model: nn.Module) -> list[str]:
    """Names of the parameters PhysAvatar adds to the base model (trained in full, saved in the adapter)."""
    return [name for name, _ in model.named_parameters() if NEW_MODULE_PATTERN.search(_strip_peft(name))]


def _strip_peft(name: str) -> str:
    # peft wraps targeted layers: "blocks.0.attn1.to_q.base_layer.weight" -> "blocks.0.attn1.to_q.weight"
    return name.replace(".base_layer", "")
