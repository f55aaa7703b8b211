"""Base checkpoints in every release format, adapters, merged export, dtypes, and clear errors."""

import dataclasses
import json
import os

import pytest
import torch
from safetensors.torch import save_file

from physavatar.config import LoraArgs, tiny
from physavatar.models import checkpoint as ck
from physavatar.models.lora import add_lora

@pytest.fixture(scope="module")
def base():
    torch.manual_seed(7)
    return tiny().build_base().eval()


@pytest.fixture(scope="module")
def base_dir(base, tmp_path_factory):
    path = tmp_path_factory.mktemp("wan_vace_diffusers")
    base.save_pretrained(path)
    return path


def inputs():
    g = torch.Generator().manual_seed(0)
    return dict(
        hidden_states=torch.randn(1, 4, 3, 8, 8, generator=g),
        timestep=torch.tensor([400.0]),
        encoder_hidden_states=torch.randn(1, 5, 32, generator=g),
        control_hidden_states=torch.randn(1, 72, 3, 8, 8, generator=g),
    )


T5 = dataclasses.replace(tiny(), context_mode="t5")


@torch.no_grad()
def test_diffusers_folder_loads_and_equals_base(base, base_dir):
    model = ck.from_base(base_dir, T5).eval()
    assert torch.equal(model(**inputs()).sample, base(**inputs()).sample)


@torch.no_grad()
def test_original_release_format_round_trip(base, base_dir, tmp_path):
    original = ck.to_original_wan_keys(base.state_dict())
    # the official names of the Wan2.1-VACE release
    for key in ("blocks.0.self_attn.q.weight", "blocks.0.cross_attn.o.bias", "blocks.0.norm3.weight",
                "blocks.0.modulation", "vace_blocks.0.before_proj.weight", "vace_blocks.1.after_proj.bias",
                "head.head.weight", "head.modulation", "text_embedding.0.weight", "time_projection.1.weight",
                "vace_patch_embedding.weight", "blocks.1.ffn.0.weight"):
        assert key in original, key
    assert not any(".attn1." in k or ".to_q." in k for k in original)
    path = tmp_path / "Wan2.1-VACE-tiny.safetensors"
    save_file({k: v.contiguous() for k, v in original.items()}, path)
    from_original = ck.from_base(path, T5).eval()
    from_folder = ck.from_base(base_dir, T5).eval()
    assert torch.equal(from_original(**inputs()).sample, from_folder(**inputs()).sample)


class Payload:
    pass


def test_pth_loads_only_through_weights_only(base, tmp_path):
    good = tmp_path / "model.pth"
    torch.save(base.state_dict(), good)
    assert set(ck.read_state_dict(good)) == set(base.state_dict())

    bad = tmp_path / "evil.pth"
    torch.save({"x": Payload()}, bad)  # anything but tensors needs unrestricted pickle: refused
    with pytest.raises(ck.CheckpointError, match="weights_only=True"):
        ck.read_state_dict(bad)


def test_bad_checkpoints_are_reported_by_name(base, tmp_path):
    state = dict(base.state_dict())
    state.pop("blocks.1.attn1.to_q.weight")
    state["blocks.0.extra.weight"] = torch.zeros(1)
    state["proj_out.weight"] = torch.zeros(3, 3)
    path = tmp_path / "broken.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, path)
    with pytest.raises(ck.CheckpointError) as err:
        ck.from_base(path, T5)
    message = str(err.value)
    assert "missing keys: blocks.1.attn1.to_q.weight" in message
    assert "unexpected keys: blocks.0.extra.weight" in message
    assert "proj_out.weight (3, 3) vs model (16, 24)" in message

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ck.CheckpointError, match="not a readable safetensors"):
        ck.read_state_dict(truncated)
    with pytest.raises(ck.CheckpointError, match="expected one diffusion_pytorch_model.safetensors"):
        ck.read_state_dict(tmp_path)  # a folder with two .safetensors and no index
    (tmp_path / "weights.onnx").write_bytes(b"x")
    with pytest.raises(ck.CheckpointError, match="unknown weights format '.onnx'"):
        ck.read_state_dict(tmp_path / "weights.onnx")
    with pytest.raises(FileNotFoundError):
        ck.read_state_dict(tmp_path / "nope.safetensors")


def test_base_config_mismatch_names_the_key(base_dir):
    wrong = dataclasses.replace(T5, num_layers=6, vace_layers=(0, 2))
    with pytest.raises(ck.CheckpointError, match="num_layers: checkpoint 4 vs config 6"):
        ck.from_base(base_dir, wrong)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@torch.no_grad()
def test_half_precision_weights_load_and_run_in_fp32_on_cpu(base, tmp_path, dtype):
    path = tmp_path / "half.safetensors"
    save_file({k: v.to(dtype).contiguous() for k, v in base.state_dict().items()}, path)
    with pytest.warns(UserWarning, match="running in float32"):
        run_dtype = ck.compute_dtype(dtype, "cpu")
    model = ck.from_base(path, T5, dtype=run_dtype).eval()
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    out = model(**inputs()).sample
    ref = base(**inputs()).sample
    assert torch.isfinite(out).all()
    assert (out - ref).abs().max() < 0.1 * ref.abs().max()  # only the weights' rounding differs


def test_cast_keeps_wan_fp32_modules(base_dir):
    model = ck.cast_model(ck.from_base(base_dir, T5), torch.bfloat16)
    assert model.blocks[0].scale_shift_table.dtype == torch.float32
    assert model.condition_embedder.time_embedder.linear_1.weight.dtype == torch.float32
    assert model.blocks[0].attn1.to_q.weight.dtype == torch.bfloat16


def _trained(base_dir, lora=LoraArgs(rank=4, alpha=2)):
    model = ck.from_base(base_dir, tiny())
    add_lora(model, lora)
    torch.manual_seed(3)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad:  # stand-in for training: move every trainable tensor
                param.add_(torch.randn_like(param) * 0.05)
    return model.eval()


def _run(model):
    x = inputs()
    x.pop("encoder_hidden_states")
    return model(**x, audio_features=torch.randn(1, 9, 24, generator=torch.Generator().manual_seed(5)),
                 mllm_hidden_states=torch.ones(1, 4, 20), return_phys=True)


@torch.no_grad()
def test_adapter_round_trip_is_exact_and_small(base_dir, tmp_path):
    model = _trained(base_dir)
    out_dir = ck.save_adapter(model, tmp_path / "adapter", LoraArgs(rank=4, alpha=2))
    assert sorted(os.listdir(out_dir)) == [ck.ADAPTER_WEIGHTS, ck.ADAPTER_CONFIG]  # no temp files left
    config = json.loads((out_dir / ck.ADAPTER_CONFIG).read_text())
    assert config["lora"]["rank"] == 4 and config["model"]["context_mode"] == "mllm"
    loaded = ck.load_physavatar(out_dir, base=base_dir).eval()
    a, b = _run(model), _run(loaded)
    assert torch.equal(a.sample, b.sample) and torch.equal(a.phys_tokens, b.phys_tokens)
    # the adapter holds no frozen base weight
    adapter_keys = set(ck.adapter_state_dict(model))
    assert not any(k.endswith("attn1.to_q.base_layer.weight") for k in adapter_keys)
    assert any("vace_blocks.0.attn2.to_k.weight" == k for k in adapter_keys)  # MLLM cross-attention, in full


def test_adapter_for_another_config_is_refused(base_dir, tmp_path):
    ck.save_adapter(_trained(base_dir), tmp_path / "a", LoraArgs(rank=4, alpha=2))
    other = tiny().build()
    add_lora(other, LoraArgs(rank=8, alpha=2))
    with pytest.raises(ck.CheckpointError, match="shape mismatches .*lora_A"):
        ck.load_adapter_weights(other, tmp_path / "a")


@torch.no_grad()
def test_merged_export_matches_lora_model(base_dir, tmp_path):
    from physavatar.models.transformer import PhysAvatarTransformer3DModel

    model = _trained(base_dir)
    ck.export_merged(model, tmp_path / "merged")
    merged = PhysAvatarTransformer3DModel.from_pretrained(tmp_path / "merged").eval()
    assert not any("lora_" in k for k in merged.state_dict())
    torch.testing.assert_close(_run(merged).sample, _run(model).sample, atol=1e-5, rtol=1e-5)
    with pytest.raises(FileExistsError):
        ck.export_merged(model, tmp_path / "merged")  # never overwrites silently
