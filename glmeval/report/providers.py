"""Providers compared: the same model served by several hosts, which is faster, cheaper, and
whether they give the same answers.

Shown only for a run with two or more providers. :func:`provider_rows` is one row per provider ×
model (calls, pass rate, median latency and TTFT of fresh calls, cost); :func:`agreements` pairs
the providers of one model whose other parameters are equal, case by case
(:func:`glmeval.analysis.compare.provider_agreement`: the share of cases with the same verdict
and an exact McNemar test). :func:`headline` says it in one sentence. Every renderer reads
these, memoised on ``data.cache``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from glmeval.analysis.compare import ProviderAgreement, provider_agreement
from glmeval.analysis.frames import DEFAULT_PROVIDER
from glmeval.percent import percent
from glmeval.report.data import ReportData, clean, memo

__all__ = ["ProviderRow", "agreements", "headline", "provider_of", "provider_rows", "shows_providers"]


@dataclass
class ProviderRow:
    """One provider serving one model in this run."""

    provider: str
    model: str
    calls: int
    errors: int
    pass_rate: float | None
    latency_p50_ms: float | None
    ttft_p50_ms: float | None
    cost_per_call: float | None
    cost: float | None


def provider_of(data: ReportData) -> pd.Series:
    """Each result's provider: its variant's ``provider`` value when the suite has the axis, else
    the stored job's (the results' ``provider`` column), ``zhipu`` for runs from before providers."""
    res = data.results
    if res.empty:
        return pd.Series(dtype=object)
    stored = res["provider"].astype(object) if "provider" in res.columns else pd.Series(DEFAULT_PROVIDER, index=res.index)
    by_variant = {vid: str(v["provider"]) for vid, v in data.variants.items() if v.get("provider")}
    mapped = res["variant_id"].map(by_variant).astype(object)
    chosen = mapped.where(mapped.notna(), stored)
    return chosen.where(chosen.notna(), DEFAULT_PROVIDER).astype(str)


def shows_providers(data: ReportData) -> bool:
    """Whether the run had more than one provider (else the reports look as they always did)."""
    return provider_of(data).nunique() > 1


def provider_rows(data: ReportData) -> list[ProviderRow]:
    """Per provider and model, in the order they ran: what a call cost in time and money."""

    def build() -> list[ProviderRow]:
        if not shows_providers(data):
            return []
        res = data.results
        answered = res["status"] != "error"
        fresh = answered & ~res["cached"].astype(bool)
        frame = pd.DataFrame({
            "provider": provider_of(data),
            "model": res["model"].astype(str),
            "ok": (res["status"] == "pass").astype(float),
            "err": (~answered).astype(int),
            "lat": pd.to_numeric(res["latency_ms"], errors="coerce").where(fresh),
            "ttft": pd.to_numeric(res["ttft_ms"], errors="coerce").where(fresh),
            "cost": pd.to_numeric(res["cost"], errors="coerce"),
        })
        rows = []
        for (provider, model), g in frame.groupby(["provider", "model"], sort=False):
            total = float(g["cost"].sum(min_count=1))
            rows.append(ProviderRow(
                provider=str(provider), model=str(model), calls=len(g), errors=int(g["err"].sum()),
                pass_rate=clean(g["ok"].mean()), latency_p50_ms=clean(g["lat"].median()),
                ttft_p50_ms=clean(g["ttft"].median()), cost_per_call=clean(total / len(g)) if len(g) else None,
                cost=clean(total),
            ))
        return rows

    return memo(data, "provider_rows", build)


def agreements(data: ReportData) -> list[ProviderAgreement]:
    """Every pair of providers with the same model and other parameters, paired by case."""

    def build() -> list[ProviderAgreement]:
        if not shows_providers(data):
            return []
        res = data.results.assign(provider=provider_of(data))
        return provider_agreement(res, data.variants or None)

    return memo(data, "provider_agreements", build)


def best_rows(rows: list[ProviderRow]) -> dict[str, set[int]]:
    """Per model, the row indices holding the best pass rate, latency, TTFT and cost per call
    (nothing marked where a model has one provider or every provider ties)."""
    out: dict[str, set[int]] = {}
    for key, higher in (("pass_rate", True), ("latency_p50_ms", False), ("ttft_p50_ms", False), ("cost_per_call", False)):
        marked: set[int] = set()
        for model in dict.fromkeys(r.model for r in rows):
            values = {i: getattr(r, key) for i, r in enumerate(rows) if r.model == model and getattr(r, key) is not None}
            if len(values) < 2 or len({round(v, 9) for v in values.values()}) < 2:
                continue
            best = max(values.values()) if higher else min(values.values())
            marked |= {i for i, v in values.items() if abs(v - best) <= 1e-9 * max(1.0, abs(best))}
        out[key] = marked
    return out


def headline(data: ReportData) -> str:
    """"On glm-4.7, zai is fastest (p50 812 ms) and selfhosted cheapest; 94% of cases get the same
    verdict across providers." Plain text; renderers escape it."""
    rows = provider_rows(data)
    if not rows:
        return ""
    parts = []
    for model in dict.fromkeys(r.model for r in rows):
        mine = [r for r in rows if r.model == model]
        if len(mine) < 2:
            continue
        said = []
        timed = [r for r in mine if r.latency_p50_ms is not None]
        fast = min(timed, key=lambda r: r.latency_p50_ms or 0.0) if timed else None
        if fast is not None:
            said.append(f"{fast.provider} is fastest (p50 {fast.latency_p50_ms:,.0f} ms)")
        priced = [r for r in mine if r.cost_per_call is not None]
        if len(priced) > 1 and len({round(r.cost_per_call or 0.0, 9) for r in priced}) > 1:
            cheap = min(priced, key=lambda r: r.cost_per_call or 0.0).provider
            said.append("cheapest" if fast is not None and cheap == fast.provider else f"{cheap} cheapest")
        if said:
            parts.append(f"on {model}, " + " and ".join(said))
    pairs = agreements(data)
    cases = sum(p.cases for p in pairs)
    if cases:
        same = sum(p.same for p in pairs) / cases
        split = [p for p in pairs if p.p_value is not None and p.p_value < 0.05]
        tail = f"; {len(split)} pair{'s' if len(split) != 1 else ''} differ significantly" if split else ""
        parts.append(f"{percent(same)} of paired cases get the same verdict from each provider{tail}")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "." if text else ""


def agreement_cells(pair: ProviderAgreement) -> dict[str, Any]:
    """The figures of one agreement row, as every renderer shows them."""
    return {
        "pair": f"{pair.a} vs {pair.b}",
        "model": pair.model,
        "setting": pair.setting,
        "cases": pair.cases,
        "same": pair.same_rate,
        "a_only": pair.a_only,
        "b_only": pair.b_only,
        "p": pair.p_value,
        "better": pair.better,
    }
