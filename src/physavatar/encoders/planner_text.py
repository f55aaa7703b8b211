"""Plan text -> token embeddings with a local text encoder (MiniLM for the default, UMT5 for the T5 ablation).

For a plan of L tokens both outputs are (L, C): `e_con` = the encoder's last hidden states (contextual),
`e_tok` = its input word embeddings of the same tokens, mirroring the (e_con, e_tok) pair the Qwen Thinker
gives. Special tokens ([CLS]/[SEP], </s>) are dropped so L counts plan tokens only.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from physavatar.encoders.backend import read_json, require_model_folder
from physavatar.encoders.planner import Planner

_T5_TYPES = ("t5", "mt5", "umt5")


class TextTokenEncoder:
    def __init__(self, folder: str | os.PathLike, device: str = "cpu", max_tokens: int = 512):
        import torch
        from transformers import AutoModel, AutoTokenizer

        folder = require_model_folder(folder, ["config.json"], "text encoder")
        model_type = read_json(folder / "config.json").get("model_type", "")
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        if model_type in _T5_TYPES:
            # Only the encoder: Wan's UMT5 ships encoder weights alone, and the decoder is never needed.
            from transformers import MT5EncoderModel, T5EncoderModel, UMT5EncoderModel

            cls = {"t5": T5EncoderModel, "mt5": MT5EncoderModel, "umt5": UMT5EncoderModel}[model_type]
        else:
            cls = AutoModel
        self.model = cls.from_pretrained(folder, dtype=torch.float32).to(device).eval()
        self.folder, self.device, self.max_tokens, self.model_type = Path(folder), device, max_tokens, model_type
        self.dim = int(self.model.get_input_embeddings().weight.shape[1])
        self._torch = torch

    def encode(self, text: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """-> e_con (L, C), e_tok (L, C), the L token strings."""
        torch = self._torch
        if not text.strip():
            raise ValueError("plan text is empty; the planner produced nothing to encode")
        enc = self.tokenizer(text, return_tensors="pt", truncation=True, max_length=self.max_tokens,
                             return_special_tokens_mask=True)
        keep = ~enc.pop("special_tokens_mask")[0].bool()
        enc = {k: v.to(self.device) for k, v in enc.items()}
        with torch.inference_mode():
            hidden = self.model(**enc).last_hidden_state[0]  # (T, C)
            embeds = self.model.get_input_embeddings()(enc["input_ids"])[0]  # (T, C)
        ids = enc["input_ids"][0][keep.to(self.device)].tolist()
        return (hidden[keep].float().cpu().numpy(), embeds[keep].float().cpu().numpy(),
                self.tokenizer.convert_ids_to_tokens(ids))


class T5Replanner(Planner):
    """The "MLLM via T5" ablation (Table 2): any planner's plan text, embedded by a local UMT5 encoder."""

    def __init__(self, planner, t5_folder: str | os.PathLike, device: str = "cpu"):
        self.planner = planner
        self.t5 = TextTokenEncoder(t5_folder, device=device)
        if self.t5.model_type not in _T5_TYPES:
            raise ValueError(f"{t5_folder}: is a {self.t5.model_type or 'unknown'} model, not T5/UMT5; give Wan's "
                             "umt5-xxl text encoder folder")
        self.backend = f"{planner.backend}|t5-{self.t5.folder.name}"
        self.model_id = f"{planner.model_id}|t5:{self.t5.folder.resolve()}"

    def _plan(self, image, audio, prompt, edit):
        from dataclasses import replace

        inner = self.planner._plan(image, audio, prompt, edit)
        e_con, e_tok, tokens = self.t5.encode(inner.text)
        return replace(inner, e_con=e_con, e_tok=e_tok, tokens=tokens, backend=self.backend,
                       info={**inner.info, "planner_backend": inner.backend})
