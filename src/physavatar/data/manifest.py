"""The dataset manifest (`manifest.jsonl`, docs/clip_format.md) and JSON-lines files in general.

Writers append one complete line per finished item; a crash can leave at most a torn final line, which
readers ignore and `repair_jsonl` removes before the next append.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MANIFEST = "manifest.jsonl"


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Rows of a JSONL file ([] if absent); a torn final line (a crash mid-append) is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    rows, lines = [], path.read_text().splitlines()
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if n == len(lines) - 1:
                break
            raise ValueError(f"{path}:{n + 1}: not a JSON line; fix or delete that line and rerun") from None
    return rows


def rewrite_jsonl(path: str | os.PathLike, rows: list[dict]) -> None:
    """Replace a JSONL file with `rows`, atomically."""
    from physavatar.io.atomic import atomic_write

    with atomic_write(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def repair_jsonl(path: str | os.PathLike) -> list[dict]:
    """Drop a torn final line so the next append starts on a fresh line; return the rows."""
    path = Path(path)
    rows = read_jsonl(path)
    if path.exists() and path.stat().st_size and not path.read_text().endswith("\n"):
        rewrite_jsonl(path, rows)
    return rows


def read_manifest(root: str | os.PathLike, *, required: bool = False) -> list[dict]:
    """The clip rows of a dataset folder; with `required`, a folder without a manifest is an error."""
    path = Path(root) / MANIFEST
    if required and not path.exists():
        raise FileNotFoundError(f"{root}: no {MANIFEST}; give a dataset folder written by `physavatar world make` "
                                "or `physavatar curate`")
    return read_jsonl(path)
