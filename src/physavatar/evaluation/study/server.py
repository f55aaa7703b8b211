"""The rating web server: standard library only (http.server + sqlite3), one thread per request.

Routes (TOKEN is a rater's secret link token, ITEM an opaque per-rater video key):

    GET  /r/TOKEN                  the rating page (404 for an unknown link)
    GET  /api/r/TOKEN/items        the rater's items in their blinded order, the rubric, their own scores
    POST /api/r/TOKEN/answers      {"item": ITEM, "scores": {dimension: 1..5 in 0.5 steps, x5}} -> progress
    GET  /v/TOKEN/ITEM.mp4         the video, with HTTP Range support (browsers seek mp4 through it)
    GET  /static/study.css|js      the page's style and script

Nothing a rater can fetch names a method, an input or a file, and nothing returns another rater's scores.
Every answer is validated here (the page's checks are a convenience only): invalid requests get HTTP 400
with {"error": message}.
"""

from __future__ import annotations

import html
import json
import os
import re
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from physavatar.evaluation.study import page
from physavatar.evaluation.study.rubric import SCORES, as_json
from physavatar.evaluation.study.storage import AnswerError, StudyDB

MAX_BODY = 16 * 1024  # an answer is ~200 bytes
CHUNK = 256 * 1024
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_ROUTES = (
    ("GET", re.compile(r"^/r/([^/]+)/?$"), "page"),
    ("GET", re.compile(r"^/api/r/([^/]+)/items$"), "items"),
    ("POST", re.compile(r"^/api/r/([^/]+)/answers$"), "answer"),
    ("GET", re.compile(r"^/v/([^/]+)/([^/]+)\.mp4$"), "video"),
    ("GET", re.compile(r"^/static/(study\.css|study\.js)$"), "static"),
    ("GET", re.compile(r"^/$"), "home"),
)
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the rater's token is in the URL: never send it to anyone else
    "Content-Security-Policy": "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
}


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """The (first, last) byte of a single `Range: bytes=...` request; None to send the whole file (no header,
    or one we don't serve, such as several ranges: RFC 9110 allows ignoring it); "unsatisfiable" for 416."""
    if not header:
        return None
    m = _RANGE_RE.match(header.strip())
    if not m or m.group(1) == m.group(2) == "":
        return None
    first, last = m.group(1), m.group(2)
    if first == "":  # suffix: the last N bytes
        n = int(last)
        return (max(0, size - n), size - 1) if n > 0 and size > 0 else "unsatisfiable"
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return "unsatisfiable"
    return start, end


class StudyServer(ThreadingHTTPServer):
    daemon_threads = True  # a stalled video download must not keep the process alive at shutdown

    def __init__(self, db: StudyDB, host: str = "127.0.0.1", port: int = 8000, *, log: bool = False):
        self.db = db
        self.log = log
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: StudyServer
    protocol_version = "HTTP/1.1"  # keep-alive: a video player issues many range requests

    # -- plumbing -----------------------------------------------------------------------------------------
    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's name)
        if self.server.log:
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.send_response(status)
        headers = {"Content-Type": content_type, "Content-Length": str(len(body)), "Cache-Control": "no-store",
                   **_SECURITY_HEADERS, **(extra or {})}
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: object) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        if self.path.startswith("/api/"):
            self._json(status, {"error": message})
        else:
            self._send(status, page.message_page(HTTPStatus(status).phrase, message), "text/html; charset=utf-8")

    def _dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path
        route = next(((verb, name, m) for verb, pattern, name in _ROUTES if (m := pattern.match(path))), None)
        if route is None or not (route[0] == method or (route[0] == "GET" and method == "HEAD")):
            if method == "POST":
                self.close_connection = True  # its body is unread: don't parse it as the next request
            if route is None:
                self._error(404, "no such page; open the personal link the organiser sent you")
            else:
                self._error(405, f"{method} is not allowed on {path}")
            return
        try:
            getattr(self, f"_do_{route[1]}")(*route[2].groups())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the browser stopped a download (seeking): normal
        except Exception:  # a bug or a locked/broken database: answer (the page shows it) and log
            self.server.handle_error(self.request, self.client_address)
            self.close_connection = True
            try:
                self._error(500, "the server failed on this request; try again, and tell the organiser if it persists")
            except OSError:
                pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    # -- routes -------------------------------------------------------------------------------------------
    def _do_home(self) -> None:
        self._send(200, page.message_page("Visual Turing test", "Open the personal link the organiser sent you."),
                   "text/html; charset=utf-8")

    def _do_static(self, name: str) -> None:
        body, ctype = (page.CSS, "text/css") if name.endswith(".css") else (page.JS, "text/javascript")
        self._send(200, body.encode(), f"{ctype}; charset=utf-8")

    def _do_page(self, token: str) -> None:
        if self.server.db.rater(token) is None:
            self._error(404, "this rating link is not known; check it against the one the organiser sent you")
            return
        # the token passed the rater() pattern check ([A-Za-z0-9_-]), so it is safe inside an attribute
        self._send(200, page.rating_page(html.escape(self.server.db.title or "Visual Turing test"), token).encode(),
                   "text/html; charset=utf-8")

    def _do_items(self, token: str) -> None:
        db = self.server.db
        rater = db.rater(token)
        if rater is None:
            self._error(400, "unknown rater token; open the personal link the organiser sent you")
            return
        items = db.rater_items(rater)
        for it in items:
            it["video"] = f"/v/{token}/{it['item']}.mp4"
        done, total = db.rater_progress(rater)
        self._json(200, {"rubric": as_json(), "scores": list(SCORES), "items": items, "done": done,
                         "total": total})

    def _do_answer(self, token: str) -> None:
        # 1. a bounded JSON body
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            self._error(411 if "Content-Length" not in self.headers else 400, "send a JSON body with Content-Length")
            return
        if length > MAX_BODY or length < 0:
            self.close_connection = True  # the unread body would otherwise be parsed as the next request
            self._error(413, f"request body of {length} bytes is too large (at most {MAX_BODY})")
            return
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            self._error(400, f"the body is not valid JSON ({err}); send {{\"item\": ..., \"scores\": {{...}}}}")
            return
        if not isinstance(body, dict):
            self._error(400, 'the body must be a JSON object {"item": ..., "scores": {...}}')
            return
        # 2. validate and store (StudyDB.save_answer checks token, item, dimensions and scores)
        try:
            done, total = self.server.db.save_answer(token, body.get("item"), body.get("scores"))
        except AnswerError as err:
            self._error(400, str(err))
            return
        self._json(200, {"ok": True, "done": done, "total": total})

    def _do_video(self, token: str, item: str) -> None:
        db = self.server.db
        rater = db.rater(token)
        path = db.video_file(rater, item) if rater else None
        if path is None:
            self._error(404, "no such video")
            return
        try:
            f = open(path, "rb")
        except OSError:
            self._error(404, "this video is missing on the server; tell the organiser")
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            rng = parse_range(self.headers.get("Range"), size)
            if rng == "unsatisfiable":
                self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"})
                return
            start, end = rng if rng else (0, size - 1)
            self.send_response(206 if rng else 200)
            headers = {"Content-Type": "video/mp4", "Content-Length": str(end - start + 1), "Accept-Ranges": "bytes",
                       "Cache-Control": "private, no-store", **_SECURITY_HEADERS}
            if rng:
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command == "HEAD":
                return
            f.seek(start)
            left = end - start + 1
            while left > 0:  # stream: videos can be large
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)


def make_server(db: StudyDB | str | os.PathLike, host: str = "127.0.0.1", port: int = 8000, *,
                log: bool = False) -> StudyServer:
    """A bound server (port 0 picks a free one; see `.url`); call `.serve_forever()` and `.shutdown()`."""
    return StudyServer(db if isinstance(db, StudyDB) else StudyDB(db), host, port, log=log)
