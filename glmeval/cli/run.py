"""``glmeval run``: plan, run, check, store and report one or more suites."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from glmeval.cli import main
from glmeval.errors import GlmevalError, SuiteError
from glmeval.run.ratelimit import Budget, ModelLimit, parse_model_values
from glmeval.session import LOCAL_SPEED, Target, find_resume, run_plan

if TYPE_CHECKING:  # loaded inside the command, so `glmeval --help` needs no pydantic, SDK or pandas
    from glmeval.records import Result
    from glmeval.run.runner import RunCounts


class Progress:
    """A live bar on a terminal; plain periodic lines when not (CI logs).

    Shows done/total, pass, fail, error, retried and cached jobs, tokens and cost so far, and
    an ETA from this session's own pace (a resumed run starts from its stored totals, which
    must not make the ETA look faster than it is).
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
        return f"{text} {shown} tok ¥{counts.cost + counts.grader_cost:.3f}"

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
            print(f"[{self.label}] {counts.done}/{self.total} {self.stats(counts)} eta {shown}", file=self.stream, flush=True)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def _nonblank(values: tuple[str, ...], flag: str) -> tuple[str, ...]:
    if any(not v.strip() for v in values):
        raise click.BadParameter("a model name cannot be empty", param_hint=flag)
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
@click.option("--rules", type=click.Path(path_type=Path), help="Extra reply rules for the local server.")
@click.option("--base-url", envvar="ZHIPUAI_BASE_URL", help="API base URL (default: the official one).")
@click.option(
    "--model", "models", multiple=True, callback=lambda ctx, param, value: _nonblank(value, "--model"),
    help="Run only these models (overrides the grid's model axis).",
)
@click.option("--mode", type=click.Choice(["sync", "stream", "async"]), help="Override the call mode.")
@click.option("--concurrency", "-j", type=click.IntRange(1, 1024), help="Calls in flight at once.")
@click.option("--timeout", type=click.FloatRange(min=0.001), help="Seconds per call attempt.")
@click.option("--retries", type=click.IntRange(0, 20), help="Retries per call on 429, 5xx and network errors.")
@click.option("--cache", "use_cache", is_flag=True, help="Reuse cached answers to identical requests.")
@click.option("--no-cache", "no_cache", is_flag=True, help="Always call the model (the default).")
@click.option("--replay", "replay", is_flag=True, help="Answer only from the cache; send nothing.")
@click.option("--db", type=click.Path(path_type=Path), envvar="GLMEVAL_DB", help="Results database (default .glmeval/results.db).")
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
    "(errors run again). Works after a kill too.",
)
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
    "slow=0.1, content_filter=0.01, balance=0.01, retry_after=0.5, slow_ms=3000 (repeatable).",
)
@click.option("--fault-seed", type=int, help="Seed of the injected faults (same seed, same faults).")
# --- end runner ---
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
    use_cache: bool,
    no_cache: bool,
    replay: bool,
    db: Path | None,
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
    poll_timeout: float | None = None,
    judge_model: str | None = None,
    embedding_model: str | None = None,
) -> None:
    """Run SUITES and print a summary; exit 1 when any check failed."""
    given = [flag for flag, on in (("--cache", use_cache), ("--no-cache", no_cache), ("--replay", replay)) if on]
    if len(given) > 1:
        raise click.UsageError(f"{' and '.join(given)} contradict each other; give one of them")
    cache_mode = "use" if use_cache else "replay" if replay else "off" if no_cache else None
    from glmeval.plan import build_plan
    from glmeval.report import load_report_data, report_dir, write_reports
    from glmeval.report.markdown import summary_table
    from glmeval.run.runner import RunOptions
    from glmeval.store import Store

    # --- runner: flags checked before anything is loaded or spent ---
    if resume is not None and (resume.endswith((".yaml", ".yml")) or Path(resume).is_file()):
        suites, resume = (Path(resume), *suites), "latest"  # `--resume SUITE`: the value was the suite
    if not suites:
        raise click.UsageError("give at least one SUITE file")
    if resume is not None and resume != "latest" and len(suites) > 1:
        raise GlmevalError("--resume RUN continues one run: give only that run's suite")
    model_limits = parse_limits(model_concurrency, rpm, tpm)
    fault_config = parse_faults(faults, fault_seed, local)
    budget = Budget(max_cost, max_tokens_budget) if (max_cost is not None or max_tokens_budget is not None) else None
    # --- end runner ---
    loaded = _load_all(suites)
    plans = [build_plan(s, model_override=list(models) or None, mode_override=mode) for s in loaded]
    # --- suite: warnings about the suites (values the SDK clamps...) before anything runs ---
    if not dry_run:
        from glmeval.cli.suites import print_warnings

        for plan in plans:
            print_warnings(plan)
    # --- end suite ---
    if dry_run:
        from glmeval.cli.suites import print_plan

        for plan in plans:
            print_plan(plan)
        return
    store = Store(db)
    # --- history: parse the rules and check --baseline before spending anything ---
    from glmeval.analysis.gate import Trip, check_refs, gate_after_run, parse_rules

    gate_rules = parse_rules(fail_on)
    baseline = check_refs(store, baseline, gate_rules)
    if baseline and baseline.startswith("latest~") and baseline.strip() != "latest~0":
        # Only plain `latest` may be missing (a suite's first run); an explicit latest~N that
        # does not exist is a mistake, and must not let the --fail-on gate pass silently.
        for plan in plans:
            store.resolve_run(baseline, suite=plan.suite.name)
    gate_trips: list[Trip] = []
    # --- end history ---
    any_failed = False
    interrupted = False
    aborted: str | None = None
    max_concurrency = max((concurrency or p.suite.settings.concurrency) for p in plans)
    with Target(
        local=local,
        base_url=base_url,
        timeout=timeout or max(p.suite.settings.timeout for p in plans),
        poll_timeout=poll_timeout or max(p.suite.settings.poll_timeout for p in plans),
        speed=local_speed,
        rules=rules,
        replay=cache_mode == "replay",
        concurrency=max_concurrency,
        faults=fault_config,
    ) as target:
        for plan in plans:
            suite = plan.suite
            options = RunOptions(
                cache_namespace=target.cache_namespace,
                concurrency=concurrency or suite.settings.concurrency,
                retries=suite.settings.retries if retries is None else retries,
                cache=cache_mode or "off",
                judge_model=judge_model or suite.settings.judge_model,
                embedding_model=embedding_model or suite.settings.embedding_model,
                suite_dir=suite.base_dir,
                prices=suite.prices or None,
                model_limits=suite_limits(suite, model_limits),
                budget=budget,
                notify=lambda message: click.echo(f"\n{message}", err=True),
                checks=suite.check_registry,
            )
            settings = {
                "concurrency": options.concurrency,
                "retries": options.retries,
                "cache": options.cache,
                "timeout": target.timeout,
                "base_url": target.base_url if not local else "local",
            }
            # --- runner: settings worth keeping with the run, and --resume ---
            if options.model_limits:
                settings["limits"] = {
                    m: {k: v for k, v in vars(lim).items() if v is not None} for m, lim in options.model_limits.items()
                }
            if budget is not None:
                settings["budget"] = {"max_cost": budget.max_cost, "max_tokens": budget.max_tokens}
            if fault_config is not None:
                settings["faults"] = {k: v for k, v in vars(fault_config).items() if v}
            resumed = find_resume(store, plan, resume) if resume is not None else None
            if resumed is not None and not quiet:
                click.echo(
                    f"{suite.name}: resuming run {resumed.run_id} ({resumed.status}): "
                    f"{resumed.counts.done} of {len(plan.jobs)} jobs have results, running {len(resumed.jobs)}",
                    err=True,
                )
                if resumed.suite_changed:
                    click.echo(
                        f"warning: {suite.path} changed since run {resumed.run_id} started; "
                        "the remaining jobs use the current version",
                        err=True,
                    )
            # --- end runner ---
            label = f"{suite.name}"
            if not quiet and resumed is None:
                click.echo(
                    f"{suite.name}: {len(plan.jobs)} jobs, {len(plan.variants)} variant(s)"
                    + (" against the local GLM server" if local else ""),
                    err=True,
                )
            with Progress(len(plan.jobs), label, start=resumed.counts if resumed else None) as progress:
                outcome = run_plan(
                    plan,
                    store,
                    target,
                    options,
                    on_result=None if quiet else progress.update,
                    settings=settings,
                    resume=resumed,
                )
            # --- runner: a bad key or an empty balance stops everything with one line (exit 2) ---
            if outcome.abort_reason:
                aborted = outcome.abort_reason
                break
            # --- end runner ---
            data = load_report_data(store, outcome.run_id)
            click.echo("")
            click.echo(f"{suite.name}  run {outcome.run_id}  ({outcome.status})")
            click.echo(summary_table(data.summary, tablefmt="simple"))
            c = outcome.counts
            if not quiet:
                from glmeval.report.views import failure_lines

                for line in failure_lines(data):
                    click.echo(line)
            planned = f" ({c.total} planned)" if c.total and c.done < c.total else ""
            click.echo(f"{c.passed} passed, {c.failed} failed, {c.errors} errors of {c.done} jobs{planned}")
            # --- history: compare with the baseline, check the --fail-on rules ---
            gated = bool(baseline or gate_rules)
            if gated:
                gate_trips += gate_after_run(store, outcome.run_id, baseline, gate_rules, click.echo)
            # --- end history ---
            if not no_report:
                # The gate records the run's baseline; load again after it so the reports
                # carry the comparison (without a gate the summary's data is all they need).
                report_data = load_report_data(store, outcome.run_id) if gated else data
                for path in write_reports(
                    store, outcome.run_id, report_dir(out, suite.name, outcome.run_id), ("md", "html"), data=report_data
                ):
                    click.echo(f"report: {path}")
            if c.failed or c.errors or outcome.status != "complete":
                any_failed = True
            # --- runner: how the run ended, and how to continue it ---
            again = f"glmeval run --resume {outcome.run_id} {suite.path}"
            if outcome.status == "interrupted":
                click.echo(f"interrupted: {outcome.not_run} job(s) not run; resume with `{again}`", err=True)
                interrupted = True
                break
            if outcome.status == "budget":
                click.echo(f"{outcome.budget_message}; run the rest with `{again} --max-cost/--max-tokens ...`", err=True)
                break
            # --- end runner ---
    if aborted:
        raise GlmevalError(f"run stopped: {aborted}")
    if interrupted:
        sys.exit(130)
    # --- history: with --fail-on the rules (not individual failed checks) decide the exit code ---
    if gate_rules:
        for trip in gate_trips:
            click.echo(trip.message, err=True)
        if not gate_trips:
            click.echo(f"fail-on: no rule tripped ({', '.join(r.text for r in gate_rules)})", err=True)
        sys.exit(1 if gate_trips else 0)
    # --- end history ---
    sys.exit(1 if any_failed else 0)


def parse_limits(concurrency: tuple[str, ...], rpm: tuple[str, ...], tpm: tuple[str, ...]) -> dict[str, ModelLimit]:
    """``--model-concurrency``/``--rpm``/``--tpm`` items into per-model limits (``*`` = every model)."""
    try:
        conc = parse_model_values(concurrency, "--model-concurrency", integer=True)
        per_min = parse_model_values(rpm, "--rpm")
        tokens = parse_model_values(tpm, "--tpm")
    except ValueError as exc:
        raise GlmevalError(str(exc)) from None
    limits: dict[str, ModelLimit] = {}
    for model in {*conc, *per_min, *tokens}:
        c = conc.get(model)
        limits[model] = ModelLimit(int(c) if c is not None else None, per_min.get(model), tokens.get(model))
    return limits


def suite_limits(suite: Any, cli: dict[str, ModelLimit]) -> dict[str, ModelLimit]:
    """Per-model limits: the suite's ``settings.limits`` (``{model: {concurrency, rpm, tpm}}``)
    with the command line's on top."""
    merged: dict[str, ModelLimit] = {}
    for model, spec in suite.settings.limits.items():
        merged[str(model)] = ModelLimit(spec.concurrency, spec.rpm, spec.tpm)
    for model, limit in cli.items():
        merged[model] = merged.get(model, ModelLimit()).merged(limit)
    return merged


def parse_faults(items: tuple[str, ...], seed: int | None, local: bool) -> Any:
    """``--fault KIND=RATE`` items (and ``--fault-seed``) into the local server's FaultConfig."""
    if not items and seed is None:
        return None
    if not local:
        raise GlmevalError("--fault and --fault-seed inject faults at the local server: add --local")
    from glmeval.simulator import FaultConfig

    spec = ",".join(items)
    if seed is not None:
        spec += f",seed={seed}"
    try:
        return FaultConfig.parse(spec)
    except ValueError as exc:
        raise GlmevalError(f"--fault: {exc}") from None


__all__ = ["run", "Progress", "parse_limits", "parse_faults"]
