"""The study database (SQLite): methods, inputs, videos, raters, each rater's blinded item order, answers.

One file holds the whole study, so it can be copied, backed up and exported anywhere. Write-ahead logging
lets many raters save at once; each request opens its own short-lived connection. An answer is one row per
(rater, video, dimension) and re-answering replaces it (upsert), so a rater can go back and change a score.

Blinding: a rater sees a video only as an opaque item key (an HMAC of the study secret, the rater's token and
the video id), so neither the key nor the URL reveals the method, the input or another rater's key for the
same video. The order is a shuffle seeded by the study seed and the rater's token: stable across visits
(resumable), different between raters.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import re
import secrets
import sqlite3
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from physavatar.evaluation.study.rubric import DIMENSION_KEYS, check_score
from physavatar.evaluation.study.videos import VideoEntry

SCHEMA_VERSION = "1"
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
ITEM_RE = re.compile(r"^[0-9a-f]{16}$")
# answers.csv lists dimensions in the paper's order (the keys are our own constants, safe to inline)
_DIM_ORDER = "CASE a.dimension " + " ".join(f"WHEN '{k}' THEN {i}" for i, k in enumerate(DIMENSION_KEYS)) + " END"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE methods (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE inputs (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE videos (
  id INTEGER PRIMARY KEY, method_id INTEGER NOT NULL REFERENCES methods(id),
  input_id INTEGER NOT NULL REFERENCES inputs(id), path TEXT NOT NULL, size INTEGER NOT NULL,
  duration_s REAL NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, has_audio INTEGER NOT NULL,
  UNIQUE (method_id, input_id));
CREATE TABLE raters (id INTEGER PRIMARY KEY, token TEXT NOT NULL UNIQUE, label TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL);
CREATE TABLE rater_items (
  rater_id INTEGER NOT NULL REFERENCES raters(id), position INTEGER NOT NULL, item_key TEXT NOT NULL,
  video_id INTEGER NOT NULL REFERENCES videos(id),
  PRIMARY KEY (rater_id, position), UNIQUE (rater_id, item_key), UNIQUE (rater_id, video_id));
CREATE TABLE answers (
  rater_id INTEGER NOT NULL REFERENCES raters(id), video_id INTEGER NOT NULL REFERENCES videos(id),
  dimension TEXT NOT NULL, score REAL NOT NULL CHECK (score >= 1 AND score <= 5), answered_at TEXT NOT NULL,
  PRIMARY KEY (rater_id, video_id, dimension));
"""


class StudyError(ValueError):
    """A study database problem the organiser must fix (missing file, wrong file, moved videos)."""


class AnswerError(ValueError):
    """A rater's request is invalid (unknown token or item, bad or missing scores): HTTP 400."""


@dataclass(frozen=True)
class Rater:
    id: int
    token: str
    label: str


@dataclass(frozen=True)
class RaterProgress:
    token: str
    label: str
    done: int  # items with all five dimensions answered
    total: int


@dataclass(frozen=True)
class AnswerRow:
    """One stored score with everything the export needs (only the organiser's export sees method names)."""
    rater: str  # rater label, never the token
    method: str
    input_id: str
    dimension: str
    score: float
    answered_at: str


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _connect(path: str | os.PathLike) -> sqlite3.Connection:
    con = sqlite3.connect(os.fspath(path), timeout=10.0, isolation_level=None)  # explicit BEGIN/COMMIT
    con.execute("PRAGMA foreign_keys = ON")
    con.execute("PRAGMA busy_timeout = 10000")
    return con


def create_study(path: str | os.PathLike, videos: list[VideoEntry], *, seed: int = 0, title: str = "",
                 overwrite: bool = False) -> "StudyDB":
    """Write a new study database holding `videos` (from `collect_videos`); atomically, so a failed create
    leaves no half-built file."""
    from physavatar.io.atomic import atomic_path

    path = Path(path)
    if path.exists() and not overwrite:
        raise StudyError(f"{path}: already exists (it may hold answers); choose another --db or pass --overwrite")
    if not videos:
        raise StudyError("no videos to put in the study")
    with atomic_path(path) as tmp:
        with closing(_connect(tmp)) as con:
            con.execute("PRAGMA journal_mode = WAL")  # stored in the file: every later connection uses WAL
            con.executescript(_SCHEMA)
            con.execute("BEGIN")
            meta = {"schema_version": SCHEMA_VERSION, "seed": str(int(seed)), "secret": secrets.token_hex(16),
                    "title": title, "created_at": _now()}
            con.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
            method_ids = {m: con.execute("INSERT INTO methods (name) VALUES (?)", (m,)).lastrowid
                          for m in sorted({v.method for v in videos})}
            input_ids = {i: con.execute("INSERT INTO inputs (name) VALUES (?)", (i,)).lastrowid
                         for i in sorted({v.input_id for v in videos})}
            con.executemany(
                "INSERT INTO videos (method_id, input_id, path, size, duration_s, width, height, has_audio) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(method_ids[v.method], input_ids[v.input_id], v.path, v.size, v.duration_s, v.width, v.height,
                  int(v.has_audio)) for v in videos])
            con.execute("COMMIT")
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return StudyDB(path)


class StudyDB:
    """A study database on disk. Every method opens its own connection, so one object serves many threads."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise StudyError(f"{self.path}: no study database there; make one with `physavatar study create`")
        try:
            with self._read() as con:
                meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as err:
            raise StudyError(f"{self.path}: not a study database ({err}); give the file `study create` wrote") from None
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise StudyError(f"{self.path}: study schema {meta.get('schema_version')!r}, this version reads "
                             f"{SCHEMA_VERSION!r}; re-create the study with this version")
        self.seed = int(meta["seed"])
        self.title = meta["title"]
        self._secret = meta["secret"].encode()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with closing(_connect(self.path)) as con:
            yield con

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; BEGIN IMMEDIATE takes the write lock up front, so concurrent writers queue
        (busy_timeout) instead of failing midway."""
        with closing(_connect(self.path)) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # -- study contents ---------------------------------------------------------------------------------
    def methods(self) -> list[str]:
        with self._read() as con:
            return [r[0] for r in con.execute("SELECT name FROM methods ORDER BY name")]

    def num_videos(self) -> int:
        with self._read() as con:
            return con.execute("SELECT COUNT(*) FROM videos").fetchone()[0]

    def missing_videos(self) -> list[str]:
        """Video files that moved or changed size since `create` (the server refuses to start with any)."""
        with self._read() as con:
            rows = con.execute("SELECT path, size FROM videos ORDER BY path").fetchall()
        return [p for p, size in rows if not os.path.isfile(p) or os.path.getsize(p) != size]

    # -- raters -------------------------------------------------------------------------------------------
    def item_key(self, token: str, video_id: int) -> str:
        return hmac.new(self._secret, f"{token}:{video_id}".encode(), hashlib.sha256).hexdigest()[:16]

    def add_raters(self, count: int = 0, labels: list[str] | tuple[str, ...] = ()) -> list[Rater]:
        """Add `count` raters labelled rater01, rater02, ... (continuing the numbering) plus one per label."""
        if count < 0:
            raise StudyError(f"rater count {count}: give 0 or more")
        with self._write() as con:
            existing = {r[0] for r in con.execute("SELECT label FROM raters")}
            video_ids = [r[0] for r in con.execute("SELECT id FROM videos ORDER BY id")]
            wanted, n = list(labels), len(existing)
            for label in wanted:
                if label in existing or wanted.count(label) > 1:
                    raise StudyError(f"rater label {label!r} is already taken; choose another")
            while len(wanted) < len(labels) + count:
                n += 1
                if f"rater{n:02d}" not in existing:
                    wanted.append(f"rater{n:02d}")
            added = []
            for label in wanted:
                token = secrets.token_urlsafe(12)
                rid = con.execute("INSERT INTO raters (token, label, created_at) VALUES (?, ?, ?)",
                                  (token, label, _now())).lastrowid
                order = list(video_ids)
                random.Random(f"{self.seed}:{token}").shuffle(order)  # str seeds hash with SHA-512: stable
                con.executemany("INSERT INTO rater_items VALUES (?, ?, ?, ?)",
                                [(rid, pos, self.item_key(token, vid), vid) for pos, vid in enumerate(order)])
                added.append(Rater(rid, token, label))
        return added

    def rater(self, token: str) -> Rater | None:
        if not isinstance(token, str) or not TOKEN_RE.match(token):
            return None
        with self._read() as con:
            row = con.execute("SELECT id, token, label FROM raters WHERE token = ?", (token,)).fetchone()
        return Rater(*row) if row else None

    def progress(self) -> list[RaterProgress]:
        with self._read() as con:
            rows = con.execute(
                "SELECT r.token, r.label, (SELECT COUNT(*) FROM rater_items i WHERE i.rater_id = r.id), "
                "(SELECT COUNT(*) FROM (SELECT video_id FROM answers a WHERE a.rater_id = r.id "
                " GROUP BY video_id HAVING COUNT(*) = ?)) FROM raters r ORDER BY r.id",
                (len(DIMENSION_KEYS),)).fetchall()
        return [RaterProgress(token, label, done, total) for token, label, total, done in rows]

    # -- what one rater sees --------------------------------------------------------------------------------
    def rater_items(self, rater: Rater) -> list[dict]:
        """The rater's items in their order, each with this rater's own scores so far (nobody else's)."""
        with self._read() as con:
            items = con.execute("SELECT item_key, video_id FROM rater_items WHERE rater_id = ? ORDER BY position",
                                (rater.id,)).fetchall()
            scores: dict[int, dict[str, float]] = {}
            for vid, dim, score in con.execute("SELECT video_id, dimension, score FROM answers WHERE rater_id = ?",
                                               (rater.id,)):
                scores.setdefault(vid, {})[dim] = score
        return [{"item": key, "scores": scores.get(vid, {})} for key, vid in items]

    def video_file(self, rater: Rater, item_key: str) -> str | None:
        if not isinstance(item_key, str) or not ITEM_RE.match(item_key):
            return None
        with self._read() as con:
            row = con.execute("SELECT v.path FROM rater_items i JOIN videos v ON v.id = i.video_id "
                              "WHERE i.rater_id = ? AND i.item_key = ?", (rater.id, item_key)).fetchone()
        return row[0] if row else None

    def save_answer(self, token: object, item_key: object, scores: object) -> tuple[int, int]:
        """Validate and store one item's five scores (replacing earlier ones); returns (done, total) for the
        rater. AnswerError with a message fit to show the rater on any invalid input."""
        # 1. who and what
        rater = self.rater(token) if isinstance(token, str) else None
        if rater is None:
            raise AnswerError("unknown rater token; open the personal link the organiser sent you")
        if not isinstance(item_key, str) or not ITEM_RE.match(item_key):
            raise AnswerError(f"unknown item {item_key!r}; reload the page")
        with self._read() as con:
            row = con.execute("SELECT video_id FROM rater_items WHERE rater_id = ? AND item_key = ?",
                              (rater.id, item_key)).fetchone()
        if row is None:
            raise AnswerError(f"unknown item {item_key!r} for this rater; reload the page")
        # 2. exactly the five dimensions, each a valid score
        if not isinstance(scores, dict):
            raise AnswerError("'scores' must be an object mapping each of the five dimensions to a score")
        missing = [d for d in DIMENSION_KEYS if d not in scores]
        extra = sorted(str(k) for k in scores if k not in DIMENSION_KEYS)
        if extra:
            raise AnswerError(f"unknown dimension(s) {', '.join(extra)}; use {', '.join(DIMENSION_KEYS)}")
        if missing:
            raise AnswerError(f"missing score(s) for {', '.join(missing)}; score all five dimensions")
        try:
            values = {d: check_score(scores[d], d) for d in DIMENSION_KEYS}
        except ValueError as err:
            raise AnswerError(str(err)) from None
        # 3. upsert: one row per (rater, video, dimension)
        now = _now()
        with self._write() as con:
            con.executemany(
                "INSERT INTO answers (rater_id, video_id, dimension, score, answered_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (rater_id, video_id, dimension) DO UPDATE SET score = excluded.score, "
                "answered_at = excluded.answered_at",
                [(rater.id, row[0], d, v, now) for d, v in values.items()])
        return self.rater_progress(rater)

    def rater_progress(self, rater: Rater) -> tuple[int, int]:
        """(items with all five dimensions answered, items) for one rater."""
        with self._read() as con:
            done = con.execute("SELECT COUNT(*) FROM (SELECT video_id FROM answers WHERE rater_id = ? "
                               "GROUP BY video_id HAVING COUNT(*) = ?)", (rater.id, len(DIMENSION_KEYS))).fetchone()[0]
            total = con.execute("SELECT COUNT(*) FROM rater_items WHERE rater_id = ?", (rater.id,)).fetchone()[0]
        return done, total

    # -- the organiser's view ---------------------------------------------------------------------------
    def answers(self) -> list[AnswerRow]:
        with self._read() as con:
            rows = con.execute(
                "SELECT r.label, m.name, i.name, a.dimension, a.score, a.answered_at FROM answers a "
                "JOIN raters r ON r.id = a.rater_id JOIN videos v ON v.id = a.video_id "
                "JOIN methods m ON m.id = v.method_id JOIN inputs i ON i.id = v.input_id "
                f"ORDER BY r.id, m.name, i.name, {_DIM_ORDER}").fetchall()
        return [AnswerRow(*r) for r in rows]
