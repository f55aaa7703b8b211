"""PhysAvatar: audio-driven, physically grounded avatar video generation.

Importing this package does no work: heavy modules (torch, diffusers) are imported by the modules that
need them, so `physavatar --help` stays fast.
"""

__version__ = "0.1.0"
