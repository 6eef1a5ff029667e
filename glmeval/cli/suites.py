"""``glmeval validate``, ``glmeval plan`` and ``glmeval schema``: suite work with no network."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import click
from tabulate import tabulate

from glmeval.cli import main
from glmeval.errors import SuiteError
from glmeval.plan import Plan, build_plan
from glmeval.suite import load_suite


def print_warnings(plan: Plan) -> None:
    """Warnings go to stderr so they never mix with a plan or summary piped elsewhere."""
    for text in plan.warnings:
        click.echo(f"warning: {text}", err=True)


def print_plan(plan: Plan) -> None:
    """Jobs per variant with an estimate of prompt tokens and their cost (answers not included)."""
    from glmeval import prices
    from glmeval.tokens import count_prompt_tokens

    per_variant: Counter[str] = Counter(j.variant_id for j in plan.jobs)
    tokens: Counter[str] = Counter()
    cost: defaultdict[str, float] = defaultdict(float)
    for job in plan.jobs:
        n = count_prompt_tokens(job.messages, job.tools)
        tokens[job.variant_id] += n
        cost[job.variant_id] += prices.cost(job.model, n, 0, plan.suite.prices or None)
    rows = [[v, per_variant[v], f"{tokens[v]:,}", f"¥{cost[v]:.4f}"] for v in plan.variants if per_variant[v]]
    if len(rows) > 1:
        rows.append(["total", len(plan.jobs), f"{sum(tokens.values()):,}", f"¥{sum(cost.values()):.4f}"])
    cases = len({j.case_id for j in plan.jobs})
    click.echo(f"{plan.suite.name}: {len(plan.jobs)} jobs ({cases} cases x {len(per_variant)} variants x repeats)")
    click.echo(
        tabulate(
            rows,
            headers=["variant", "jobs", "prompt tokens (est.)", "prompt cost (est.)"],
            tablefmt="simple",
            disable_numparse=True,
        )
    )
    for case_id, reason in plan.skipped:
        click.echo(f"skipped: {case_id} ({reason})")
    print_warnings(plan)


@main.command()
@click.argument("suites", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(suites: tuple[Path, ...]) -> None:
    """Check suite files without calling anything; print every problem of every file."""
    problems: list[str] = []
    for path in suites:
        try:
            plan = build_plan(load_suite(path))
        except SuiteError as exc:
            problems.extend(exc.problems)
            continue
        click.echo(f"{path}: ok ({len(plan.jobs)} jobs, {len(plan.variants)} variants)")
        print_warnings(plan)
    if problems:
        raise SuiteError(problems)


@main.command("plan")
@click.argument("suite", type=click.Path(path_type=Path))
@click.option("--model", "models", multiple=True, help="Override the model axis.")
@click.option("--mode", type=click.Choice(["sync", "stream", "async"]), help="Override the call mode.")
def plan_cmd(suite: Path, models: tuple[str, ...], mode: str | None) -> None:
    """List the jobs a run would make, per variant, with a token and cost estimate."""
    print_plan(build_plan(load_suite(suite), model_override=list(models) or None, mode_override=mode))


@main.command()
def schema() -> None:
    """Print the JSON Schema of the suite format (save it and point your editor at it)."""
    from glmeval.suite import suite_json_schema

    click.echo(json.dumps(suite_json_schema(), ensure_ascii=False, indent=2))
