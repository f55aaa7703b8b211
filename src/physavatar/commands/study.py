"""`physavatar study`: the visual Turing test of Appendix D as a small web app.

    physavatar study create --db study.sqlite --method ours=out/ours --method baseline=out/base --raters 15
    physavatar study serve  --db study.sqlite --port 8000          # prints one private link per rater
    physavatar study raters --db study.sqlite --add 2              # more raters; progress of everyone
    physavatar study export --db study.sqlite --out results/       # summary.csv, answers.csv, radar.png
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys

from physavatar.cli import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    c = sub.add_parser("create", help="make a study database from one folder of mp4 files per method",
                       description="Make a study database. Each method is a folder of mp4 files named by input id "
                                   "(clip01.mp4, ...); every method needs the same ids.")
    c.add_argument("--db", required=True, metavar="STUDY.sqlite", help="the study database file to write")
    c.add_argument("--method", action="append", default=[], metavar="NAME=DIR",
                   help="a method's name and its folder of <input_id>.mp4 files (repeat per method)")
    c.add_argument("--videos", metavar="DIR",
                   help="a folder with one sub-folder per method (DIR/<method>/<input_id>.mp4); adds to --method")
    c.add_argument("--raters", type=int, default=0, metavar="N",
                   help="create N rater links now (default 0; `serve --raters` or `raters --add` can add later)")
    c.add_argument("--seed", type=int, default=0,
                   help="seed of the per-rater random video order (default 0); each rater's order also "
                        "depends on their token")
    c.add_argument("--title", default="Visual Turing test",
                   help="heading shown to raters (default 'Visual Turing test'); do not put method names in it")
    c.add_argument("--overwrite", action="store_true",
                   help="replace an existing database file (its answers are lost)")

    s = sub.add_parser("serve", help="run the rating web server and print each rater's link")
    s.add_argument("--db", required=True, metavar="STUDY.sqlite", help="the study database from `study create`")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 for every interface)")
    s.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0 picks a free one)")
    s.add_argument("--raters", type=int, default=0, metavar="N",
                   help="make sure at least N raters exist, adding the missing ones (default 0: add none)")
    s.add_argument("--url", metavar="BASE_URL",
                   help="base of the printed links when raters reach the server under another address "
                        "(e.g. https://study.example.org behind a proxy); default http://HOST:PORT")
    s.add_argument("--log", action="store_true", help="log every HTTP request to stderr")

    r = sub.add_parser("raters", help="add raters and list every rater's link and progress")
    r.add_argument("--db", required=True, metavar="STUDY.sqlite", help="the study database")
    r.add_argument("--add", type=int, default=0, metavar="N", help="add N raters named rater01, rater02, ...")
    r.add_argument("--label", action="append", default=[], metavar="NAME",
                   help="add one rater with this label (repeatable); labels appear in answers.csv, tokens never")
    r.add_argument("--url", default="http://127.0.0.1:8000", metavar="BASE_URL",
                   help="base of the printed links (default http://127.0.0.1:8000)")

    e = sub.add_parser("export", help="write summary.csv, answers.csv and radar.png from the stored answers")
    e.add_argument("--db", required=True, metavar="STUDY.sqlite", help="the study database")
    e.add_argument("--out", required=True, metavar="DIR", help="folder for the results (created if needed)")
    e.add_argument("--confidence", type=float, default=0.95,
                   help="level of the confidence interval for each mean (default 0.95)")
    e.add_argument("--ci", choices=("t", "rater-bootstrap"), default="t",
                   help="interval: 't' = Student-t over all ratings (default; treats ratings as independent), "
                        "'rater-bootstrap' = percentile interval resampling whole raters (accounts for rater effects)")
    e.add_argument("--bootstrap-samples", type=int, default=2000, metavar="B",
                   help="resamples for --ci rater-bootstrap (default 2000)")
    e.add_argument("--seed", type=int, default=0, help="random seed of the rater bootstrap (default 0)")


def _methods(args: argparse.Namespace) -> dict:
    from physavatar.evaluation.study.videos import methods_from_parent

    out = dict(methods_from_parent(args.videos)) if args.videos else {}
    for spec in args.method:
        name, sep, folder = spec.partition("=")
        name = name.strip()
        if not sep or not name or not folder:
            raise UserError(f"--method {spec!r}: use NAME=DIR")
        if name in out:
            raise UserError(f"--method: method {name!r} given twice; give each method one folder")
        out[name] = folder
    if not out:
        raise UserError("give the videos: --method NAME=DIR (repeat per method) or --videos DIR")
    return out


def _print_links(db, base_url: str) -> None:
    base = base_url.rstrip("/")
    rows = db.progress()
    if not rows:
        print("no raters yet: add some with --raters N")
    for p in rows:
        print(f"  {p.label:<12} {p.done:>4} / {p.total:<4} {base}/r/{p.token}")


def _create(args: argparse.Namespace) -> int:
    from physavatar.evaluation.study.storage import create_study
    from physavatar.evaluation.study.videos import blinding_warnings, collect_videos

    if args.raters < 0:
        raise UserError(f"--raters {args.raters}: give 0 or more")
    entries = collect_videos(_methods(args))
    for warning in blinding_warnings(entries):
        print(f"warning: {warning}", file=sys.stderr)
    db = create_study(args.db, entries, seed=args.seed, title=args.title, overwrite=args.overwrite)
    if args.raters:
        db.add_raters(args.raters)
    methods, inputs = db.methods(), sorted({e.input_id for e in entries})
    print(f"{args.db}: {len(methods)} methods x {len(inputs)} inputs = {len(entries)} videos; "
          f"{len(db.progress())} raters")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from physavatar.evaluation.study.server import make_server
    from physavatar.evaluation.study.storage import StudyDB

    db = StudyDB(args.db)
    moved = db.missing_videos()
    if moved:
        raise UserError(f"{len(moved)} video file(s) are missing or changed since `study create`, e.g. {moved[0]}; "
                        "put them back or re-create the study")
    if args.raters < 0:
        raise UserError(f"--raters {args.raters}: give 0 or more")
    if args.raters > len(db.progress()):
        db.add_raters(args.raters - len(db.progress()))
    try:
        server = make_server(db, args.host, args.port, log=args.log)
    except OSError as err:
        raise UserError(f"cannot listen on {args.host}:{args.port} ({err.strerror}); choose another --port") from None
    host, port = server.server_address[:2]
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
    base = args.url or f"http://{shown}:{port}"
    print(f"serving {args.db} on http://{host}:{port} ({db.num_videos()} videos); rater links:")
    _print_links(db, base)
    print("Each link is private to one rater. Ctrl-C stops the server; answers are already saved.", flush=True)
    # Ctrl-C must stop the server even when a parent process left SIGINT ignored for its children
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0


def _raters(args: argparse.Namespace) -> int:
    from physavatar.evaluation.study.storage import StudyDB

    if args.add < 0:
        raise UserError(f"--add {args.add}: give 0 or more")
    db = StudyDB(args.db)
    if args.add or args.label:
        db.add_raters(args.add, args.label)
    _print_links(db, args.url)
    return 0


def _export(args: argparse.Namespace) -> int:
    from physavatar.evaluation.study.export import export_study

    if not 0 < args.confidence < 1:
        raise UserError(f"--confidence {args.confidence}: give a level between 0 and 1, e.g. 0.95")
    if args.bootstrap_samples < 100:
        raise UserError(f"--bootstrap-samples {args.bootstrap_samples}: use at least 100 (2000 is typical)")
    res = export_study(args.db, args.out, confidence=args.confidence, ci=args.ci, n_boot=args.bootstrap_samples,
                       seed=args.seed)
    print(f"{res.num_answers} answers -> {res.summary_csv}, {res.answers_csv}"
          + (f", {res.radar_png}" if res.radar_png else " (no answers yet: no radar chart)"))
    for s in res.stats:
        print(f"  {s.method:<20} {s.dimension:<15} n={s.n:<4} mean={s.mean:.2f}  "
              f"{args.confidence:.0%} CI [{s.ci_low:.2f}, {s.ci_high:.2f}] ({s.ci_method})")
    return 0


def run(args: argparse.Namespace) -> int:
    return {"create": _create, "serve": _serve, "raters": _raters, "export": _export}[args.action](args)
