"""The study web app without a browser: `study create` validation, the JSON API over real HTTP (urllib),
blinding, server-side validation, upserts, concurrency, and mp4 byte ranges."""

from __future__ import annotations

import json
import sqlite3
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from physavatar.cli import main
from physavatar.evaluation.study.server import make_server, parse_range
from physavatar.evaluation.study.storage import StudyDB
from physavatar.evaluation.study.videos import VideoEntry, blinding_warnings

METHODS = ("SecretMethodAlpha", "SecretMethodBeta")
INPUTS = ("inputclip01", "inputclip02")
GOOD = {"gesture": 4.5, "expression": 3, "visual_quality": 5, "identity": 1, "lip_sync": 2.5}


def make_videos(root, methods=METHODS, inputs=INPUTS, frames=10):
    from physavatar.io.video import write_video

    rng = np.random.default_rng(0)
    for m in methods:
        for i in inputs:
            write_video(root / m / f"{i}.mp4", rng.integers(0, 256, (frames, 64, 64, 3), dtype=np.uint8))
    return [f"--method={m}={root / m}" for m in methods]


def remux_with_title(src, dst, title):
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        out.metadata["title"] = title
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    args = make_videos(root)
    assert main(["study", "create", "--db", str(root / "s.sqlite"), *args, "--raters", "3", "--seed", "7"]) == 0
    db = StudyDB(root / "s.sqlite")
    server = make_server(db, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, db, root
    server.shutdown()
    server.server_close()


def http(url, data=None, headers=None, method=None):
    """(status, headers, body bytes); HTTP errors are returned, not raised."""
    body = json.dumps(data).encode() if isinstance(data, (dict, list)) else data
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def items_of(server, token):
    status, _, body = http(f"{server.url}/api/r/{token}/items")
    assert status == 200
    return json.loads(body)


# -- create ----------------------------------------------------------------------------------------------
def test_create_rejects_mismatched_ids_and_bad_files(tmp_path, capsys):
    args = make_videos(tmp_path, frames=3)
    (tmp_path / METHODS[1] / "inputclip01.mp4").unlink()
    assert main(["study", "create", "--db", str(tmp_path / "a.sqlite"), *args]) == 2
    err = capsys.readouterr().err
    assert "SecretMethodBeta lacks 1 input id(s): inputclip01" in err and not (tmp_path / "a.sqlite").exists()

    (tmp_path / METHODS[1] / "inputclip01.mp4").write_bytes(b"not a video at all")
    assert main(["study", "create", "--db", str(tmp_path / "a.sqlite"), *args]) == 2
    err = capsys.readouterr().err
    assert "unreadable video" in err and "inputclip01.mp4" in err

    # blinding: a method name in the file's metadata would reach the browser
    make_videos(tmp_path, frames=3)
    leaky = tmp_path / METHODS[0] / f"{INPUTS[1]}.mp4"
    remux_with_title(leaky, tmp_path / "leak.mp4", f"{METHODS[0]} final render")
    (tmp_path / "leak.mp4").replace(leaky)
    assert main(["study", "create", "--db", str(tmp_path / "a.sqlite"), *args]) == 2
    err = capsys.readouterr().err
    assert "method names appear in video metadata" in err and "'title'" in err and "-map_metadata -1" in err

    (tmp_path / "b.sqlite").write_bytes(b"")
    make_videos(tmp_path, frames=3)
    assert main(["study", "create", "--db", str(tmp_path / "b.sqlite"), f"--videos={tmp_path}"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["study", "create", "--db", str(tmp_path / "b.sqlite"), f"--videos={tmp_path}", "--overwrite"]) == 0
    assert "videos have no audio track" in capsys.readouterr().err  # warned, not refused
    assert sorted(StudyDB(tmp_path / "b.sqlite").methods()) == sorted(METHODS)
    assert main(["study", "create", "--db", str(tmp_path / "c.sqlite"), "--method", "x"]) == 2
    assert "NAME=DIR" in capsys.readouterr().err


def test_blinding_warnings():
    def entry(method, w, audio=True):
        return VideoEntry(method, "x", f"/v/{method}.mp4", 1, 1.0, w, w, audio)

    assert blinding_warnings([entry("a", 64), entry("b", 64)]) == []
    (warning,) = blinding_warnings([entry("a", 64), entry("b", 128)])
    assert "differ in frame size" in warning and "b: 128x128" in warning
    (warning,) = blinding_warnings([entry("a", 64), entry("b", 64, audio=False)])
    assert "1 of 2 videos have no audio" in warning


def test_order_is_random_per_rater_and_stable(study, tmp_path):
    server, db, root = study
    raters = db.add_raters(6)
    with sqlite3.connect(db.path) as con:
        video_orders = {tuple(v for (v,) in con.execute(
            "SELECT video_id FROM rater_items WHERE rater_id = ? ORDER BY position", (r.id,))) for r in raters}
    assert len(video_orders) > 1  # 6 raters x 4 videos: identical shuffles would be a (1/24)^5 fluke
    assert [it["item"] for it in db.rater_items(raters[0])] == \
        [it["item"] for it in StudyDB(db.path).rater_items(raters[0])]  # reopened: same order (resumable)


# -- blinding ------------------------------------------------------------------------------------------------
def test_nothing_a_rater_fetches_names_a_method_or_input(study):
    server, db, root = study
    token = db.progress()[0].token
    state = items_of(server, token)
    fetched = [http(f"{server.url}/r/{token}")[2], http(f"{server.url}/static/study.js")[2],
               http(f"{server.url}/static/study.css")[2], json.dumps(state).encode(), http(f"{server.url}/")[2]]
    for it in state["items"]:
        status, headers, _ = http(server.url + it["video"], headers={"Range": "bytes=0-0"})
        assert status == 206
        fetched.append(str(dict(headers)).encode() + it["video"].encode())
    for text in fetched:
        for secret in (*METHODS, *INPUTS, str(root)):
            assert secret.encode() not in text
    assert len(state["items"]) == 4 and {d["key"] for d in state["rubric"]} == set(GOOD)
    other = items_of(server, db.progress()[1].token)
    assert not {i["item"] for i in state["items"]} & {i["item"] for i in other["items"]}  # keys are per rater


# -- answers ---------------------------------------------------------------------------------------------------
BAD = [
    ({"scores": GOOD}, "unknown item"),
    ({"item": "0123456789abcdef", "scores": GOOD}, "unknown item"),
    ({"item": "ITEM", "scores": {k: v for k, v in GOOD.items() if k != "lip_sync"}}, "missing score(s) for lip_sync"),
    ({"item": "ITEM", "scores": {**GOOD, "humour": 3}}, "unknown dimension(s) humour"),
    ({"item": "ITEM", "scores": {**GOOD, "gesture": 4.2}}, "must be one of 1, 1.5"),
    ({"item": "ITEM", "scores": {**GOOD, "gesture": 0.5}}, "must be one of 1, 1.5"),
    ({"item": "ITEM", "scores": {**GOOD, "gesture": 5.5}}, "must be one of 1, 1.5"),
    ({"item": "ITEM", "scores": {**GOOD, "gesture": "4"}}, "must be a number"),
    ({"item": "ITEM", "scores": {**GOOD, "gesture": True}}, "must be a number"),
    ({"item": "ITEM", "scores": {**GOOD, "gesture": None}}, "must be a number"),
    ({"item": "ITEM", "scores": [4, 4, 4, 4, 4]}, "'scores' must be an object"),
    ([1, 2], "must be a JSON object"),
    (b"{not json", "not valid JSON"),
]


def test_invalid_answers_get_400_and_store_nothing(study):
    server, db, _ = study
    rater = db.progress()[2]
    item = items_of(server, rater.token)["items"][0]["item"]
    foreign = items_of(server, db.progress()[0].token)["items"][0]["item"]
    url = f"{server.url}/api/r/{rater.token}/answers"
    for payload, message in BAD:
        if isinstance(payload, dict) and payload.get("item") == "ITEM":
            payload = {**payload, "item": item}
        status, _, body = http(url, payload, {"Content-Type": "application/json"})
        assert status == 400 and message in json.loads(body)["error"], (payload, body)
    status, _, body = http(url, {"item": foreign, "scores": GOOD})  # another rater's item key
    assert status == 400 and "unknown item" in json.loads(body)["error"]
    status, _, body = http(f"{server.url}/api/r/notAToken123/answers", {"item": item, "scores": GOOD})
    assert status == 400 and "unknown rater token" in json.loads(body)["error"]
    assert http(url, b"x" * 20000)[0] == 413
    assert http(f"{server.url}/r/notAToken123")[0] == 404
    assert not [a for a in db.answers() if a.rater == rater.label]


def test_answers_upsert_resume_and_privacy(study):
    server, db, _ = study
    me, other = db.progress()[0], db.progress()[1]
    item = items_of(server, me.token)["items"][1]["item"]
    url = f"{server.url}/api/r/{me.token}/answers"
    assert json.loads(http(url, {"item": item, "scores": GOOD})[2]) == {"ok": True, "done": 1, "total": 4}
    changed = {**GOOD, "gesture": 2}
    assert json.loads(http(url, {"item": item, "scores": changed})[2])["done"] == 1  # re-answer: still one item
    mine = [a for a in db.answers() if a.rater == me.label]
    assert len(mine) == 5 and {a.dimension: a.score for a in mine} == {k: float(v) for k, v in changed.items()}
    state = items_of(server, me.token)  # resume: the page gets back this rater's scores ...
    assert state["items"][1]["scores"] == {k: float(v) for k, v in changed.items()} and state["done"] == 1
    assert all(not it["scores"] for it in items_of(server, other.token)["items"])  # ... and nobody else's


def test_concurrent_raters(study):
    server, db, _ = study
    with sqlite3.connect(db.path) as con:  # write-ahead log: readers never block the writer
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raters = db.add_raters(4)
    jobs = [(r.token, it["item"]) for r in raters for it in items_of(server, r.token)["items"]]

    def post(job):
        token, item = job
        return http(f"{server.url}/api/r/{token}/answers", {"item": item, "scores": GOOD})[0]

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(post, jobs)) == {200}
    labels = {r.label for r in raters}
    assert len([a for a in db.answers() if a.rater in labels]) == len(jobs) * 5
    assert {p.label: (p.done, p.total) for p in db.progress() if p.label in labels} == {l: (4, 4) for l in labels}


# -- video bytes ---------------------------------------------------------------------------------------------------
def test_video_ranges(study):
    server, db, root = study
    token = db.progress()[0].token
    url = server.url + items_of(server, token)["items"][0]["video"]
    status, headers, full = http(url)
    assert status == 200 and headers["Accept-Ranges"] == "bytes" and headers["Content-Type"] == "video/mp4"
    assert full in {(root / m / f"{i}.mp4").read_bytes() for m in METHODS for i in INPUTS}
    n = len(full)
    for rng, first, last in [("bytes=0-99", 0, 99), ("bytes=100-", 100, n - 1), ("bytes=-10", n - 10, n - 1),
                             (f"bytes=5-{n + 50}", 5, n - 1)]:
        status, headers, body = http(url, headers={"Range": rng})
        assert status == 206 and body == full[first:last + 1], rng
        assert headers["Content-Range"] == f"bytes {first}-{last}/{n}"
    status, headers, _ = http(url, headers={"Range": f"bytes={n}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{n}"
    status, headers, body = http(url, method="HEAD")
    assert status == 200 and int(headers["Content-Length"]) == n and body == b""
    assert http(f"{server.url}/v/{token}/0123456789abcdef.mp4")[0] == 404


def test_parse_range():
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-9", 100) == (0, 9)
    assert parse_range("bytes=90-", 100) == (90, 99)
    assert parse_range("bytes=-5", 100) == (95, 99)
    assert parse_range("bytes=-500", 100) == (0, 99)
    assert parse_range("bytes=0-5,10-20", 100) is None  # multi-range: whole file
    assert parse_range("items=0-5", 100) is None
    assert parse_range("bytes=100-", 100) == "unsatisfiable"
    assert parse_range("bytes=9-3", 100) == "unsatisfiable"
    assert parse_range("bytes=-0", 100) == "unsatisfiable"


# -- command line --------------------------------------------------------------------------------------------
def test_cli_raters_serve_checks_and_help(study, tmp_path, capsys):
    server, db, root = study
    before = len(db.progress())
    assert main(["study", "raters", "--db", str(db.path), "--add", "1", "--label", "alice",
                 "--url", "https://study.example.org/"]) == 0
    out = capsys.readouterr().out
    rows = db.progress()
    alice = next(r for r in rows if r.label == "alice")
    assert len(rows) == before + 2 and f"https://study.example.org/r/{alice.token}" in out and "0 / 4" in out
    assert main(["study", "raters", "--db", str(db.path), "--label", "alice"]) == 2
    assert "already taken" in capsys.readouterr().err

    # serve refuses to start when a video moved since create (it would 404 for raters otherwise)
    args = make_videos(tmp_path, frames=3)
    assert main(["study", "create", "--db", str(tmp_path / "m.sqlite"), *args]) == 0
    (tmp_path / METHODS[0] / f"{INPUTS[0]}.mp4").unlink()
    assert main(["study", "serve", "--db", str(tmp_path / "m.sqlite"), "--port", "0"]) == 2
    assert "missing or changed" in capsys.readouterr().err

    for action in ("create", "serve", "raters", "export"):
        with pytest.raises(SystemExit) as exit_:
            main(["study", action, "--help"])
        assert exit_.value.code == 0
        assert "--db" in capsys.readouterr().out


def test_serve_command_prints_working_links(study):
    import re
    import signal
    import subprocess
    import sys

    _, db, _ = study
    proc = subprocess.Popen([sys.executable, "-m", "physavatar.cli", "study", "serve", "--db", str(db.path),
                             "--port", "0", "--raters", "2"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = []
        for line in proc.stdout:  # the banner, one line per rater, then the closing hint
            lines.append(line)
            if line.startswith("Each link is private"):
                break
        links = re.findall(r"(http://127\.0\.0\.1:\d+/r/[A-Za-z0-9_-]+)", "".join(lines))
        assert len(links) == len(db.progress()), lines
        status, _, body = http(links[0])
        assert status == 200 and b"study.js" in body
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop
        proc.communicate(timeout=60)  # drains stdout, so the server never blocks on a full pipe while stopping
        assert proc.returncode == 0
