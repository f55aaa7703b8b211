"""Audio tokens (eq. 3) and the audio cross-attention with temporal RoPE (§3.3).

Per-video-frame audio features (B, F, C_aud) become f = 1 + (F - 1) / 4 audio tokens of the model width,
one per latent frame, grouped exactly like the Wan VAE groups frames and like the physical-state targets
(Appendix B): latent 0 <-> frame 0 (repeated 4 times), latent i >= 1 <-> frames 4i-3 .. 4i.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.models.embeddings import get_1d_rotary_pos_embed
from diffusers.models.transformers.transformer_wan import WanAttention

from physavatar.constants import VAE_TEMPORAL_STRIDE, num_latent_frames


def window_audio_features(features: torch.Tensor, k: int) -> torch.Tensor:
    """Eq. 3: row i of the output is [e_{i-k}, ..., e_i, ..., e_{i+k}], mirror-padded at the ends.

    (B, F, C) -> (B, F, (2k+1) C). Mirror padding reflects about the edge frame without repeating it
    (frame -1 -> frame 1), the convention of `torch.nn.functional.pad(mode="reflect")`.
    """
    if k == 0:
        return features
    num_frames = features.shape[1]
    if num_frames <= k:
        raise ValueError(f"audio window k={k} needs more than {k} frames of audio features, got {num_frames}")
    padded = F.pad(features.transpose(1, 2), (k, k), mode="reflect").transpose(1, 2)  # (B, F + 2k, C)
    windows = padded.unfold(1, 2 * k + 1, 1)  # (B, F, C, 2k+1)
    return windows.transpose(2, 3).flatten(2)  # (B, F, (2k+1) C), frame-major like the concatenation


def group_frames_to_latents(frame_values: torch.Tensor) -> torch.Tensor:
    """(B, F, ...) -> (B, f, 4, ...): frame 0 repeated 4 times for latent 0, then consecutive groups of 4."""
    num_frames = frame_values.shape[1]
    num_latent_frames(num_frames)  # validates F = 1 + 4k
    first = frame_values[:, :1].expand(-1, VAE_TEMPORAL_STRIDE, *frame_values.shape[2:])
    rest = frame_values[:, 1:].unflatten(1, (-1, VAE_TEMPORAL_STRIDE))
    return torch.cat([first.unsqueeze(1), rest], dim=1)


class AudioProjector(nn.Module):
    """Proj_aud: windowed per-frame features -> one model-width token per latent frame.

    hidden_norm (not in the paper): a LayerNorm without parameters before the GELU. Without it the demo models'
    projectors died in training: the hidden pre-activations drifted to about -25, below the GELU's knee (the
    shipped model kept 19 of 256 units, its portrait fine-tune 2), so the audio tokens barely changed with the
    sound (docs/model.md). With it, each token's hidden units keep zero mean and unit spread whatever the input."""

    def __init__(self, audio_dim: int, window: int, hidden_dim: int, out_dim: int, hidden_norm: bool = True):
        super().__init__()
        self.window = window
        in_dim = VAE_TEMPORAL_STRIDE * (2 * window + 1) * audio_dim
        self.norm = nn.LayerNorm(audio_dim, elementwise_affine=False, eps=1e-6)
        self.proj_in = nn.Linear(in_dim, hidden_dim)
        self.hidden_norm = nn.LayerNorm(hidden_dim, elementwise_affine=False, eps=1e-6) if hidden_norm else None
        self.act = nn.GELU(approximate="tanh")
        self.proj_out = nn.Linear(hidden_dim, out_dim)

    def pre_activations(self, audio_features: torch.Tensor) -> torch.Tensor:
        """The hidden units before the GELU (B, f, hidden_dim): where a projector dies (probe_audio_projector.py)."""
        # (B, F, C_aud) -> (B, F, (2k+1) C_aud) -> (B, f, 4 (2k+1) C_aud) -> (B, f, hidden)
        windowed = window_audio_features(self.norm(audio_features), self.window)
        hidden = self.proj_in(group_frames_to_latents(windowed).flatten(2))
        return hidden if self.hidden_norm is None else self.hidden_norm(hidden)

    def forward(self, audio_features: torch.Tensor) -> torch.Tensor:
        return self.proj_out(self.act(self.pre_activations(audio_features)))  # (B, f, C)


def temporal_rope(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """1-D RoPE tables for the given (latent-frame) positions, shaped (1, L, 1, head_dim) like Wan's."""
    cos, sin = get_1d_rotary_pos_embed(
        head_dim, positions.double(), theta, use_real=True, repeat_interleave_real=True, freqs_dtype=torch.float64
    )
    return cos.float()[None, :, None, :], sin.float()[None, :, None, :]


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive channel pairs of x (B, L, H, D), Wan's interleaved convention."""
    x1, x2 = x.float().unflatten(-1, (-1, 2)).unbind(-1)
    cos, sin = cos[..., 0::2], sin[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2).type_as(x)


class AudioRopeAttnProcessor:
    """Cross-attention from video tokens to audio tokens, each rotated by its own latent-frame index, so the
    attention logits depend on the time offset between a video frame and an audio token."""

    def __call__(
        self,
        attn: WanAttention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        rotary_emb: tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        query = attn.norm_q(attn.to_q(hidden_states)).unflatten(2, (attn.heads, -1))  # (B, L_v, H, D)
        key = attn.norm_k(attn.to_k(encoder_hidden_states)).unflatten(2, (attn.heads, -1))  # (B, L_a, H, D)
        value = attn.to_v(encoder_hidden_states).unflatten(2, (attn.heads, -1))
        if rotary_emb is not None:
            (q_cos, q_sin), (k_cos, k_sin) = rotary_emb
            query, key = apply_rope(query, q_cos, q_sin), apply_rope(key, k_cos, k_sin)
        out = F.scaled_dot_product_attention(
            query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2), attn_mask=attention_mask
        )
        out = out.transpose(1, 2).flatten(2).type_as(query)
        return attn.to_out[1](attn.to_out[0](out))


def make_audio_attention(dim: int, num_heads: int, eps: float) -> WanAttention:
    """A Wan-style cross-attention (same parameter names as attn2) whose output projection starts at zero,
    so a fresh audio branch adds exactly nothing to the base model."""
    attn = WanAttention(
        dim=dim,
        heads=num_heads,
        dim_head=dim // num_heads,
        eps=eps,
        cross_attention_dim_head=dim // num_heads,
        processor=AudioRopeAttnProcessor(),
        is_cross_attention=True,
    )
    nn.init.zeros_(attn.to_out[0].weight)
    nn.init.zeros_(attn.to_out[0].bias)
    return attn
