"""One world clip: identity + speech -> behaviour -> ground-truth keypoints -> frames, tokens, reference.

    clip = make_clip(identity_seed=3, clip_seed=17, num_frames=81, size=128)
    clip.frames (F, H, W, 3) uint8, clip.wav (F * 640,), clip.keypoints (F, 127, 3), clip.tokens (F, 4, 256)

Deterministic from (identity seed, clip seed, num_frames, size). `drive_avatar` renders an identity
speaking *any* 16 kHz audio (e.g. a user's recording).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from physavatar.constants import SAMPLES_PER_FRAME
from physavatar.physstate.tokens import encode_keypoints
from physavatar.world.behaviour import AudioFeatures, Motion, audio_features, drive, neutral_motion
from physavatar.world.body import pose_keypoints
from physavatar.world.identity import Identity, make_identity
from physavatar.world.render import Renderer
from physavatar.world.speech import RUNNING_P, Speech, make_speech


@dataclass
class Clip:
    identity: Identity
    clip_seed: int
    frames: np.ndarray  # (F, H, W, 3) uint8
    wav: np.ndarray  # (F * 640,) float32, 16 kHz mono
    keypoints: np.ndarray  # (F, 127, 3) float32
    tokens: np.ndarray  # (F, 4, 256) float32
    reference: np.ndarray  # (H, W, 3) uint8: the identity's neutral frame
    motion: Motion
    features: AudioFeatures
    speech: Speech | None = None
    extra: dict = field(default_factory=dict)


def reference_image(identity: Identity, size: int = 128) -> np.ndarray:
    """The identity's neutral frame (mouth closed, eyes open, hands at rest, head straight)."""
    _, rig = pose_keypoints(identity, neutral_motion(1))
    return Renderer(identity, size).frame(rig, 0)


def drive_avatar(identity: Identity, wav: np.ndarray, clip_seed: int, size: int = 128) -> Clip:
    """Render `identity` speaking 16 kHz mono `wav` (trimmed to whole 40 ms frames)."""
    num_frames = len(wav) // SAMPLES_PER_FRAME
    wav = np.asarray(wav, np.float32)[: num_frames * SAMPLES_PER_FRAME]
    features = audio_features(wav)
    motion = drive(features, identity.style, clip_seed)
    kp, rig = pose_keypoints(identity, motion)
    renderer = Renderer(identity, size)
    _, neutral_rig = pose_keypoints(identity, neutral_motion(1))
    return Clip(
        identity=identity,
        clip_seed=clip_seed,
        frames=renderer.video(rig),
        wav=wav,
        keypoints=kp,
        tokens=encode_keypoints(kp),
        reference=renderer.frame(neutral_rig, 0),
        motion=motion,
        features=features,
    )


def make_clip(
    identity_seed: int, clip_seed: int, num_frames: int = 81, size: int = 128, language: str | None = None,
    framing: str = "mixed", running_p: float = RUNNING_P,
) -> Clip:
    """A complete world clip with synthesized speech; deterministic from the two seeds (and running_p: the
    share of running-speech clips, world/speech.py)."""
    if num_frames < 2:
        raise ValueError(f"a clip needs at least 2 frames, got num_frames={num_frames}")
    speech = make_speech(clip_seed, num_frames, language, running_p)
    clip = drive_avatar(make_identity(identity_seed, framing), speech.wav, clip_seed, size)
    clip.speech = speech
    return clip
