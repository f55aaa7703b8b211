"""The metric math of §4.1 as pure functions of features (no networks, no files): easy to test exactly."""

from physavatar.evaluation.metrics.frechet import GaussianStats, frechet_distance, frechet_from_features
from physavatar.evaluation.metrics.gesture import (diversity, hand_confidence, hand_variance, normalize_pose,
                                                   pose_windows)
from physavatar.evaluation.metrics.identity import cosine_similarity, csim
from physavatar.evaluation.metrics.sync import SyncResult, sync_offset_search

__all__ = [
    "GaussianStats", "frechet_distance", "frechet_from_features",
    "diversity", "hand_confidence", "hand_variance", "normalize_pose", "pose_windows",
    "cosine_similarity", "csim",
    "SyncResult", "sync_offset_search",
]
