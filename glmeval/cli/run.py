"""``glmeval run``: plan, run, check, store and report one or more suites."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from glmeval.cli.dbopt import DB, DB_HELP
from glmeval.cli.group import main
from glmeval.errors import GlmevalError, SuiteError
from glmeval.percent import plural
from glmeval.run.ratelimit import Budget
from glmeval.session import (
    LOCAL_SPEED,
    Overrides,
    Target,
    find_resume,
    parse_faults,
    parse_limits,
    plan_providers,
    run_plan,
    run_settings,
    suite_options,
)

if TYPE_CHECKING:  # loaded inside the command, so `glmeval --help` needs no pydantic, SDK or pandas
    from glmeval.afterrun import RunEnd
    from glmeval.records import Result
    from glmeval.run.runner import RunCounts, RunOutcome
    from glmeval.shard import Shard


class Progress:
    """A live bar on a terminal; plain periodic lines when not (CI logs).

    Shows done/total, pass, fail, error, retried and cached jobs, tokens and cost so far, and
    an ETA from this session's own pace (a resumed run starts from its stored totals, which
    must not make the ETA look faster than it is), and what holds the run back (``counts.pace``:
    an in-flight limit that 429s cut, retries backing off).
    """

    def __init__(self, total: int, label: str, stream: Any = None, start: RunCounts | None = None, every: float = 2.0) -> None:
        self.total = total
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self.start_done = start.done if start is not None else 0
        self.every = every
        self._last = 0.0
        self._bar: Any = None
        self._task: Any = None
        self._start = start

    @staticmethod
    def stats(counts: RunCounts) -> str:
        """``pass 10 fail 1 err 0 retried 3 cached 0 tok 1,234 ¥0.0123`` (zero extras left out)."""
        text = f"pass {counts.passed} fail {counts.failed} err {counts.errors}"
        if counts.retried:
            text += f" retried {counts.retried}"
        if counts.cached:
            text += f" cached {counts.cached}"
        cost = counts.cost + counts.grader_cost
        return f"{text} tok {counts.tokens:,} ¥{cost:.4f}"

    @staticmethod
    def compact(counts: RunCounts) -> str:
        """The live bar's shorter form, so the bar fits an 80-column terminal."""
        text = f"[green]✔{counts.passed}[/] [red]✘{counts.failed}[/] [yellow]err {counts.errors}[/]"
        if counts.retried:
            text += f" ↻{counts.retried}"
        if counts.cached:
            text += f" cached {counts.cached}"
        tokens = counts.tokens
        shown = f"{tokens / 1000:.1f}k" if tokens >= 10_000 else str(tokens)
        pace = ""
        if counts.pace:
            from rich.markup import escape

            pace = f" [yellow]{escape(counts.pace)}[/]"
        return f"{text} {shown} tok ¥{counts.cost + counts.grader_cost:.3f}{pace}"

    def eta(self, done: int) -> float | None:
        """Seconds left at this session's pace; None before anything finished."""
        ran = done - self.start_done
        if ran <= 0:
            return None
        return (time.monotonic() - self.started) / ran * max(0, self.total - done)

    def __enter__(self) -> Progress:
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=16),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TextColumn("eta {task.fields[eta]}"),
                console=Console(file=self.stream),
                transient=False,
            )
            self._bar.__enter__()
            start = self._start
            self._task = self._bar.add_task(
                self.label,
                total=self.total,
                completed=start.done if start else 0,
                stats=self.compact(start) if start else "",
                eta="-",
            )
        return self

    def update(self, result: Result, counts: RunCounts) -> None:
        if self._bar is not None:
            eta = self.eta(counts.done)
            self._bar.update(
                self._task, completed=counts.done, stats=self.compact(counts), eta="-" if eta is None else f"{eta:.0f}s"
            )
            return
        now = time.monotonic()
        if now - self._last >= self.every or counts.done >= self.total:
            self._last = now
            eta = self.eta(counts.done)
            shown = "-" if eta is None else f"{eta:.0f}s"
            pace = f" · {counts.pace}" if counts.pace else ""  # what holds the run back (429s, backoff)
            print(f"[{self.label}] {counts.done}/{self.total} {self.stats(counts)} eta {shown}{pace}", file=self.stream, flush=True)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def _nonblank(values: tuple[str, ...], flag: str, what: str = "model") -> tuple[str, ...]:
    if any(not v.strip() for v in values):
        raise click.BadParameter(f"a {what} name cannot be empty", param_hint=flag)
    return tuple(v.strip() for v in values)


def _load_all(paths: tuple[Path, ...]) -> list[Any]:
    """Load every suite before running any, so one bad file among several is reported with the
    others' problems and nothing is half-run."""
    from glmeval.suite import load_suite

    loaded, problems = [], []
    for path in paths:
        try:
            loaded.append(load_suite(path))
        except SuiteError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SuiteError(problems)
    return loaded


@main.command()
@click.argument("suites", nargs=-1, type=click.Path(path_type=Path))
@click.option("--local", is_flag=True, help="Start the local GLM server and send every call there (no key needed).")
@click.option("--local-speed", type=float, default=LOCAL_SPEED, show_default=True, help="Latency factor of the local server.")
@click.option("--local-seed", type=int, default=0, show_default=True, help="Seed of the local server's sampled replies (same seed, same answers).")
@click.option("--rules", type=click.Path(path_type=Path), help="Extra reply rules for the local server.")
@click.option("--base-url", envvar="ZHIPUAI_BASE_URL", help="API base URL (default: the official one).")
@click.option(
    "--model", "models", multiple=True, callback=lambda ctx, param, value: _nonblank(value, "--model"),
    help="Run only these models (overrides the grid's model axis).",
)
@click.option(
    "--provider", "providers", multiple=True, callback=lambda ctx, param, value: _nonblank(value, "--provider", "provider"),
    help="Run only these providers (zhipu, zai or one under the suite's providers:; overrides the grid's provider axis).",
)
@click.option("--mode", type=click.Choice(["sync", "stream", "async", "batch"]), help="Override the call mode.")
@click.option("--concurrency", "-j", type=click.IntRange(1, 1024), help="Calls in flight at once.")
@click.option("--timeout", type=click.FloatRange(min=0.001), help="Seconds per call attempt.")
@click.option("--retries", type=click.IntRange(0, 20), help="At most this many retries per call (default: --retry-budget decides).")
@click.option(
    "--retry-budget",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Seconds per job to keep retrying 429, 5xx and network errors (default 600, or settings.retry_budget).",
)
@click.option("--cache", "use_cache", is_flag=True, help="Reuse cached answers to identical requests.")
@click.option("--no-cache", "no_cache", is_flag=True, help="Always call the model (the default).")
@click.option("--replay", "replay", is_flag=True, help="Answer only from the cache; send nothing.")
@click.option("--db", type=DB, envvar="GLMEVAL_DB", help=DB_HELP)
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports"), show_default=True, help="Report folder.")
@click.option("--no-report", is_flag=True, help="Do not write report files.")
@click.option("--dry-run", is_flag=True, help="Show the plan; call nothing.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
# --- suite: command-line overrides of the suite's settings: ---
@click.option("--poll-timeout", type=click.FloatRange(min=0.001), help="Seconds to wait for an async task's result.")
@click.option("--judge-model", help="Model that grades llm-rubric checks (overrides settings.judge_model).")
@click.option("--embedding-model", help="Model for the similar check's embeddings (overrides settings.embedding_model).")
# --- end suite ---
# --- runner: resume, budget, limits, faults (glmeval/runner.py, glmeval/ratelimit.py) ---
@click.option(
    "--resume",
    is_flag=False,
    flag_value="latest",
    default=None,
    metavar="[RUN]",
    help="Continue RUN (default: the suite's latest run) into the same run id, running only jobs with no result "
    "(errors run again). Works after a kill too; without SUITE, the run's own suite file. A run another live "
    "process is running is refused.",
)
# --- shards: one run split across machines (glmeval/shard.py) ---
@click.option("--shard", "shard_text", metavar="K/N", help="Run only slice K of N of the plan into the shared run --run-id (a CI matrix).")
@click.option("--run-id", "run_id", metavar="ID", help="Store the run under this id (every --shard of one run gives the same one).")
# --- end shards ---
@click.option("--max-cost", type=click.FloatRange(min=0), metavar="YUAN", help="Stop before the run would spend more than this.")
@click.option("--max-tokens", "max_tokens_budget", type=click.IntRange(min=0), metavar="N", help="Stop before the run would use more tokens.")
@click.option(
    "--model-concurrency",
    multiple=True,
    metavar="MODEL=N",
    help="Calls in flight at once for one model, e.g. glm-4=4 (repeatable; N alone: every model).",
)
@click.option("--rpm", multiple=True, metavar="MODEL=N", help="Requests per minute for a model (repeatable; N alone: every model).")
@click.option("--tpm", multiple=True, metavar="MODEL=N", help="Tokens per minute for a model (repeatable; N alone: every model).")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KIND=RATE",
    help="With --local: inject faults, e.g. rate_limit=0.2, server_error=0.05, cut_stream=0.03, reset=0.02, "
    "slow=0.1, content_filter=0.01, balance=0.01, model_busy=0.05 (429/1305), concurrency=0.05 (429/1302), "
    "cut_json=0.02 (a stream frame cut mid-JSON), retry_after=0.5, slow_ms=3000 (repeatable).",
)
@click.option("--fault-seed", type=int, help="Seed of the injected faults (same seed, same faults).")
# --- end runner ---
# --- cassettes: record real answers once, replay them keyless (glmeval/cassette/) ---
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE", help="Record every answer the run receives into cassette FILE (YAML, no key in it).")
@click.option("--cassette", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE", help="Answer from cassette FILE: no network, no key; latency as recorded.")
@click.option("--cassette-miss", type=click.Choice(["error", "rules"]), default="error", show_default=True, help="A request the cassette lacks: an error naming its case, or the local server's rules.")
# --- end cassettes ---
# --- history: baseline comparison and --fail-on gates (glmeval/gate.py) ---
@click.option(
    "--baseline",
    metavar="RUN",
    help="Compare each suite's run with RUN at the end: latest (the suite's previous run), latest~N, a run id or a git ref.",
)
@click.option(
    "--fail-on",
    "fail_on",
    multiple=True,
    metavar="RULE",
    help="Exit 1 when a rule trips, and only then: regression, pass-rate<0.9, pass-rate<-5%, "
    "latency-p95>+20%, cost>+10%, tokens>+15%, errors>0 (repeatable).",
)
# --- end history ---
def run(
    suites: tuple[Path, ...],
    local: bool,
    local_speed: float,
    rules: Path | None,
    base_url: str | None,
    models: tuple[str, ...],
    mode: str | None,
    concurrency: int | None,
    timeout: float | None,
    retries: int | None,
    retry_budget: float | None,
    use_cache: bool,
    no_cache: bool,
    replay: bool,
    db: str | Path | None,
    out: Path,
    no_report: bool,
    dry_run: bool,
    quiet: bool,
    baseline: str | None = None,
    fail_on: tuple[str, ...] = (),
    resume: str | None = None,
    max_cost: float | None = None,
    max_tokens_budget: int | None = None,
    model_concurrency: tuple[str, ...] = (),
    rpm: tuple[str, ...] = (),
    tpm: tuple[str, ...] = (),
    faults: tuple[str, ...] = (),
    fault_seed: int | None = None,
    local_seed: int = 0,
    poll_timeout: float | None = None,
    judge_model: str | None = None,
    embedding_model: str | None = None,
    record: Path | None = None,
    cassette: Path | None = None,
    cassette_miss: str = "error",
    providers: tuple[str, ...] = (),
    shard_text: str | None = None,
    run_id: str | None = None,
) -> None:
    """Run SUITES and print a summary; exit 1 when any check failed."""
    given = [flag for flag, on in (("--cache", use_cache), ("--no-cache", no_cache), ("--replay", replay)) if on]
    if len(given) > 1:
        raise click.UsageError(f"{' and '.join(given)} contradict each other; give one of them")
    cache_mode = "use" if use_cache else "replay" if replay else "off" if no_cache else None

    # --- runner: flags checked before anything is loaded or spent ---
    if resume is not None and (resume.endswith((".yaml", ".yml")) or Path(resume).is_file()):
        suites, resume = (Path(resume), *suites), "latest"  # `--resume SUITE`: the value was the suite
    if not suites and resume is not None:
        suites = (_suite_of_run(db, resume),)  # `--resume RUN` alone: the suite that run was made from
    if not suites:
        raise click.UsageError("give at least one SUITE file")
    if resume is not None and resume != "latest" and len(suites) > 1:
        raise GlmevalError("--resume RUN continues one run: give only that run's suite")
    _check_cassette_flags(record, cassette, cassette_miss, local, cache_mode, resume)
    shard = _check_shard(shard_text, run_id, resume, baseline, fail_on, len(suites))
    limits = parse_limits(model_concurrency, rpm, tpm)
    fault_config = parse_faults(faults, fault_seed, local)
    overrides = Overrides(
        concurrency=concurrency,
        retries=retries,
        retry_budget=retry_budget,
        cache=cache_mode,
        judge_model=judge_model,
        embedding_model=embedding_model,
        limits=limits,
        budget=Budget(max_cost, max_tokens_budget) if (max_cost is not None or max_tokens_budget is not None) else None,
        faults=fault_config,
    )
    # --- end runner ---
    # The git facts each new run records, found while the suites load, not before the first call.
    from glmeval.store.refs import GitProbe

    probes = None if dry_run or shard is not None or resume is not None else [GitProbe(path.parent) for path in suites]
    from glmeval.afterrun import AfterRun, after_run, check_gate, decide_exit, stop_line, warm_up
    from glmeval.plan import build_plan
    from glmeval.run.outcome import unanswered_line
    from glmeval.store import Store

    plans = [
        build_plan(s, model_override=list(models) or None, mode_override=mode, provider_override=list(providers) or None)
        for s in _load_all(suites)
    ]
    if dry_run:
        from glmeval.cli.suites import print_plan

        for plan in plans:
            print_plan(plan)
        return
    # --- suite: warnings about the suites (values the SDK clamps...) before anything runs ---
    from glmeval.cli.suites import print_warnings

    for plan in plans:
        print_warnings(plan)
    # --- end suite ---
    store = Store(db)
    if run_id is not None and shard is None and store.get_run(run_id) is not None:
        raise GlmevalError(f"run {run_id} is already in {store.path}; continue it with --resume {run_id}, or pick another --run-id")
    # --- history: parse the rules and check --baseline before spending anything ---
    # (glmeval.analysis.rules: no pandas before the first call; the gate loads it after the run)
    baseline, gate_rules = check_gate(store, baseline, fail_on, [p.suite.name for p in plans]) if baseline or fail_on else (None, ())
    after = AfterRun(
        baseline=baseline, rules=gate_rules, summary=True, report_dir=None if no_report or shard else out, report_subdirs=True
    )
    # --- end history ---
    ends: list[RunEnd] = []
    aborted: str | None = None
    misses = None
    if cassette is not None:
        from glmeval.cassette.misses import MissLog

        misses = MissLog(cassette)
    with Target(
        local=local,
        base_url=base_url,
        timeout=timeout or max(p.suite.settings.timeout for p in plans),
        poll_timeout=poll_timeout or max(p.suite.settings.poll_timeout for p in plans),
        speed=local_speed,
        seed=local_seed,
        rules=rules,
        replay=cache_mode == "replay",
        concurrency=max((concurrency or p.suite.settings.concurrency) for p in plans),
        faults=fault_config,
        record=record,
        cassette=cassette,
        cassette_miss=cassette_miss,
        providers=plan_providers(plans),
    ) as target:
        for index in range(len(plans)):
            plan = plans[index]
            suite = plan.suite
            options = suite_options(suite, target, overrides, notify=lambda message: click.echo(f"\n{message}", err=True))
            # --- runner: --resume ---
            resumed = find_resume(store, plan, resume) if resume is not None else None
            if resumed is not None and not quiet:
                click.echo(
                    f"{suite.name}: resuming run {resumed.run_id} ({resumed.status}): "
                    f"{resumed.counts.done} of {len(plan)} jobs have results, running {len(resumed.jobs)}",
                    err=True,
                )
                if resumed.suite_changed:
                    click.echo(
                        f"warning: {suite.path} changed since run {resumed.run_id} started; "
                        "the remaining jobs use the current version",
                        err=True,
                    )
            # --- end runner ---
            if not quiet and resumed is None:
                click.echo(
                    f"{suite.name}: {plural(len(plan), 'job')}, {plural(len(plan.variants), 'variant')}"
                    + (" against the local GLM server" if local else "")
                    + (f", answered from cassette {cassette}" if cassette else f", recording to {record}" if record else ""),
                    err=True,
                )
            with Progress(len(plan), suite.name, start=resumed.counts if resumed else None) as progress:
                outcome = run_plan(
                    plan,
                    store,
                    target,
                    options,
                    on_result=_first(functools.partial(warm_up, after, len(plan)), _noted(misses, None if quiet else progress.update)),
                    settings=run_settings(options, target, overrides),
                    resume=resumed,
                    run_id=run_id,
                    shard=shard,
                    git=probes[index] if probes is not None else None,
                )
            # --- runner: a bad key or an empty balance stops everything with one line (exit 2) ---
            if outcome.abort_reason:
                aborted = outcome.abort_reason
                break
            # --- end runner ---
            name, path = suite.name, suite.path
            release(plans, index)
            del plan, suite, options, resumed
            end = after_run(store, outcome.run_id, after, outcome)
            ends.append(end)
            _print_end(name, outcome, end, quiet)
            again = unanswered_line(outcome, path)
            if again is not None:
                click.echo(again, err=True)
            if shard is not None:
                from glmeval.shard import progress_line
                from glmeval.store.shards import run_shards

                click.echo(progress_line(outcome.run_id, shard, run_shards(store.conn, outcome.run_id)), err=True)
            # --- runner: how the run ended, and how to continue it ---
            line = stop_line(outcome, path)
            if line is not None:
                click.echo(line, err=True)
                break
            # --- end runner ---
    decision = decide_exit(ends, gate_rules, aborted)
    if decision.stopped:
        raise GlmevalError(decision.stopped)
    for line in decision.lines:
        click.echo(line, err=True)
    if misses:
        raise GlmevalError(misses.message())
    sys.exit(decision.code)


def release(plans: list[Any], index: int) -> None:
    """Let go of a run plan's suite (its cases are most of what a big suite costs) before its
    reports load: at 100,000 cases that gives back about 150 MB, so the reports do not stack
    on top of it. A plan the recorder keeps for labelling (``--record``) stays alive there."""
    import gc

    plans[index] = None
    gc.collect()


def _first(start: Callable[[], None], on_result: Any) -> Any:
    """``on_result``, calling ``start`` once at the first result: the run is under way then, and
    the first request has left."""
    started = False

    def wrapped(result: Any, counts: Any) -> None:
        nonlocal started
        if not started:
            started = True
            start()
        if on_result is not None:
            on_result(result, counts)

    return wrapped


def _noted(misses: Any, on_result: Any) -> Any:
    """``on_result``, with each result checked for a cassette miss first when replaying."""
    return on_result if misses is None else misses.wrap(on_result)


def _check_cassette_flags(
    record: Path | None, cassette: Path | None, miss: str, local: bool, cache_mode: str | None, resume: str | None
) -> None:
    """--record / --cassette combinations that cannot do what they say, before anything runs."""
    if record is not None and cassette is not None:
        raise click.UsageError("--record and --cassette contradict each other: record with a key, replay without one")
    if record is not None and cache_mode in ("use", "replay"):
        raise click.UsageError("--record needs every answer from the API; drop --cache/--replay")
    if record is not None and resume is not None:
        raise click.UsageError("--record writes the answers of one whole run; run the suite again without --resume")
    if cassette is not None and local:
        raise click.UsageError("--cassette replays through its own local server; drop --local")
    if miss != "error" and cassette is None:
        raise click.UsageError("--cassette-miss applies to --cassette FILE")


def _suite_of_run(db: str | Path | None, ref: str) -> Path:
    """The suite file a stored run was made from, for ``glmeval run --resume RUN`` (what the
    "N of M jobs have no result" line tells people to type)."""
    from glmeval.store import Store

    with Store(db, create=False) as store:
        run_id = store.resolve_run(ref)
        info = store.require_run(run_id)
    if not info.suite_path:
        raise GlmevalError(f"run {run_id} has no suite file on record; pass its suite: glmeval run SUITE --resume {run_id}")
    path = Path(info.suite_path)
    if not path.is_file():
        raise GlmevalError(f"run {run_id} was made from {path}, which is not there; pass its suite: glmeval run SUITE --resume {run_id}")
    return path
def _check_shard(
    text: str | None, run_id: str | None, resume: str | None, baseline: str | None, fail_on: tuple[str, ...], suites: int
) -> Shard | None:
    """``--shard`` / ``--run-id`` checked against the flags they cannot go with, before anything runs."""
    from glmeval.shard import Shard, check_run_id

    if run_id is not None:
        check_run_id(run_id)
        if suites > 1:
            raise GlmevalError("--run-id names one run: give only one SUITE")
        if resume is not None:
            raise GlmevalError("--resume RUN already names the run; drop --run-id")
    if text is None:
        return None
    if run_id is None:
        raise GlmevalError("--shard needs --run-id ID so every shard writes the same run, e.g. --run-id ci-$GITHUB_RUN_ID")
    if baseline or fail_on:
        raise GlmevalError(
            "--baseline and --fail-on gate the whole run: once every shard is done, run "
            f"`glmeval compare BASE {run_id} --fail-on RULE` (one job after the matrix)"
        )
    return Shard.parse(text)


def _print_end(suite: str, outcome: RunOutcome, end: RunEnd, quiet: bool) -> None:
    """One suite's summary, its comparison with the baseline and its report files, in the
    order they were made; an error part way is raised after what came before it."""
    if end.data is not None:
        from glmeval.report.markdown import cost_with_grading, summary_table
        from glmeval.report.views import totals

        click.echo("")
        click.echo(f"{suite}  run {outcome.run_id}  ({outcome.status})")
        click.echo(summary_table(end.data.summary, tablefmt="simple"))
        if not quiet:
            from glmeval.report.views import failure_lines

            for line in failure_lines(end.data):
                click.echo(line)
        c = outcome.counts
        planned = f" ({c.total} planned)" if c.total and c.done < c.total else ""
        t = totals(end.data)
        cost = f" · {cost_with_grading(t['cost'], t['grader_cost'])}" if t["jobs"] else ""
        click.echo(f"{c.passed} passed, {c.failed} failed, {plural(c.errors, 'error')} of {plural(c.done, 'job')}{planned}{cost}")
    for line in end.gate_lines:
        click.echo(line)
    for path in end.reports:
        click.echo(f"report: {path}")
    if end.error is not None:
        raise end.error


__all__ = ["run", "Progress", "parse_limits", "parse_faults"]
