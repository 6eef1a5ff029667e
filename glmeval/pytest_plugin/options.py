"""The plugin's command-line options and ini keys.

Every option is prefixed ``--glmeval-`` because this plugin loads into every pytest session
on the machine and must not collide with a project's own options.
"""

from __future__ import annotations

import argparse
import math

import pytest

DEFAULT_PATTERNS: list[str] = ["*.glmeval.yaml", "*.glmeval.yml"]


def _positive_seconds(text: str) -> float:
    """A ``--glmeval-retry-budget`` value; pytest shows the ArgumentTypeError as a usage error."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def add_options(parser: pytest.Parser) -> None:
    """The ``--glmeval-*`` options and the ``glmeval_pattern`` / ``glmeval_suites`` ini keys."""
    group = parser.getgroup("glmeval", "glmeval prompt suites")
    group.addoption(
        "--glmeval-local",
        action="store_true",
        default=False,
        help="Start the local GLM server for the session and send every call there (no key needed).",
    )
    group.addoption(
        "--glmeval-local-speed",
        type=float,
        default=None,
        metavar="FACTOR",
        help="Latency factor of the local server (default: glmeval's; 0 answers at once).",
    )
    group.addoption(
        "--glmeval-model",
        action="append",
        default=[],
        metavar="MODEL",
        help="Run only this model (replaces each suite's model axis); repeat for several.",
    )
    group.addoption(
        "--glmeval-db",
        default=None,
        metavar="PATH",
        help="Results database (default: $GLMEVAL_DB or .glmeval/results.db).",
    )
    group.addoption(
        "--glmeval-report",
        default=None,
        metavar="DIR",
        help="Write the session's Markdown and HTML report into DIR at the end.",
    )
    group.addoption(
        "--glmeval-baseline",
        default=None,
        metavar="RUN",
        help="Compare the session's run with RUN (id, prefix or latest~N) in the --glmeval-report report.",
    )
    group.addoption(
        "--glmeval-replay",
        action="store_true",
        default=False,
        help="Answer only from the response cache; send nothing (a miss is an error).",
    )
    group.addoption(
        "--glmeval-concurrency",
        type=int,
        default=None,
        metavar="N",
        help="Calls in flight at once per process (default: each suite's settings.concurrency).",
    )
    group.addoption(
        "--glmeval-retry-budget",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="Seconds per job to keep retrying 429, 5xx and network errors (default: settings.retry_budget, or 600).",
    )
    parser.addini(
        "glmeval_pattern",
        type="args",
        default=list(DEFAULT_PATTERNS),
        help="File name patterns of glmeval suite files (default: *.glmeval.yaml *.glmeval.yml).",
    )
    parser.addini(
        "glmeval_suites",
        type="args",
        default=[],
        help="Suite files to collect whatever their name (paths relative to the rootdir).",
    )


__all__ = ["DEFAULT_PATTERNS", "add_options"]
