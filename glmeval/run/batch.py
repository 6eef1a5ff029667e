"""``mode: batch``: a plan's batch-mode jobs through the Zhipu Batch API (zhipu-api-2026.md §6).

The jobs are written as JSONL (:mod:`glmeval.run.batchfile`: one file per model, within the
documented 50,000 lines / 100 MB), each file uploaded (``client.files.create``) and a batch created
from it (``client.batches.create``); the batches are polled (``client.batches.retrieve``) with a
progress line, and once one ends its output and error files (``client.files.content``) are mapped
back to its jobs: a Completion for each success, an ErrorInfo for each failure. Every answer is
then judged and stored by the runner (:meth:`Runner.record_answer`), so checks, the store,
reports and gates see a batch result like any other; its cost is the batch price.

Resumable after a kill: the input file and its jobs are stored (:mod:`glmeval.store.batches`)
before the batch is created, its id the moment it is. ``--resume`` polls the stored batches
instead of submitting them again; a file uploaded whose batch may or may not exist is looked up
by ``input_file_id`` in ``batches.list`` first. A job of a stored batch is never submitted again
(answered, refused, or still running), with two exceptions that were never answered nor billed:
the jobs a failed, expired or cancelled batch (or one unknown to the endpoint: a ``--local``
server does not outlive its run) left without an answer, and the lines a completed batch
failed on a 429 / 5xx. Those go into a new batch.
Ctrl-C stops polling; the batches run on at the endpoint and ``--resume`` collects them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from glmeval.errors import GlmevalError
from glmeval.records import Completion, ErrorInfo, ErrorKind, Job, RunStatus
from glmeval.redact import redact_url
from glmeval.run.batchfile import ENDPOINT, LineResult, custom_id, read_results, split_files
from glmeval.run.client import FATAL_KINDS, RETRYABLE_KINDS, CallError, classify
from glmeval.run.outcome import RunCounts, RunOutcome, abort_message
from glmeval.run.runner import Runner
from glmeval.store.batches import FINAL_STATES, StoredBatch, note_batch, note_state, note_upload, stored_batches

__all__ = ["COMPLETION_WINDOW", "run_jobs"]

COMPLETION_WINDOW: Final = "24h"  # the only window the docs show
POLL_MIN: Final = 0.1
POLL_MAX: Final = 5.0
PROGRESS_EVERY: Final = 2.0  # seconds between two progress lines of one batch (state changes: at once)
_LIST_PAGES: Final = 20  # batches.list pages searched for a batch whose creation was not recorded
_SERVER_FINAL = frozenset({"completed", "failed", "expired", "cancelled"})

T = TypeVar("T")


def run_jobs(
    runner: Runner, jobs: Iterable[Job], run_id: str, total: int | None = None, counts: RunCounts | None = None
) -> RunOutcome:
    """:meth:`Runner.run` for a plan's jobs, the batch-mode ones through the Batch API first.

    A plan without batch-mode jobs goes straight to the runner, untouched. Batch-mode jobs the
    response cache answers (``--cache use``, ``--replay``) are the runner's too: no call needed.
    """
    jobs = list(jobs)
    batch_jobs = [job for job in jobs if job.mode == "batch"]
    if not batch_jobs:
        return runner.run(jobs, run_id, total=total, counts=counts)
    counts = counts or RunCounts(total=total or len(jobs))
    mode = runner.options.cache
    from_cache = [job for job in batch_jobs if mode == "replay" or (mode == "use" and runner.cache.has(job))]
    cached_ids = {job.id for job in from_cache}
    batch_jobs = [job for job in batch_jobs if job.id not in cached_ids]
    others = [job for job in jobs if job.mode != "batch"] + from_cache
    if batch_jobs:
        phase = _Phase(runner, run_id, counts)
        ended = phase.run(batch_jobs)
        if ended is not None:
            status, abort = ended
            runner.store.finish_run(run_id, status)
            return RunOutcome(
                run_id=run_id, status=status, counts=counts,
                abort_reason=abort_message(abort) if abort else None, abort_kind=abort.kind if abort else None,
                not_run=phase.left + len(others),
            )
    return runner.run(others, run_id, total=total, counts=counts)


class _Abort(Exception):
    """A bad key or an empty balance: the run stops (``_Phase.abort`` says why)."""


@dataclass
class _Active:
    """A batch being polled: its stored row's key, its id, and the jobs still to be answered."""

    input_file_id: str
    batch_id: str
    model: str
    jobs: list[Job]
    status: str = "validating"
    shown: tuple[str, int] = ("", -1)
    shown_at: float = 0.0


class _Phase:
    """One session's batch work for one run: re-attach, submit, poll, collect."""

    def __init__(self, runner: Runner, run_id: str, counts: RunCounts) -> None:
        if runner.client is None:
            raise GlmevalError("mode: batch needs an API key or --local (the Batch API has no offline replay)")
        self.runner = runner
        self.client = runner.client
        self.sdk: Any = runner.client.sdk
        self.store = runner.store
        self.run_id = run_id
        self.counts = counts
        self.notify = runner.options.notify
        self.retry_budget = runner.options.retry_budget
        self.abort: ErrorInfo | None = None
        self.active: list[_Active] = []
        self.answered: set[str] = set()
        self.kept: set[str] = set()  # jobs whose stored result (from a completed batch) stands
        self.left = 0  # jobs this phase leaves without a result (stopped, or files not fetched)

    def run(self, jobs: list[Job]) -> tuple[RunStatus, ErrorInfo | None] | None:
        """Every job answered: None; else how the run stops: (status, the fatal error if any)."""
        wanted = {job.id: job for job in jobs}
        try:
            fresh = self._reattach(wanted)
            self._submit(fresh)
            self._poll()
        except _Abort:
            self.left = len(wanted) - len(self.answered) - len(self.kept)
            return "aborted", self.abort
        except KeyboardInterrupt:
            self.left = len(wanted) - len(self.answered) - len(self.kept)
            self._say("stopped polling; the batches run on at the endpoint, and --resume collects them")
            return "interrupted", None
        self.left = len(wanted) - len(self.answered) - len(self.kept)
        if self.runner.halted or self.left:
            return "interrupted", None
        return None

    # -- talking to the endpoint --------------------------------------------------------------

    def _say(self, line: str) -> None:
        if self.notify is not None:
            self.notify(line)

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` with transient errors retried (backoff, within the retry budget); a fatal
        error stops the run, any other is raised as CallError."""
        started = time.monotonic()
        delay = 0.5
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                error = classify(exc, getattr(self.client, "_secret", None))
            if error.info.kind in FATAL_KINDS:
                self.abort = error.info
                raise _Abort() from None
            waited = time.monotonic() - started
            if error.info.kind not in RETRYABLE_KINDS or waited + delay > self.retry_budget or self.runner.halted:
                error.info.message = f"{what}: {error.info.message}"
                raise error from None
            time.sleep(max(delay, error.retry_after or 0.0))
            delay = min(delay * 2, 8.0)

    # -- resume: what was submitted before ----------------------------------------------------

    def _reattach(self, wanted: dict[str, Job]) -> list[Job]:
        """Poll again what a stored batch holds; returns the jobs no live or completed batch holds."""
        claimed: set[str] = set()
        unanswered = self._unanswered()
        for row in stored_batches(self.store, self.run_id):
            if row.collected or row.status in FINAL_STATES:
                if row.status == "completed":
                    # Its answers and its final refusals are never sent again; a line that failed
                    # on a 429 / 5xx got no answer (and no bill), so it may go again like any error.
                    kept = [i for i in row.job_ids if i not in unanswered]
                    claimed.update(kept)
                    self.kept.update(i for i in kept if i in wanted)
                continue
            batch_id = row.batch_id or self._find(row)
            if batch_id is None:
                batch_id = self._create(row.input_file_id, [wanted[i] for i in row.job_ids if i in wanted])
                if batch_id is None:
                    continue
            else:
                try:
                    self._call(f"batch {batch_id}", self.sdk.batches.retrieve, batch_id)
                except CallError as exc:
                    if exc.info.status != 404:
                        raise
                    note_state(self.store, row.input_file_id, "lost", collected=True)
                    self._say(f"batch {batch_id} is unknown to {redact_url(self.client.base_url)}; its jobs go into a new batch")
                    continue
            claimed.update(row.job_ids)
            self.active.append(_Active(row.input_file_id, batch_id, row.model,
                                       [wanted[i] for i in row.job_ids if i in wanted]))
        if self.active:
            self._say(f"resuming {len(self.active)} submitted batch{'es' if len(self.active) != 1 else ''}")
        return [job for job in wanted.values() if job.id not in claimed]

    def _unanswered(self) -> set[str]:
        """Jobs of this run whose stored result is a transient error (what --resume is for)."""
        kinds = sorted(RETRYABLE_KINDS)
        rows = self.store.conn.execute(
            f"SELECT job_id FROM results WHERE run_id = ? AND status = 'error' AND error_kind IN ({', '.join('?' * len(kinds))})",
            (self.run_id, *kinds),
        )
        return {r[0] for r in rows}

    def _find(self, row: StoredBatch) -> str | None:
        """The batch made from ``row``'s file when the run stopped before recording its id."""
        after: str | None = None
        for _ in range(_LIST_PAGES):
            cursor = {"after": after} if after else {}
            page = self._call("batches.list", self.sdk.batches.list, limit=100, **cursor)
            data = list(getattr(page, "data", None) or [])
            for batch in data:
                if getattr(batch, "input_file_id", None) == row.input_file_id:
                    note_batch(self.store, row.input_file_id, batch.id, batch.status)
                    return str(batch.id)
            if not data or not getattr(page, "has_more", False):
                return None
            after = data[-1].id
        return None

    # -- submitting -----------------------------------------------------------------------------

    def _submit(self, jobs: list[Job]) -> None:
        for part in split_files(jobs):
            if self.runner.halted:
                return
            name = f"glmeval-{self.run_id}-{part.model}.jsonl"
            try:
                uploaded = self._call(
                    "upload", self.sdk.files.create, file=(name, part.content, "application/jsonl"), purpose="batch"
                )
            except CallError as exc:
                self._fail(part.jobs, exc.info)
                continue
            note_upload(self.store, self.run_id, uploaded.id, part.model, [job.id for job in part.jobs])
            batch_id = self._create(uploaded.id, part.jobs)
            if batch_id is not None:
                self.active.append(_Active(uploaded.id, batch_id, part.model, part.jobs))
                self._say(f"batch {batch_id} ({part.model}): submitted {len(part.jobs):,} requests")

    def _create(self, input_file_id: str, jobs: list[Job]) -> str | None:
        """Create the batch of an uploaded file and store its id at once; None when refused."""
        try:
            batch = self._call(
                "batches.create", self.sdk.batches.create, input_file_id=input_file_id, endpoint=ENDPOINT,
                completion_window=COMPLETION_WINDOW, metadata={"glmeval_run": self.run_id}, auto_delete_input_file=True,
            )
        except CallError as exc:
            note_state(self.store, input_file_id, "failed", collected=True)
            self._fail(jobs, exc.info)
            return None
        note_batch(self.store, input_file_id, batch.id, batch.status)
        return str(batch.id)

    def _fail(self, jobs: list[Job], info: ErrorInfo) -> None:
        for job in jobs:
            self._record(job, Completion(error=ErrorInfo(info.kind, info.message, info.status, info.code), model=job.model))

    def _record(self, job: Job, completion: Completion) -> None:
        self.runner.record_answer(self.run_id, job, completion, self.counts)
        self.answered.add(job.id)

    # -- polling and collecting -----------------------------------------------------------------

    def _poll(self) -> None:
        delay = POLL_MIN
        started = time.monotonic()
        while self.active:
            for act in list(self.active):
                if self.runner.halted:
                    return
                if not act.jobs:  # its jobs were all stored before the stop: nothing left to fetch
                    note_state(self.store, act.input_file_id, act.status, collected=True)
                    self.active.remove(act)
                    continue
                try:
                    batch = self._call(f"batch {act.batch_id}", self.sdk.batches.retrieve, act.batch_id)
                except CallError as exc:
                    self.active.remove(act)
                    if exc.info.status == 404:
                        note_state(self.store, act.input_file_id, "lost", collected=True)
                        self._fail(act.jobs, ErrorInfo("task_failed", f"batch {act.batch_id} is unknown to the endpoint"))
                    else:
                        self._say(f"batch {act.batch_id}: {exc.info}; --resume polls it again")
                    continue
                self._show(act, batch)
                if batch.status in _SERVER_FINAL:
                    self.active.remove(act)
                    self._collect(act, batch)
                elif batch.status != act.status:
                    act.status = batch.status
                    note_state(self.store, act.input_file_id, batch.status)
            if self.active:
                self._sleep(delay)
                # Within the first minute no gap over 1-3 s: a local or small batch ends soon.
                delay = min(delay * 1.5, POLL_MAX, 1.0 + (time.monotonic() - started) / 30)

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.runner.halted and time.monotonic() < end:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))

    def _show(self, act: _Active, batch: Any) -> None:
        counts = getattr(batch, "request_counts", None)
        total = int(getattr(counts, "total", None) or 0)
        done = int(getattr(counts, "completed", None) or 0)
        failed = int(getattr(counts, "failed", None) or 0)
        now = time.monotonic()
        changed = batch.status != act.shown[0]
        if not changed and (done + failed == act.shown[1] or now - act.shown_at < PROGRESS_EVERY):
            return
        act.shown, act.shown_at = (batch.status, done + failed), now
        of = f", {done + failed:,}/{total:,} done, {failed:,} failed" if total else ""
        self._say(f"batch {act.batch_id} ({act.model}): {batch.status}{of}")

    def _collect(self, act: _Active, batch: Any) -> None:
        """Map an ended batch's files back to its jobs and store every answer."""
        lines: dict[str, LineResult] = {}
        for file_id in (getattr(batch, "output_file_id", None), getattr(batch, "error_file_id", None)):
            if not file_id:
                continue
            try:
                content = self._call(f"file {file_id}", self.sdk.files.content, file_id).content
            except CallError as exc:
                self._say(f"batch {act.batch_id}: cannot fetch its results ({exc.info}); --resume fetches them again")
                return
            for line in read_results(content):
                lines[line.custom_id] = line
        missing = _missing_reason(batch)
        for job in act.jobs:
            found = lines.get(custom_id(job))
            if found is None:
                completion = Completion(error=missing, model=job.model)
            elif found.error is not None:
                completion = Completion(error=found.error, request_id=found.request_id, model=job.model)
            else:
                assert found.body is not None
                completion = self.client.from_body(found.body)
                completion.request_id = completion.request_id or found.request_id
                completion.model = completion.model or job.model
            self._record(job, completion)
        note_state(self.store, act.input_file_id, batch.status, output_file_id=getattr(batch, "output_file_id", None),
                   error_file_id=getattr(batch, "error_file_id", None), collected=True)


def _missing_reason(batch: Any) -> ErrorInfo:
    """Why a job of an ended batch has no line in its files: the batch's validation errors
    (every one, up to a few), or how it ended."""
    errors = getattr(getattr(batch, "errors", None), "data", None) or []
    if batch.status == "failed" and errors:
        shown = "; ".join(
            f"line {getattr(e, 'line', '?')}: {getattr(e, 'message', '')} ({getattr(e, 'code', '')})" for e in errors[:3]
        )
        more = f"; and {len(errors) - 3} more" if len(errors) > 3 else ""
        return ErrorInfo("bad_request", f"batch {batch.id} failed validation: {shown}{more}")
    kind: ErrorKind = "timeout" if batch.status == "expired" else "cancelled" if batch.status == "cancelled" else "task_failed"
    return ErrorInfo(kind, f"batch {batch.id} ended {batch.status} without an answer to this request")
