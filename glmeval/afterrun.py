"""What happens once a run's jobs are done, for ``glmeval run`` and the pytest plugin alike.

Both front ends end a run the same way: record its final status, compare it with a baseline
and check the ``--fail-on`` rules, record that baseline, write the reports (and append the
compact summary to ``$GITHUB_STEP_SUMMARY``), then decide the exit code. Each step lives
here once, as plain functions of an :class:`AfterRun` (what to do) returning a
:class:`RunEnd` (what happened), so the CLI and the plugin only print.

Nothing here prints or exits: lines meant for a person come back in the outcome, in the
order a reader should see them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from glmeval.errors import GlmevalError
from glmeval.records import RunStatus
from glmeval.session import is_status

if TYPE_CHECKING:  # the CLI imports this module for --help: pandas and the store load on use
    from glmeval.analysis.compare import Comparison
    from glmeval.analysis.rules import Rule, Trip
    from glmeval.report.data import ReportData
    from glmeval.run.runner import RunOutcome
    from glmeval.store.protocols import StoreReader, StoreWriter

REPORT_FORMATS: tuple[str, ...] = ("md", "html")
EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass(frozen=True)
class AfterRun:
    """What to do after a run's jobs finish.

    ``baseline`` is the reference as :func:`check_gate` returned it (a resolved run id, or
    ``latest``/``latest~N`` resolved per run afterwards). With ``gate`` (``glmeval run``) the
    run is compared with it now (the comparison comes back as lines), the baseline is recorded
    with the run and ``rules`` are checked; without (the pytest plugin) the baseline only feeds
    the report, and ``latest`` is the latest run before this one whatever its suite, because a
    pytest session's run may span several suites.
    """

    baseline: str | None = None
    rules: tuple[Rule, ...] = ()
    gate: bool = True
    finish: RunStatus | None = None
    """Store this final status first (the plugin; the runner already did for ``glmeval run``)."""
    summary: bool = False
    """Load the run's report data (after the gate, with its comparison) for a printed summary."""
    report_dir: Path | None = None
    """Write reports here (None: none); with ``report_subdirs`` into ``<suite>/<run id>`` below it."""
    report_subdirs: bool = False
    formats: tuple[str, ...] = REPORT_FORMATS
    step_summary: bool = True

    @property
    def gated(self) -> bool:
        """The run is compared with a baseline or checked against ``--fail-on`` rules now."""
        return self.gate and bool(self.baseline or self.rules)


@dataclass
class RunEnd:
    """What the after-run path did for one run, step by step.

    ``finished``: the run's final status is stored. ``failed``: a check failed, a job
    errored or the run did not complete. ``error`` is what stopped the path part way (the
    steps before it are filled in): a :class:`GlmevalError` is the user's to read in one
    line; anything else is a bug the caller re-raises or reports.
    """

    run_id: str
    status: RunStatus | None = None
    finished: bool = False
    data: ReportData | None = None
    gate_lines: list[str] = field(default_factory=list)
    trips: list[Trip] = field(default_factory=list)
    reports: list[Path] = field(default_factory=list)
    failed: bool = False
    error: Exception | None = None


@dataclass(frozen=True)
class ExitDecision:
    """How a command ends: ``stopped`` (a fatal abort, one error line, exit 2) or ``code``
    after printing ``lines`` to stderr."""

    code: int
    lines: tuple[str, ...] = ()
    stopped: str | None = None


def check_gate(
    store: StoreReader, baseline: str | None, fail_on: Sequence[str], suites: Sequence[str]
) -> tuple[str | None, tuple[Rule, ...]]:
    """Parse the ``--fail-on`` rules and check ``--baseline`` before anything is spent.

    Only plain ``latest`` may be missing (a suite's first run); an explicit ``latest~N``
    that does not exist for one of ``suites`` is a mistake, and must not let the gate pass
    silently.
    """
    from glmeval.analysis.rules import check_refs, parse_rules

    rules = tuple(parse_rules(fail_on))
    ref = check_refs(store, baseline, list(rules))
    if ref and ref.startswith("latest~") and ref.strip() != "latest~0":
        for suite in suites:
            store.resolve_run(ref, suite=suite)
    return ref, rules


WARM_UP_JOBS = 20_000
"""Above this many jobs there is no warm-up: it saves the same fixed half second on a run of
minutes, and pandas loaded beside a 100,000-case suite adds its 40 MB to the run's peak."""


def warm_up(plan: AfterRun, jobs: int) -> None:
    """Load what ``plan``'s after-run path needs (pandas and the report modules, the gate, the
    compiled HTML template) on a background thread, so it is ready when the last answer comes.

    A run mostly waits on the network: at 200 ms a call and 32 in flight the interpreter is idle
    about three quarters of the time, and those imports (0.3-0.5 s) would otherwise come after
    the last answer, while the user waits. Where a run is CPU-bound it costs what the after-run
    path would have cost anyway. A failure here is left for the after-run path to report.
    """
    if jobs > WARM_UP_JOBS or not (plan.summary or plan.report_dir is not None or plan.gated):
        return

    def load() -> None:
        try:
            import glmeval.report

            if plan.gated:
                import glmeval.analysis.gate  # noqa: F401
            if plan.report_dir is not None and "html" in plan.formats:
                from glmeval.report.html import environment

                environment().get_template("report.html.j2")
        except Exception:
            pass

    threading.Thread(target=load, name="glmeval-warm-up", daemon=True).start()


def after_run(store: StoreWriter, run_id: str, plan: AfterRun, outcome: RunOutcome | None = None) -> RunEnd:
    """Finish, gate and report one run as ``plan`` says; never raises (see :attr:`RunEnd.error`).

    ``outcome`` (the runner's, for ``glmeval run``) supplies the status and decides
    :attr:`RunEnd.failed`: a failed check, an errored job or a run that did not complete.
    """
    end = RunEnd(run_id=run_id, status=plan.finish or _status(outcome))
    if outcome is not None:
        c = outcome.counts
        end.failed = bool(c.failed or c.errors or outcome.status != "complete")
    try:
        _steps(store, plan, end)
    except Exception as exc:
        end.error = exc
    return end


def _steps(store: StoreWriter, plan: AfterRun, end: RunEnd) -> None:
    if plan.finish is not None:
        store.finish_run(end.run_id, plan.finish)
    end.finished = True
    # The gate first, then the summary's data with the gate's comparison in it: each holds two
    # runs' results for a moment, and one after the other they never stack (two 100,000-result
    # runs compared beside a loaded summary went past 300 MB). The reports reuse both.
    compared: list[Comparison] = []
    stopped: Exception | None = None
    if plan.gated:
        from glmeval.analysis.gate import gate_after_run

        try:
            end.trips = gate_after_run(store, end.run_id, plan.baseline, list(plan.rules), end.gate_lines.append, compared.append)
        except Exception as exc:  # the summary still loads; the error is raised after it
            stopped = exc
    if plan.summary:
        from glmeval.report import load_report_data

        end.data = load_report_data(store, end.run_id, comparison=compared[0] if compared else None)
    if stopped is not None:
        raise stopped
    if plan.report_dir is None:
        return
    from glmeval.report import report_dir, write_reports

    baseline = None if plan.gate else report_baseline(store, end.run_id, plan.baseline)
    out = plan.report_dir
    if plan.report_subdirs:
        out = report_dir(out, store.require_run(end.run_id).suite, end.run_id)
    # The summary's data, with the gate's comparison when there was one, is all the reports need.
    data = end.data if baseline is None else None
    end.reports = write_reports(
        store, end.run_id, out, plan.formats, baseline=baseline, step_summary=plan.step_summary, data=data
    )


def report_baseline(store: StoreReader, run_id: str, ref: str | None) -> str | None:
    """The run a report without a gate compares with: ``latest`` is the latest run before
    this one (any suite), never the run itself."""
    if not ref:
        return None
    head = store.get_run(run_id)
    return store.resolve_run(ref, before=head.started_at if head else None, exclude=run_id)


def stop_line(outcome: RunOutcome, suite_path: Path | str | None) -> str | None:
    """Why a run stopped before its last job and how to continue it; None when it did not
    stop early (then the next suite runs)."""
    again = f"glmeval run --resume {outcome.run_id} {suite_path}"
    if outcome.status == "interrupted":
        return f"interrupted: {outcome.not_run} job(s) not run; resume with `{again}`"
    if outcome.status == "budget":
        return f"{outcome.budget_message}; run the rest with `{again} --max-cost/--max-tokens ...`"
    return None


def decide_exit(ends: Sequence[RunEnd], rules: Sequence[Rule], aborted: str | None = None) -> ExitDecision:
    """The exit of ``glmeval run``: a fatal abort stops with one line; Ctrl-C is 130; with
    ``--fail-on`` the rules (not individual failed checks) decide; otherwise any failed run is 1."""
    if aborted:
        return ExitDecision(EXIT_ERROR, stopped=f"run stopped: {aborted}")
    if any(end.status == "interrupted" for end in ends):
        return ExitDecision(EXIT_INTERRUPTED)
    if rules:
        trips = [trip for end in ends for trip in end.trips]
        lines = [trip.message for trip in trips]
        if not trips:
            lines.append(f"fail-on: no rule tripped ({', '.join(r.text for r in rules)})")
        return ExitDecision(EXIT_FAILED if trips else EXIT_OK, tuple(lines))
    return ExitDecision(EXIT_FAILED if any(end.failed for end in ends) else EXIT_OK)


def session_status(statuses: Sequence[str], interrupted: bool = False) -> RunStatus:
    """One final status for a run several runner batches (or xdist workers) wrote into."""
    if interrupted or "interrupted" in statuses:
        return "interrupted"
    if "aborted" in statuses:
        return "aborted"
    return "complete"


def _status(outcome: RunOutcome | None) -> RunStatus | None:
    if outcome is None:
        return None
    return as_status(outcome.status)


def as_status(text: str) -> RunStatus:
    """A status string from the runner or the store as a :data:`~glmeval.records.RunStatus`."""
    if not is_status(text):
        raise GlmevalError(f"unknown run status {text!r}")
    return text


__all__ = [
    "AfterRun", "RunEnd", "ExitDecision", "REPORT_FORMATS", "check_gate", "after_run", "warm_up", "report_baseline",
    "stop_line", "decide_exit", "session_status", "as_status",
]
