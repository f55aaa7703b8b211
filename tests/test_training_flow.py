"""Rectified flow in Wan's convention: schedule, sampling, noising, targets, loss."""

import math

import pytest
import torch

from physavatar.training.flow import (
    add_noise,
    continuous_loss,
    sample_training_sigmas,
    shift_sigmas,
    shifted_sigmas,
    velocity_target,
)


@pytest.mark.parametrize("shift", [1.0, 3.0, 5.0, 0.5])
def test_grid_endpoints_and_monotonicity(shift):
    grid = shifted_sigmas(1000, shift)
    assert grid.shape == (1000,) and grid.dtype == torch.float32
    assert grid[0].item() == pytest.approx(1.0, abs=1e-7)  # step 0 is pure noise
    assert grid[-1].item() == pytest.approx(shift * 1e-3 / (1 + (shift - 1) * 1e-3), rel=1e-5)
    assert bool((grid[1:] < grid[:-1]).all())  # strictly descending
    assert bool((grid > 0).all())


def test_shift_one_is_identity_and_known_values():
    grid = shifted_sigmas(8, 1.0)
    assert torch.allclose(grid, torch.tensor([8, 7, 6, 5, 4, 3, 2, 1], dtype=torch.float32) / 8)
    s = torch.tensor([0.0, 0.25, 0.5, 1.0])
    assert torch.allclose(shift_sigmas(s, 1.0), s)
    # shift 3 at 0.5: 1.5 / (1 + 1) = 0.75; shift 5 at 0.2: 1 / 1.8
    assert shift_sigmas(torch.tensor(0.5), 3.0).item() == pytest.approx(0.75)
    assert shift_sigmas(torch.tensor(0.2), 5.0).item() == pytest.approx(1 / 1.8)
    # a larger shift pushes every interior sigma towards noise, fixing the endpoints
    s = torch.linspace(0, 1, 11)
    assert bool((shift_sigmas(s, 5.0)[1:-1] > shift_sigmas(s, 3.0)[1:-1]).all())
    assert torch.allclose(shift_sigmas(s, 5.0)[[0, -1]], torch.tensor([0.0, 1.0]))


def test_grid_matches_diffusers_training_scheduler():
    sched_mod = pytest.importorskip("diffusers.schedulers.scheduling_flow_match_euler_discrete")
    for shift in (1.0, 3.0, 5.0):
        sched = sched_mod.FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
        grid = shifted_sigmas(1000, shift)
        assert torch.allclose(sched.sigmas, grid, atol=2e-7)
        # diffusers' scale_noise is the forward process: same x_t from the same step
        g = torch.Generator().manual_seed(0)
        x0, noise = torch.randn(4, 3, 5, generator=g), torch.randn(4, 3, 5, generator=g)
        steps = torch.tensor([0, 7, 500, 999])
        ours = add_noise(x0, noise, grid[steps])
        theirs = sched.scale_noise(x0, sched.timesteps[steps], noise)
        assert torch.allclose(ours, theirs, atol=1e-6)


def test_sample_training_sigmas_seeded_on_grid_and_uniform():
    shift = 5.0
    sig_a, ts_a = sample_training_sigmas(20_000, torch.Generator().manual_seed(1), shift=shift)
    sig_b, ts_b = sample_training_sigmas(20_000, torch.Generator().manual_seed(1), shift=shift)
    sig_c, _ = sample_training_sigmas(20_000, torch.Generator().manual_seed(2), shift=shift)
    assert torch.equal(sig_a, sig_b) and torch.equal(ts_a, ts_b) and not torch.equal(sig_a, sig_c)
    assert sig_a.shape == ts_a.shape == (20_000,) and sig_a.dtype == torch.float32
    assert torch.allclose(ts_a, sig_a * 1000)
    grid = shifted_sigmas(1000, shift)
    assert bool(torch.isin(sig_a, grid).all())  # every draw is a grid value
    # uniform step index: the index histogram is flat (each of 10 bins holds ~10%) ...
    index = (grid[None, :] == sig_a[:, None]).float().argmax(dim=1)
    counts = torch.bincount(index // 100, minlength=10).float() / 20_000
    assert float((counts - 0.1).abs().max()) < 0.015
    # ... so the sigma mean is E[shift(u)], u ~ U(0, 1): for shift 5, (5/4)(1 - ln(5)/4) = 0.747, not 0.5
    assert float(sig_a.mean()) == pytest.approx(1.25 * (1 - math.log(5) / 4), abs=0.01)


def test_sample_training_sigmas_rejects_bad_input():
    with pytest.raises(ValueError, match="batch"):
        sample_training_sigmas(0)
    with pytest.raises(ValueError, match="shift"):
        sample_training_sigmas(2, shift=0.0)
    with pytest.raises(ValueError, match="num_steps"):
        shifted_sigmas(0, 1.0)


def test_add_noise_endpoints_and_per_sample_sigmas():
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(3, 2, 4, 4, generator=g), torch.randn(3, 2, 4, 4, generator=g)
    xt = add_noise(x0, noise, torch.tensor([0.0, 1.0, 0.25]))
    assert torch.equal(xt[0], x0[0])  # sigma 0: clean
    assert torch.equal(xt[1], noise[1])  # sigma 1: pure noise
    assert torch.allclose(xt[2], 0.75 * x0[2] + 0.25 * noise[2])
    with pytest.raises(ValueError, match="one sigma per sample"):
        add_noise(x0, noise, torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="same shape"):
        add_noise(x0, noise[:, :1], torch.tensor([0.5, 0.5, 0.5]))


def test_velocity_is_the_derivative_of_the_path():
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(2, 6, generator=g), torch.randn(2, 6, generator=g)
    sigmas = torch.tensor([0.3, 0.8], requires_grad=True)
    xt = add_noise(x0, noise, sigmas)
    (d_sigma,) = torch.autograd.grad(xt.sum(), sigmas)  # sum over elements of dx_t/dsigma
    assert torch.allclose(d_sigma, velocity_target(x0, noise).sum(dim=1))


def _euler(x, sigmas, velocity):
    """diffusers' FlowMatchEulerDiscreteScheduler.step: x <- x + (sigma_next - sigma) * v(x, sigma)."""
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        x = x + (s_next - s) * velocity(x, s)
    return x


def test_euler_with_exact_velocity_recovers_data_from_noise():
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(4, 16, generator=g), torch.randn(4, 16, generator=g)
    # the exact velocity field of a single data point: v(x, s) = (x - x0) / s (v = eps - x0 with eps solved
    # from x = (1 - s) x0 + s eps); the path is straight, so any Euler grid lands on x0
    sigmas = torch.cat([shifted_sigmas(10, 5.0), torch.zeros(1)])
    out = _euler(noise, sigmas, lambda x, s: (x - x0) / s)
    assert torch.allclose(out, x0, atol=1e-5)
    # a wrong-sign convention (v = x0 - eps) walks away from the data instead
    bad = _euler(noise, sigmas, lambda x, s: -(x - x0) / s)
    assert float((bad - x0).abs().mean()) > 1.0


def test_euler_with_exact_gaussian_velocity_reproduces_the_data_distribution():
    # data N(mu, s^2); the exact (posterior-mean) velocity E[eps - x0 | x_sigma] is affine in x
    mu, sd = 3.0, 0.5

    def velocity(x, sigma):
        a = 1.0 - sigma
        var = a**2 * sd**2 + sigma**2
        centred = x - a * mu
        return sigma * centred / var - (mu + a * sd**2 * centred / var)

    noise = torch.randn(50_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sigmas = torch.cat([shifted_sigmas(200, 3.0).double(), torch.zeros(1, dtype=torch.float64)])
    out = _euler(noise, sigmas, velocity)
    assert float(out.mean()) == pytest.approx(mu, abs=0.02)
    assert float(out.std()) == pytest.approx(sd, abs=0.02)


def test_continuous_loss_reductions():
    pred = torch.tensor([[1.0, 3.0], [0.0, 0.0]], requires_grad=True)
    target = torch.tensor([[0.0, 1.0], [0.0, 2.0]])
    assert continuous_loss(pred, target).item() == pytest.approx((1 + 4 + 0 + 4) / 4)
    assert torch.allclose(continuous_loss(pred, target, "per_sample"), torch.tensor([2.5, 2.0]))
    assert torch.allclose(continuous_loss(pred, target, "none"), torch.tensor([[1.0, 4.0], [0.0, 4.0]]))
    continuous_loss(pred, target).backward()
    assert torch.allclose(pred.grad, 2 * (pred.detach() - target) / 4)
    with pytest.raises(ValueError, match="reduction"):
        continuous_loss(pred, target, "sum")
    with pytest.raises(ValueError, match="same shape"):
        continuous_loss(pred, target[:, :1])
