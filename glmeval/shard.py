"""One run split across machines: ``glmeval run SUITE --shard K/N --run-id ID``.

Each of N CI jobs runs the same suite with its own K; together they write one shared run
(``ID``): into one PostgreSQL history directly, or each into its own SQLite file whose export
``glmeval import`` merges. The slice is deterministic: a job belongs to the shard its *case and
variant* hash to (a stable hash, not Python's salted one), so the same job always lands in the
same shard, whatever machine computes it, and every repeat of a case runs in one shard (a
case's pass rate across repeats, its ``threshold``, is then whole in each shard's own report).

Running a shard again (a retried CI job) continues it: jobs that already have a result are
skipped, errors run again. The run's status is ``running`` until all N shards have recorded
their end (:mod:`glmeval.store.shards`); reports, ``compare`` and ``--fail-on`` then read it
like any other run.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from glmeval.errors import GlmevalError

if TYPE_CHECKING:
    from glmeval.plan import Plan
    from glmeval.records import Job, Result
    from glmeval.run.client import GLMClient
    from glmeval.run.runner import RunCounts, RunOptions, RunOutcome
    from glmeval.store import Store
    from glmeval.store.shards import RunShards

MAX_SHARDS = 1000
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,99}$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/4"`` → shard 2 of 4; anything else is one line saying what is expected."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
        if not match:
            raise GlmevalError(f"--shard {text!r}: give K/N, e.g. --shard 2/4 (shard 2 of 4)")
        index, count = int(match.group(1)), int(match.group(2))
        if not 1 <= count <= MAX_SHARDS:
            raise GlmevalError(f"--shard {text}: N must be 1 to {MAX_SHARDS}")
        if not 1 <= index <= count:
            raise GlmevalError(f"--shard {text}: K must be 1 to {count} (shards are numbered from 1)")
        return cls(index, count)

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, job: Job) -> bool:
        return shard_of(job, self.count) == self.index

    def select(self, jobs: Sequence[Job]) -> list[Job]:
        return [job for job in jobs if self.owns(job)]


def shard_of(job: Job, count: int) -> int:
    """The shard (1-based) ``job`` belongs to among ``count``: by a SHA-1 of its suite, case and
    variant, so repeats stay together and the answer never depends on the machine."""
    key = f"{job.suite}\x00{job.case_id}\x00{job.variant_id}".encode()
    return int.from_bytes(hashlib.sha1(key).digest()[:8], "big") % count + 1


def check_run_id(run_id: str | None) -> str:
    if not run_id or not RUN_ID.match(run_id):
        raise GlmevalError(
            f"--run-id {run_id!r}: use 1-100 letters, digits and . _ : + - (starting with a letter or digit), "
            "e.g. --run-id ci-$GITHUB_RUN_ID"
        )
    return run_id


def check_joinable(store: Store, plan: Plan, run_id: str, shard: Shard) -> None:
    """A shard may join an existing run only if it is a run of the same suite (same content)."""
    info = store.get_run(run_id)
    if info is None:
        return
    suite = plan.suite
    if info.suite != suite.name:
        raise GlmevalError(f"run {run_id} is of suite {info.suite!r}, not {suite.name!r}; give each suite its own --run-id")
    if info.suite_hash and suite.content_hash and info.suite_hash != suite.content_hash:
        raise GlmevalError(
            f"run {run_id} was started from a different version of {suite.path or suite.name}; "
            "every shard must run the same suite file (check out the same commit), or use a new --run-id"
        )
    if info.total_jobs is not None and info.total_jobs != len(plan.jobs):
        raise GlmevalError(
            f"run {run_id} planned {info.total_jobs} jobs, this plan has {len(plan.jobs)}; "
            "every shard must use the same suite and the same --model/--mode"
        )


def run_shard(
    plan: Plan,
    store: Store,
    client: GLMClient | None,
    local: bool,
    options: RunOptions,
    shard: Shard,
    run_id: str | None,
    settings: dict[str, Any] | None = None,
    on_result: Callable[[Result, RunCounts], None] | None = None,
) -> RunOutcome:
    """Run this shard's slice of ``plan`` into the shared run ``run_id`` (created by whichever
    shard starts first), then record the shard's end and settle the run's status."""
    from glmeval.run.runner import Runner
    from glmeval.store.shards import begin_shard, finish_shard

    run_id = check_run_id(run_id)
    check_joinable(store, plan, run_id, shard)
    mine = shard.select(plan.jobs)
    done = store.done_job_ids(run_id)
    todo = [job for job in mine if job.id not in done]
    counts = stored_counts(store, run_id, {job.id for job in mine} & done, len(mine))
    runner = Runner(client, store, options, on_result=on_result)
    for warning in runner.preflight(todo) if todo else []:
        if options.notify is not None:
            options.notify(warning)
    suite = plan.suite
    # The same run row as session.run_plan would make; "ignore" keeps the first shard's.
    store.start_run(
        suite.name,
        suite_hash=suite.content_hash,
        suite_path=str(suite.path) if suite.path else None,
        settings=settings or {},
        local=local,
        replay=options.cache == "replay",
        total_jobs=len(plan.jobs),
        variants=plan.variants,
        run_id=run_id,
        cwd=suite.path.parent if suite.path else None,
    )
    begin_shard(store.conn, run_id, shard.index, shard.count, len(mine))
    outcome = runner.run(todo, run_id, total=len(mine), counts=counts)
    if not local and client is not None and getattr(client, "simulated", False):
        store.conn.execute("UPDATE runs SET local = 1 WHERE id = ?", (run_id,))
    finish_shard(store.conn, run_id, shard.index, outcome.status)
    return outcome


def stored_counts(store: Store, run_id: str, job_ids: set[str], total: int) -> RunCounts:
    """Totals of the results this shard already has (a retried CI job), errors excluded."""
    from glmeval.run.runner import RunCounts

    counts = RunCounts(total=total)
    if not job_ids:
        return counts
    rows = store.conn.execute(
        "SELECT job_id, status, total_tokens, cost, cached, attempts FROM results WHERE run_id = ? AND status != 'error'",
        (run_id,),
    ).fetchall()
    for job_id, status, tokens, cost, cached, attempts in rows:
        if job_id not in job_ids:
            continue
        counts.done += 1
        counts.passed += status == "pass"
        counts.failed += status == "fail"
        counts.tokens += int(tokens or 0)
        counts.cost += float(cost or 0.0)
        counts.cached += int(cached or 0)
        counts.retried += int((attempts or 1) > 1)
    return counts


def progress_line(run_id: str, shard: Shard, shards: RunShards | None) -> str:
    """``shard 2/4 of run ID: complete; 3 of 4 shards done (waiting for 4)``."""
    if shards is None:
        return f"shard {shard.label} of run {run_id}"
    mine = next((r for r in shards.rows if r.shard == shard.index), None)
    text = f"shard {shard.label} of run {run_id}: {mine.status if mine else '?'}; {shards.ended} of {shards.count} shards done"
    if shards.ended < shards.count:
        waiting = shards.missing
        shown = ", ".join(map(str, waiting[:8])) + (", ..." if len(waiting) > 8 else "")
        return f"{text} (waiting for {shown})"
    return f"{text}: the run is {shards.status}; `glmeval report {run_id}` and `glmeval compare BASE {run_id}` read it whole"


__all__ = ["MAX_SHARDS", "Shard", "check_joinable", "check_run_id", "progress_line", "run_shard", "shard_of", "stored_counts"]
