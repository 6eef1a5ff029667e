"""The plugin's session state: one batch run per pytest process, one stored run per session.

:class:`GlmevalState` is kept in ``config.stash``. It opens the store, the client and (with
``--glmeval-local``) the local server only when a glmeval item reaches setup or a test uses
the ``glm`` fixture; it runs the selected items' jobs in batches, judges each item, and at the
end (on the xdist controller, or the only process) finishes the run through
:func:`glmeval.afterrun.after_run`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from glmeval.afterrun import as_status
from glmeval.pytest_plugin.verdict import CaseItem, Verdict, judge
from glmeval.records import RunStatus
from glmeval.redact import redact_url

if TYPE_CHECKING:
    from glmeval.records import Job, Result
    from glmeval.run.runner import RunCounts, RunOptions
    from glmeval.session import Target
    from glmeval.store import Store
    from glmeval.store.lease import Holder, RunLease
    from glmeval.suite import Suite

NO_KEY_MESSAGE = (
    "glmeval: no ZhipuAI API key: set ZHIPUAI_API_KEY (or ZHIPU_API_KEY), "
    "or pass --glmeval-local to run against the local GLM server"
)

STATE_KEY: pytest.StashKey[GlmevalState] = pytest.StashKey()


@dataclass
class GlmevalState:
    """Everything the plugin keeps for one pytest process.

    Heavy things (the store, the client, a local server) are created on first need by
    :meth:`ensure_started`, so a session without glmeval items never creates them.
    """

    config: pytest.Config
    local: bool = False
    local_speed: float | None = None
    models: list[str] = field(default_factory=list)
    db: str | None = None
    report: str | None = None
    baseline: str | None = None
    replay: bool = False
    concurrency: int | None = None
    retry_budget: float | None = None
    selected: list[CaseItem] = field(default_factory=list)
    results: dict[str, Result] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    statuses: list[RunStatus] = field(default_factory=list)
    worker_outputs: list[dict[str, Any]] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    error: str | None = None
    abort_reason: str | None = None
    started: bool = False
    store: Store | None = None
    target: Target | None = None
    jobs_run: int = 0
    markers: set[str] = field(default_factory=set)
    lease: RunLease | None = None
    _run_id: str | None = None
    _holder: str | None = None

    @classmethod
    def from_config(cls, config: pytest.Config) -> GlmevalState:
        workerinput: dict[str, Any] = getattr(config, "workerinput", {}) or {}
        return cls(
            config=config,
            local=bool(config.getoption("glmeval_local")),
            local_speed=config.getoption("glmeval_local_speed"),
            models=list(config.getoption("glmeval_model") or []),
            db=config.getoption("glmeval_db"),
            report=config.getoption("glmeval_report"),
            baseline=config.getoption("glmeval_baseline"),
            replay=bool(config.getoption("glmeval_replay")),
            concurrency=config.getoption("glmeval_concurrency"),
            retry_budget=config.getoption("glmeval_retry_budget"),
            _run_id=workerinput.get("glmeval_run_id"),
            _holder=workerinput.get("glmeval_lease"),
        )

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    @property
    def run_id(self) -> str:
        """The session's run id; made once, on the controller, and shared with xdist workers."""
        if self._run_id is None:
            from glmeval.store import new_run_id

            self._run_id = new_run_id()
        return self._run_id

    @property
    def holder(self) -> Holder:
        """Who holds the session's run: made once, on the controller (its host and pid, which
        live as long as the session), and handed to every xdist worker, so the workers join one
        lease under one token instead of refusing each other."""
        from glmeval.store.lease import Holder, new_holder

        holder = Holder.decode(self._holder) if self._holder else None
        if holder is None:
            holder = new_holder()
            self._holder = holder.encode()
        return holder

    def db_path(self) -> Path | str:
        """The results database: a file (relative to where pytest was started) or a PostgreSQL URL."""
        from glmeval.store.location import database_location

        path = database_location(self.db or None)
        if isinstance(path, str):
            return path
        return path if path.is_absolute() else self.config.invocation_params.dir / path

    # -- what was selected -------------------------------------------------------------------

    def selected_suites(self) -> list[Suite]:
        suites: dict[int, Suite] = {}
        for item in self.selected:
            suites.setdefault(id(item.suite), item.suite)
        return list(suites.values())

    def run_name(self) -> str:
        """The stored run's suite name: the suite, or ``a+b`` when a session ran several.

        Every xdist worker collects the same items, so every worker computes the same name.
        """
        names = sorted({s.name for s in self.selected_suites()})
        return "+".join(names) if names else "pytest"

    # -- starting and stopping -------------------------------------------------------------

    def ensure_started(self) -> bool:
        """Open the store, start the target (and local server), create the run. False when
        that is impossible; :attr:`error` then says why in one line."""
        if self.started:
            return True
        if self.error is not None:
            return False
        from glmeval.errors import GlmevalError
        from glmeval.run.client import find_api_key
        from glmeval.session import LOCAL_SPEED, Target
        from glmeval.store import Store
        from glmeval.suite.providers import merge_providers

        if not self.local and not self.replay and not find_api_key():
            self.error = NO_KEY_MESSAGE
            return False
        suites = self.selected_suites()
        try:
            self.store = Store(self.db_path())
            target = Target(
                local=self.local,
                base_url=os.environ.get("ZHIPUAI_BASE_URL") or None,
                timeout=max((s.settings.timeout for s in suites), default=60.0),
                poll_timeout=max((s.settings.poll_timeout for s in suites), default=300.0),
                speed=LOCAL_SPEED if self.local_speed is None else self.local_speed,
                replay=self.replay,
                concurrency=self.concurrency or max((s.settings.concurrency for s in suites), default=8),
                providers=merge_providers(
                    ((str(s.path), s.provider_table) for s in suites), {j.provider for item in self.selected for j in item.jobs}
                ),
            )
            self.target = target.__enter__()
            variants: list[str] = []
            for item in self.selected:
                if item.variant_id not in variants:
                    variants.append(item.variant_id)
            self.store.start_run(
                self.run_name(),
                suite_hash=suites[0].content_hash if len(suites) == 1 else None,
                suite_path=str(suites[0].path) if len(suites) == 1 else None,
                settings={
                    key: value
                    for key, value in {
                        "runner": "pytest",
                        "concurrency": self.concurrency,
                        "cache": "replay" if self.replay else "off",
                        "models": ",".join(self.models) or None,
                        "base_url": "local" if self.local else redact_url(self.target.base_url or ""),
                    }.items()
                    if value is not None
                },
                local=self.local,
                replay=self.replay,
                total_jobs=sum(len(item.jobs) for item in self.selected),
                variants=variants,
                run_id=self.run_id,
                cwd=self.config.rootpath,
            )
            from glmeval.store.lease import RunLease

            self.lease = RunLease(self.store, self.run_id, self.holder).acquire()
        except GlmevalError as exc:
            self.error = f"glmeval: {exc}"
            self.close()
            return False
        self.started = True
        return True

    def close(self) -> None:
        """Give up (or, on an xdist worker, stop beating for) the run's lease, stop the client
        and the local server and close the store (safe to call twice)."""
        lease, self.lease = self.lease, None
        if lease is not None:
            lease.release(delete=not self.is_worker)
        target, self.target = self.target, None
        if target is not None:
            target.__exit__(None, None, None)
        store, self.store = self.store, None
        if store is not None:
            store.close()

    # -- running ---------------------------------------------------------------------------

    def _on_result(self, result: Result, counts: RunCounts) -> None:
        self.results[result.job.id] = result

    def _options(self, suite: Suite) -> RunOptions:
        from glmeval.run.retry import DEFAULT_RETRY_BUDGET
        from glmeval.run.runner import RunOptions

        return RunOptions(
            concurrency=self.concurrency or suite.settings.concurrency,
            retries=suite.settings.retries,
            retry_budget=self.retry_budget or suite.settings.retry_budget or DEFAULT_RETRY_BUDGET,
            cache="replay" if self.replay else "off",
            judge_model=suite.settings.judge_model,
            embedding_model=suite.settings.embedding_model,
            suite_dir=suite.base_dir,
            prices=suite.prices or None,
            # Suites without check files share the built-ins, and so can share one Runner.
            checks=suite.check_registry if suite.check_registry.own() else None,
        )

    def run_items(self, items: list[CaseItem]) -> None:
        """Run every job of ``items`` in one go.

        Jobs of suites that share run options (same folder, settings and prices: the usual
        case) go through one Runner together, so they run concurrently across suite files;
        suites with their own settings get their own Runner, one after the other.
        """
        from glmeval.run.batch import run_jobs
        from glmeval.run.runner import Runner

        assert self.store is not None and self.target is not None
        groups: dict[str, tuple[RunOptions, list[Job]]] = {}
        for item in items:
            options = self._options(item.suite)
            key = repr(sorted(vars(options).items()))
            groups.setdefault(key, (options, []))[1].extend(
                j for j in item.jobs if j.id not in self.results and j.id not in self.missing
            )
        for options, jobs in groups.values():
            if not jobs:
                continue
            if self.abort_reason is not None:
                for job in jobs:
                    self.missing[job.id] = f"not run: the run stopped: {self.abort_reason}"
                continue
            runner = Runner(self.target.client, self.store, options, on_result=self._on_result)
            outcome = run_jobs(runner, jobs, self.run_id, total=len(jobs))
            self.jobs_run += len(jobs)
            self.statuses.append(as_status(outcome.status))
            if outcome.abort_reason:
                self.abort_reason = outcome.abort_reason
            for job in jobs:
                if job.id not in self.results:
                    self.missing[job.id] = f"not run: the run {outcome.status}" + (
                        f": {outcome.abort_reason}" if outcome.abort_reason else ""
                    )
            if outcome.status == "interrupted" and not outcome.abort_reason:
                # The runner swallowed Ctrl-C to finish in-flight calls; pytest must still stop.
                raise KeyboardInterrupt

    def prepare(self, item: CaseItem) -> None:
        """Make sure ``item``'s results exist: run the batch it belongs to if they do not."""
        if all(j.id in self.results or j.id in self.missing for j in item.jobs):
            return
        if not self.ensure_started():
            return
        batch = [item]
        # The selected items are exactly the glmeval items with jobs; others in the queue are not ours.
        selected = {id(case): case for case in self.selected}
        for other in self._queued_items(item.session):
            case = selected.get(id(other))
            if case is not None and case is not item:
                if any(j.id not in self.results and j.id not in self.missing for j in case.jobs):
                    batch.append(case)
        self.run_items(batch)

    def _queued_items(self, session: pytest.Session) -> list[object]:
        """The items this process will run.

        Without xdist that is every selected item. An xdist worker is fed items by the
        controller a chunk at a time, so it can only batch what is already queued to it
        (read from xdist's worker loop; if that ever changes shape we just batch less).
        """
        if not self.is_worker:
            return list(self.selected)
        for plugin in self.config.pluginmanager.get_plugins():
            if type(plugin).__name__ != "WorkerInteractor":
                continue
            try:
                indices: list[int] = []
                nxt = getattr(plugin, "nextitem_index", None)
                if isinstance(nxt, int):
                    indices.append(nxt)
                with plugin.torun.lock() as queue:
                    indices.extend(i for i in queue if isinstance(i, int))
                return [session.items[i] for i in indices if 0 <= i < len(session.items)]
            except Exception:
                return []
        return []

    # -- judging an item ---------------------------------------------------------------------

    def verdict(self, item: CaseItem) -> Verdict:
        """How ``item``'s repeats came out by its case's threshold (see :func:`judge`)."""
        return judge(item, self.results, self.missing)

    # -- the end -----------------------------------------------------------------------------

    def worker_output(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "db": str(self.db_path()),
            "jobs": self.jobs_run,
            "statuses": list(self.statuses),
            "error": self.error,
        }

    def finalize(self, exitstatus: int) -> None:
        """Set the run's final status and write the report; once per session, on the
        process that owns the run (the xdist controller, or the only process)."""
        from glmeval.afterrun import AfterRun, after_run, session_status
        from glmeval.store import Store

        outputs = self.worker_outputs if not self.started else [self.worker_output()]
        outputs = [o for o in outputs if o.get("jobs") or o.get("statuses")]
        if not outputs and not self.started:
            return
        statuses = [s for o in outputs for s in o.get("statuses", [])]
        status = session_status(statuses, interrupted=int(exitstatus) == int(pytest.ExitCode.INTERRUPTED))
        jobs = sum(int(o.get("jobs") or 0) for o in outputs)
        db = outputs[0]["db"] if outputs else self.db_path()
        out = None
        if self.report:
            out = Path(self.report)
            out = out if out.is_absolute() else self.config.invocation_params.dir / out
        store = self.store
        try:
            if store is None:
                store = Store(db)
            end = after_run(store, self.run_id, AfterRun(baseline=self.baseline, gate=False, finish=status, report_dir=out))
            if self.lease is None:  # the xdist controller: the workers' shared lease ends here
                from glmeval.store.lease import release

                release(store.conn, self.run_id, self.holder.token)
            if end.finished:
                workers = f" from {len(outputs)} workers" if len(self.worker_outputs) > 1 else ""
                self.summary.append(f"run {self.run_id} ({status}): {jobs} jobs{workers} stored in {store.path}")
            self.summary.extend(f"report: {path}" for path in end.reports)
            if end.error is not None:
                self.summary.append(_failure_line(end.error))
        except Exception as exc:
            self.summary.append(_failure_line(exc))
        finally:
            if store is not None and store is not self.store:
                store.close()


def _failure_line(exc: Exception) -> str:
    """A problem finishing the run, for the terminal summary: the user's own (a bad
    baseline, an unwritable folder) in one line, anything else with its type."""
    from glmeval.errors import GlmevalError

    if isinstance(exc, GlmevalError):
        return f"cannot finish the run: {exc}"
    return f"report failed: {type(exc).__name__}: {exc}"


def get_state(config: pytest.Config) -> GlmevalState:
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        state = GlmevalState.from_config(config)
        config.stash[STATE_KEY] = state
    return state


__all__ = ["GlmevalState", "STATE_KEY", "NO_KEY_MESSAGE", "get_state"]
