"""``glmeval validate``, ``glmeval plan`` and ``glmeval schema``: suite work with no network."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import click
from tabulate import tabulate

from glmeval.cli import main
from glmeval.errors import SuiteError
from glmeval.plan import Plan, build_plan
from glmeval.suite import load_suite


def print_plan(plan: Plan) -> None:
    from glmeval import prices
    from glmeval.tokens import count_tokens

    per_variant: Counter[str] = Counter(j.variant_id for j in plan.jobs)
    tokens: Counter[str] = Counter()
    cost: Counter[str] = Counter()
    for job in plan.jobs:
        n = sum(count_tokens(m["content"]) + 4 for m in job.messages if isinstance(m.get("content"), str))
        tokens[job.variant_id] += n
        cost[job.variant_id] += prices.cost(job.model, n, 0, plan.suite.prices or None)
    rows = [[v, per_variant[v], tokens[v], f"¥{cost[v]:.4f}"] for v in plan.variants if per_variant[v]]
    click.echo(f"{plan.suite.name}: {len(plan.jobs)} jobs")
    click.echo(tabulate(rows, headers=["variant", "jobs", "prompt tokens (est.)", "prompt cost (est.)"], tablefmt="simple", disable_numparse=True))


@main.command()
@click.argument("suites", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(suites: tuple[Path, ...]) -> None:
    """Check suite files without calling anything; print every problem."""
    problems: list[str] = []
    for path in suites:
        try:
            suite = load_suite(path)
            plan = build_plan(suite)
            click.echo(f"{path}: ok ({len(plan.jobs)} jobs, {len(plan.variants)} variants)")
        except SuiteError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SuiteError(problems)


@main.command("plan")
@click.argument("suite", type=click.Path(path_type=Path))
@click.option("--model", "models", multiple=True, help="Override the model axis.")
def plan_cmd(suite: Path, models: tuple[str, ...]) -> None:
    """List the jobs a run would make, per variant, with a token and cost estimate."""
    print_plan(build_plan(load_suite(suite), model_override=list(models) or None))


@main.command()
def schema() -> None:
    """Print the JSON Schema of the suite format (for editor completion)."""
    from glmeval.suite import Suite

    click.echo(json.dumps(Suite.model_json_schema(by_alias=True), ensure_ascii=False, indent=2))
