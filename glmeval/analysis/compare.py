"""Comparisons: what changed between two runs, or between two variants of one run.

Everything pairs by case. A case's outcome in a run aggregates its repeats (it passes when its
pass rate across repeats reaches the job's threshold; by default every repeat must pass), so
"regressed" means the same case passed in BASE and fails in HEAD, not that some sample went
the other way. Paired outcomes are what make a small suite informative: the exact McNemar test
only looks at the cases that changed, and says whether that many changes in one direction
could be chance.

Metrics per variant and side, each over that side's own results (the numbers ``glmeval show``
and the reports print, so a comparison never disagrees with a report):

* ``pass_rate``: share of cases that pass (repeats aggregated);
* ``latency_p50_ms`` / ``latency_p95_ms``: over fresh (not cached), answered calls;
* ``total_tokens`` and ``cost``: sums over the variant's calls (a suite that grew costs more,
  and the comparison says how many calls each side made); ``cost`` is the answers plus their
  grading (what llm-rubric / similar checks spent), ``grader_cost`` the grading share alone.

``delta`` is always ``head - base``.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from tabulate import tabulate

from glmeval.analysis.frames import DEFAULT_PROVIDER, case_frame
from glmeval.analysis.lean import comparison_frame, variant_dicts
from glmeval.analysis.stats import describe_p, mcnemar_exact, paired_bootstrap, wilson_interval
from glmeval.errors import GlmevalError
from glmeval.percent import percent
from glmeval.store import RunInfo, StoreReader

METRICS: tuple[str, ...] = ("pass_rate", "latency_p50_ms", "latency_p95_ms", "total_tokens", "cost")


@dataclass
class VariantComparison:
    """One variant (or one pair of variants) compared case by case.

    The first fields are the contract other modules render; the rest (with defaults) give the
    detail behind it: Wilson intervals, counts, the paired-score bootstrap, error counts.
    """

    variant: str
    regressed: list[str]  # case ids: passed in BASE, fail in HEAD
    fixed: list[str]  # failed in BASE, pass in HEAD
    changed: list[str]  # output text differs (any repeat)
    base_pass_rate: float
    head_pass_rate: float
    base_n: int  # cases counted in base_pass_rate
    head_n: int
    metrics: dict[str, tuple[float, float, float]]  # name -> (base, head, head - base)
    p_value: float | None  # exact McNemar on paired per-case pass/fail; None without paired cases
    verdict: str
    base_passed: int = 0
    head_passed: int = 0
    base_ci: tuple[float, float] = (0.0, 1.0)  # 95% Wilson interval of base_pass_rate
    head_ci: tuple[float, float] = (0.0, 1.0)
    paired: int = 0  # cases present on both sides
    cases_only_in_base: list[str] = field(default_factory=list)
    cases_only_in_head: list[str] = field(default_factory=list)
    base_calls: int = 0
    head_calls: int = 0
    base_errors: int = 0
    head_errors: int = 0
    score: tuple[float, float, float, float] | None = None  # paired bootstrap of mean case score: delta, lo, hi, p
    base_label: str = "BASE"
    head_label: str = "HEAD"
    base_grader_cost: float = 0.0  # the grading share of metrics["cost"] (model-graded checks)
    head_grader_cost: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["metrics"] = {k: list(v) for k, v in self.metrics.items()}
        return _json_safe(data)


@dataclass
class Comparison:
    """Two runs compared variant by variant (variants are matched by their label)."""

    base: RunInfo
    head: RunInfo
    variants: list[VariantComparison]
    only_in_base: list[str]  # variants
    only_in_head: list[str]

    @property
    def regressions(self) -> list[tuple[str, str]]:
        """Every (variant, case) that passed in BASE and fails in HEAD."""
        return [(v.variant, case) for v in self.variants for case in v.regressed]

    def variant(self, name: str) -> VariantComparison | None:
        return next((v for v in self.variants if v.variant == name), None)

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(
            {
                "base": asdict(self.base),
                "head": asdict(self.head),
                "variants": [v.to_dict() for v in self.variants],
                "only_in_base": self.only_in_base,
                "only_in_head": self.only_in_head,
                "regressions": [list(r) for r in self.regressions],
            }
        )


# -- metrics of one side ------------------------------------------------------------------


def side_metrics(results: pd.DataFrame, cases: pd.DataFrame) -> dict[str, float]:
    """The compared metrics of one variant on one side (see the module docstring)."""
    fresh = results[~results["cached"].astype(bool) & (results["status"] != "error")]
    answers = float(pd.to_numeric(results["cost"], errors="coerce").fillna(0).sum())
    grading = float(pd.to_numeric(results["judge_cost"], errors="coerce").fillna(0).sum()) if "judge_cost" in results.columns else 0.0
    return {
        "pass_rate": float(cases["passed"].mean()) if len(cases) else math.nan,
        "latency_p50_ms": _quantile(fresh["latency_ms"], 0.5),
        "latency_p95_ms": _quantile(fresh["latency_ms"], 0.95),
        "total_tokens": float(pd.to_numeric(results["total_tokens"], errors="coerce").fillna(0).sum()),
        "cost": answers + grading,
        "grader_cost": grading,
    }


def _quantile(series: pd.Series, q: float) -> float:
    series = pd.to_numeric(series, errors="coerce").dropna()
    return float(series.quantile(q)) if len(series) else math.nan


# -- the comparison of one pair -------------------------------------------------------------


def _compare(
    name: str,
    base_results: pd.DataFrame,
    head_results: pd.DataFrame,
    base_label: str,
    head_label: str,
    subject: str,
    against: str = "",
) -> VariantComparison:
    """Pair ``base_results`` and ``head_results`` (one variant each) by case id."""
    base_cases = case_frame(base_results).set_index("case_id")
    head_cases = case_frame(head_results).set_index("case_id")
    # Paired by whole columns, in the head's case order (a lookup per case took seconds at 100,000).
    in_base = head_cases.index.isin(base_cases.index)
    shared = head_cases.index[in_base].tolist()
    b, h = base_cases.loc[shared], head_cases.loc[shared]
    b_pass, h_pass = b["passed"].to_numpy(dtype=bool), h["passed"].to_numpy(dtype=bool)
    regressed = [c for c, flag in zip(shared, b_pass & ~h_pass) if flag]
    fixed = [c for c, flag in zip(shared, ~b_pass & h_pass) if flag]
    changed = [c for c, x, y in zip(shared, b["outputs"].tolist(), h["outputs"].tolist()) if x != y]
    p_value = mcnemar_exact(len(regressed), len(fixed)) if shared else None
    score = None
    if shared:
        score = paired_bootstrap(b["score"].astype(float).tolist(), h["score"].astype(float).tolist())
    base_m = side_metrics(base_results, base_cases)
    head_m = side_metrics(head_results, head_cases)
    metrics = {k: (base_m[k], head_m[k], head_m[k] - base_m[k]) for k in METRICS}
    base_passed = int(base_cases["passed"].sum()) if len(base_cases) else 0
    head_passed = int(head_cases["passed"].sum()) if len(head_cases) else 0
    return VariantComparison(
        variant=name,
        regressed=regressed,
        fixed=fixed,
        changed=changed,
        base_pass_rate=base_m["pass_rate"],
        head_pass_rate=head_m["pass_rate"],
        base_n=len(base_cases),
        head_n=len(head_cases),
        metrics=metrics,
        p_value=p_value,
        verdict=verdict(subject, len(regressed), len(fixed), len(shared), p_value, against=against,
                        passing=int(h_pass.sum())),
        base_passed=base_passed,
        head_passed=head_passed,
        base_ci=wilson_interval(base_passed, len(base_cases)),
        head_ci=wilson_interval(head_passed, len(head_cases)),
        paired=len(shared),
        cases_only_in_base=base_cases.index[~base_cases.index.isin(head_cases.index)].tolist(),
        cases_only_in_head=head_cases.index[~in_base].tolist(),
        base_calls=len(base_results),
        head_calls=len(head_results),
        base_errors=int((base_results["status"] == "error").sum()),
        head_errors=int((head_results["status"] == "error").sum()),
        score=score,
        base_label=base_label,
        head_label=head_label,
        base_grader_cost=base_m["grader_cost"],
        head_grader_cost=head_m["grader_cost"],
    )


def verdict(subject: str, regressed: int, fixed: int, paired: int, p_value: float | None, against: str = "", passing: int = 0) -> str:
    """One sentence a person understands: ``HEAD passes 3 fewer cases of 40; p = 0.02 (significant)``."""
    if paired == 0 or p_value is None:
        return f"no cases in common with {against or 'the baseline'}; nothing to pair"
    than = f" than {against}" if against else ""
    net = fixed - regressed
    noun = "case" if abs(net) == 1 else "cases"
    if net < 0:
        return f"{subject} passes {-net} fewer {noun} of {paired}{than}; {describe_p(p_value)}"
    if net > 0:
        return f"{subject} passes {net} more {noun} of {paired}{than}; {describe_p(p_value)}"
    if regressed == 0:
        if against:
            return f"{subject} and {against} pass the same {passing} of {paired} cases"
        return f"{subject} passes the same {passing} of {paired} cases"
    return (
        f"{subject} passes as many of {paired} cases{' as ' + against if against else ''} "
        f"({regressed} regressed, {fixed} fixed); {describe_p(p_value)}"
    )


# -- public entry points --------------------------------------------------------------------


def compare_runs(store: StoreReader, base_run: str, head_run: str) -> Comparison:
    """Compare two stored runs (any references :meth:`Store.resolve_run` accepts)."""
    base_id, head_id = store.resolve_run(base_run), store.resolve_run(head_run)
    base, head = store.require_run(base_id), store.require_run(head_id)
    base_res, head_res = comparison_frame(store, [base_id, head_id])
    base_variants = _variant_order(base, base_res)
    head_variants = _variant_order(head, head_res)
    compared = []
    for name in head_variants:
        if name in base_variants:
            compared.append(
                _compare(
                    name,
                    base_res[base_res["variant_id"] == name],
                    head_res[head_res["variant_id"] == name],
                    "BASE",
                    "HEAD",
                    "HEAD",
                )
            )
    return Comparison(
        base=base,
        head=head,
        variants=compared,
        only_in_base=[v for v in base_variants if v not in head_variants],
        only_in_head=[v for v in head_variants if v not in base_variants],
    )


def compare_variants(store: StoreReader, run: str, a: str, b: str) -> VariantComparison:
    """Compare variant ``b`` against variant ``a`` within one run, case by case.

    ``a`` and ``b`` may be a variant's full label or an unambiguous start of it (``glm-4``
    when the run has ``glm-4`` and ``glm-3-turbo``). The verdict names the variant that does
    better: "glm-4 passes 7 more cases of 40 than glm-3-turbo; p = 0.02 (significant)".
    """
    run_id = store.resolve_run(run)
    info = store.require_run(run_id)
    (res,) = comparison_frame(store, [run_id])
    names = _variant_order(info, res)
    va, vb = match_variant(a, names), match_variant(b, names)
    if va == vb:
        raise GlmevalError(f"{a!r} and {b!r} are the same variant ({va}); name two different ones")
    ra, rb = res[res["variant_id"] == va], res[res["variant_id"] == vb]
    result = _compare(f"{va} vs {vb}", ra, rb, va, vb, vb, against=va)
    if len(result.fixed) < len(result.regressed):
        # Say it the positive way round: the better variant passes more.
        result.verdict = verdict(va, len(result.fixed), len(result.regressed), result.paired, result.p_value, against=vb)
    return result


def match_variant(name: str, variants: list[str]) -> str:
    """A variant label from what a person typed: exact, then a whole-word start, then any start."""
    if name in variants:
        return name
    for candidates in (
        [v for v in variants if v.startswith(name + " ")],
        [v for v in variants if v.startswith(name)],
    ):
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            raise GlmevalError(f"variant {name!r} is ambiguous: {', '.join(candidates)}")
    raise GlmevalError(f"no variant {name!r} in this run; it has: {', '.join(variants) or 'none'}")


def _variant_order(info: RunInfo, results: pd.DataFrame) -> list[str]:
    seen = list(dict.fromkeys(results["variant_id"])) if not results.empty else []
    return [v for v in info.variants if v in seen] + [v for v in seen if v not in info.variants]


# -- providers: the same model served by two hosts ---------------------------------------------


@dataclass
class ProviderAgreement:
    """Two providers of one model, every other grid parameter equal, compared case by case.

    ``same`` counts the paired cases with the same verdict (both pass or both fail);
    ``a_only`` / ``b_only`` those that pass on one side alone, which is all the exact McNemar
    test looks at. ``setting`` is the other parameters the two variants share
    (``temperature=0.2 thinking=on``, ``""`` when there are none).
    """

    model: str
    setting: str
    a: str
    b: str
    variant_a: str
    variant_b: str
    cases: int
    same: int
    a_only: int
    b_only: int
    p_value: float | None

    @property
    def same_rate(self) -> float:
        return self.same / self.cases if self.cases else math.nan

    @property
    def better(self) -> str | None:
        """The provider passing more of the paired cases (None for a tie): which side, not
        whether it is significant; ``p_value`` says that."""
        if self.a_only == self.b_only:
            return None
        return self.a if self.a_only > self.b_only else self.b

    def to_dict(self) -> dict[str, Any]:
        return _json_safe({**asdict(self), "same_rate": self.same_rate, "better": self.better})


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if isinstance(value, (dict, list)) else str(value)


def provider_agreement(
    results: pd.DataFrame, variants: Mapping[str, Mapping[str, Any]] | None = None
) -> list[ProviderAgreement]:
    """Every pair of providers that ran the same model with the same other parameters, paired by case.

    ``variants`` maps a variant id to its grid values (``provider`` among them when the suite
    has the axis); without it, or for a variant without the key, the results' ``provider`` column
    says who served it. Pairs follow the order the variants ran in.
    """
    if results.empty:
        return []
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    frames: dict[str, pd.DataFrame] = {}
    for vid, rows in results.groupby("variant_id", sort=False, observed=True):
        grid = dict((variants or {}).get(str(vid)) or {})
        column = rows["provider"] if "provider" in rows.columns else None
        provider = str(grid.pop("provider", None) or (column.iloc[0] if column is not None else None) or DEFAULT_PROVIDER)
        model = str(grid.pop("model", None) or rows["model"].iloc[0])
        if not grid and variants is None:
            grid = {"variant": " ".join(t for t in str(vid).split() if t != model and t != f"provider={provider}")}
        setting = " ".join(f"{k}={_shown(v)}" for k, v in sorted(grid.items()))
        groups.setdefault((model, setting), []).append((provider, str(vid)))
        frames[str(vid)] = rows
    out = []
    for (model, setting), members in groups.items():
        for (pa, va), (pb, vb) in itertools.combinations(members, 2):
            if pa == pb:
                continue
            ca = case_frame(frames[va]).set_index("case_id")["passed"]
            cb = case_frame(frames[vb]).set_index("case_id")["passed"]
            shared = ca.index[ca.index.isin(cb.index)].tolist()
            pa_pass, pb_pass = ca.loc[shared].to_numpy(dtype=bool), cb.loc[shared].to_numpy(dtype=bool)
            a_only, b_only = int((pa_pass & ~pb_pass).sum()), int((pb_pass & ~pa_pass).sum())
            out.append(ProviderAgreement(
                model, setting.removeprefix("variant="), pa, pb, va, vb, len(shared), len(shared) - a_only - b_only,
                a_only, b_only, mcnemar_exact(a_only, b_only) if shared else None,
            ))
    return out


def compare_providers(store: StoreReader, run: str = "latest") -> list[ProviderAgreement]:
    """:func:`provider_agreement` for a stored run: do its providers give the same verdicts?"""
    run_id = store.resolve_run(run)
    (res,) = comparison_frame(store, [run_id])
    return provider_agreement(res, variant_dicts(store, run_id))


# -- text rendering ---------------------------------------------------------------------------


def fmt_metric(name: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if name == "pass_rate":
        return percent(value)
    if name == "cost":
        return f"¥{value:.4f}"
    return f"{value:,.0f}"


def fmt_delta(name: str, base: float, head: float) -> str:
    """``-33.3 pts`` for rates, ``+120 (+15.0%)`` for the rest."""
    if any(x is None or (isinstance(x, float) and math.isnan(x)) for x in (base, head)):
        return "–"
    delta = head - base
    if name == "pass_rate":
        return f"{delta * 100:+.1f} pts"
    shown = f"{delta:+.4f}" if name == "cost" else f"{delta:+,.0f}"
    if base:
        return f"{shown} ({delta / base:+.1%})"
    return shown


def fmt_rate_ci(rate: float, ci: tuple[float, float], passed: int, n: int) -> str:
    if n == 0:
        return "–"
    return f"{percent(rate)} [{percent(ci[0])}–{percent(ci[1])}] ({passed}/{n})"


def _list(cases: list[str], limit: int = 20) -> str:
    if not cases:
        return "none"
    shown = ", ".join(cases[:limit])
    return shown + (f", … (+{len(cases) - limit})" if len(cases) > limit else "")


def format_variant(v: VariantComparison, title: str | None = None) -> str:
    """The text block for one compared variant: verdict, case lists, metric table."""
    lines = [f"== {title or v.variant} ==", f"  {v.verdict}"]
    lines.append(f"  regressed ({len(v.regressed)}): {_list(v.regressed)}")
    lines.append(f"  fixed ({len(v.fixed)}): {_list(v.fixed)}")
    lines.append(f"  output changed ({len(v.changed)}): {_list(v.changed)}")
    if v.cases_only_in_base:
        lines.append(f"  only in {v.base_label} ({len(v.cases_only_in_base)}): {_list(v.cases_only_in_base)}")
    if v.cases_only_in_head:
        lines.append(f"  only in {v.head_label} ({len(v.cases_only_in_head)}): {_list(v.cases_only_in_head)}")
    if v.score is not None and v.paired and any(abs(x) > 1e-12 for x in v.score[:3]):
        d, lo, hi, p = v.score
        lines.append(f"  mean case score {d:+.3f} [{lo:+.3f}, {hi:+.3f}] (paired bootstrap, {describe_p(p)})")
    rows = [
        [
            "pass rate (cases)",
            fmt_rate_ci(v.base_pass_rate, v.base_ci, v.base_passed, v.base_n),
            fmt_rate_ci(v.head_pass_rate, v.head_ci, v.head_passed, v.head_n),
            fmt_delta("pass_rate", v.base_pass_rate, v.head_pass_rate),
        ]
    ]
    labels = {"latency_p50_ms": "latency p50 ms", "latency_p95_ms": "latency p95 ms", "total_tokens": "tokens", "cost": "cost"}
    for key, label in labels.items():
        base, head, _ = v.metrics[key]
        rows.append([label, fmt_metric(key, base), fmt_metric(key, head), fmt_delta(key, base, head)])
    if v.base_grader_cost or v.head_grader_cost:  # the grading share of the cost row, when checks were model-graded
        base, head = v.base_grader_cost, v.head_grader_cost
        rows.append(["of it grading", fmt_metric("cost", base), fmt_metric("cost", head), fmt_delta("cost", base, head)])
    rows.append(["calls", f"{v.base_calls:,}", f"{v.head_calls:,}", f"{v.head_calls - v.base_calls:+,}"])
    rows.append(["errors", str(v.base_errors), str(v.head_errors), f"{v.head_errors - v.base_errors:+d}"])
    table = tabulate(rows, headers=["metric", v.base_label, v.head_label, "delta"], tablefmt="simple", disable_numparse=True)
    lines += ["  " + line for line in table.splitlines()]
    return "\n".join(lines)


def describe_run(info: RunInfo) -> str:
    import datetime as dt

    started = dt.datetime.fromtimestamp(info.started_at).strftime("%Y-%m-%d %H:%M")
    extra = [info.suite, started, info.status]
    if info.git_commit:
        extra.append(f"commit {info.short_commit}")
    if info.local:
        extra.append("simulated")
    return f"{info.id} ({', '.join(extra)})"


def format_comparison(cmp: Comparison) -> str:
    """The whole comparison as text, for ``glmeval compare`` and ``glmeval run --baseline``."""
    lines = [f"BASE {describe_run(cmp.base)}", f"HEAD {describe_run(cmp.head)}"]
    if cmp.base.suite != cmp.head.suite:
        lines.append(f"note: different suites ({cmp.base.suite} vs {cmp.head.suite}); cases are paired by id")
    total_reg = len(cmp.regressions)
    total_fix = sum(len(v.fixed) for v in cmp.variants)
    lines.append(
        f"{total_reg} regressed, {total_fix} fixed across {len(cmp.variants)} variant{'s' if len(cmp.variants) != 1 else ''}"
    )
    for v in cmp.variants:
        lines += ["", format_variant(v)]
    if cmp.only_in_base:
        lines += ["", f"variants only in BASE: {', '.join(cmp.only_in_base)}"]
    if cmp.only_in_head:
        lines += ["", f"variants only in HEAD: {', '.join(cmp.only_in_head)}"]
    return "\n".join(lines)


def _json_safe(value: Any) -> Any:
    """NaN becomes None (JSON has no NaN), tuples become lists."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


__all__ = [
    "Comparison",
    "ProviderAgreement",
    "VariantComparison",
    "compare_providers",
    "compare_runs",
    "compare_variants",
    "format_comparison",
    "format_variant",
    "match_variant",
    "provider_agreement",
    "side_metrics",
    "verdict",
]
