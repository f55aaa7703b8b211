"""The curation ledger (`curation.jsonl`) and the clip manifest (`manifest.jsonl`, docs/clip_format.md).

One complete JSON line per source file is appended to the ledger only after all of that file's clips
are renamed into place and listed in the clip manifest: the ledger line is the "done" mark. After a
crash or kill, `repair` drops a torn last line and any clip rows whose source has no ledger line (they
are rewritten when that file is processed again), so at most the file in progress is lost and a
resumed run ends with the same manifest as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from physavatar.data.manifest import MANIFEST, read_jsonl, rewrite_jsonl

LEDGER = "curation.jsonl"


def repair(out: Path) -> list[dict]:
    """Make ledger and manifest consistent after an interrupted run; return the ledger rows."""
    ledger_path, manifest_path = out / LEDGER, out / MANIFEST
    ledger = read_jsonl(ledger_path)
    if ledger_path.exists() and not ledger_path.read_text().endswith("\n") and ledger_path.stat().st_size:
        rewrite_jsonl(ledger_path, ledger)
    done = {r["file"] for r in ledger}
    clips = read_jsonl(manifest_path)
    keep = [c for c in clips if c.get("source") in done]
    if len(keep) != len(clips) or (manifest_path.exists() and manifest_path.stat().st_size
                                   and not manifest_path.read_text().endswith("\n")):
        rewrite_jsonl(manifest_path, keep)
    listed = {c["id"] for c in keep}
    clips_dir = out / "clips"
    if clips_dir.is_dir():
        for d in clips_dir.iterdir():  # temp folders and clips of the file that was in progress
            if d.name.startswith(".") or d.name not in listed:
                shutil.rmtree(d, ignore_errors=True)
    return ledger


def append(path: Path, rows: list[dict]) -> None:
    """Append complete lines and fsync, so a finished file survives a crash right after."""
    with open(path, "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
        f.flush()
        os.fsync(f.fileno())
