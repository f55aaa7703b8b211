"""LatentCodec's CPU kernels (models/vae.speed_up_on_cpu): the same numbers as diffusers' AutoencoderKLWan."""

import copy

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch build has no oneDNN")


def _vae():
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    return AutoencoderKLWan(base_dim=4, z_dim=4, dim_mult=[1, 2], num_res_blocks=1, attn_scales=[],
                            temperal_downsample=[True],
                            latents_mean=[0.0] * 4, latents_std=[1.0] * 4).eval()


def _ops(fn) -> set[str]:
    from torch.profiler import profile

    with profile() as prof:
        fn()
    return {e.key for e in prof.key_averages()}


def test_codec_decodes_and_encodes_as_diffusers_does_with_faster_kernels():
    from physavatar.models.vae import LatentCodec

    plain = _vae()
    codec = LatentCodec(copy.deepcopy(plain))
    LatentCodec(codec.vae)  # wrapping twice changes nothing
    z = torch.randn(1, 4, 3, 4, 4)
    x = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    with torch.no_grad():
        # batch 1 and few channels: PyTorch's own rule (torch 2.13) sends these to its slow native conv3d
        ops = _ops(lambda: codec.vae.decode(z))
        assert "aten::mkldnn_convolution" in ops and "aten::slow_conv3d_forward" not in ops
        assert "aten::linalg_vector_norm" not in ops  # the RMS norms sum squares instead
        torch.testing.assert_close(codec.vae.decode(z).sample, plain.decode(z).sample, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(codec.vae.encode(x).latent_dist.mode(), plain.encode(x).latent_dist.mode(),
                                   atol=1e-5, rtol=1e-4)
    assert set(codec.vae.state_dict()) == set(plain.state_dict())


def test_gradients_take_pytorchs_own_route():
    from physavatar.models.vae import LatentCodec

    plain = _vae().requires_grad_(True)
    routed = LatentCodec(copy.deepcopy(plain)).vae.requires_grad_(True)
    z = torch.randn(1, 4, 2, 4, 4)
    for vae in (plain, routed):
        vae.decode(z).sample.square().mean().backward()
    # diffusers' own kernels (bit-identical gradients): the training path stays as it was
    assert torch.equal(routed.decoder.conv_out.weight.grad, plain.decoder.conv_out.weight.grad)
    assert torch.equal(routed.decoder.conv_in.weight.grad, plain.decoder.conv_in.weight.grad)
