"""The study export: per-method statistics with known answers, the CSV files and the radar chart."""

from __future__ import annotations

import csv
import math
import sqlite3

import numpy as np
import pytest
from PIL import Image

from physavatar.cli import main
from physavatar.evaluation.study.export import export_study, summarise, t_interval
from physavatar.evaluation.study.rubric import DIMENSION_KEYS
from physavatar.evaluation.study.storage import AnswerRow, create_study
from physavatar.evaluation.study.videos import VideoEntry

T_975_DF4 = 2.7764451051977987  # Student t 97.5% quantile, 4 degrees of freedom (statistical tables)


def test_t_interval_known_answer():
    mean, std, low, high = t_interval([1, 2, 3, 4, 5])
    half = T_975_DF4 * math.sqrt(2.5) / math.sqrt(5)
    assert (mean, std) == (3.0, pytest.approx(math.sqrt(2.5)))
    assert (low, high) == (pytest.approx(3 - half), pytest.approx(3 + half))
    assert t_interval([2, 2, 2]) == (2.0, 0.0, 2.0, 2.0)
    single = t_interval([4.5])
    assert single[0] == 4.5 and all(math.isnan(x) for x in single[1:])
    wide = t_interval([1, 2, 3, 4, 5], confidence=0.99)
    assert wide[2] < low and wide[3] > high
    with pytest.raises(ValueError, match="confidence"):
        t_interval([1, 2], confidence=95)


def test_summarise_groups_by_method_and_dimension():
    rows = [AnswerRow(f"r{k}", m, "in", d, s, "") for k, (m, s) in enumerate([("A", 1.0), ("A", 2.0), ("B", 5.0)])
            for d in DIMENSION_KEYS]
    stats = summarise(rows)
    assert [(s.method, s.dimension) for s in stats] == [(m, d) for m in "AB" for d in DIMENSION_KEYS]
    a = stats[0]
    assert (a.n, a.n_raters, a.mean, a.std) == (2, 2, 1.5, pytest.approx(math.sqrt(0.5)))
    assert stats[-1].n == 1 and stats[-1].mean == 5.0 and math.isnan(stats[-1].ci_low)


def _study(tmp_path, methods=("alpha", "beta"), inputs=("i1", "i2", "i3")):
    """A study database whose video files need not exist (export reads only the database)."""
    entries = [VideoEntry(m, i, str(tmp_path / m / f"{i}.mp4"), 1, 1.0, 64, 64, False) for m in methods for i in inputs]
    return create_study(tmp_path / "s.sqlite", entries, seed=3, title="Test study")


def test_export_matches_stored_answers(tmp_path):
    db = _study(tmp_path)
    raters = db.add_raters(3)
    rng = np.random.default_rng(0)
    given: dict[tuple[str, str], list[float]] = {}
    with_video = {}
    with sqlite3.connect(db.path) as con:  # organiser-side truth: which item key is which method
        for r in raters:
            for key, method in con.execute(
                    "SELECT i.item_key, m.name FROM rater_items i JOIN videos v ON v.id = i.video_id "
                    "JOIN methods m ON m.id = v.method_id WHERE i.rater_id = ?", (r.id,)):
                with_video[(r.token, key)] = method
    for (token, key), method in with_video.items():
        scores = {d: float(rng.integers(2, 11)) / 2 for d in DIMENSION_KEYS}
        db.save_answer(token, key, scores)
        for d, s in scores.items():
            given.setdefault((method, d), []).append(s)

    assert main(["study", "export", "--db", str(db.path), "--out", str(tmp_path / "out")]) == 0
    with open(tmp_path / "out" / "summary.csv", newline="") as f:
        summary = list(csv.DictReader(f))
    assert len(summary) == 2 * 5
    for row in summary:
        vals = given[(row["method"], row["dimension"])]
        assert int(row["n"]) == len(vals) == 9 and int(row["n_raters"]) == 3
        assert float(row["mean"]) == pytest.approx(np.mean(vals), abs=1e-4)
        assert float(row["std"]) == pytest.approx(np.std(vals, ddof=1), abs=1e-4)
        half = float(row["ci95_high"]) - float(row["mean"])
        assert half == pytest.approx(2.306004135 * np.std(vals, ddof=1) / 3, abs=2e-4)  # t(0.975, 8)
    with open(tmp_path / "out" / "answers.csv", newline="") as f:
        answers = list(csv.DictReader(f))
    assert len(answers) == 3 * 6 * 5 and {a["rater"] for a in answers} == {r.label for r in raters}
    for a in answers:
        assert a["method"] in ("alpha", "beta") and 1 <= float(a["score"]) <= 5
    assert not any(r.token in (tmp_path / "out" / "answers.csv").read_text() for r in raters)  # no credentials
    img = Image.open(tmp_path / "out" / "radar.png")
    assert img.format == "PNG" and min(img.size) > 400
    # the chart draws the methods: not a blank canvas
    assert np.asarray(img.convert("L")).std() > 10


def test_export_without_answers(tmp_path, capsys):
    db = _study(tmp_path)
    res = export_study(db, tmp_path / "out")
    assert res.num_answers == 0 and res.radar_png is None
    assert (tmp_path / "out" / "summary.csv").read_text().startswith("method,dimension,n,")
    assert main(["study", "export", "--db", str(tmp_path / "nope.sqlite"), "--out", str(tmp_path / "o")]) == 2
    assert "study create" in capsys.readouterr().err
    (tmp_path / "junk.sqlite").write_bytes(b"hello")
    assert main(["study", "export", "--db", str(tmp_path / "junk.sqlite"), "--out", str(tmp_path / "o")]) == 2
    assert "not a study database" in capsys.readouterr().err


def _rows(per_rater: dict[str, list[float]], method="A", dim="gesture"):
    return [AnswerRow(r, method, f"in{k}", dim, s, "") for r, scores in per_rater.items() for k, s in enumerate(scores)]


def test_rater_bootstrap_follows_raters_not_ratings():
    # every rater has mean 3: resampling raters cannot move the mean, so the interval is a point ...
    same = summarise(_rows({f"r{i}": [1.0, 5.0] * 5 for i in range(4)}), ci="rater-bootstrap")[0]
    assert (same.mean, same.ci_low, same.ci_high, same.ci_method) == (3.0, 3.0, 3.0, "rater-bootstrap")
    t = summarise(_rows({f"r{i}": [1.0, 5.0] * 5 for i in range(4)}))[0]
    assert t.ci_high - t.ci_low > 1  # ... while the t-interval sees 40 spread-out ratings
    # raters who disagree (each constant): the bootstrap interval is wider than the t-interval on 40 ratings
    rows = _rows({"r1": [1.0] * 10, "r2": [2.0] * 10, "r3": [4.0] * 10, "r4": [5.0] * 10})
    boot, t = summarise(rows, ci="rater-bootstrap")[0], summarise(rows)[0]
    assert boot.ci_low < 3 < boot.ci_high and boot.ci_high - boot.ci_low > 1.5 * (t.ci_high - t.ci_low)
    assert summarise(rows, ci="rater-bootstrap", seed=1)[0].ci_low == pytest.approx(boot.ci_low, abs=0.2)
    lone = summarise(_rows({"r1": [2.0, 3.0, 4.0]}), ci="rater-bootstrap")[0]
    assert math.isnan(lone.ci_low) and math.isnan(lone.ci_high)
    with pytest.raises(ValueError, match="choose one of"):
        summarise(rows, ci="bayes")
