"""End to end in a real headless browser: one rater scores every video by clicking (and typing) in the rating
page, stops and resumes, and the database and the exported CSV hold exactly what was clicked.

Needs Debian's chromium (`apt-get install -y chromium`: it plays H.264, unlike Playwright's own build) and
the Python package playwright (`pip install playwright`, without `playwright install`); skipped otherwise.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import sqlite3
import threading

import numpy as np
import pytest

from physavatar.cli import main
from physavatar.evaluation.study.rubric import DIMENSION_KEYS
from physavatar.evaluation.study.server import make_server
from physavatar.evaluation.study.storage import StudyDB

CHROMIUM = os.environ.get("PHYSAVATAR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
METHODS = ("HiddenMethodOne", "HiddenMethodTwo")
INPUTS = ("speechclipA", "speechclipB")

try:
    from playwright import sync_api
except ImportError as err:  # not installed, or broken (e.g. its greenlet wheel)
    pytest.skip(f"playwright is not importable ({err}); pip install playwright", allow_module_level=True)
if not (os.path.isfile(CHROMIUM) or shutil.which("chromium")):
    pytest.skip(f"chromium is not installed at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True)


def fmt(score: float) -> str:
    return str(int(score)) if score == int(score) else f"{score:.1f}"


@pytest.fixture()
def served(tmp_path):
    from physavatar.io.video import write_video

    rng = np.random.default_rng(0)
    for m in METHODS:
        for i in INPUTS:
            write_video(tmp_path / m / f"{i}.mp4", rng.integers(0, 256, (10, 64, 64, 3), dtype=np.uint8))
    db_path = tmp_path / "study.sqlite"
    assert main(["study", "create", "--db", str(db_path), "--raters", "1",
                 *[f"--method={m}={tmp_path / m}" for m in METHODS]]) == 0
    server = make_server(StudyDB(db_path), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, db_path, tmp_path
    server.shutdown()
    server.server_close()


def test_rater_scores_every_video_in_the_browser(served):
    server, db_path, tmp_path = served
    token = StudyDB(db_path).progress()[0].token
    rng = np.random.default_rng(1)
    clicked: dict[str, dict[str, float]] = {}  # item key -> the scores the rater chose
    pages: list[str] = []

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM if os.path.isfile(CHROMIUM) else shutil.which("chromium"),
                                    args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(10_000)
            page.goto(f"{server.url}/r/{token}")
            page.wait_for_selector("#dim-lip_sync")

            # 1. saving with dimensions left out is refused on the page (and would be by the server)
            page.click("label[for=gesture-3]")
            page.click("#save")
            page.wait_for_selector("#status.error")
            assert "Score every dimension first" in page.inner_text("#status")
            assert page.inner_text("#position") == "1 / 4"

            def rate(position: int, *, keyboard: bool) -> None:
                page.wait_for_function(f"() => document.getElementById('position').textContent === '{position} / 4'")
                # the video really plays from the server (the browser fetches it with Range requests)
                page.wait_for_function("() => document.getElementById('player').readyState >= 1")
                assert page.evaluate("document.getElementById('player').videoWidth") == 64
                key = re.search(r"/v/[^/]+/([0-9a-f]{16})\.mp4$", page.get_attribute("#player", "src")).group(1)
                scores = {d: float(rng.integers(2, 11)) / 2 for d in DIMENSION_KEYS}
                for d, s in scores.items():
                    page.click(f"label[for={d}-{fmt(s).replace('.', '_')}]")
                if keyboard:  # digits set a whole score, arrows move by 0.5, Enter saves
                    page.focus("#gesture-1")
                    page.keyboard.press("4")
                    page.keyboard.press("ArrowRight")
                    scores["gesture"] = 4.5
                assert page.inner_text("#dim-gesture legend .value") == fmt(scores["gesture"])
                pages.append(page.content())
                if keyboard:
                    page.keyboard.press("Enter")
                else:
                    page.click("#save")
                clicked[key] = scores

            # 2. two videos, then the rater stops; the reloaded page resumes at the third
            rate(1, keyboard=False)
            rate(2, keyboard=True)
            page.wait_for_function("() => document.getElementById('position').textContent === '3 / 4'")
            page.reload()
            page.wait_for_selector("#dim-lip_sync")
            assert page.inner_text("#done-count") == "2 of 4 rated"
            rate(3, keyboard=False)
            rate(4, keyboard=False)
            page.wait_for_function(
                "() => document.getElementById('status').textContent.startsWith('All 4 videos rated')")
            pages.append(page.content())
            page.screenshot(path=str(tmp_path / "rating_page.png"), full_page=True)
        finally:
            browser.close()

    # 3. blinding: no page the rater saw names a method or an input
    for html in pages:
        for secret in (*METHODS, *INPUTS):
            assert secret not in html

    # 4. the database holds exactly the clicked scores, one row per (rater, video, dimension)
    with sqlite3.connect(db_path) as con:
        rows = con.execute("SELECT i.item_key, m.name, a.dimension, a.score FROM answers a "
                           "JOIN rater_items i ON i.rater_id = a.rater_id AND i.video_id = a.video_id "
                           "JOIN videos v ON v.id = a.video_id JOIN methods m ON m.id = v.method_id").fetchall()
    assert len(clicked) == 4 and len(rows) == 4 * 5
    assert {(k, d): s for k, _, d, s in rows} == {(k, d): s for k, sc in clicked.items() for d, s in sc.items()}

    # 5. the export's means are the means of the clicked scores per method
    method_of = {k: m for k, m, _, _ in rows}
    assert main(["study", "export", "--db", str(db_path), "--out", str(tmp_path / "out")]) == 0
    with open(tmp_path / "out" / "summary.csv", newline="") as f:
        summary = {(r["method"], r["dimension"]): r for r in csv.DictReader(f)}
    for m in METHODS:
        for d in DIMENSION_KEYS:
            vals = [sc[d] for k, sc in clicked.items() if method_of[k] == m]
            assert len(vals) == 2 and int(summary[(m, d)]["n"]) == 2
            assert float(summary[(m, d)]["mean"]) == pytest.approx(np.mean(vals), abs=1e-4)
    assert (tmp_path / "out" / "radar.png").stat().st_size > 0
