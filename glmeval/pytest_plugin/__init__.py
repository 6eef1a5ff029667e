"""pytest plugin (registered through the ``pytest11`` entry point): suites as CI tests.

Teams already run pytest in CI, so a suite file should be a test file there: every case ×
variant is one test item (``greeting.glmeval.yaml::capital[glm-4-temperature=0.2]``) that
works with ``-k``, ``-m``, ``-x``, ``--junitxml`` and pytest-xdist's ``-n``.

How it fits together:

- **Collection** picks up only files matching the ``glmeval_pattern`` ini option (default
  ``*.glmeval.yaml`` / ``*.glmeval.yml``) or listed in ``glmeval_suites``, so the plugin never
  grabs someone's unrelated YAML. A broken suite is one collection error that names the file
  and line, never a traceback.
- **Execution is batched**: pytest runs items one at a time, but calls to a model should run
  concurrently. The first glmeval item to reach setup runs the jobs of every selected item
  this process will run (``-k``/``-m`` already applied) through one :class:`Runner`; later
  items just read their results. Under xdist a worker only knows its own queue, so it batches
  the items queued to it, and again when more arrive.
- **One run in the store** per pytest session: the xdist controller makes the run id and hands
  it to every worker, each worker writes its share into that run, and the controller sets the
  final status and writes the report once all workers are done.
- **Nothing happens without glmeval items**: no server is started and no database opened
  unless a glmeval item reaches setup or a test uses the ``glm`` fixture, because this plugin
  loads into every pytest session on the machine.
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from glmeval.pytest_plugin.fixture import Glm
    from glmeval.records import Completion, Job, Result
    from glmeval.run.runner import RunOptions
    from glmeval.session import Target
    from glmeval.store import Store
    from glmeval.suite import Suite

DEFAULT_PATTERNS: list[str] = ["*.glmeval.yaml", "*.glmeval.yml"]
EXCERPT_CHARS = 300
MAX_REPEATS_SHOWN = 3
NO_KEY_MESSAGE = (
    "glmeval: no ZhipuAI API key: set ZHIPUAI_API_KEY (or ZHIPU_API_KEY), "
    "or pass --glmeval-local to run against the local GLM server"
)


# -- options --------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
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


# -- session state --------------------------------------------------------------------------

STATE_KEY: pytest.StashKey[GlmevalState] = pytest.StashKey()


@dataclass
class Verdict:
    """How one item (a case × variant, all its repeats) came out: ``pass``, ``fail`` or ``error``."""

    outcome: str
    text: str = ""
    passed: int = 0
    total: int = 0


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
    selected: list[SuiteItem] = field(default_factory=list)
    results: dict[str, Result] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    statuses: list[str] = field(default_factory=list)
    worker_outputs: list[dict[str, Any]] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    error: str | None = None
    abort_reason: str | None = None
    started: bool = False
    store: Store | None = None
    target: Target | None = None
    jobs_run: int = 0
    markers: set[str] = field(default_factory=set)
    _run_id: str | None = None

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
            _run_id=workerinput.get("glmeval_run_id"),
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

    def marker(self, tag: str) -> str:
        """The marker for a suite or case tag, registered on first use so that
        ``--strict-markers`` accepts it and ``-m`` can select by it."""
        name = marker_name(tag)
        if name not in self.markers:
            self.markers.add(name)
            self.config.addinivalue_line("markers", f"{name}: glmeval suite or case tag {tag!r}")
        return name

    def db_path(self) -> Path:
        from glmeval.store import default_db_path

        path = Path(self.db) if self.db else default_db_path()
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
                        "base_url": "local" if self.local else self.target.base_url,
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
        except GlmevalError as exc:
            self.error = f"glmeval: {exc}"
            self.close()
            return False
        self.started = True
        return True

    def close(self) -> None:
        """Stop the client and the local server and close the store (safe to call twice)."""
        target, self.target = self.target, None
        if target is not None:
            target.__exit__(None, None, None)
        store, self.store = self.store, None
        if store is not None:
            store.close()

    # -- running ---------------------------------------------------------------------------

    def _on_result(self, result: Result, counts: Any) -> None:
        self.results[result.job.id] = result

    def _options(self, suite: Suite) -> RunOptions:
        from glmeval.run.runner import RunOptions

        return RunOptions(
            concurrency=self.concurrency or suite.settings.concurrency,
            retries=suite.settings.retries,
            cache="replay" if self.replay else "off",
            judge_model=suite.settings.judge_model,
            embedding_model=suite.settings.embedding_model,
            suite_dir=suite.base_dir,
            prices=suite.prices or None,
            # Suites without check files share the built-ins, and so can share one Runner.
            checks=suite.check_registry if suite.check_registry.own() else None,
        )

    def run_items(self, items: list[SuiteItem]) -> None:
        """Run every job of ``items`` in one go.

        Jobs of suites that share run options (same folder, settings and prices: the usual
        case) go through one Runner together, so they run concurrently across suite files;
        suites with their own settings get their own Runner, one after the other.
        """
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
            outcome = runner.run(jobs, self.run_id, total=len(jobs))
            self.jobs_run += len(jobs)
            self.statuses.append(outcome.status)
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

    def prepare(self, item: SuiteItem) -> None:
        """Make sure ``item``'s results exist: run the batch it belongs to if they do not."""
        if all(j.id in self.results or j.id in self.missing for j in item.jobs):
            return
        if not self.ensure_started():
            return
        batch = [item]
        for other in self._queued_items(item.session):
            if other is not item and isinstance(other, SuiteItem) and other.jobs:
                if any(j.id not in self.results and j.id not in self.missing for j in other.jobs):
                    batch.append(other)
        self.run_items(batch)

    def _queued_items(self, session: pytest.Session) -> list[pytest.Item]:
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

    def verdict(self, item: SuiteItem) -> Verdict:
        """Aggregate the item's repeats by the case's threshold.

        A repeat without an answer (rate limit exhausted, timeout, HTTP error) counts as not
        passed; if the passes still reach the threshold the item passes, otherwise any such
        repeat makes the item an *error* (nothing to judge) rather than a failure.
        """
        total = len(item.jobs)
        results = [self.results.get(j.id) for j in item.jobs]
        passed = sum(1 for r in results if r is not None and r.status == "pass")
        threshold = item.jobs[0].threshold if item.jobs else None
        needed = total if threshold is None else math.ceil(threshold * total - 1e-9)
        if passed >= needed:
            return Verdict("pass", passed=passed, total=total)
        errored = [(j, r) for j, r in zip(item.jobs, results) if r is None or r.status == "error"]
        rule = "every repeat must pass" if threshold is None else f"threshold {threshold:g} needs {needed}"
        head = f"{item.case_id} [{item.variant_id}]"
        if errored:
            lines = [f"{head}: {len(errored)} of {total} repeat(s) got no answer ({passed} passed; {rule})"]
            reasons: dict[str, list[int]] = {}
            for job, result in errored:
                if result is None:
                    why = self.missing.get(job.id, "no result")
                else:
                    attempts = result.completion.attempts
                    why = f"{result.completion.error}" + (f" (after {attempts} attempts)" if attempts > 1 else "")
                reasons.setdefault(why, []).append(job.repeat + 1)
            for why, repeats in reasons.items():
                which = "repeat" if len(repeats) == 1 else "repeats"
                lines.append(f"  {which} {', '.join(map(str, repeats))}: {why}" if total > 1 else f"  {why}")
            return Verdict("error", "\n".join(lines), passed, total)
        failures = [r for r in results if r is not None and r.status == "fail"]
        names = list(dict.fromkeys(c.label or c.type for r in failures for c in r.checks if not c.passed))
        what = f"failed: {', '.join(names)}" if names else "score below min-score"
        if total > 1:
            lines = [f"{head}: {passed} of {total} repeats passed ({rule}); {what}"]
        else:
            lines = [f"{head}: {what}"]
        lines.extend(_describe_failures(failures, total))
        return Verdict("fail", "\n".join(lines), passed, total)

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
        from glmeval.errors import GlmevalError
        from glmeval.store import Store

        outputs = self.worker_outputs if not self.started else [self.worker_output()]
        outputs = [o for o in outputs if o.get("jobs") or o.get("statuses")]
        if not outputs and not self.started:
            return
        statuses = [s for o in outputs for s in o.get("statuses", [])]
        if int(exitstatus) == int(pytest.ExitCode.INTERRUPTED) or "interrupted" in statuses:
            status = "interrupted"
        elif "aborted" in statuses:
            status = "aborted"
        else:
            status = "complete"
        jobs = sum(int(o.get("jobs") or 0) for o in outputs)
        db = Path(outputs[0]["db"]) if outputs else self.db_path()
        store = self.store
        try:
            if store is None:
                store = Store(db)
            store.finish_run(self.run_id, status)
            where = f"{db}"
            workers = f" from {len(outputs)} workers" if len(self.worker_outputs) > 1 else ""
            self.summary.append(f"run {self.run_id} ({status}): {jobs} jobs{workers} stored in {where}")
            if self.report:
                from glmeval.report import write_reports

                out = Path(self.report)
                out = out if out.is_absolute() else self.config.invocation_params.dir / out
                baseline = None
                if self.baseline:
                    # "latest" means the latest run before this session's, never the run itself.
                    head = store.get_run(self.run_id)
                    baseline = store.resolve_run(
                        self.baseline, before=head.started_at if head else None, exclude=self.run_id
                    )
                for path in write_reports(store, self.run_id, out, ("md", "html"), baseline=baseline):
                    self.summary.append(f"report: {path}")
        except GlmevalError as exc:
            self.summary.append(f"cannot finish the run: {exc}")
        except Exception as exc:
            self.summary.append(f"report failed: {type(exc).__name__}: {exc}")
        finally:
            if store is not None and store is not self.store:
                store.close()


def get_state(config: pytest.Config) -> GlmevalState:
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        state = GlmevalState.from_config(config)
        config.stash[STATE_KEY] = state
    return state


# -- failure text ---------------------------------------------------------------------------


def excerpt(completion: Completion, limit: int = EXCERPT_CHARS) -> str:
    """The answer as a reader needs it in a failure: text (cut), then any tool calls."""
    text = completion.text or ""
    shown = repr(text if len(text) <= limit else text[:limit] + "…")
    parts = [f"answer: {shown}" if text or not completion.tool_calls else ""]
    for call in completion.tool_calls:
        parts.append(f"tool call: {call.name}({call.arguments})")
    return "\n".join(p for p in parts if p)


def _describe_failures(results: list[Result], total: int) -> list[str]:
    """Failed checks with reasons and the answer, repeats with the same story told once."""
    groups: dict[tuple[Any, ...], list[Result]] = {}
    for result in results:
        failed = tuple((c.label or c.type, c.reason) for c in result.checks if not c.passed)
        groups.setdefault((failed, result.completion.text, result.score), []).append(result)
    lines: list[str] = []
    for shown, ((failed, _text, score), members) in enumerate(groups.items()):
        if shown >= MAX_REPEATS_SHOWN:
            rest = sum(len(m) for m in list(groups.values())[MAX_REPEATS_SHOWN:])
            lines.append(f"... and {rest} more failing repeat(s)")
            break
        repeats = ", ".join(str(r.job.repeat + 1) for r in members)
        label = f"repeat {repeats}" if len(members) == 1 else f"repeats {repeats} (same answer)"
        indent = "  " if total > 1 else ""
        if total > 1:
            lines.append(f"{label}:")
        if failed:
            for name, reason in failed:
                lines.append(f"{indent}FAILED {name}: {reason}")
        else:
            min_score = members[0].job.min_score
            lines.append(f"{indent}score {score:.2f} is below min-score {min_score}")
        for line in excerpt(members[0].completion).splitlines():
            lines.append(f"{indent}{line}")
    return lines


class GlmevalWarning(UserWarning):
    """Something about a suite a person should know (shown in pytest's warnings summary)."""


class CaseFailed(Exception):
    """A case × variant whose checks did not pass: shown as its text, without a traceback."""


class CaseError(Exception):
    """A case × variant with repeats that got no answer (rate limit exhausted, timeout, HTTP
    error). Raised during setup so pytest counts it as an *error*, not a failure; its report
    is just the text (see :func:`pytest_runtest_makereport`)."""


# -- collection -----------------------------------------------------------------------------


def _matches(path: Path, config: pytest.Config) -> bool:
    patterns: list[str] = config.getini("glmeval_pattern") or DEFAULT_PATTERNS
    if any(fnmatch.fnmatch(path.name, p) for p in patterns if "/" not in p):
        return True
    try:
        rel = path.relative_to(config.rootpath).as_posix()
    except ValueError:
        rel = None
    if rel is not None and any(fnmatch.fnmatch(rel, p) for p in patterns if "/" in p):
        return True
    return path.resolve() in _listed_suites(config)


def _listed_suites(config: pytest.Config) -> set[Path]:
    listed: list[str] = config.getini("glmeval_suites") or []
    return {(config.rootpath / p).resolve() for p in listed}


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> SuiteFile | None:
    if file_path.suffix not in (".yaml", ".yml") or not _matches(file_path, parent.config):
        return None
    return SuiteFile.from_parent(parent, path=file_path)


_MARKER_CHARS = re.compile(r"[^\w-]")


def marker_name(tag: str) -> str:
    """A suite or case tag as a pytest marker name (``-m`` needs a plain word)."""
    name = _MARKER_CHARS.sub("_", tag.strip()) or "_"
    return name


class SuiteFile(pytest.File):
    """A glmeval suite file; its items are case × variant, repeats folded into one."""

    def collect(self) -> Iterator[pytest.Item]:
        from glmeval.plan import build_plan
        from glmeval.suite import load_suite
        from glmeval.suite.yamlsrc import load_yaml

        state = get_state(self.config)
        shown = _display_path(self.path, self.config)
        suite = load_suite(shown)
        plan = build_plan(suite, model_override=state.models or None)
        suite.path = self.path
        source = load_yaml(self.path)
        lines = {case.id: source.line(("cases", i)) for i, case in enumerate(suite.cases)}
        groups: dict[tuple[str, str], list[Job]] = {}
        for job in plan.jobs:
            groups.setdefault((job.case_id, job.variant_id), []).append(job)
        for warning in getattr(plan, "warnings", []):
            warnings.warn(GlmevalWarning(f"{shown}: {warning}"), stacklevel=1)
        skipped: dict[str, str] = dict(getattr(plan, "skipped", []))
        cases = {case.id: case for case in suite.cases}

        def make_item(case_id: str, label: str, jobs: list[Job]) -> SuiteItem:
            item: SuiteItem = SuiteItem.from_parent(
                self, name=_item_name(case_id, label), suite=suite, case_id=case_id,
                variant_id=label, jobs=jobs, line=lines.get(case_id),
            )
            case = cases.get(case_id)
            tags = jobs[0].tags if jobs else [*suite.tags, *(case.tags if case else [])]
            item.add_marker("glmeval")
            for tag in dict.fromkeys(tags):
                item.add_marker(state.marker(tag))
            return item

        for case in suite.cases:
            case_id = case.id or "case"
            if case_id in skipped:
                # Skipped cases show up as skipped tests, as pytest users expect.
                for label in plan.variants:
                    item = make_item(case_id, label, [])
                    item.add_marker(pytest.mark.skip(reason=skipped[case_id]))
                    yield item
                continue
            for (gcase, label), jobs in groups.items():
                if gcase == case_id:
                    yield make_item(case_id, label, jobs)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:  # type: ignore[override]
        """A suite problem is the user's to fix: show file:line: message, not our stack."""
        from glmeval.errors import GlmevalError

        if isinstance(excinfo.value, GlmevalError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


def _display_path(path: Path, config: pytest.Config) -> Path:
    """The suite path as users typed it (relative to where pytest runs) for error messages."""
    try:
        return Path(os.path.relpath(path, config.invocation_params.dir)) if path.is_absolute() else path
    except ValueError:  # another drive on Windows
        return path


def _item_name(case_id: str, variant_id: str) -> str:
    """``capital[glm-4-temperature=0.2]``: the variant label with spaces as dashes, so the
    id stays one shell word and is stable as long as the suite's grid is."""
    return f"{case_id}[{variant_id.replace(' ', '-')}]"


class SuiteItem(pytest.Item):
    """One case × variant; its repeats are ``jobs`` and it passes by the case's threshold."""

    def __init__(
        self,
        *,
        suite: Suite,
        case_id: str,
        variant_id: str,
        jobs: list[Job],
        line: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.case_id = case_id
        self.variant_id = variant_id
        self.jobs = jobs
        self.line = line
        self._verdict: Verdict | None = None

    def setup(self) -> None:
        """Run (or find) this item's results; a repeat without an answer is a setup error,
        which pytest reports as an *error*, not a failure."""
        state = get_state(self.config)
        state.prepare(self)
        if state.error is not None:
            return
        verdict = state.verdict(self)
        self._verdict = verdict
        self.user_properties.append(("glmeval_run", state.run_id))
        self.user_properties.append(("glmeval_passed", f"{verdict.passed}/{verdict.total}"))
        if verdict.outcome == "error":
            raise CaseError(verdict.text)

    def runtest(self) -> None:
        state = get_state(self.config)
        if state.error is not None:
            pytest.fail(state.error, pytrace=False)
        if self._verdict is not None and self._verdict.outcome == "fail":
            raise CaseFailed(self._verdict.text)

    def repr_failure(  # type: ignore[override]
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> Any:
        if isinstance(excinfo.value, CaseFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, (self.line - 1 if self.line else None), self.name


# -- hooks ----------------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Our verdicts are complete messages: report them as text, never as a traceback
    (for setup errors pytest would otherwise show the plugin's own stack)."""
    outcome: Any = yield
    if isinstance(item, SuiteItem) and call.excinfo is not None:
        if isinstance(call.excinfo.value, (CaseError, CaseFailed)):
            outcome.get_result().longrepr = str(call.excinfo.value)



def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "glmeval: a case × variant of a glmeval prompt suite")
    get_state(config)
    _add_listed_suites(config)


def _add_listed_suites(config: pytest.Config) -> None:
    """When pytest picks its own paths (testpaths or the current folder), also collect the
    suites listed in ``glmeval_suites`` that lie outside them; explicit paths on the command
    line always win, as they do for Python tests."""
    source = getattr(config, "args_source", None)  # pytest >= 7.4
    if source is None or source == pytest.Config.ArgsSource.ARGS:
        return
    listed = sorted(_listed_suites(config))
    if not listed:
        return
    roots = [(config.invocation_params.dir / a.split("::")[0]).resolve() for a in config.args]
    for path in listed:
        if path.exists() and not any(path == r or r in path.parents for r in roots):
            config.args.append(str(path))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Remember the selected glmeval items (after ``-k``/``-m`` deselection) for batching."""
    get_state(config).selected = [i for i in items if isinstance(i, SuiteItem) and i.jobs]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: hand the session's run id to every worker so all join one run."""
    node.workerinput["glmeval_run_id"] = get_state(node.config).run_id


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect what each worker ran, to finish the shared run at the end."""
    output = getattr(node, "workeroutput", {}) or {}
    share = output.get("glmeval")
    if share:
        state = get_state(node.config)
        state.worker_outputs.append(share)
        if share.get("error") and state.error is None:
            state.error = share["error"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE_KEY, None)
    if state is None:
        return
    try:
        if state.is_worker:
            if state.started or state.error:
                session.config.workeroutput["glmeval"] = state.worker_output()  # type: ignore[attr-defined]
        else:
            state.finalize(exitstatus)
    finally:
        state.close()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or state.is_worker or not (state.summary or state.error):
        return
    terminalreporter.write_sep("-", "glmeval")
    if state.error:
        terminalreporter.write_line(state.error)
    for line in state.summary:
        terminalreporter.write_line(line)


# -- the glm fixture ------------------------------------------------------------------------


@pytest.fixture
def glm(request: pytest.FixtureRequest) -> Glm:
    """Call GLM from a Python test through glmeval's client, retries, cache and store.

    ``glm.chat("你好", model="glm-4")`` returns a Completion; ``glm.check(completion,
    {"contains": "北京"})`` applies registered checks and raises AssertionError with the
    reasons when one fails. Calls join the session's stored run.
    """
    from glmeval.pytest_plugin.fixture import Glm

    return Glm(get_state(request.config), request.node)
