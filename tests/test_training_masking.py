"""Algorithm 1 (audio masks), per-latent physical-state targets (Appendix B) and the discrete loss (eq. 4)."""

import math

import pytest
import torch

from physavatar.constants import PHYS_FRAME_DIM, num_latent_frames
from physavatar.training.masking import (
    audio_mask,
    discrete_loss,
    full_supervision_mask,
    no_audio_mask,
    phys_targets,
    supervision_mask,
    training_masks,
)


def _masks(sigma: float, f: int, batch: int, seed: int = 0) -> torch.Tensor:
    return audio_mask(torch.full((batch,), sigma), f, torch.Generator().manual_seed(seed))


def _expected_fraction(sigma: float, f: int) -> float:
    """Exact E[floor(f p)] / f for p ~ U(0, 1 - sigma): floor(a u), u ~ U(0, 1), a = f (1 - sigma)."""
    a = f * (1.0 - sigma)
    if a == 0:
        return 0.0
    return sum(k * (min(k + 1, a) - k) for k in range(math.ceil(a))) / a / f


def test_mask_shape_dtype_values_and_seed():
    a = _masks(0.3, 21, 64, seed=5)
    b = _masks(0.3, 21, 64, seed=5)
    c = _masks(0.3, 21, 64, seed=6)
    assert a.shape == (64, 21) and a.dtype == torch.long
    assert set(a.unique().tolist()) <= {0, 1}
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("sigma", [0.0, 0.2, 0.5, 0.9])
def test_mean_masked_fraction_follows_algorithm_1(sigma):
    f = 21
    frac = (_masks(sigma, f, 10_000) == 0).float().mean().item()
    assert frac == pytest.approx(_expected_fraction(sigma, f), abs=0.01)
    # with many latents the floor's bias vanishes and E[n/f] -> (1 - sigma) / 2
    big = (_masks(sigma, 2000, 400) == 0).float().mean().item()
    assert big == pytest.approx((1 - sigma) / 2, abs=0.02)


@pytest.mark.parametrize(
    "sigma, f, probs",
    [
        (0.0, 4, [0.25, 0.25, 0.25, 0.25]),  # a = 4: n in {0, 1, 2, 3}, never all 4
        (0.5, 4, [0.5, 0.5]),  # a = 2
        (0.5, 5, [0.4, 0.4, 0.2]),  # a = 2.5: floor(2.5 u)
    ],
)
def test_count_distribution_is_floor_of_uniform(sigma, f, probs):
    n = (_masks(sigma, f, 40_000) == 0).sum(dim=1)
    hist = torch.bincount(n, minlength=f + 1).float() / n.numel()
    expected = torch.tensor(probs + [0.0] * (f + 1 - len(probs)))
    assert torch.allclose(hist, expected, atol=0.01)


def test_fully_noisy_step_never_masks_and_one_latent_is_never_masked():
    assert bool((_masks(1.0, 21, 5000) == 1).all())  # sigma = 1: P = 0
    assert bool((_masks(0.0, 1, 5000) == 1).all())  # f = 1: n = floor(p) = 0 since p < 1


def test_masked_indices_are_uniform_over_positions():
    m = _masks(0.0, 8, 40_000)
    per_position = (m == 0).float().mean(dim=0)
    assert float((per_position - per_position.mean()).abs().max()) < 0.01
    # given exactly one masked index, each position is equally likely
    single = m[(m == 0).sum(dim=1) == 1]
    where = (single == 0).float().argmax(dim=1)
    freq = torch.bincount(where, minlength=8).float() / len(where)
    assert float((freq - 1 / 8).abs().max()) < 0.02


def test_mixed_batch_sigmas_are_per_sample():
    sigmas = torch.tensor([1.0, 0.0]).repeat(5000)
    m = audio_mask(sigmas, 21, torch.Generator().manual_seed(0))
    assert bool((m[0::2] == 1).all())
    assert (m[1::2] == 0).float().mean().item() == pytest.approx(_expected_fraction(0.0, 21), abs=0.01)


def test_audio_mask_rejects_bad_input():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        audio_mask(torch.tensor([1.5]), 21, g)
    with pytest.raises(ValueError, match="shape \\(B,\\)"):
        audio_mask(torch.tensor([[0.5]]), 21, g)
    with pytest.raises(ValueError, match="num_latents"):
        audio_mask(torch.tensor([0.5]), 0, g)


def test_variant_masks():
    sigmas = torch.tensor([0.1, 0.7, 1.0])
    m, sup = training_masks("full", sigmas, 21)
    assert torch.equal(m, full_supervision_mask(3, 21)) and bool((m == 1).all()) and bool(sup.all())
    m, sup = training_masks("no_audio", sigmas, 21)
    assert torch.equal(m, no_audio_mask(3, 21)) and bool((m == 0).all()) and bool(sup.all())
    m, sup = training_masks("discrete", sigmas, 21, torch.Generator().manual_seed(3))
    assert torch.equal(m, audio_mask(sigmas, 21, torch.Generator().manual_seed(3)))
    assert torch.equal(sup, m == 0) and torch.equal(sup, supervision_mask(m))
    with pytest.raises(ValueError, match="mode"):
        training_masks("partial", sigmas, 21)


def _frame_coded_tokens(batch: int, frames: int) -> torch.Tensor:
    """(B, F, 4, 256) tokens whose every value encodes (sample, frame, part, channel)."""
    b = torch.arange(batch).view(-1, 1, 1, 1) * 1e6
    fr = torch.arange(frames).view(1, -1, 1, 1) * 1e3
    part = torch.arange(4).view(1, 1, -1, 1) * 256
    ch = torch.arange(256).view(1, 1, 1, -1)
    return (b + fr + part + ch).double()


def test_phys_targets_map_81_frames_to_84_tokens():
    tokens = _frame_coded_tokens(2, 81)
    out = phys_targets(tokens, num_latent_frames(81))
    assert out.shape == (2, 21, 4, PHYS_FRAME_DIM)
    assert out.shape[1] * out.shape[2] == 84
    assert torch.equal(out, phys_targets(tokens.flatten(2), 21))  # (B, F, 1024) input gives the same
    flat = tokens.flatten(2)  # (B, F, 1024)
    for i in range(21):
        frames = [0, 0, 0, 0] if i == 0 else [4 * i - 3, 4 * i - 2, 4 * i - 1, 4 * i]
        for slot, frame in enumerate(frames):
            assert torch.equal(out[:, i, slot], flat[:, frame])


def test_phys_targets_errors_name_the_fix():
    with pytest.raises(ValueError, match="81 frames"):
        phys_targets(torch.zeros(1, 80, 1024), 21)
    with pytest.raises(ValueError, match=r"\(B, F, 4, 256\)"):
        phys_targets(torch.zeros(1, 81, 3, 256), 21)
    with pytest.raises(ValueError, match="1024"):
        phys_targets(torch.zeros(1, 81, 1000), 21)


def test_discrete_loss_value_and_gradient_only_at_supervised_latents():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(2, 5, 4, 8, generator=g, requires_grad=True)
    target = torch.randn(2, 5, 4, 8, generator=g)
    supervise = torch.tensor([[True, False, False, True, False], [False, False, True, False, False]])
    loss = discrete_loss(pred, target, supervise)
    sel = supervise[:, :, None, None].expand_as(pred)
    expected = ((pred.detach() - target)[sel] ** 2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert bool((pred.grad[~sel] == 0).all())
    assert bool((pred.grad[sel] != 0).all())


def test_discrete_loss_ignores_unsupervised_values_even_non_finite():
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(1, 4, 4, 8, generator=g)
    target = torch.randn(1, 4, 4, 8, generator=g)
    supervise = torch.tensor([[True, False, True, False]])
    base = discrete_loss(pred, target, supervise)
    poisoned = pred.clone()
    poisoned[0, 1] = float("inf")
    poisoned[0, 3] = float("nan")
    poisoned.requires_grad_(True)
    loss = discrete_loss(poisoned, target, supervise)
    assert loss.item() == pytest.approx(base.item())
    loss.backward()
    assert bool(torch.isfinite(poisoned.grad).all()) and bool((poisoned.grad[0, 1] == 0).all())


def test_discrete_loss_with_nothing_supervised_is_zero_with_a_graph():
    pred = torch.randn(2, 3, 4, 8, requires_grad=True)
    loss = discrete_loss(pred, torch.randn(2, 3, 4, 8), torch.zeros(2, 3, dtype=torch.bool))
    assert loss.item() == 0.0 and not torch.isnan(loss)
    assert loss.requires_grad
    loss.backward()
    assert pred.grad is not None and bool((pred.grad == 0).all())


def test_discrete_loss_with_algorithm_1_masks_end_to_end():
    g = torch.Generator().manual_seed(4)
    tokens = torch.randn(3, 81, 1024, generator=g)
    target = phys_targets(tokens, 21)
    pred = torch.randn(3, 21, 4, 1024, generator=g, requires_grad=True)
    m = audio_mask(torch.tensor([0.0, 0.3, 1.0]), 21, g)
    loss = discrete_loss(pred, target, supervision_mask(m))
    loss.backward()
    masked = (m == 0)[:, :, None, None].expand_as(pred)
    assert bool((pred.grad[~masked] == 0).all())
    assert bool((pred.grad[2] == 0).all())  # sigma = 1: nothing masked, nothing supervised in sample 2


def test_discrete_loss_shape_errors():
    pred = torch.zeros(2, 3, 4, 8)
    with pytest.raises(ValueError, match="same shape"):
        discrete_loss(pred, torch.zeros(2, 3, 4, 7), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(B, f\) mask"):
        discrete_loss(pred, pred, torch.ones(2, 4, dtype=torch.bool))

