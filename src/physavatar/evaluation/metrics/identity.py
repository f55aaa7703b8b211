"""CSIM: cosine similarity of face-identity embeddings of generated frames to the reference image."""

from __future__ import annotations

import numpy as np


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of (N, D) and (N, D) or (D,) arrays -> (N,)."""
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    na = np.linalg.norm(a, axis=-1)
    nb = np.linalg.norm(b, axis=-1)
    if (na == 0).any() or (nb == 0).any():
        raise ValueError("CSIM: a face embedding is all zeros; the face backbone returned no identity")
    return (a * b).sum(-1) / (na * nb)


def csim(frame_embeddings: np.ndarray, reference_embedding: np.ndarray) -> float:
    """Mean over frames of cos(embedding(frame), embedding(reference)); 1 for a video of the reference itself."""
    frames = np.atleast_2d(np.asarray(frame_embeddings))
    if frames.shape[0] == 0:
        raise ValueError("CSIM: no face embeddings (no face found in any sampled frame)")
    return float(cosine_similarity(frames, np.asarray(reference_embedding).reshape(1, -1)).mean())
