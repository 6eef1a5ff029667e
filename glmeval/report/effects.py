"""Parameter effects: what each grid axis (temperature, prompt...) did to pass rate, latency,
length and cost, per model.

One ``pandas.pivot_table`` per metric and axis; the Markdown table and the HTML charts are
both drawn from the same :class:`Effect`, memoised on ``data.cache``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from glmeval.report.data import ReportData, clean, memo, variant_order

EFFECT_METRICS: list[tuple[str, str]] = [
    ("pass_rate", "pass rate"),
    ("latency_p50_ms", "latency p50 (ms)"),
    ("completion_tokens", "completion tokens (mean)"),
    ("cost", "cost per call (¥)"),
]


@dataclass
class Effect:
    """One grid axis: each metric by the axis's values (rows) and model (columns)."""

    axis: str
    values: list[str]
    models: list[str]
    tables: dict[str, pd.DataFrame]
    numeric: bool
    counts: pd.DataFrame

    def long_rows(self) -> list[dict[str, Any]]:
        """Model × value rows with every metric: the compact table form for Markdown."""
        rows = []
        for model in self.models:
            for value in self.values:
                n = clean(self.counts.at[value, model]) if (value in self.counts.index and model in self.counts.columns) else None
                if not n:
                    continue
                row: dict[str, Any] = {"model": model, "value": value, "n": int(n)}
                for key, _ in EFFECT_METRICS:
                    t = self.tables[key]
                    row[key] = clean(t.at[value, model]) if (value in t.index and model in t.columns) else None
                rows.append(row)
        return rows


def grid_axes(data: ReportData) -> list[str]:
    """Keys of the variant dicts besides ``model`` that take two or more values in this run."""
    seen: dict[str, list[str]] = {}
    for variant in data.variants.values():
        for key, value in variant.items():
            if key == "model":
                continue
            shown = json.dumps(value, ensure_ascii=False, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
            values = seen.setdefault(key, [])
            if shown not in values:
                values.append(shown)
    return [k for k, values in seen.items() if len(values) > 1]


def effects(data: ReportData) -> list[Effect]:
    """Per grid axis, ``pandas.pivot_table`` of each metric by axis value and model.

    Pass rate is the share of passing answers; latency is the median of fresh (uncached,
    successful) calls, like the summary; completion tokens is the mean over answers; cost is
    per call, so axes with unequal numbers of calls still compare.
    """

    def build() -> list[Effect]:
        res = data.results
        out: list[Effect] = []
        if res.empty:
            return out
        variant_of = data.variants
        base = pd.DataFrame(
            {
                "model": res["model"].astype(str),
                "variant_id": res["variant_id"],
                "pass_rate": (res["status"] == "pass").astype(float),
                "latency_p50_ms": res["latency_ms"].where(~res["cached"] & (res["status"] != "error")),
                "completion_tokens": res["completion_tokens"].where(res["status"] != "error"),
                "cost": res["cost"].fillna(0.0),
            }
        )
        for axis in grid_axes(data):
            raw = {vid: (v.get(axis) if axis in v else None) for vid, v in variant_of.items()}
            labels = {
                vid: ("—" if val is None else json.dumps(val, ensure_ascii=False, sort_keys=True) if isinstance(val, (dict, list)) else str(val))
                for vid, val in raw.items()
            }
            frame = base.copy()
            frame["value"] = frame["variant_id"].map(labels).fillna("—")
            numeric_vals = {lab: raw[vid] for vid, lab in labels.items()}
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numeric_vals.values() if v is not None)
            order = list(dict.fromkeys(labels[v] for v in variant_order(data) if v in labels))
            if numeric:
                order.sort(key=lambda lab: (numeric_vals.get(lab) is None, numeric_vals.get(lab) or 0.0))
            model_order = list(dict.fromkeys(frame["model"].tolist()))
            tables: dict[str, pd.DataFrame] = {}
            for key, _ in EFFECT_METRICS:
                agg: Literal["median", "mean"] = "median" if key == "latency_p50_ms" else "mean"
                t = pd.pivot_table(frame, index="value", columns="model", values=key, aggfunc=agg, dropna=False)
                tables[key] = t.reindex(index=order, columns=model_order)
            counts = pd.pivot_table(frame, index="value", columns="model", values="pass_rate", aggfunc="count")
            counts = counts.reindex(index=order, columns=model_order)
            out.append(Effect(axis, order, model_order, tables, numeric, counts))
        return out

    return memo(data, "effects", build)


__all__ = ["EFFECT_METRICS", "Effect", "grid_axes", "effects"]
