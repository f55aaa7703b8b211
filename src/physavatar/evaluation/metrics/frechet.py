"""Fréchet distance between two Gaussians fitted to features: FID (Inception frames), FVD (I3D clips), FGD (gestures).

d² = |μ1 − μ2|² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½)   (Heusel et al., 2017), with the matrix square root from
scipy.linalg.sqrtm and the numerical fixes of the reference implementations (pytorch-fid, TTUR): when the
product is singular (fewer samples than feature dimensions) the square root is retried with ε·I added to
both covariances, and a tiny imaginary part left by round-off is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg


@dataclass(frozen=True)
class GaussianStats:
    """Mean (D,) and covariance (D, D) of N feature vectors, kept in float64 as the reference code does."""

    mu: np.ndarray
    sigma: np.ndarray
    num_samples: int

    @classmethod
    def from_features(cls, features: np.ndarray, name: str = "features") -> "GaussianStats":
        feats = np.asarray(features, dtype=np.float64)
        if feats.ndim != 2:
            raise ValueError(f"{name}: expected a (N, D) feature array, got shape {feats.shape}")
        if feats.shape[0] < 2:
            raise ValueError(
                f"{name}: a Fréchet distance needs at least 2 samples to estimate a covariance, got "
                f"{feats.shape[0]}; give more frames / clips / videos"
            )
        if not np.isfinite(feats).all():
            raise ValueError(f"{name}: features contain NaN or inf; check the inputs and the backbone weights")
        return cls(mu=feats.mean(axis=0), sigma=np.cov(feats, rowvar=False), num_samples=feats.shape[0])


def _sqrtm(a: np.ndarray) -> np.ndarray:
    # scipy >= 1.16 deprecates `disp`; the plain call returns the root and warns only on ill-conditioning.
    return scipy.linalg.sqrtm(a)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """The Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2); ≥ 0 up to round-off (clipped at 0)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"Fréchet distance: shapes do not match (mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs "
            f"{sigma2.shape}); both sets must use the same backbone"
        )
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        # Singular product (e.g. fewer samples than dimensions): regularise both covariances, as pytorch-fid.
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        # Round-off leaves a small imaginary part; a large one means the covariances are broken.
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3 * max(1.0, np.abs(covmean).max())):
            raise ValueError(
                f"Fréchet distance: matrix square root has a large imaginary part "
                f"({np.abs(covmean.imag).max():.3g}); the features are degenerate"
            )
        covmean = covmean.real
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return float(max(value, 0.0))


def _trace_sqrt_product_lowrank(a: np.ndarray, b: np.ndarray) -> float:
    """Tr (Σa Σb)^½ from the samples, without a D × D square root.

    With centred samples A (Na, D), B (Nb, D), Σa Σb = Aᵀ A Bᵀ B / ((Na−1)(Nb−1)), whose non-zero eigenvalues
    are those of (A Bᵀ)(A Bᵀ)ᵀ / ((Na−1)(Nb−1)); so the trace of its square root is the sum of the singular
    values of A Bᵀ over √((Na−1)(Nb−1)). Exact, symmetric-PSD (no imaginary round-off), and O(Na·Nb·D).
    """
    ca, cb = a - a.mean(0), b - b.mean(0)
    sv = np.linalg.svd(ca @ cb.T, compute_uv=False)
    return float(sv.sum() / np.sqrt((len(a) - 1) * (len(b) - 1)))


def frechet_from_features(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between the Gaussians fitted to two (N, D) feature sets.

    When both sets have at most D samples (the usual case for per-set FID/FVD on a few hundred frames of
    2048-d features) the trace term comes from the samples (`_trace_sqrt_product_lowrank`: the same
    quantity, ~1000× faster than sqrtm of a 2048² matrix, which takes 20-40 s on 2 cores); otherwise the
    standard sqrtm path of `frechet_distance` is used. The two agree to round-off (tested).
    """
    a = GaussianStats.from_features(features_a, "generated features")
    b = GaussianStats.from_features(features_b, "reference features")
    dim = a.mu.size
    if max(a.num_samples, b.num_samples) > dim:
        return frechet_distance(a.mu, a.sigma, b.mu, b.sigma)
    fa, fb = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    diff = a.mu - b.mu
    value = diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2.0 * _trace_sqrt_product_lowrank(fa, fb)
    return float(max(value, 0.0))
