"""``glmeval validate``, ``glmeval plan`` and ``glmeval schema``: suite work with no network."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from glmeval.cli.group import main
from glmeval.errors import SuiteError

if TYPE_CHECKING:  # the suite loader (pydantic, jinja2) loads when a command runs, not for --help
    from glmeval.plan import Plan


def print_warnings(plan: Plan) -> None:
    """Warnings go to stderr so they never mix with a plan or summary piped elsewhere."""
    for text in plan.warnings:
        click.echo(f"warning: {text}", err=True)


def print_plan(plan: Plan) -> None:
    """Jobs per variant with an estimate of their tokens and cost: the prompt counted locally,
    the answer by the prior ``--max-cost``/``--max-tokens`` use before the first answers
    arrive (:func:`glmeval.run.runner.estimate_job`), so the plan says what a budget must cover."""
    from tabulate import tabulate

    from glmeval.run.runner import DEFAULT_COMPLETION_ESTIMATE, estimate_job

    per_variant: Counter[str] = Counter()
    prompt: Counter[str] = Counter()
    answer: Counter[str] = Counter()
    cost: defaultdict[str, float] = defaultdict(float)
    case_ids: set[str] = set()
    for job in plan:  # one pass: the plan makes its jobs as they are read
        p, c, yuan = estimate_job(job, plan.suite.prices or None)
        per_variant[job.variant_id] += 1
        prompt[job.variant_id] += p
        answer[job.variant_id] += c
        cost[job.variant_id] += yuan
        case_ids.add(job.case_id)
    rows = [
        [v, per_variant[v], f"{prompt[v]:,}", f"{answer[v]:,}", f"¥{cost[v]:.4f}"] for v in plan.variants if per_variant[v]
    ]
    if len(rows) > 1:
        rows.append(
            ["total", len(plan), f"{sum(prompt.values()):,}", f"{sum(answer.values()):,}", f"¥{sum(cost.values()):.4f}"]
        )
    cases = len(case_ids)
    n_jobs, n_variants = len(plan), len(per_variant)
    click.echo(
        f"{plan.suite.name}: {n_jobs} job{'s' * (n_jobs != 1)} "
        f"({cases} case{'s' * (cases != 1)} x {n_variants} variant{'s' * (n_variants != 1)} x repeats)"
    )
    click.echo(
        tabulate(
            rows,
            headers=["variant", "jobs", "prompt tokens", "answer tokens (est.)", "cost (est.)"],
            tablefmt="simple",
            disable_numparse=True,
        )
    )
    click.echo(
        f"answers estimated at min(max_tokens or {DEFAULT_COMPLETION_ESTIMATE}, 4 x prompt + 64) tokens each, "
        "as --max-cost/--max-tokens do until real answers arrive"
    )
    for case_id, reason in plan.skipped:
        click.echo(f"skipped: {case_id} ({reason})")
    print_warnings(plan)


@main.command()
@click.argument("suites", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(suites: tuple[Path, ...]) -> None:
    """Check suite files without calling anything; print every problem of every file."""
    from glmeval.plan import build_plan
    from glmeval.suite import load_suite

    problems: list[str] = []
    for path in suites:
        try:
            plan = build_plan(load_suite(path))
        except SuiteError as exc:
            problems.extend(exc.problems)
            continue
        jobs, variants = len(plan), len(plan.variants)
        click.echo(f"{path}: ok ({jobs} job{'s' * (jobs != 1)}, {variants} variant{'s' * (variants != 1)})")
        print_warnings(plan)
    if problems:
        raise SuiteError(problems)


@main.command("plan")
@click.argument("suite", type=click.Path(path_type=Path))
@click.option("--model", "models", multiple=True, help="Override the model axis.")
@click.option("--mode", type=click.Choice(["sync", "stream", "async", "batch"]), help="Override the call mode.")
def plan_cmd(suite: Path, models: tuple[str, ...], mode: str | None) -> None:
    """List the jobs a run would make, per variant, with a token and cost estimate."""
    from glmeval.plan import build_plan
    from glmeval.suite import load_suite

    print_plan(build_plan(load_suite(suite), model_override=list(models) or None, mode_override=mode))


@main.command()
def schema() -> None:
    """Print the JSON Schema of the suite format (save it and point your editor at it)."""
    from glmeval.suite import suite_json_schema

    click.echo(json.dumps(suite_json_schema(), ensure_ascii=False, indent=2))
