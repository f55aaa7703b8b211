"""The synthetic avatar world: talking, gesturing 2-D people with exact ground truth (docs/world.md).

    identity (seed) + speech (espeak-ng, seed) -> behaviour (from the audio) -> keypoints -> frames

The embedded default dataset of the whole pipeline (`physavatar world make`), and its test bed.
"""

from physavatar.world.clip import Clip, drive_avatar, make_clip, reference_image
from physavatar.world.dataset import WorldDatasetConfig, make_dataset, read_manifest
from physavatar.world.identity import Identity, make_identity
from physavatar.world.render import Renderer
from physavatar.world.speech import Speech, make_speech, synthesize

__all__ = [
    "Clip", "Identity", "Renderer", "Speech", "WorldDatasetConfig", "drive_avatar", "make_clip",
    "make_dataset", "make_identity", "make_speech", "read_manifest", "reference_image", "synthesize",
]  # fmt: skip
