"""Constants shared by every stage: the one place for rates, strides and the physical-state layout."""

FPS = 25  # video frames per second (paper: 25 fps clips)
SAMPLE_RATE = 16_000  # audio samples per second (Whisper's rate)
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640 audio samples per video frame

# Wan VAE: the first latent frame encodes the first video frame alone, each later latent frame encodes
# the next 4 video frames, so F video frames <-> f = 1 + (F - 1) / 4 latent frames (81 <-> 21).
VAE_TEMPORAL_STRIDE = 4
VAE_SPATIAL_STRIDE = 8
PATCH_SIZE = (1, 2, 2)

# Physical state (Appendix B): per video frame, 4 tokens of 256 = 1024 values: body, face, left hand, right hand.
PHYS_PARTS = ("body", "face", "left_hand", "right_hand")
PHYS_TOKENS_PER_FRAME = 4
PHYS_TOKEN_DIM = 256
PHYS_FRAME_DIM = PHYS_TOKENS_PER_FRAME * PHYS_TOKEN_DIM  # 1024
NUM_BODY_KEYPOINTS = 17
NUM_FACE_KEYPOINTS = 68
NUM_HAND_KEYPOINTS = 21
NUM_KEYPOINTS = NUM_BODY_KEYPOINTS + NUM_FACE_KEYPOINTS + 2 * NUM_HAND_KEYPOINTS  # 127


def num_latent_frames(num_frames: int) -> int:
    """Latent frames f for F video frames; F must be 1 + 4k."""
    if num_frames < 1 or (num_frames - 1) % VAE_TEMPORAL_STRIDE:
        raise ValueError(
            f"{num_frames} video frames cannot be encoded by the Wan VAE: use 1 + 4k frames (e.g. 81)"
        )
    return 1 + (num_frames - 1) // VAE_TEMPORAL_STRIDE


def num_video_frames(num_latents: int) -> int:
    """Video frames F for f latent frames (inverse of `num_latent_frames`)."""
    return 1 + VAE_TEMPORAL_STRIDE * (num_latents - 1)
