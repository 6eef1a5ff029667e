"""Run references a person types (``latest~2``, an id prefix, ``main``) and the git facts a run
records, so "the run at this commit" and "the run before this one" need no copied ids."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from glmeval.errors import GlmevalError
from glmeval.store.protocols import StoreReader


def git_info(cwd: Path | None = None) -> dict[str, Any]:
    """Commit, branch and dirty flag when run inside a git checkout; empty otherwise."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_branch": git("rev-parse", "--abbrev-ref", "HEAD"), "git_dirty": bool(status)}


class GitProbe:
    """:func:`git_info` for ``cwd``, started at once in a background thread.

    Up to three git processes (``git status`` reads the whole checkout: tenths of a second in a
    large one) used to run in ``start_run``, between the plan and the first request. Started
    when ``glmeval run`` starts, they run while the suite loads, and the run's row gets the same
    facts. A probe answers once, for the run it was made for, so nothing stale is ever reused.
    """

    def __init__(self, cwd: Path | None) -> None:
        self.cwd = cwd
        self._found: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._probe, name="glmeval-git", daemon=True)
        self._thread.start()

    def _probe(self) -> None:
        self._found.append(git_info(self.cwd))

    def result(self) -> Mapping[str, Any]:
        """The commit, branch and dirty flag (empty outside a checkout); asked again in this
        thread if the probe did not finish with an answer."""
        self._thread.join()
        return self._found[0] if self._found else git_info(self.cwd)


def git_rev_parse(ref: str, cwd: Path | None = None) -> str | None:
    """The full commit sha ``ref`` names in the git checkout at ``cwd``, or None."""
    if ref.startswith("-"):
        return None
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) >= 40 else None


def resolve_run(
    store: StoreReader,
    ref: str,
    suite: str | None = None,
    *,
    before: float | None = None,
    exclude: str | None = None,
    cwd: Path | None = None,
) -> str:
    """A run id from a reference a person types.

    In order: ``latest`` / ``latest~N`` (the newest, or N before it; of ``suite`` when given,
    started before ``before`` and other than ``exclude`` when given, which is how
    ``run --baseline latest`` finds "the previous run of this suite"), a full run id, an
    unambiguous id prefix, then a git ref (``main``, ``HEAD~1``, a sha): ``git rev-parse`` turns
    it into a commit and the newest run made at that commit wins. A commit prefix stored in the
    database also works when git is not at hand (an imported run).
    """
    ref = ref.strip()
    if not ref:
        raise GlmevalError("empty run reference; use latest, latest~N, a run id or a git ref")
    where = f" for suite {suite!r}" if suite else ""
    if ref == "latest" or ref.startswith("latest~"):
        return _latest(store, ref, suite, before, exclude, where)
    scope = " AND suite = ?" if suite else ""
    scope_args: list[Any] = [suite] if suite else []
    conn = store.conn
    exact = conn.execute("SELECT id FROM runs WHERE id = ?" + scope, [ref, *scope_args]).fetchone()
    if exact:
        return str(exact[0])
    rows = conn.execute(
        "SELECT id FROM runs WHERE substr(id, 1, ?) = ?" + scope + " ORDER BY started_at DESC",
        [len(ref), ref, *scope_args],
    ).fetchall()
    if len(rows) == 1:
        return str(rows[0][0])
    if len(rows) > 1:
        shown = ", ".join(r[0] for r in rows[:3]) + (", ..." if len(rows) > 3 else "")
        raise GlmevalError(f"run reference {ref!r} is ambiguous ({len(rows)} runs match: {shown}); give more of the id")
    commit = git_rev_parse(ref, cwd)
    if commit:
        row = conn.execute(
            "SELECT id FROM runs WHERE git_commit = ?" + scope + " ORDER BY started_at DESC LIMIT 1",
            [commit, *scope_args],
        ).fetchone()
        if row:
            return str(row[0])
        raise GlmevalError(f"no run{where} at git {ref!r} (commit {commit[:10]}) in {store.path}")
    if len(ref) >= 7 and all(ch in "0123456789abcdef" for ch in ref.lower()):
        row = conn.execute(
            "SELECT id FROM runs WHERE substr(git_commit, 1, ?) = ?" + scope + " ORDER BY started_at DESC LIMIT 1",
            [len(ref), ref.lower(), *scope_args],
        ).fetchone()
        if row:
            return str(row[0])
    raise GlmevalError(f"no run {ref!r}{where} in {store.path}; `glmeval runs` lists them")


def _latest(store: StoreReader, ref: str, suite: str | None, before: float | None, exclude: str | None, where: str) -> str:
    n = 0
    if "~" in ref:
        try:
            n = int(ref.split("~", 1)[1])
        except ValueError:
            n = -1
        if n < 0:
            raise GlmevalError(f"bad run reference {ref!r}; use latest, latest~N (N >= 0) or a run id")
    runs = store.list_runs(suite=suite, limit=n + 1, before=before, exclude=exclude)
    if len(runs) <= n:
        have = len(runs)
        raise GlmevalError(
            f"no run {ref!r} in {store.path}{where}"
            + (f" (only {have} run{'s' if have != 1 else ''})" if have else " (no runs yet)")
        )
    return runs[n].id


__all__ = ["GitProbe", "git_info", "git_rev_parse", "resolve_run"]
