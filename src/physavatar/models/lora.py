"""LoRA on the base model and the trainable set of the paper (Implementation details).

Trained in full: every new module (Proj_aud, audio cross-attention, mask embedding, Proj_Phys, Proj_MLLM)
and the cross-attention of the blocks that read the MLLM context (the "MLLM cross-attention").
Trained through LoRA (rank 128, alpha 64): attention and FFN linears of the other base blocks.
Everything else is frozen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch.nn as nn

from physavatar.config import LoraArgs
from physavatar.models.transformer import NEW_MODULE_PATTERN, _strip_peft

_ATTN = r"(?:to_q|to_k|to_v|to_out\.0)"
_FFN = r"ffn\.net\.(?:0\.proj|2)"


def mllm_cross_attention_prefixes(config) -> list[str]:
    """Module prefixes of the cross-attentions that read the MLLM context (trained in full, not LoRA)."""
    if config.context_mode != "mllm":
        return []
    prefixes = [r"vace_blocks\.\d+\.(?:attn2|norm2)"]
    if config.mllm_blocks == "all":
        prefixes.append(r"blocks\.\d+\.(?:attn2|norm2)")
    return prefixes


def lora_target_regex(config, args: LoraArgs) -> str:
    """An anchored regex over module names for peft: a bare "to_q" would also match the audio attention."""
    blocks = [name for name, on in (("blocks", args.main_blocks), ("vace_blocks", args.vace_blocks)) if on]
    if not blocks:
        raise ValueError("LoRA needs main_blocks or vace_blocks enabled")
    alternatives = []
    for block in blocks:
        # The MLLM cross-attention is trained in full, so it gets no LoRA.
        full_attn2 = config.context_mode == "mllm" and (block == "vace_blocks" or config.mllm_blocks == "all")
        attn = "attn1" if full_attn2 else "(?:attn1|attn2)"
        alternatives.append(rf"{block}\.\d+\.{attn}\.{_ATTN}")
        alternatives.append(rf"{block}\.\d+\.{_FFN}")
    return "^(?:" + "|".join(alternatives) + ")$"


def add_lora(model: nn.Module, args: LoraArgs, adapter_name: str = "default") -> nn.Module:
    """Inject LoRA layers (peft, through diffusers' `add_adapter`) and set requires_grad for the paper's set."""
    from peft import LoraConfig

    config = LoraConfig(
        r=args.rank,
        lora_alpha=args.alpha,
        lora_dropout=args.dropout,
        target_modules=lora_target_regex(model.config, args),
        init_lora_weights=True,  # B = 0: the adapted model starts equal to the base
    )
    model.add_adapter(config, adapter_name=adapter_name)
    mark_trainable(model)
    return model


def _full_pattern(config) -> re.Pattern:
    extra = mllm_cross_attention_prefixes(config)
    if not extra:
        return NEW_MODULE_PATTERN
    return re.compile(NEW_MODULE_PATTERN.pattern + "|" + "|".join(rf"^{p}\." for p in extra))


def is_full_trainable(config, name: str) -> bool:
    name = _strip_peft(name)
    return "lora_" not in name and bool(_full_pattern(config).search(name))


def mark_trainable(model: nn.Module) -> None:
    """requires_grad = True exactly for LoRA weights and the fully trained modules."""
    for name, param in model.named_parameters():
        param.requires_grad_("lora_" in name or is_full_trainable(model.config, name))


def trainable_parameter_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """The optimizer's groups: {"lora": [...], "full": [...]} (only parameters with requires_grad)."""
    groups: dict[str, list[nn.Parameter]] = {"lora": [], "full": []}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups["lora" if "lora_" in name else "full"].append(param)
    return groups


@dataclass
class ParameterSummary:
    total: int
    base: int
    new: int
    lora: int
    trainable_full: int  # new modules + the MLLM cross-attention (counted in base if it is a base module)

    @property
    def trainable(self) -> int:
        return self.lora + self.trainable_full

    def format(self) -> str:
        m = 1e6
        return (
            f"parameters: total {self.total / m:,.2f} M = base {self.base / m:,.2f} M + new {self.new / m:,.2f} M"
            f" + LoRA {self.lora / m:,.2f} M\n"
            f"trainable:  {self.trainable / m:,.2f} M (LoRA {self.lora / m:,.2f} M, full {self.trainable_full / m:,.2f} M)"
        )


def parameter_summary(model: nn.Module) -> ParameterSummary:
    """Counts by role. Works on meta-device models (counts only, no memory)."""
    base = new = lora = full = 0
    for name, param in model.named_parameters():
        n = param.numel()
        if "lora_" in name:
            lora += n
            continue
        if NEW_MODULE_PATTERN.search(_strip_peft(name)):
            new += n
        else:
            base += n
        if is_full_trainable(model.config, name):
            full += n
    return ParameterSummary(total=base + new + lora, base=base, new=new, lora=lora, trainable_full=full)
