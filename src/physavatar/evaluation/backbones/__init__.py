"""Feature networks behind the metrics, each loaded from a local weight path (never a hub name).

Every backbone has a `name` that the report prints beside the numbers it produced. A loader that cannot
find its weights raises `BackboneUnavailable`; the runner turns that into "not computed: …" in the report,
so a metric is never computed with a random or substitute network.
"""

from __future__ import annotations


class BackboneUnavailable(RuntimeError):
    """The weights (or the package) a metric needs are not here; str() says where it looked and the fix."""


class SkipVideo(Exception):
    """One video gives no value for one metric (no face, no audio, too short); str() says why."""


def weights_not_found(what: str, path, fix: str) -> BackboneUnavailable:
    return BackboneUnavailable(f"{what} weights not found at {path}; {fix}")
