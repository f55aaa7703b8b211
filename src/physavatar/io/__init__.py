"""Media I/O: audio, images and video in and out, with exact frame/sample/latent alignment.

Submodules import PyAV / OpenCV / PIL, so names here are resolved lazily (importing `physavatar.io` costs
nothing): `from physavatar.io import load_audio` works, and so does `from physavatar.io.audio import ...`.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "errors": ["MediaError", "MediaNotFoundError", "OutputExistsError", "MediaWarning"],
    "atomic": ["atomic_write", "atomic_path", "atomic_dir"],
    "timing": ["samples_for_frames", "frames_for_samples", "frame_sample_range", "frames_for_seconds",
               "latents_for_frames", "frames_for_latents", "latent_frame_range", "latent_sample_range",
               "samples_for_latents", "valid_num_frames", "pad_or_trim_audio"],
    "audio": ["load_audio", "write_wav", "validate_audio", "resample_audio"],
    "image": ["load_image", "detect_face", "fit_image"],
    "video": ["VideoInfo", "probe_video", "read_video", "iter_video_frames"],
    "video_writer": ["VideoWriter", "write_video"],
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'physavatar.io' has no attribute {name!r}")
    return getattr(importlib.import_module(f"physavatar.io.{_WHERE[name]}"), name)
