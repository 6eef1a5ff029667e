"""Regression gates: ``--fail-on`` rules that turn a comparison into an exit code for CI.

Grammar (spaces are ignored, case-insensitive)::

    rule      := "regression" | "regressions" [op count]
               | "errors" [op count]
               | metric op threshold
    metric    := pass-rate | latency-p50 | latency-p95 | tokens | cost | errors | regressions
    op        := "<" | "<=" | ">" | ">="
    threshold := [+|-] number ["%"]

The sign decides what the number is measured against:

* **no sign: an absolute value of HEAD.** ``pass-rate<0.9`` (or ``pass-rate<90%``),
  ``latency-p95>2000`` (ms), ``cost>0.5`` (¥, the variant's total: answers plus grading), ``tokens>20000``,
  ``errors>0``. These need no baseline.
* **a sign: a change against the baseline.** ``latency-p95>+20%``, ``cost>+10%``,
  ``tokens>+15%`` compare the relative change; ``latency-p95>+200`` the change in ms. For the
  pass rate a percentage is in points: ``pass-rate<-5%`` and ``pass-rate<-0.05`` both mean
  "dropped by more than five points".
* ``regression`` trips on any case that passed in the baseline and fails now
  (``regressions>2`` allows two).

Every rule is checked per variant, and a tripped rule says which variant and by how much:
``fail-on latency-p95>+20%: glm-4 p95 1,250 ms vs 900 ms (+38.9%)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from glmeval.analysis.compare import Comparison, compare_runs, format_comparison, side_metrics
from glmeval.analysis.frames import case_frame
from glmeval.analysis.lean import comparison_frame
from glmeval.errors import GlmevalError
from glmeval.percent import percent
from glmeval.store import StoreReader, StoreWriter

# The gate reads the runs and records its baseline (``runs.baseline``, shown by ``glmeval show``
# and used by ``glmeval report``).
GateStore = StoreWriter


# rule metric name -> comparison metric key (None: computed from case lists / counts)
_METRICS: dict[str, str | None] = {
    "pass-rate": "pass_rate",
    "latency-p50": "latency_p50_ms",
    "latency-p95": "latency_p95_ms",
    "tokens": "total_tokens",
    "cost": "cost",
    "errors": None,
    "regressions": None,
}
_ALIASES = {
    "regression": "regressions",
    "pass_rate": "pass-rate",
    "passrate": "pass-rate",
    "p50": "latency-p50",
    "p95": "latency-p95",
    "latency_p50": "latency-p50",
    "latency_p95": "latency-p95",
    "total-tokens": "tokens",
    "total_tokens": "tokens",
    "error": "errors",
}
_RULE = re.compile(r"^(?P<metric>[a-z0-9_-]+?)(?:(?P<op><=|>=|<|>)(?P<sign>[+-])?(?P<num>\d+(?:\.\d*)?|\.\d+)(?P<pct>%)?)?$")
EXAMPLES = "regression, pass-rate<0.9, pass-rate<-5%, latency-p95>+20%, cost>+10%, tokens>+15%, errors>0"


@dataclass(frozen=True)
class Rule:
    """One parsed ``--fail-on`` rule.

    ``value`` is normalised: pass rates as fractions (``-5%`` -> ``-0.05``), relative changes
    of other metrics as fractions (``+20%`` -> ``0.2``) when ``percent`` is set.
    """

    text: str
    metric: str
    op: str
    value: float
    relative: bool
    percent: bool

    @property
    def needs_baseline(self) -> bool:
        return self.relative or self.metric == "regressions"

    def trips(self, observed: float) -> bool:
        if observed is None or math.isnan(observed):
            return False
        return {
            "<": observed < self.value,
            "<=": observed <= self.value,
            ">": observed > self.value,
            ">=": observed >= self.value,
        }[self.op]


@dataclass
class Trip:
    """A rule that tripped, for one variant (``None``: the run as a whole)."""

    rule: Rule
    variant: str | None
    detail: str

    @property
    def message(self) -> str:
        if self.rule.metric == "run":
            return f"fail-on: {self.detail}"
        return f"fail-on {self.rule.text}: {self.detail}"


def parse_rule(text: str) -> Rule:
    """Parse one rule; a bad rule raises :class:`GlmevalError` (exit 2) saying what is expected."""
    raw = text.strip()
    compact = re.sub(r"\s+", "", raw).lower()
    m = _RULE.match(compact)
    if not m:
        raise GlmevalError(f"--fail-on {raw!r}: not a rule; expected METRIC OP VALUE such as {EXAMPLES}")
    metric = _ALIASES.get(m["metric"], m["metric"])
    if metric not in _METRICS:
        raise GlmevalError(
            f"--fail-on {raw!r}: unknown metric {m['metric']!r}; use one of {', '.join(_METRICS)} (e.g. {EXAMPLES})"
        )
    if m["op"] is None:
        if metric in ("regressions", "errors"):
            return Rule(raw, metric, ">", 0.0, relative=False, percent=False)
        raise GlmevalError(f"--fail-on {raw!r}: {metric} needs a comparison, e.g. {metric}{_example(metric)}")
    op, sign, pct = m["op"], m["sign"], bool(m["pct"])
    value = float(m["num"])
    if sign == "-":
        value = -value
    relative = sign is not None
    if metric == "regressions":
        if relative or pct:
            raise GlmevalError(f"--fail-on {raw!r}: regressions counts cases; write e.g. regressions>2")
        return Rule(raw, metric, op, value, relative=False, percent=False)
    if metric == "errors" and pct:
        raise GlmevalError(f"--fail-on {raw!r}: errors counts failed calls; write e.g. errors>0 or errors>+2")
    if metric == "pass-rate":
        if pct:
            value /= 100.0
        if not relative and not 0.0 <= value <= 1.0:
            raise GlmevalError(
                f"--fail-on {raw!r}: an absolute pass rate is between 0 and 1 (or 0% and 100%); "
                "for a drop against the baseline write e.g. pass-rate<-5%"
            )
        return Rule(raw, metric, op, value, relative=relative, percent=pct)
    if pct and not relative:
        raise GlmevalError(
            f"--fail-on {raw!r}: a percentage of {metric} is a change against the baseline; "
            f"write it with a sign, e.g. {metric}>+{m['num']}%"
        )
    if pct:
        value /= 100.0
    return Rule(raw, metric, op, value, relative=relative, percent=pct)


def _example(metric: str) -> str:
    return {"pass-rate": "<0.9", "latency-p50": ">+20%", "latency-p95": ">+20%", "tokens": ">+15%", "cost": ">+10%"}.get(metric, ">0")


def parse_rules(texts: Iterable[str]) -> list[Rule]:
    """Parse every rule (a comma-separated value holds several: ``regression,cost>+10%``)."""
    rules = []
    for text in texts:
        for part in text.split(","):
            if part.strip():
                rules.append(parse_rule(part))
    return rules


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
            key = _METRICS[rule.metric]
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


def check_refs(store: StoreReader, baseline: str | None, rules: list[Rule]) -> str | None:
    """Fail before spending anything: a baseline that does not resolve, or rules that need
    one without ``--baseline``. Returns the baseline to use: a resolved run id (so a prefix
    cannot turn ambiguous once this run is stored), or ``latest``/``latest~N`` unchanged,
    which is resolved after the run, per suite."""
    if rules and any(r.needs_baseline for r in rules) and not baseline:
        needing = ", ".join(r.text for r in rules if r.needs_baseline)
        raise GlmevalError(f"--fail-on {needing} compares with a baseline; add --baseline latest (or a run id, or a git ref)")
    if baseline and not _is_latest(baseline):
        return store.resolve_run(baseline)
    return baseline


def _is_latest(ref: str) -> bool:
    return ref == "latest" or ref.startswith("latest~")


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
        if _is_latest(baseline):
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
