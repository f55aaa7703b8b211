"""Study results: per-method statistics per dimension, the raw answers, and a radar chart like Figure 1(e).

    out/summary.csv   method, dimension, n, n_raters, mean, std, ci_low, ci_high   (one row per method x dimension)
    out/answers.csv   rater, method, input_id, dimension, score, answered_at      (every stored answer)
    out/radar.png     one polygon per method over the five dimensions, radius 1-5

Confidence intervals (column ci_method says which):
  "t" (default)      Student-t interval on all ratings of a method and dimension: mean ± t(1 - alpha/2, n - 1)
                     · std / sqrt(n), std the sample standard deviation (ddof = 1). It treats ratings as
                     independent; ratings by one rater are correlated, so with few raters it is optimistic.
  "rater-bootstrap"  percentile interval of the mean over B resamples of whole raters with replacement
                     (a cluster bootstrap): honest about rater effects, needs several raters to mean much.
n = 1 (or one rater, for the bootstrap) gives an undefined interval (empty cells).
"""

from __future__ import annotations

import csv
import math
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from physavatar.evaluation.study.rubric import DIMENSIONS, DIMENSION_KEYS, SCORE_MAX, SCORE_MIN
from physavatar.evaluation.study.storage import AnswerRow, StudyDB


CI_METHODS = ("t", "rater-bootstrap")


@dataclass(frozen=True)
class DimensionStats:
    method: str
    dimension: str
    n: int
    n_raters: int
    mean: float
    std: float  # sample std (ddof=1); nan for n < 2
    ci_low: float  # nan for n < 2
    ci_high: float
    ci_method: str = "t"


def t_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, sample std, low, high) of the Student-t confidence interval for the mean."""
    from scipy.stats import t as student_t

    if not values:
        raise ValueError("t_interval: no values")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence}: give a level between 0 and 1, e.g. 0.95")
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(student_t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return mean, std, mean - half, mean + half


def rater_bootstrap(answers: list[AnswerRow], confidence: float = 0.95, *, n_boot: int = 2000,
                    seed: int = 0) -> dict[tuple[str, str], tuple[float, float]]:
    """Percentile interval of each (method, dimension) mean when whole raters are resampled with replacement.

    All groups share the same resampled rater sets (one joint bootstrap). A resample holding no rating of a
    group is skipped for that group; a group rated by a single rater gets (nan, nan).
    """
    import numpy as np

    raters = sorted({a.rater for a in answers})
    keys = sorted({(a.method, a.dimension) for a in answers})
    r_index, k_index = {r: i for i, r in enumerate(raters)}, {k: i for i, k in enumerate(keys)}
    sums = np.zeros((len(keys), len(raters)))  # (K, R) sum of each rater's scores per group
    counts = np.zeros((len(keys), len(raters)))
    for a in answers:
        sums[k_index[(a.method, a.dimension)], r_index[a.rater]] += a.score
        counts[k_index[(a.method, a.dimension)], r_index[a.rater]] += 1
    draws = np.random.default_rng(seed).integers(0, len(raters), size=(n_boot, len(raters)))  # (B, R)
    weights = np.stack([np.bincount(d, minlength=len(raters)) for d in draws]).T  # (R, B) times drawn
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (sums @ weights) / (counts @ weights)  # (K, B); nan where a resample has no rating
    out = {}
    for key, k in k_index.items():
        if (counts[k] > 0).sum() < 2:
            out[key] = (math.nan, math.nan)
            continue
        low, high = np.nanpercentile(means[k], [50 * (1 - confidence), 50 * (1 + confidence)])
        out[key] = (float(low), float(high))
    return out


def summarise(answers: list[AnswerRow], confidence: float = 0.95, ci: str = "t", *, n_boot: int = 2000,
              seed: int = 0) -> list[DimensionStats]:
    """Statistics per (method, dimension), methods sorted by name, dimensions in the paper's order."""
    if ci not in CI_METHODS:
        raise ValueError(f"confidence interval {ci!r}: choose one of {', '.join(CI_METHODS)}")
    groups: dict[tuple[str, str], list[AnswerRow]] = defaultdict(list)
    for a in answers:
        groups[(a.method, a.dimension)].append(a)
    boot = rater_bootstrap(answers, confidence, n_boot=n_boot, seed=seed) if ci != "t" and answers else {}
    out = []
    for method in sorted({a.method for a in answers}):
        for dim in DIMENSION_KEYS:
            rows = groups.get((method, dim), [])
            if not rows:
                continue
            mean, std, low, high = t_interval([r.score for r in rows], confidence)
            if ci != "t":
                low, high = boot[(method, dim)]
            out.append(DimensionStats(method, dim, len(rows), len({r.rater for r in rows}), mean, std, low, high,
                                      ci))
    return out


def _fmt(x: float) -> str:
    return "" if math.isnan(x) else f"{x:.4f}"


def write_summary_csv(stats: list[DimensionStats], path: str | os.PathLike, confidence: float = 0.95) -> None:
    from physavatar.io.atomic import atomic_write

    pct = f"{confidence * 100:g}"
    with atomic_write(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["method", "dimension", "n", "n_raters", "mean", "std", f"ci{pct}_low", f"ci{pct}_high",
                    "ci_method"])
        for s in stats:
            w.writerow([s.method, s.dimension, s.n, s.n_raters, _fmt(s.mean), _fmt(s.std), _fmt(s.ci_low),
                        _fmt(s.ci_high), s.ci_method])


def write_answers_csv(answers: list[AnswerRow], path: str | os.PathLike) -> None:
    from physavatar.io.atomic import atomic_write

    with atomic_write(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["rater", "method", "input_id", "dimension", "score", "answered_at"])
        for a in answers:
            w.writerow([a.rater, a.method, a.input_id, a.dimension, f"{a.score:g}", a.answered_at])


def plot_radar(stats: list[DimensionStats], path: str | os.PathLike, title: str = "") -> None:
    """Radar chart (Figure 1(e)): the five dimensions as spokes, each method's mean scores as a polygon."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; must precede pyplot
    import matplotlib.pyplot as plt

    from physavatar.io.atomic import atomic_path

    means: dict[str, dict[str, float]] = defaultdict(dict)
    for s in stats:
        means[s.method][s.dimension] = s.mean
    angles = [2 * math.pi * k / len(DIMENSIONS) for k in range(len(DIMENSIONS))]
    fig = plt.figure(figsize=(6.4, 6.0), dpi=150)
    try:
        ax = fig.add_subplot(projection="polar")
        ax.set_theta_offset(math.pi / 2)  # first spoke up, clockwise as in the paper's figure
        ax.set_theta_direction(-1)
        ax.set_xticks(angles, [d.title.replace(" ", "\n") for d in DIMENSIONS], fontsize=9)
        ax.tick_params(axis="x", pad=6)
        ax.set_ylim(SCORE_MIN - 1, SCORE_MAX)  # centre at 0 so a score of 1 is still a visible polygon
        ax.set_yticks([1, 2, 3, 4, 5], ["1", "2", "3", "4", "5"], fontsize=7, color="#666")
        ax.set_rlabel_position(180 / len(DIMENSIONS))
        for method in sorted(means):
            # a dimension nobody rated for this method is drawn at the centre rather than dropped
            r = [means[method].get(d.key, 0.0) for d in DIMENSIONS]
            line, = ax.plot(angles + angles[:1], r + r[:1], linewidth=1.8, label=method)
            ax.fill(angles + angles[:1], r + r[:1], alpha=0.08, color=line.get_color())
        ax.legend(loc="upper right", bbox_to_anchor=(1.32, 1.12), fontsize=8, frameon=False)
        if title:
            ax.set_title(title, pad=42, fontsize=11)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)


@dataclass(frozen=True)
class ExportResult:
    summary_csv: Path
    answers_csv: Path
    radar_png: Path | None  # None when there are no answers yet
    num_answers: int
    stats: list[DimensionStats]


def export_study(db: StudyDB | str | os.PathLike, out_dir: str | os.PathLike, *, confidence: float = 0.95,
                 ci: str = "t", n_boot: int = 2000, seed: int = 0) -> ExportResult:
    """Write summary.csv, answers.csv and radar.png into `out_dir` (created if needed) from the stored answers."""
    db = db if isinstance(db, StudyDB) else StudyDB(db)
    out = Path(out_dir)
    answers = db.answers()
    stats = summarise(answers, confidence, ci, n_boot=n_boot, seed=seed)
    write_answers_csv(answers, out / "answers.csv")
    write_summary_csv(stats, out / "summary.csv", confidence)
    radar = None
    if stats:
        raters = len({a.rater for a in answers})
        radar = out / "radar.png"
        plot_radar(stats, radar, title=f"{db.title or 'Visual Turing test'} ({raters} rater{'s' * (raters != 1)})")
    return ExportResult(out / "summary.csv", out / "answers.csv", radar, len(answers), stats)
