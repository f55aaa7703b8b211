"""The visual Turing test of Appendix D as a small web app (standard library server + SQLite).

rubric.py   the five dimensions and the paper's rubric text; valid scores 1, 1.5, ..., 5
videos.py   collect and check the organiser's videos (one mp4 folder per method, files named by input id)
storage.py  the study database: blinded per-rater item order, validated upserted answers
server.py   the rating web server (http.server): page, JSON API, mp4 with HTTP Range
page.py     the rating page's HTML, CSS and JavaScript
export.py   per-method mean / std / t confidence interval per dimension (CSV), raw answers (CSV), radar PNG

Imports stay light (no torch, numpy or matplotlib) until an export or `create` needs them.
"""

from physavatar.evaluation.study.rubric import DIMENSION_KEYS, DIMENSIONS, SCORES
from physavatar.evaluation.study.storage import AnswerError, StudyDB, StudyError, create_study

__all__ = ["DIMENSIONS", "DIMENSION_KEYS", "SCORES", "StudyDB", "StudyError", "AnswerError", "create_study"]
