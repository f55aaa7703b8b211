"""Collect and check a study's videos: one folder of mp4 files per method, named by the input id.

    ours/clip01.mp4  ours/clip02.mp4      baseline/clip01.mp4  baseline/clip02.mp4

Every method must have the same input ids (raters compare methods on the same inputs) and every file must be
a readable video; a problem is reported for all files at once, so the organiser fixes the set in one go.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

VIDEO_SUFFIXES = (".mp4",)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._+\-]{0,63}$")
_MAX_LISTED = 5  # missing ids / bad files named in one message


class StudyInputError(ValueError):
    """The videos given to `study create` are not a valid study (the message says what and how to fix it)."""


@dataclass(frozen=True)
class VideoEntry:
    method: str
    input_id: str
    path: str  # absolute
    size: int  # bytes
    duration_s: float
    width: int
    height: int
    has_audio: bool


def check_method_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise StudyInputError(f"method name {name!r}: use 1-64 letters, digits, spaces or ._+- "
                              "(starting with a letter or digit)")
    return name


def methods_from_parent(folder: str | os.PathLike) -> dict[str, Path]:
    """`--videos DIR`: every sub-folder of DIR that holds mp4 files is a method named after the sub-folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StudyInputError(f"--videos {folder}: not a folder; give a folder with one sub-folder of mp4 "
                              "files per method")
    subs = {p.name: p for p in sorted(folder.iterdir()) if p.is_dir() and _video_files(p)}
    if not subs:
        raise StudyInputError(f"--videos {folder}: no sub-folder holds mp4 files; lay it out as "
                              "DIR/<method>/<input_id>.mp4")
    return subs


def _video_files(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith(".")}


def collect_videos(methods: dict[str, str | os.PathLike]) -> list[VideoEntry]:
    """Check the method folders and probe every video; entries sorted by (method, input id).

    Raises StudyInputError naming every missing id and unreadable file (up to a few of each).
    """
    from physavatar.io.video import probe_video  # PyAV: only `study create` needs it, not the server

    if not methods:
        raise StudyInputError("no methods given; add --method NAME=DIR (repeat it per method) or --videos DIR")
    # 1. the files of each method
    files: dict[str, dict[str, Path]] = {}
    for name, folder in methods.items():
        check_method_name(name)
        folder = Path(folder)
        if not folder.is_dir():
            raise StudyInputError(f"method {name!r}: {folder} is not a folder; give a folder of mp4 files "
                                  "named by input id")
        found = _video_files(folder)
        if not found:
            raise StudyInputError(f"method {name!r}: {folder} holds no .mp4 files; give mp4 files named "
                                  "by input id (clip01.mp4, ...)")
        files[name] = found

    # 2. the same input ids everywhere
    all_ids = sorted(set().union(*(f.keys() for f in files.values())))
    gaps = [f"{name} lacks {_listed(sorted(set(all_ids) - f.keys()))}"
            for name, f in files.items() if set(all_ids) - f.keys()]
    if gaps:
        raise StudyInputError("every method needs a video for every input id (raters compare methods on the "
                              "same inputs): " + "; ".join(gaps) + "; add the missing videos or remove the extra ones")

    # 3. every file a readable video
    entries, bad = [], []
    for name in sorted(files):
        for input_id in all_ids:
            path = files[name][input_id].resolve()
            try:
                info = probe_video(path)
            except (ValueError, OSError) as err:
                bad.append(str(err))
                continue
            entries.append(VideoEntry(name, input_id, str(path), path.stat().st_size, info.duration_s,
                                      info.width, info.height, info.has_audio))
    if bad:
        raise StudyInputError(f"{len(bad)} unreadable video(s): " + " | ".join(bad[:_MAX_LISTED])
                              + (" | ..." if len(bad) > _MAX_LISTED else "") + "; re-export or remove them")

    # 4. blinding: a method name written into the file's metadata would reach the rater's browser
    leaks = [f"{e.path} ({e.method!r} in {where})" for e in entries
             for where in [_metadata_mentioning(e.path, list(files))] if where]
    if leaks:
        raise StudyInputError("method names appear in video metadata, which raters' browsers can read: "
                              + "; ".join(leaks[:_MAX_LISTED]) + "; strip it, e.g. `ffmpeg -i in.mp4 "
                              "-map_metadata -1 -c copy out.mp4`")
    return entries


def _metadata_mentioning(path: str, names: list[str]) -> str:
    """Which metadata field of the file (container or stream tags) names one of `names`; '' if none.

    Names shorter than 3 characters are not searched (they would match by chance)."""
    from physavatar.io._av import open_input

    with open_input(path, "video file") as container:
        tags = [("container", dict(container.metadata))]
        tags += [(f"stream {s.index}", dict(s.metadata)) for s in container.streams]
    # whole words only: a method called "iso" must not match the brand tag "isomiso2avc1mp41"
    patterns = [re.compile(rf"(?<![A-Za-z0-9]){re.escape(n)}(?![A-Za-z0-9])", re.I) for n in names if len(n) >= 3]
    for where, meta in tags:
        for key, value in meta.items():
            if any(p.search(str(value)) for p in patterns):
                return f"{where} tag {key!r}"
    return ""


def blinding_warnings(entries: list[VideoEntry]) -> list[str]:
    """Differences between methods that let raters tell them apart (or that make a dimension unjudgeable)."""
    warnings = []
    by_method: dict[str, list[VideoEntry]] = {}
    for e in entries:
        by_method.setdefault(e.method, []).append(e)
    sizes = {m: sorted({f"{e.width}x{e.height}" for e in es}) for m, es in by_method.items()}
    if len({tuple(v) for v in sizes.values()}) > 1:
        warnings.append("methods differ in frame size (" + "; ".join(f"{m}: {', '.join(v)}" for m, v in
                        sorted(sizes.items())) + "): raters may recognise a method by it; resize to one size")
    silent = [e for e in entries if not e.has_audio]
    if silent:
        warnings.append(f"{len(silent)} of {len(entries)} videos have no audio track (e.g. {silent[0].path}); "
                        "gesture, expression and lip-sync ratings need the speech: mux the audio in")
    return warnings


def _listed(ids: list[str]) -> str:
    head = ", ".join(ids[:_MAX_LISTED])
    return f"{len(ids)} input id(s): {head}" + (", ..." if len(ids) > _MAX_LISTED else "")
