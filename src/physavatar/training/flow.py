"""Rectified flow in Wan's convention: the continuous half of the objective (paper §3.1 eq. 1, §3.5 eq. 6).

Wan (and diffusers' `FlowMatchEulerDiscreteScheduler`, DiffSynth's Wan trainer) put noise at sigma = 1:

    x_t = (1 - sigma) * x0 + sigma * eps,      target v = eps - x0,      model timestep = sigma * 1000.

The paper writes the same path with the opposite naming (its x_1 is data, t = 1 - sigma); only the sign of
the velocity differs, and we keep Wan's sign so the pretrained Wan2.1-VACE weights are fine-tuned, not
re-taught. Integrating dx/dsigma = v from sigma = 1 to 0 with Euler steps (`x += (s_next - s) * v`, exactly
diffusers' `FlowMatchEulerDiscreteScheduler.step`) walks from noise to data.

Training samples a discrete step index uniformly over `num_train_timesteps` and takes the shifted sigma of
that step (DiffSynth's Wan training recipe; the grid equals diffusers' training grid `scheduler.sigmas`).
Sigma (not the index) is what Algorithm 1 in `masking.py` consumes.
"""

from __future__ import annotations

from typing import Literal

import torch

# Wan2.1 training/inference commonly uses shift 5 (DiffSynth's Wan trainer, Wan T2V sampling); 480p
# inference in diffusers' examples uses 3. Configurable everywhere.
DEFAULT_SHIFT = 5.0
NUM_TRAIN_TIMESTEPS = 1000

Reduction = Literal["mean", "per_sample", "none"]


def _check_shift(shift: float) -> None:
    if not shift > 0:
        raise ValueError(f"shift={shift!r} must be > 0 (1 = no shift; Wan uses 3 or 5)")


def shift_sigmas(sigmas: torch.Tensor, shift: float) -> torch.Tensor:
    """Wan's timestep shift, elementwise: sigma' = shift*sigma / (1 + (shift-1)*sigma). Keeps 0 and 1 fixed,
    is increasing, and for shift > 1 spends more of the schedule at high noise."""
    _check_shift(shift)
    return shift * sigmas / (1.0 + (shift - 1.0) * sigmas)


def shifted_sigmas(num_steps: int = NUM_TRAIN_TIMESTEPS, shift: float = DEFAULT_SHIFT) -> torch.Tensor:
    """The discrete training grid, descending: shift(k / num_steps) for k = num_steps, ..., 1.

    (num_steps,) float32, first entry 1.0 (pure noise), last entry shift(1/num_steps) > 0; identical to
    diffusers' `FlowMatchEulerDiscreteScheduler(num_train_timesteps=num_steps, shift=shift).sigmas`.
    """
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps={num_steps!r} must be a positive int (Wan trains with 1000)")
    # float64 for the grid so the shifted values match diffusers' float32 grid to the last bit of rounding
    k = torch.arange(num_steps, 0, -1, dtype=torch.float64)
    return shift_sigmas(k / num_steps, shift).to(torch.float32)


def sample_training_sigmas(
    batch: int,
    generator: torch.Generator | None = None,
    shift: float = DEFAULT_SHIFT,
    num_train_timesteps: int = NUM_TRAIN_TIMESTEPS,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One training sigma per sample: a uniform step index over the grid, then that step's shifted sigma.

    Returns (sigmas, timesteps), both (batch,) float32; `timesteps = sigmas * num_train_timesteps` is the
    model's `timestep` input. The generator must be a CPU generator (indices are drawn on CPU so a seed
    gives the same draw on every device) and the results are moved to `device`.
    """
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch={batch!r} must be a positive int")
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(f"generator is on {generator.device}; pass a CPU torch.Generator (draws happen on CPU)")
    grid = shifted_sigmas(num_train_timesteps, shift)
    index = torch.randint(0, num_train_timesteps, (batch,), generator=generator)
    sigmas = grid[index]
    timesteps = sigmas * num_train_timesteps
    return sigmas.to(device), timesteps.to(device)


def _broadcast_sigmas(sigmas: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) sigmas -> (B, 1, 1, ...) to broadcast over a (B, ...) sample."""
    sigmas = torch.as_tensor(sigmas, device=like.device)
    if sigmas.ndim != 1 or sigmas.shape[0] != like.shape[0]:
        raise ValueError(
            f"sigmas has shape {tuple(sigmas.shape)}; give one sigma per sample, shape ({like.shape[0]},), "
            f"for samples of shape {tuple(like.shape)}"
        )
    return sigmas.to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


def _check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} {tuple(a.shape)} and {name_b} {tuple(b.shape)} must have the same shape")


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - sigma) * x0 + sigma * noise, one sigma per sample (x0, noise: (B, ...), sigmas: (B,))."""
    _check_same_shape("x0", x0, "noise", noise)
    s = _broadcast_sigmas(sigmas, x0)
    return (1.0 - s) * x0 + s * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """v = d x_t / d sigma = noise - x0 (what the DiT regresses; eq. 6)."""
    _check_same_shape("x0", x0, "noise", noise)
    return noise - x0


def continuous_loss(pred: torch.Tensor, target: torch.Tensor, reduction: Reduction = "mean") -> torch.Tensor:
    """Eq. 6: MSE between the predicted and the true velocity, computed in float32.

    reduction: "mean" -> scalar over all elements; "per_sample" -> (B,) mean per sample; "none" -> elementwise.
    """
    _check_same_shape("pred", pred, "target", target)
    err = (pred.float() - target.float()).square()
    if reduction == "mean":
        return err.mean()
    if reduction == "per_sample":
        return err.reshape(err.shape[0], -1).mean(dim=1)
    if reduction == "none":
        return err
    raise ValueError(f"reduction={reduction!r}: use 'mean', 'per_sample' or 'none'")
