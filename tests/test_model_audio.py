"""Audio tokens (eq. 3) and the temporally aligned audio cross-attention."""

import pytest
import torch

from physavatar.models.audio import (
    AudioProjector,
    apply_rope,
    group_frames_to_latents,
    make_audio_attention,
    temporal_rope,
    window_audio_features,
)


def test_window_mirror_padding_hand_computed():
    # one channel, frames valued 0..4, k = 2: frame 0 sees [2, 1, 0, 1, 2] (mirror about frame 0)
    x = torch.arange(5.0).view(1, 5, 1)
    w = window_audio_features(x, 2)
    assert w.shape == (1, 5, 5)
    assert w[0, 0].tolist() == [2, 1, 0, 1, 2]
    assert w[0, 1].tolist() == [1, 0, 1, 2, 3]
    assert w[0, 2].tolist() == [0, 1, 2, 3, 4]
    assert w[0, 4].tolist() == [2, 3, 4, 3, 2]


def test_window_is_frame_major_for_multichannel_features():
    x = torch.tensor([[[0.0, 10.0], [1.0, 11.0], [2.0, 12.0]]])  # (1, 3, 2)
    w = window_audio_features(x, 1)
    # row 1 = [e_0, e_1, e_2] concatenated frame by frame
    assert w[0, 1].tolist() == [0, 10, 1, 11, 2, 12]
    assert w[0, 0].tolist() == [1, 11, 0, 10, 1, 11]


def test_window_k0_is_identity_and_too_short_is_clear():
    x = torch.randn(2, 9, 3)
    assert torch.equal(window_audio_features(x, 0), x)
    with pytest.raises(ValueError, match="more than 2 frames"):
        window_audio_features(torch.randn(1, 2, 3), 2)


def test_group_frames_to_latents_follows_vae_grouping():
    frames = torch.arange(9).view(1, 9)  # F = 9 -> f = 3
    grouped = group_frames_to_latents(frames)
    assert grouped.tolist() == [[[0, 0, 0, 0], [1, 2, 3, 4], [5, 6, 7, 8]]]
    assert group_frames_to_latents(torch.zeros(2, 81, 7)).shape == (2, 21, 4, 7)
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        group_frames_to_latents(torch.zeros(1, 10))


def test_audio_projector_token_i_depends_only_on_its_frames_and_window():
    torch.manual_seed(0)
    proj = AudioProjector(audio_dim=6, window=1, hidden_dim=16, out_dim=8)
    x = torch.randn(1, 13, 6)  # f = 4: latent 2 <-> frames 5..8, window 1 -> frames 4..9
    base = proj(x)
    assert base.shape == (1, 4, 8)
    y = x.clone()
    y[:, 11] += torch.linspace(-1, 1, 6)  # frame 11 belongs to latent 3 only (latent 2's window stops at frame 9);
    # not a constant shift, which the input LayerNorm removes
    out = proj(y)
    assert torch.allclose(out[:, :3], base[:, :3])
    assert not torch.allclose(out[:, 3], base[:, 3])


def test_hidden_norm_keeps_the_projector_hearing_when_its_units_drift_negative():
    """The demo models' projectors died: every pre-activation near -25, so the GELU passed nothing and each
    audio token was the output bias whatever the sound. The hidden LayerNorm keeps the tokens apart."""
    torch.manual_seed(0)
    sounds = torch.randn(2, 9, 6)
    for hidden_norm in (False, True):
        proj = AudioProjector(audio_dim=6, window=1, hidden_dim=16, out_dim=8, hidden_norm=hidden_norm)
        with torch.no_grad():
            proj.proj_in.bias.fill_(-30.0)  # the drift measured in the demo models
        tokens = proj(sounds)
        spread = float((tokens[0] - tokens[1]).abs().max())
        if hidden_norm:
            assert spread > 0.1
        else:
            assert spread < 1e-6  # the collapse, reproduced without the norm
            assert torch.allclose(tokens, proj.proj_out.bias.expand_as(tokens), atol=1e-6)


def test_fresh_audio_attention_adds_nothing():
    attn = make_audio_attention(dim=16, num_heads=2, eps=1e-6)
    h, a = torch.randn(1, 10, 16), torch.randn(1, 3, 16)
    rope = (temporal_rope(torch.arange(10) // 4, 8, 1e4), temporal_rope(torch.arange(3), 8, 1e4))
    assert torch.count_nonzero(attn(h, a, None, rope)) == 0


def _attention(seed=0):
    torch.manual_seed(seed)
    attn = make_audio_attention(dim=16, num_heads=2, eps=1e-6)
    torch.nn.init.normal_(attn.to_out[0].weight)
    return attn.eval()


def test_rope_makes_audio_attention_depend_on_relative_time_only():
    attn = _attention()
    h, a = torch.randn(1, 1, 16), torch.randn(1, 6, 16)

    def out(query_frame, audio_start):
        rope_q = temporal_rope(torch.tensor([query_frame]), 8, 1e4)
        rope_k = temporal_rope(torch.arange(audio_start, audio_start + 6), 8, 1e4)
        return attn(h, a, None, (rope_q, rope_k))

    # shifting the audio and the video by the same amount changes nothing ...
    assert torch.allclose(out(2, 0), out(9, 7), atol=1e-5)
    # ... while moving the audio relative to the video changes what the frame attends to
    assert not torch.allclose(out(2, 0), out(2, 3), atol=1e-3)


def test_rope_aligned_audio_token_wins_when_content_is_equal():
    # With identical keys, q.k is largest at zero time offset when q and k point the same way: RoPE at
    # offset 0 is the identity, other offsets rotate k away from q.
    q = torch.ones(1, 1, 1, 8)
    cos_q, sin_q = temporal_rope(torch.tensor([4]), 8, 10.0)
    cos_k, sin_k = temporal_rope(torch.arange(9), 8, 10.0)
    qr = apply_rope(q, cos_q, sin_q)
    kr = apply_rope(torch.ones(1, 9, 1, 8), cos_k, sin_k)
    scores = (qr * kr).sum(-1).flatten()
    assert scores.argmax().item() == 4
