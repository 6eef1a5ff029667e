"""Regression gates: ``--fail-on`` rules (parsed in :mod:`glmeval.analysis.rules`, which has
their grammar) turned into an exit code for CI, on a run's own figures and on its comparison
with a baseline. Every rule is checked per variant, and a tripped rule says which variant and
by how much: ``fail-on latency-p95>+20%: glm-4 p95 1,250 ms vs 900 ms (+38.9%)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from glmeval.analysis.compare import Comparison, compare_runs, format_comparison, side_metrics
from glmeval.analysis.frames import case_frame
from glmeval.analysis.lean import comparison_frame
from glmeval.analysis.rules import EXAMPLES, RULE_METRICS, Rule, Trip, check_refs, is_latest, parse_rule, parse_rules
from glmeval.errors import GlmevalError
from glmeval.percent import percent
from glmeval.store import StoreReader, StoreWriter

# The gate reads the runs and records its baseline (``runs.baseline``, shown by ``glmeval show``
# and used by ``glmeval report``).
GateStore = StoreWriter


# -- evaluation -------------------------------------------------------------------------------


def _fmt(metric: str, value: float) -> str:
    if metric == "pass-rate":
        return percent(value)
    if metric in ("latency-p50", "latency-p95"):
        return f"{value:,.0f} ms"
    if metric == "cost":
        return f"¥{value:.4f}"
    return f"{value:,.0f}"


def _label(metric: str) -> str:
    return {"pass-rate": "pass rate", "latency-p50": "p50", "latency-p95": "p95"}.get(metric, metric)


def head_metrics(store: StoreReader, run_id: str) -> dict[str, dict[str, float]]:
    """Per variant of one run: the gated metrics, for rules that need no baseline."""
    (res,) = comparison_frame(store, [run_id])
    out: dict[str, dict[str, float]] = {}
    if res.empty:
        return out
    cases = case_frame(res)
    declared = store.require_run(run_id).variants
    present = list(dict.fromkeys(res["variant_id"]))
    for variant in [v for v in declared if v in present] + [v for v in present if v not in declared]:
        g = res[res["variant_id"] == variant]
        m = side_metrics(g, cases[cases["variant_id"] == variant])
        m["errors"] = float((g["status"] == "error").sum())
        m["cases"] = float((cases["variant_id"] == variant).sum())
        m["cases_passed"] = float(cases[cases["variant_id"] == variant]["passed"].sum())
        out[str(variant)] = m
    return out


def evaluate(rules: list[Rule], head: dict[str, dict[str, float]], comparison: Comparison | None) -> list[Trip]:
    """Every (rule, variant) that trips. Rules that need a baseline are skipped without one,
    and for variants the baseline did not have."""
    trips: list[Trip] = []
    compared = {v.variant: v for v in comparison.variants} if comparison else {}
    for rule in rules:
        for variant, m in head.items():
            vc = compared.get(variant)
            if rule.metric == "regressions":
                if vc is None:
                    continue
                n = len(vc.regressed)
                if rule.trips(n):
                    shown = ", ".join(vc.regressed[:10]) + (", …" if n > 10 else "")
                    trips.append(Trip(rule, variant, f"{variant} regressed {n} case{'s' if n != 1 else ''}: {shown}"))
                continue
            if rule.metric == "errors":
                now = m["errors"]
                if not rule.relative:
                    if rule.trips(now):
                        trips.append(Trip(rule, variant, f"{variant} has {now:.0f} errored call{'s' if now != 1 else ''}"))
                elif vc is not None:
                    before = float(vc.base_errors)
                    if rule.trips(now - before):
                        trips.append(Trip(rule, variant, f"{variant} {now:.0f} errors vs {before:.0f} ({now - before:+.0f})"))
                continue
            key = RULE_METRICS[rule.metric]
            assert key is not None
            now = m[key]
            if not rule.relative:
                if rule.trips(now):
                    extra = f" ({m['cases_passed']:.0f} of {m['cases']:.0f} cases)" if rule.metric == "pass-rate" else ""
                    if rule.metric == "cost" and m.get("grader_cost"):
                        extra = f" ({_fmt('cost', m['grader_cost'])} grading)"
                    trips.append(
                        Trip(rule, variant, f"{variant} {_label(rule.metric)} {_fmt(rule.metric, now)}{extra}, limit {_fmt(rule.metric, rule.value)}")
                    )
                continue
            if vc is None:
                continue
            base, head_value, delta = vc.metrics[key]
            if any(isinstance(x, float) and math.isnan(x) for x in (base, head_value)):
                continue
            calls = ""
            if rule.metric in ("tokens", "cost") and vc.base_calls != vc.head_calls:
                calls = f"; {vc.head_calls} calls vs {vc.base_calls}"
            if rule.metric == "pass-rate":
                observed = delta
                change = f"{delta * 100:+.1f} pts"
            elif rule.percent:
                if base == 0:
                    observed = math.inf if head_value > 0 else 0.0
                    change = "from 0" if head_value > 0 else "+0.0%"
                else:
                    observed = delta / base
                    change = f"{observed:+.1%}"
            else:
                observed = delta
                change = f"{'+' if delta >= 0 else '-'}{_fmt(rule.metric, abs(delta))}"
            if rule.trips(observed):
                trips.append(
                    Trip(
                        rule,
                        variant,
                        f"{variant} {_label(rule.metric)} {_fmt(rule.metric, head_value)} vs {_fmt(rule.metric, base)} ({change}{calls})",
                    )
                )
    return trips


def gate_after_run(
    store: GateStore,
    head_run_id: str,
    baseline: str | None,
    rules: list[Rule],
    echo: Callable[[str], None],
    on_comparison: Callable[[Comparison], None] | None = None,
) -> list[Trip]:
    """Compare a finished run with its baseline, print the comparison and return the trips.

    ``latest`` means the latest run of the same suite started before this one. When there is
    no such run yet (the first run in a fresh CI database), the comparison is skipped with a
    note and only the absolute rules are checked: a first run cannot regress. ``on_comparison``
    is handed the comparison made, so a report need not make it again.
    """
    head = store.require_run(head_run_id)
    comparison: Comparison | None = None
    if baseline:
        base_id: str | None
        if is_latest(baseline):
            try:
                base_id = store.resolve_run(baseline, suite=head.suite, before=head.started_at, exclude=head.id)
            except GlmevalError:
                base_id = None
                echo(f"baseline: no earlier run of {head.suite} ({baseline}) in {store.path}; nothing to compare with")
        else:
            base_id = store.resolve_run(baseline)
        if base_id is not None and base_id != head.id:
            comparison = compare_runs(store, base_id, head.id)
            store.set_baseline(head.id, base_id)
            if on_comparison is not None:
                on_comparison(comparison)
            echo("")
            echo(format_comparison(comparison))
    trips = evaluate(rules, head_metrics(store, head.id), comparison) if rules else []
    if rules and head.status != "complete":
        trips.append(
            Trip(Rule("complete", "run", ">", 0, False, False), None, f"run {head.id} is {head.status}; a gate needs a complete run")
        )
    return trips


__all__ = ["GateStore", "Rule", "Trip", "parse_rule", "parse_rules", "evaluate", "head_metrics", "check_refs", "gate_after_run", "EXAMPLES"]
