"""PhysAvatarTransformer3DModel on a tiny config: base equivalence, audio masking, Proj_Phys, contexts."""

import dataclasses

import pytest
import torch

from physavatar.config import tiny
from physavatar.models.transformer import NEW_MODULE_PATTERN, PhysAvatarTransformer3DModel

def build(**overrides):
    torch.manual_seed(0)
    return dataclasses.replace(tiny(), **overrides).build().eval()


def base_like(model):
    from physavatar.models.checkpoint import model_args_of

    torch.manual_seed(1)
    base = model_args_of(model).build_base().eval()
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    assert unexpected == []
    assert missing and all(NEW_MODULE_PATTERN.search(k) for k in missing)
    return base


def inputs(batch=1, frames=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        hidden_states=torch.randn(batch, 4, frames, 8, 8, generator=g),
        timestep=torch.tensor([637.0] * batch),
        control_hidden_states=torch.randn(batch, 72, frames, 8, 8, generator=g),
    )


def audio(batch=1, latents=3, seed=1):
    return torch.randn(batch, 1 + 4 * (latents - 1), 24, generator=torch.Generator().manual_seed(seed))


def open_audio_branch(model):
    for block in model.blocks:
        torch.nn.init.normal_(block.audio_attn.to_out[0].weight, std=0.5)


@torch.no_grad()
def test_fresh_model_equals_base_exactly_t5_mode():
    model = build(context_mode="t5")
    base = base_like(model)
    x, text = inputs(batch=2), torch.randn(2, 5, 32)
    expected = base(**x, encoder_hidden_states=text).sample
    got = model(**x, encoder_hidden_states=text, audio_features=audio(batch=2), return_phys=True)
    assert torch.equal(got.sample, expected)
    assert got.phys_tokens.shape == (2, 3, 4, 1024)


@torch.no_grad()
def test_fresh_model_equals_base_with_null_context():
    # "no context" is one all-zero token in model space: the base fed the same context agrees exactly.
    model = build(context_mode="none")
    base = base_like(model)

    class NullText(torch.nn.Module):
        def forward(self, ehs):
            return torch.zeros(ehs.shape[0], 1, 24)

    base.condition_embedder.text_embedder = NullText()
    x = inputs()
    assert torch.equal(model(**x, audio_features=audio()).sample, base(**x, encoder_hidden_states=torch.zeros(1, 1, 32)).sample)


@torch.no_grad()
def test_masked_latents_get_the_mask_embedding():
    model = build()
    feats = audio(batch=2)
    mask = torch.tensor([[1, 0, 1], [0, 0, 1]])
    tokens = model.audio_tokens(feats, mask, batch_size=2, num_latents=3)
    unmasked = model.audio_proj(feats)
    for b in range(2):
        for i in range(3):
            want = unmasked[b, i] if mask[b, i] else model.audio_mask_embed
            assert torch.equal(tokens[b, i], want)


@torch.no_grad()
def test_all_masked_audio_equals_no_audio_and_ignores_features():
    model = build()
    open_audio_branch(model)
    x = inputs()
    none = model(**x).sample
    all_masked = model(**x, audio_features=audio(seed=3), audio_mask=torch.zeros(1, 3)).sample
    visible = model(**x, audio_features=audio(seed=3)).sample
    assert torch.equal(none, all_masked)
    assert not torch.allclose(none, visible, atol=1e-4)


@torch.no_grad()
def test_audio_moves_output_at_its_own_time_most():
    # Change the audio of the last latent only: its frame's output moves more than the first frame's.
    model = build()
    open_audio_branch(model)
    x = inputs()
    a = audio()
    b = a.clone()
    b[:, 7:] += 3.0  # frames 7, 8 -> latent 2 (frames 5..8); windows of latent 1 reach frame 6 only
    delta = (model(**x, audio_features=a).sample - model(**x, audio_features=b).sample).abs()
    per_frame = delta.mean(dim=(0, 1, 3, 4))
    assert per_frame[2] > 0


@torch.no_grad()
def test_phys_head_reads_block_j_and_not_later_blocks():
    model = build(phys_layer=2)
    x = inputs()
    phys = model(**x, audio_features=audio(), return_phys=True).phys_tokens
    torch.nn.init.normal_(model.blocks[2].ffn.net[2].weight)  # after J = 2
    assert torch.equal(phys, model(**x, audio_features=audio(), return_phys=True).phys_tokens)
    torch.nn.init.normal_(model.blocks[0].ffn.net[2].weight)  # before J
    assert not torch.equal(phys, model(**x, audio_features=audio(), return_phys=True).phys_tokens)


@torch.no_grad()
def test_reference_latents_are_excluded_from_audio_and_phys():
    model = build()
    x = inputs(frames=4)  # 1 reference latent + 3 clip latents
    out = model(**x, audio_features=audio(latents=3), num_reference_latents=1, return_phys=True)
    assert out.sample.shape == (1, 4, 4, 8, 8)
    assert out.phys_tokens.shape == (1, 3, 4, 1024)
    with pytest.raises(ValueError, match="make 3 latent frames but the video has 4"):
        model(**x, audio_features=audio(latents=3))


@torch.no_grad()
def test_phys_head_disabled():
    model = build(phys_layer=None)
    assert model.phys_head is None
    assert model(**inputs(), return_phys=True).phys_tokens is None


@pytest.mark.parametrize("mllm_blocks", ["vace", "all"])
@torch.no_grad()
def test_mllm_context_is_used_and_optional(mllm_blocks):
    model = build(context_mode="mllm", mllm_blocks=mllm_blocks)
    x = inputs()
    e_con, e_tok = torch.randn(1, 7, 20), torch.randn(1, 7, 20)
    with_plan = model(**x, mllm_hidden_states=e_con, mllm_token_embeds=e_tok).sample
    without = model(**x).sample
    assert with_plan.shape == without.shape
    assert not torch.allclose(with_plan, without, atol=1e-5)
    assert model.mllm_proj is not None


@torch.no_grad()
def test_mllm_reaches_main_blocks_only_when_asked():
    x = inputs()
    e_con = torch.randn(1, 7, 20)
    for mllm_blocks, main_sees_plan in (("vace", False), ("all", True)):
        model = build(mllm_blocks=mllm_blocks)
        seen = []
        hook = model.blocks[1].attn2.register_forward_hook(lambda m, args, out: seen.append(args[1].shape[1]))
        model(**x, mllm_hidden_states=e_con)
        hook.remove()
        assert (seen[0] == 7) == main_sees_plan


def test_gradient_checkpointing_gives_same_output_and_grads():
    x = inputs()
    results = []
    for checkpointing in (False, True):
        model = build()
        open_audio_branch(model)
        model.train()
        if checkpointing:
            model.enable_gradient_checkpointing()
        out = model(**x, audio_features=audio(), mllm_hidden_states=torch.randn(1, 4, 20), return_phys=True)
        (out.sample.square().mean() + out.phys_tokens.square().mean()).backward()
        results.append((out.sample.detach(), model.audio_proj.proj_in.weight.grad.clone()))
    assert torch.allclose(results[0][0], results[1][0], atol=1e-6)
    assert torch.allclose(results[0][1], results[1][1], atol=1e-6)


def test_save_pretrained_round_trip(tmp_path):
    model = build()
    open_audio_branch(model)
    model.save_pretrained(tmp_path)
    loaded = PhysAvatarTransformer3DModel.from_pretrained(tmp_path).eval()
    assert loaded.config["context_mode"] == "mllm" and loaded.config["phys_layer"] == 2
    x = inputs()
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
    with torch.no_grad():
        # identical weights; only float rounding differs (loaded tensors have another memory layout)
        torch.testing.assert_close(
            model(**x, audio_features=audio()).sample, loaded(**x, audio_features=audio()).sample, atol=1e-5, rtol=0
        )


def test_bad_inputs_name_the_problem():
    model = build()
    with pytest.raises(ValueError, match=r"audio_features must be \(batch, frames, 24\)"):
        model(**inputs(), audio_features=torch.randn(1, 9, 23))
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        model(**inputs(), audio_features=torch.randn(1, 10, 24))
    with pytest.raises(ValueError, match="audio_mask must be"):
        model(**inputs(), audio_features=audio(), audio_mask=torch.ones(1, 2))
    with pytest.raises(ValueError, match="context_mode"):
        dataclasses.replace(tiny(), context_mode="clip").build()
    with pytest.raises(ValueError, match="phys_layer=9"):
        dataclasses.replace(tiny(), phys_layer=9).build()


def test_forward_creates_no_tensor_on_the_default_device():
    # A model on another device must not meet a tensor made on the CPU inside forward (this broke on GPU once).
    # The meta device stands in for a GPU: mixing meta and CPU tensors raises.
    with torch.device("meta"):
        model = tiny().build()
    x = {k: v.to("meta") for k, v in inputs().items()}
    out = model(**x, audio_features=audio().to("meta"), mllm_hidden_states=torch.randn(1, 4, 20, device="meta"),
                return_phys=True)
    assert out.sample.device.type == "meta" and out.phys_tokens.shape == (1, 3, 4, 1024)


@torch.no_grad()
def test_audio_attention_window_limits_each_latent_to_its_own_audio():
    # 1 reference latent + 3 clip latents, 16 tokens per latent (8x8 latents, 2x2 patches); window 0
    mask = build(audio_attention_window=0)._audio_attention_mask(4, 16, 3, torch.device("cpu"))
    assert mask.shape == (64, 3) and mask.sum(dim=1).eq(1).all()  # every video token sees exactly one audio token
    assert mask[:32, 0].all() and mask[32:48, 1].all() and mask[48:, 2].all()  # the reference counts as latent 1
    assert build(audio_attention_window=1)._audio_attention_mask(4, 16, 3, torch.device("cpu"))[48:].sum() == 32
    assert build()._audio_attention_mask(4, 16, 3, torch.device("cpu")) is None  # the paper's global attention

    # the audio attention's output for latent 3 depends on audio token 3 only; globally it depends on all
    outputs = {}
    for window in (0, None):
        model = build(audio_attention_window=window)
        open_audio_branch(model)
        block = model.blocks[0]
        captured = []
        block.audio_attn.register_forward_hook(lambda module, args, out: captured.append(out))
        x = inputs(frames=4)
        for seed in (1, 2):
            sound = audio(latents=3, seed=1)
            sound[:, :3] = audio(latents=3, seed=seed)[:, :3]  # frames 0-2: tokens 1, 2 change (eq. 3 window 2)
            model(**x, audio_features=sound, num_reference_latents=1)
        outputs[window] = [c[0] for c in captured[:: len(captured) // 2]]
    first, second = outputs[0]
    assert torch.isfinite(first).all()
    assert torch.equal(first[48:], second[48:]) and not torch.equal(first[32:48], second[32:48])
    first, second = outputs[None]
    assert not torch.allclose(first[48:], second[48:])
    with pytest.raises(ValueError, match="audio_attention_window=-1"):
        build(audio_attention_window=-1)(**inputs(frames=4), audio_features=audio(latents=3), num_reference_latents=1)
