"""``glmeval run``: plan, run, check, store and report one or more suites."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from glmeval.cli import main
from glmeval.errors import GlmevalError
from glmeval.plan import build_plan
from glmeval.records import Result
from glmeval.runner import RunCounts, RunOptions, abort_message
from glmeval.session import LOCAL_SPEED, Target, run_plan
from glmeval.store import Store
from glmeval.suite import load_suite


class Progress:
    """A live bar on a terminal; plain periodic lines when not (CI logs)."""

    def __init__(self, total: int, label: str, stream: Any = None) -> None:
        self.total = total
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self._last = 0.0
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> "Progress":
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeRemainingColumn

            self._bar = Bar(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total, stats="")
        return self

    def update(self, result: Result, counts: RunCounts) -> None:
        stats = (
            f"pass {counts.passed} fail {counts.failed} err {counts.errors} "
            f"tok {counts.tokens:,} ¥{counts.cost:.4f}"
        )
        if self._bar is not None:
            self._bar.update(self._task, completed=counts.done, stats=stats)
            return
        now = time.monotonic()
        if now - self._last >= 2.0 or counts.done == self.total:
            self._last = now
            elapsed = now - self.started
            eta = elapsed / counts.done * (self.total - counts.done) if counts.done else 0.0
            print(f"[{self.label}] {counts.done}/{self.total} {stats} eta {eta:.0f}s", file=self.stream, flush=True)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


@main.command()
@click.argument("suites", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--local", is_flag=True, help="Start the local GLM server and send every call there (no key needed).")
@click.option("--local-speed", type=float, default=LOCAL_SPEED, show_default=True, help="Latency factor of the local server.")
@click.option("--rules", type=click.Path(path_type=Path), help="Extra reply rules for the local server.")
@click.option("--base-url", envvar="ZHIPUAI_BASE_URL", help="API base URL (default: the official one).")
@click.option("--model", "models", multiple=True, help="Run only these models (overrides the grid's model axis).")
@click.option("--mode", type=click.Choice(["sync", "stream", "async"]), help="Override the call mode.")
@click.option("--concurrency", "-j", type=click.IntRange(1, 1024), help="Calls in flight at once.")
@click.option("--timeout", type=click.FloatRange(min=0.001), help="Seconds per call attempt.")
@click.option("--retries", type=click.IntRange(0, 20), help="Retries per call on 429, 5xx and network errors.")
@click.option("--cache", "cache_mode", flag_value="use", help="Reuse cached answers to identical requests.")
@click.option("--no-cache", "cache_mode", flag_value="off", help="Always call the model (the default).")
@click.option("--replay", "cache_mode", flag_value="replay", help="Answer only from the cache; send nothing.")
@click.option("--db", type=click.Path(path_type=Path), envvar="GLMEVAL_DB", help="Results database (default .glmeval/results.db).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports"), show_default=True, help="Report folder.")
@click.option("--no-report", is_flag=True, help="Do not write report files.")
@click.option("--dry-run", is_flag=True, help="Show the plan; call nothing.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
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
    cache_mode: str | None,
    db: Path | None,
    out: Path,
    no_report: bool,
    dry_run: bool,
    quiet: bool,
) -> None:
    """Run SUITES and print a summary; exit 1 when any check failed."""
    from glmeval.report import load_report_data, write_reports
    from glmeval.report.markdown import summary_table

    loaded = [load_suite(p) for p in suites]
    plans = [build_plan(s, model_override=list(models) or None, mode_override=mode) for s in loaded]
    if dry_run:
        from glmeval.cli.suites import print_plan

        for plan in plans:
            print_plan(plan)
        return
    store = Store(db)
    any_failed = False
    aborted: str | None = None
    max_concurrency = max((concurrency or p.suite.settings.concurrency) for p in plans)
    with Target(
        local=local,
        base_url=base_url,
        timeout=timeout or max(p.suite.settings.timeout for p in plans),
        poll_timeout=max(p.suite.settings.poll_timeout for p in plans),
        speed=local_speed,
        rules=rules,
        replay=cache_mode == "replay",
        concurrency=max_concurrency,
    ) as target:
        for plan in plans:
            suite = plan.suite
            options = RunOptions(
                concurrency=concurrency or suite.settings.concurrency,
                retries=suite.settings.retries if retries is None else retries,
                cache=cache_mode or "off",
                judge_model=suite.settings.judge_model,
                embedding_model=suite.settings.embedding_model,
                suite_dir=suite.base_dir,
                prices=suite.prices or None,
            )
            settings = {
                "concurrency": options.concurrency,
                "retries": options.retries,
                "cache": options.cache,
                "timeout": target.timeout,
                "base_url": target.base_url if not local else "local",
            }
            label = f"{suite.name}"
            if not quiet:
                click.echo(
                    f"{suite.name}: {len(plan.jobs)} jobs, {len(plan.variants)} variant(s)"
                    + (" against the local GLM server" if local else ""),
                    err=True,
                )
            with Progress(len(plan.jobs), label) as progress:
                outcome = run_plan(
                    plan, store, target, options, on_result=None if quiet else progress.update, settings=settings
                )
            data = load_report_data(store, outcome.run_id)
            click.echo("")
            click.echo(f"{suite.name}  run {outcome.run_id}  ({outcome.status})")
            click.echo(summary_table(data.summary, tablefmt="simple"))
            c = outcome.counts
            click.echo(f"{c.passed} passed, {c.failed} failed, {c.errors} errors of {c.done} jobs")
            if not no_report:
                for path in write_reports(store, outcome.run_id, out / suite.name / outcome.run_id, ("md", "html")):
                    click.echo(f"report: {path}")
            if c.failed or c.errors or outcome.status != "complete":
                any_failed = True
            if outcome.status == "interrupted":
                click.echo(f"interrupted: resume with `glmeval run --resume {outcome.run_id} {suite.path}`", err=True)
            if outcome.abort_reason:
                aborted = outcome.abort_reason
                break
    if aborted:
        raise GlmevalError(f"run stopped: {aborted}")
    sys.exit(1 if any_failed else 0)


__all__ = ["run", "Progress", "abort_message"]
