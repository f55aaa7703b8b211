"""Proj_Phys (§3.3, Appendix B): physical-state tokens predicted from an intermediate DiT block."""

from __future__ import annotations

import torch
import torch.nn as nn

from physavatar.constants import VAE_TEMPORAL_STRIDE


class PhysStateHead(nn.Module):
    """Hidden states of main block J_Phys -> (B, f, 4, phys_token_dim): for each latent frame, the physical
    state of each of the 4 video frames it encodes (latent 0: frame 0 four times).

    Spatial tokens of a latent frame are averaged first: the physical state is one vector per frame, and a
    mean keeps the head independent of the resolution.
    """

    def __init__(self, dim: int, hidden_dim: int, token_dim: int, eps: float = 1e-6):
        super().__init__()
        self.token_dim = token_dim
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=eps)
        self.proj_in = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU(approximate="tanh")
        self.proj_out = nn.Linear(hidden_dim, VAE_TEMPORAL_STRIDE * token_dim)

    def forward(self, hidden_states: torch.Tensor, num_frames: int, num_targets: int) -> torch.Tensor:
        # (B, T*h*w, C) -> (B, T, h*w, C) -> last f latent frames (the leading ones may be reference frames)
        per_frame = hidden_states.unflatten(1, (num_frames, -1))[:, num_frames - num_targets :]
        pooled = self.norm(per_frame.float().mean(dim=2)).type_as(hidden_states)  # (B, f, C)
        tokens = self.proj_out(self.act(self.proj_in(pooled)))  # (B, f, 4 * token_dim)
        return tokens.unflatten(-1, (VAE_TEMPORAL_STRIDE, self.token_dim))
