"""Reports: JSON (one key per metric, per method) and a Markdown table in the layout of Table 1.

Several methods go side by side as rows, best value per column in bold and second best underlined, as in the
paper; a metric that was not computed shows "–" and the reason is listed under the table, with the
backbone that produced every number.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from pathlib import Path

from physavatar.evaluation.config import METRIC_TABLE
from physavatar.evaluation.runner import MethodResult, MetricResult

REPORT_VERSION = 1


def _clean(x):
    # JSON has no NaN: per-video values that are NaN become null.
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def to_json(results: list[MethodResult], reference: str | None, config: dict) -> dict:
    methods = {}
    for r in results:
        entry = {"generated": r.generated, "num_videos": r.num_videos}
        entry.update({m: asdict(res) for m, res in r.metrics.items()})
        entry["timings_s"] = r.timings_s
        methods[r.name] = entry
    return _clean({"version": REPORT_VERSION, "reference": reference, "methods": methods, "config": config})


def from_json(data: dict) -> tuple[list[MethodResult], str | None]:
    """Read a saved report back (to put methods from several runs side by side)."""
    if data.get("version") != REPORT_VERSION or "methods" not in data:
        raise ValueError(f"not a physavatar eval report (version {data.get('version')!r}); re-run `physavatar eval`")
    keys = {k for k, *_ in METRIC_TABLE}
    results = []
    for name, entry in data["methods"].items():
        metrics = {m: MetricResult(**entry[m]) for m in entry if m in keys}
        results.append(MethodResult(name, entry["generated"], entry["num_videos"], metrics, entry.get("timings_s", {})))
    return results, data.get("reference")


def _ranks(results: list[MethodResult], metric: str, higher: bool) -> dict[str, int]:
    vals = [(r.metrics[metric].value, r.name) for r in results
            if metric in r.metrics and r.metrics[metric].value is not None]
    order = sorted({v for v, _ in vals}, reverse=higher)
    return {n: order.index(v) for v, n in vals}


def markdown_table(results: list[MethodResult], reference: str | None = None, emphasis: bool = True) -> str:
    """Table 1 layout: one row per method, columns FID … CSIM grouped by visual / gesture / facial quality."""
    cols = [c for c in METRIC_TABLE if any(c[0] in r.metrics for r in results)]
    groups = list(dict.fromkeys(c[2] for c in cols))
    lines = ["Columns: " + " · ".join(f"{g}: {', '.join(c[1] for c in cols if c[2] == g)}" for g in groups), ""]
    lines.append("| Method | " + " | ".join(c[1] for c in cols) + " |")
    lines.append("|---|" + "---:|" * len(cols))
    ranks = {c[0]: _ranks(results, c[0], c[3]) for c in cols}
    rank_on = emphasis and len(results) > 1
    for r in results:
        cells = []
        for key, _, _, _, decimals in cols:
            res = r.metrics.get(key)
            if res is None or res.value is None:
                cells.append("–")
                continue
            text = f"{res.value:.{decimals}f}"
            rank = ranks[key].get(r.name)
            if rank_on and rank == 0:
                text = f"**{text}**"
            elif rank_on and rank == 1:
                text = f"<u>{text}</u>"
            cells.append(text)
        lines.append(f"| {r.name} | " + " | ".join(cells) + " |")
    lines += ["", f"Reference set: {reference or '(none)'}. " + ("Best in **bold**, second <u>underlined</u>."
                                                                   if rank_on else "")]
    lines += ["", "Backbones and notes:", ""]
    for key, label, *_ in cols:
        notes: dict[str, list[str]] = {}  # note -> methods it applies to (one line when all share it)
        for r in results:
            res = r.metrics.get(key)
            if res is None:
                continue
            note = res.status if res.value is None else f"backbone: {res.backbone}"
            if res.value is not None and res.skipped:
                note += f"; {len(res.skipped)} video(s) without a value (e.g. {next(iter(res.skipped.values()))})"
            notes.setdefault(note, []).append(r.name)
        for note, names in notes.items():
            who = f" ({', '.join(names)})" if len(notes) > 1 else ""
            lines.append(f"- {label}{who}: {note}")
    return "\n".join(lines) + "\n"


def text_table(results: list[MethodResult]) -> str:
    """The same table as fixed-width text, for the terminal."""
    cols = [c for c in METRIC_TABLE if any(c[0] in r.metrics for r in results)]
    width = max(8, max(len(r.name) for r in results) + 2)
    head = "Method".ljust(width) + "".join(c[1].rjust(9) for c in cols)
    rows = [head, "-" * len(head)]
    for r in results:
        cells = []
        for key, _, _, _, decimals in cols:
            res = r.metrics.get(key)
            cells.append(("-" if res is None or res.value is None else f"{res.value:.{decimals}f}").rjust(9))
        rows.append(r.name.ljust(width) + "".join(cells))
    return "\n".join(rows) + "\n"


def write_report(path: str | os.PathLike, results: list[MethodResult], reference: str | None, config: dict) -> None:
    """Write .json (full report) or .md (table + backbones), atomically."""
    from physavatar.io.atomic import atomic_write

    path = Path(path)
    if path.suffix.lower() == ".json":
        text = json.dumps(to_json(results, reference, config), indent=2, ensure_ascii=False) + "\n"
    elif path.suffix.lower() in (".md", ".markdown"):
        text = "# physavatar eval\n\n" + markdown_table(results, reference)
    else:
        raise ValueError(f"{path}: report suffix {path.suffix!r} not supported; use .json or .md")
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text)
