"""LoRA targets and the paper's trainable set."""

import dataclasses
import re

import pytest
import torch

from physavatar.config import LoraArgs, tiny, vace_1_3b
from physavatar.models.lora import add_lora, lora_target_regex, parameter_summary, trainable_parameter_groups


def test_regex_targets_base_linears_only():
    pattern = re.compile(lora_target_regex(tiny(), LoraArgs()))
    assert pattern.fullmatch("blocks.3.attn1.to_q")
    assert pattern.fullmatch("blocks.0.attn2.to_out.0")
    assert pattern.fullmatch("blocks.0.ffn.net.0.proj")
    assert pattern.fullmatch("vace_blocks.1.attn1.to_v")
    assert not pattern.fullmatch("blocks.0.audio_attn.to_q")  # new module: trained in full
    assert not pattern.fullmatch("vace_blocks.0.attn2.to_q")  # MLLM cross-attention: trained in full
    assert not pattern.fullmatch("blocks.0.attn1.norm_q")
    t5 = re.compile(lora_target_regex(dataclasses.replace(tiny(), context_mode="t5"), LoraArgs()))
    assert t5.fullmatch("vace_blocks.0.attn2.to_q")  # without the planner, attn2 is a base layer
    main_only = re.compile(lora_target_regex(tiny(), LoraArgs(vace_blocks=False)))
    assert not main_only.fullmatch("vace_blocks.1.attn1.to_v")


def _model(**overrides):
    torch.manual_seed(0)
    return dataclasses.replace(tiny(), **overrides).build()


def _inputs():
    g = torch.Generator().manual_seed(1)
    return dict(
        hidden_states=torch.randn(1, 4, 3, 8, 8, generator=g),
        timestep=torch.tensor([300.0]),
        control_hidden_states=torch.randn(1, 72, 3, 8, 8, generator=g),
        audio_features=torch.randn(1, 9, 24, generator=g),
        mllm_hidden_states=torch.randn(1, 4, 20, generator=g),
    )


@torch.no_grad()
def test_fresh_lora_changes_nothing():
    model = _model().eval()
    before = model(**_inputs()).sample
    add_lora(model, LoraArgs(rank=4, alpha=2))
    assert torch.equal(model(**_inputs()).sample, before)


def test_lora_trains_exactly_the_paper_set():
    model = _model()
    add_lora(model, LoraArgs(rank=4, alpha=2))
    model.train()
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    # every trainable tensor is LoRA or one of the fully trained modules; every base weight is frozen
    full_prefixes = ("audio_proj.", "audio_mask_embed", "phys_head.", "mllm_proj.")
    for name in trainable:
        assert ("lora_" in name or name.startswith(full_prefixes) or ".audio_attn." in name
                or ".norm_audio." in name or re.match(r"vace_blocks\.\d+\.(attn2|norm2)\.", name)), name
    assert "blocks.0.attn1.to_q.base_layer.weight" in frozen_before
    assert "patch_embedding.weight" in frozen_before
    assert "blocks.0.attn2.to_k.base_layer.weight" in frozen_before  # main attn2 gets LoRA ("vace" mode)

    groups = trainable_parameter_groups(model)
    optimizer = torch.optim.SGD([p for g in groups.values() for p in g], lr=0.1)
    for _ in range(2):  # two steps so LoRA A also moves (B starts at zero)
        out = model(**_inputs(), return_phys=True)
        (out.sample.square().mean() + out.phys_tokens.square().mean()).backward()
        optimizer.step()
        optimizer.zero_grad()
    for name, value in frozen_before.items():
        assert torch.equal(dict(model.named_parameters())[name], value), name
    moved = dict(model.named_parameters())
    assert not torch.equal(moved["blocks.0.attn1.to_q.lora_B.default.weight"], torch.zeros_like(moved["blocks.0.attn1.to_q.lora_B.default.weight"]))


def test_summary_counts_on_real_size_meta_model():
    with torch.device("meta"):
        model = vace_1_3b().build()
        base = vace_1_3b().build_base()
        add_lora(model, LoraArgs())
    summary = parameter_summary(model)
    assert summary.base == sum(p.numel() for p in base.parameters())  # every base weight kept, by name
    assert round(summary.base / 1e6) == 2154
    # LoRA r=128 on attention (4 x 2 x 1536 x 128) and FFN (2 x (1536 + 8960) x 128) of 30 main blocks and on
    # the self-attention and FFN of 15 VACE blocks (their cross-attention reads the planner: trained in full)
    attn = 4 * 2 * 1536 * 128
    ffn = 2 * (1536 + 8960) * 128
    assert summary.lora == 30 * (2 * attn + ffn) + 15 * (attn + ffn)
    assert summary.trainable == summary.lora + summary.trainable_full
    assert "LoRA" in summary.format()


def test_no_blocks_is_an_error():
    with pytest.raises(ValueError, match="main_blocks or vace_blocks"):
        lora_target_regex(tiny(), LoraArgs(main_blocks=False, vace_blocks=False))
