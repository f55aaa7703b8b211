"""The curation funnel: files, segments and clips (count and hours) that pass each filter, from the ledger.

Written as report.txt, report.json and report.png (a horizontal bar chart of hours per stage) in OUT_DIR.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from physavatar.curation import manifest as mf

_FILE_FAIL = {"readable video": {"probe"}, "with audio": {"audio"}, "decoded": {"decode", "error"}}
_SEG_DROPS = [("one speaker in view", "speaker"), ("one identity", "identity"), ("long enough", "length")]
_CLIP_DROPS = [("crop resolution", "resolution"), ("audio not silent", "audio"), ("audio-visual sync", "sync"),
               ("written", "decode")]


def summarize(ledger: list[dict]) -> dict:
    """Funnel rows [{stage, unit, count, hours}], drop reasons per stage, and the sync status."""
    rows = [{"stage": "files found", "unit": "files", "count": len(ledger),
             "hours": sum(r.get("duration_s", 0.0) for r in ledger) / 3600}]
    failed: set[str] = set()
    for stage, fails in _FILE_FAIL.items():
        failed |= fails
        ok = [r for r in ledger if r.get("stage") not in failed]
        rows.append({"stage": stage, "unit": "files", "count": len(ok),
                     "hours": sum(r.get("duration_s", 0.0) for r in ok) / 3600})
    segs = [s for r in ledger for s in r.get("segments", [])]
    rows.append({"stage": "scene segments", "unit": "segments", "count": len(segs),
                 "hours": sum(s["duration_s"] for s in segs) / 3600})
    dropped: set[str] = set()
    for stage, drop in _SEG_DROPS:
        dropped.add(drop)
        ok = [s for s in segs if s["drop"] not in dropped]
        hours = (sum(c["duration_s"] for s in ok for c in s["clips"]) if drop == "length"
                 else sum(s["duration_s"] for s in ok)) / 3600
        rows.append({"stage": stage, "unit": "segments" if drop != "length" else "clips",
                     "count": len(ok) if drop != "length" else sum(len(s["clips"]) for s in ok), "hours": hours})
    clips = [c for s in segs if s["drop"] is None for c in s["clips"]]
    cdropped: set[str] = set()
    for stage, drop in _CLIP_DROPS:
        cdropped.add(drop)
        ok = [c for c in clips if c["drop"] not in cdropped]
        rows.append({"stage": stage, "unit": "clips", "count": len(ok),
                     "hours": sum(c["duration_s"] for c in ok) / 3600})
    reasons = Counter()
    for r in ledger:
        if r.get("stage"):
            reasons[f"file/{r['stage']}"] += 1
    for s in segs:
        if s["drop"]:
            reasons[f"segment/{s['drop']}"] += 1
    for c in clips:
        if c["drop"]:
            reasons[f"clip/{c['drop']}"] += 1
    sync = Counter(c.get("sync", {}).get("status", "not reached") for c in clips)
    return {"funnel": rows, "drops": dict(sorted(reasons.items())), "sync": dict(sync),
            "clips_written": sum(r["clips"] for r in ledger), "hours_written": sum(r["kept_s"] for r in ledger) / 3600}


def format_text(summary: dict) -> str:
    lines = ["curation funnel (what passes each filter)", f"{'stage':<22}{'count':>8} {'unit':<9}{'hours':>10}"]
    for r in summary["funnel"]:
        lines.append(f"{r['stage']:<22}{r['count']:>8} {r['unit']:<9}{r['hours']:>10.4f}")
    lines.append("drops: " + (", ".join(f"{k}={v}" for k, v in summary["drops"].items()) or "none"))
    if summary["sync"].get("skipped"):
        lines.append("sync: skipped (no SyncNet weights given)")
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from physavatar.io import atomic_path

    rows = summary["funnel"]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.2))
    hours = [r["hours"] for r in rows]
    ax.barh(range(len(rows)), hours, color="#4C72B0")
    ax.set_yticks(range(len(rows)), [f"{r['stage']} ({r['count']} {r['unit']})" for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("hours")
    ax.set_title("physavatar curate: hours passing each filter")
    for i, h in enumerate(hours):
        ax.text(h, i, f" {h:.3g}", va="center", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def write_report(out: str | Path) -> dict:
    """Summarize OUT_DIR's ledger into report.txt / report.json / report.png; return the summary."""
    from physavatar.io import atomic_write

    out = Path(out)
    summary = summarize(mf.read_jsonl(out / mf.LEDGER))
    with atomic_write(out / "report.json", "w") as f:
        json.dump(summary, f, indent=1)
    with atomic_write(out / "report.txt", "w") as f:
        f.write(format_text(summary))
    plot(summary, out / "report.png")
    return summary
