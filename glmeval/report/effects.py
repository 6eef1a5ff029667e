"""Parameter effects: what each grid axis (temperature, prompt, thinking...) did to pass rate,
latency, length, reasoning and cost, per model.

One ``pandas.pivot_table`` per metric and axis; the Markdown table and the HTML charts are
both drawn from the same :class:`Effect`, memoised on ``data.cache``. The reasoning-tokens
metric is shown only for runs that have reasoning, so a glm-4 report reads as it always did;
the thinking axis also gets a direct "on against off" contrast per model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from glmeval.report.data import ReportData, clean, has_reasoning, memo, numeric_column, variant_order
from glmeval.report.summary import answer_groups

EFFECT_METRICS: list[tuple[str, str]] = [
    ("pass_rate", "pass rate"),
    ("latency_p50_ms", "latency p50 (ms)"),
    ("completion_tokens", "completion tokens (mean)"),
    ("reasoning_tokens", "reasoning tokens (mean)"),
    ("cost", "cost per call (¥)"),
    ("distinct_answers", "distinct answers (per case)"),
]
REASONING_METRICS = {"reasoning_tokens"}  # shown only when the run has reasoning
REPEAT_METRICS = {"distinct_answers"}  # shown only when some case was answered more than once
THINKING_AXIS = "thinking"
NOT_SET = "—"  # the axis value of a variant that does not set the axis at all


@dataclass
class Effect:
    """One grid axis: each metric by the axis's values (rows) and model (columns)."""

    axis: str
    values: list[str]
    models: list[str]
    tables: dict[str, pd.DataFrame]
    numeric: bool
    counts: pd.DataFrame
    reasoning: bool = False
    repeats: bool = False

    @property
    def set_values(self) -> list[str]:
        """The axis values variants actually set: what a chart of the axis plots. A variant
        without the key (a suite ``include`` entry, a default) says nothing about the axis, so
        it is no point on the axis's chart; the tables still list it, as ``—``."""
        return [v for v in self.values if v != NOT_SET]

    @property
    def metrics(self) -> list[tuple[str, str]]:
        """The metrics this report shows: every one, less reasoning tokens for a run without any
        and distinct answers for a run without repeats."""
        return [
            (k, label) for k, label in EFFECT_METRICS
            if (self.reasoning or k not in REASONING_METRICS) and (self.repeats or k not in REPEAT_METRICS)
        ]

    def value_at(self, key: str, value: str, model: str) -> Any:
        t = self.tables[key]
        return clean(t.at[value, model]) if (value in t.index and model in t.columns) else None

    def contrast(self, high: str = "on", low: str = "off") -> list[dict[str, Any]]:
        """Per model with both values: each shown metric as ``(at low, at high, high - low)``,
        the shape :func:`glmeval.report.markdown.delta_cell` reads as ``low → high (change)``.

        For the thinking axis this is "thinking off → on": what the reasoning bought in pass
        rate and what it cost in latency, tokens and money. Empty for any other axis.
        """
        if self.axis != THINKING_AXIS or high not in self.values or low not in self.values:
            return []
        rows = []
        for model in self.models:
            n_high, n_low = self.count(high, model), self.count(low, model)
            if not n_high or not n_low:
                continue
            row: dict[str, Any] = {"model": model, "high": high, "low": low, "n_high": n_high, "n_low": n_low}
            for key, _ in self.metrics:
                a, b = self.value_at(key, low, model), self.value_at(key, high, model)
                row[key] = (a, b, None if a is None or b is None else b - a)
            rows.append(row)
        return rows

    def count(self, value: str, model: str) -> int:
        n = clean(self.counts.at[value, model]) if (value in self.counts.index and model in self.counts.columns) else None
        return int(n) if n else 0

    def long_rows(self) -> list[dict[str, Any]]:
        """Model × value rows with every metric: the compact table form for Markdown."""
        rows = []
        for model in self.models:
            for value in self.values:
                n = self.count(value, model)
                if not n:
                    continue
                row: dict[str, Any] = {"model": model, "value": value, "n": n}
                for key, _ in EFFECT_METRICS:
                    row[key] = self.value_at(key, value, model)
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


_THINKING_WORDS = {"enabled": "on", "disabled": "off", "true": "on", "false": "off"}


def axis_value_label(axis: str, value: Any) -> str:
    """How an axis value reads in tables and charts; thinking always reads on/off/auto, even
    from a run that stored a boolean or the wire form ``{type: enabled}``."""
    if value is None:
        return NOT_SET
    if axis == THINKING_AXIS:
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, dict) and isinstance(value.get("type"), str):
            value = value["type"]
        if isinstance(value, str) and value.lower() in _THINKING_WORDS:
            return _THINKING_WORDS[value.lower()]
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def effects(data: ReportData) -> list[Effect]:
    """Per grid axis, ``pandas.pivot_table`` of each metric by axis value and model.

    Pass rate is the share of passing answers; latency is the median of fresh (uncached,
    successful) calls, like the summary; completion and reasoning tokens are means over
    answers (reasoning tokens are part of completion tokens); cost is per call, so axes with
    unequal numbers of calls still compare; distinct answers is the mean number of different
    answers a repeated case got (what temperature and top_p do to variety).
    ``thinking`` (on/off) is an axis like any other.
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
                "reasoning_tokens": numeric_column(res, "reasoning_tokens").where(res["status"] != "error"),
                "cost": pd.to_numeric(res["cost"], errors="coerce"),  # unknown price stays unknown (shown as ?)
            }
        )
        groups = memo(data, "answer_groups", lambda: answer_groups(res))
        repeated = groups[groups["answers"] >= 2].set_index(["variant_id", "case_id"])["distinct"]
        keys = pd.MultiIndex.from_arrays([res["variant_id"], res["case_id"]])
        base["distinct_answers"] = repeated.astype(float).reindex(keys).to_numpy() if not repeated.empty else float("nan")
        reasoning = has_reasoning(res)
        for axis in grid_axes(data):
            raw = {vid: (v.get(axis) if axis in v else None) for vid, v in variant_of.items()}
            labels = {vid: axis_value_label(axis, val) for vid, val in raw.items()}
            frame = base.copy()
            frame["value"] = frame["variant_id"].map(labels).fillna(NOT_SET)
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
            out.append(Effect(axis, order, model_order, tables, numeric, counts, reasoning, not repeated.empty))
        return out

    return memo(data, "effects", build)


__all__ = ["EFFECT_METRICS", "REASONING_METRICS", "THINKING_AXIS", "NOT_SET", "Effect", "grid_axes", "effects", "axis_value_label"]
