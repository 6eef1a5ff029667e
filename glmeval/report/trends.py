"""Trends: each variant's pass rate, latency and cost across the suite's recent runs.

Built from ``data.history`` (read by :func:`glmeval.report.load.load_history`), so a report
of an older run only sees the runs up to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from glmeval.report.data import ReportData, clean, memo, variant_order

TREND_METRICS: list[tuple[str, str]] = [
    ("pass_rate", "pass rate"),
    ("latency_p50_ms", "latency p50 (ms)"),
    ("cost", "cost per run (¥)"),
]


@dataclass
class Trends:
    """The trend charts' data: run ids and start times (oldest first) and, per metric and
    variant, one value per run (``None`` where the variant was not in that run)."""

    runs: list[str]
    started: list[float]
    variants: list[str]
    series: dict[str, dict[str, list[float | None]]]

    @property
    def enough(self) -> bool:
        """A line needs two points; with one run the report says so instead of drawing."""
        return len(self.runs) >= 2


def trends(data: ReportData, max_variants: int = 10) -> Trends:
    """Per variant, each trend metric across the suite's recent runs (oldest first)."""

    def build() -> Trends:
        h = data.history
        if h is None or h.empty:
            return Trends([], [], [], {})
        runs = list(dict.fromkeys(h["run_id"].tolist()))
        started = [float(h.loc[h["run_id"] == r, "started_at"].iloc[0]) for r in runs]
        order = [v for v in variant_order(data) if v in set(h["variant"])]
        order += [v for v in dict.fromkeys(h["variant"].tolist()) if v not in order]
        variants = order[:max_variants]
        index = {(r, v): i for i, (r, v) in enumerate(zip(h["run_id"], h["variant"]))}
        series: dict[str, dict[str, list[float | None]]] = {}
        for key, _ in TREND_METRICS:
            col = h[key].tolist()
            series[key] = {v: [clean(col[index[(r, v)]]) if (r, v) in index else None for r in runs] for v in variants}
        return Trends(runs, started, variants, series)

    return memo(data, "trends", build)


__all__ = ["TREND_METRICS", "Trends", "trends"]
