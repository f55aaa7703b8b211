"""Proj_MLLM (§3.4, eq. 5): planner embeddings -> cross-attention context of the model width."""

from __future__ import annotations

import torch
import torch.nn as nn


class MLLMProjector(nn.Module):
    """e_MLLM = Proj_MLLM(e_con + e_tok): (B, L, C_MLLM) -> (B, L, C)."""

    def __init__(self, mllm_dim: int, dim: int, eps: float = 1e-6):
        super().__init__()
        # The Thinker's hidden states and its token embeddings have very different scales; normalising the
        # sum keeps the projector's input well conditioned whichever dominates.
        self.norm = nn.LayerNorm(mllm_dim, eps=eps)
        self.proj_in = nn.Linear(mllm_dim, dim)
        self.act = nn.GELU(approximate="tanh")
        self.proj_out = nn.Linear(dim, dim)

    def forward(self, mllm_hidden_states: torch.Tensor, mllm_token_embeds: torch.Tensor | None) -> torch.Tensor:
        combined = mllm_hidden_states if mllm_token_embeds is None else mllm_hidden_states + mllm_token_embeds
        return self.proj_out(self.act(self.proj_in(self.norm(combined))))
