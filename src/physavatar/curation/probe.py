"""Find and probe the raw inputs: container, streams, duration, frame rate (variable included), audio.

`probe_file` never raises for a bad file: it returns a record with `ok: False` and the reason (the
MediaError text of `physavatar.io`, which names the file and the fix), so one corrupt, truncated,
zero-length, audio-less or non-video file is logged and skipped, never fatal.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def list_inputs(raw_dir: str | os.PathLike) -> list[Path]:
    """Every regular, non-hidden file under raw_dir (sorted; probing decides what is a video)."""
    raw = Path(raw_dir)
    out = []
    for root, dirs, files in os.walk(raw):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [Path(root) / f for f in sorted(files) if not f.startswith(".")]
    return out


def file_key(path: Path, raw_dir: Path) -> dict:
    """What identifies a source for resuming: its path under RAW_DIR, size and modification time."""
    st = path.stat()
    rel = path.relative_to(raw_dir).as_posix()
    return {"file": rel, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def source_id(rel: str) -> str:
    """Stable 10-hex id of a source file (its clips are named <id>_<nnn>)."""
    return hashlib.sha1(rel.encode()).hexdigest()[:10]


def probe_file(path: Path) -> dict:
    """Probe record: {"ok": True, container, video {...}, audio {...}} or {"ok": False, "reason": ...}."""
    import av

    from physavatar.io import MediaError, probe_video

    try:
        info = probe_video(path)
    except MediaError as err:
        return {"ok": False, "reason": str(err)}
    except Exception as err:  # noqa: BLE001 - an unexpected decoder failure is still one bad file
        return {"ok": False, "reason": f"{path}: could not be probed ({type(err).__name__}: {err})"}
    rec = {"ok": True, "duration_s": round(info.duration_s, 4), "video": {
        "codec": info.codec, "width": info.width, "height": info.height, "fps": round(info.fps, 4),
        "is_vfr": info.is_vfr, "num_frames": info.num_frames, "rotation": info.rotation}}
    try:
        with av.open(str(path), metadata_errors="ignore") as c:
            rec["container"] = c.format.name
            rec["streams"] = [s.type for s in c.streams]
            a = c.streams.audio[0] if c.streams.audio else None
            rec["audio"] = None if a is None else {
                "codec": a.codec_context.name, "sample_rate": a.rate, "channels": a.codec_context.channels}
    except Exception as err:  # noqa: BLE001
        return {"ok": False, "reason": f"{path}: container could not be read ({err})"}
    if rec["audio"] is None:
        rec.update(ok=False, reason=f"{path}: is a video with no audio track; talking clips need the speech")
    return rec
