"""What every renderer shows, computed once from :class:`~glmeval.report.data.ReportData`.

Markdown, HTML, JUnit and JSON must agree on what "passed" means for a case with repeats, on
which variant is best in a column and on what a parameter did, so those decisions live in
the view modules and the renderers only format them. This module is the one name the
renderers (and anything else that shows a run) import them by; the code lives in:

* :mod:`glmeval.report.matrix`: the case × variant matrix, attempts, check rows, failures;
* :mod:`glmeval.report.summary`: the per-variant summary, best values, totals, the status badge;
* :mod:`glmeval.report.effects`: what each grid axis did (thinking on against off among them);
* :mod:`glmeval.report.providers`: the providers of one model side by side, and their agreement;
* :mod:`glmeval.report.content`: image parts, web search results and reasoning, laid out;
* :mod:`glmeval.report.trends`: the suite's recent runs;
* :mod:`glmeval.report.baseline`: the comparison against a baseline, laid out;
* :mod:`glmeval.report.data`: the data itself and the value helpers they share.

Reading the store (history, comparison) is :mod:`glmeval.report.load`'s job, not a view's.
"""

from __future__ import annotations

from glmeval.report.baseline import delta_rows, regression_pairs
from glmeval.report.content import Part, SearchResult, clip_reasoning, message_parts, reasoning_label, web_search_results
from glmeval.report.data import clean, has_reasoning, is_missing, variant_order
from glmeval.report.effects import EFFECT_METRICS, THINKING_AXIS, Effect, axis_value_label, effects, grid_axes
from glmeval.report.matrix import (
    Attempt,
    Cell,
    CheckRow,
    Matrix,
    cell_messages,
    checks_by_job,
    failure_items,
    failure_lines,
    matrix,
    message_text,
    shown_reason,
)
from glmeval.report.providers import ProviderRow, agreement_cells, agreements, best_rows, headline, provider_rows, shows_providers
from glmeval.report.summary import (
    BEST_DIRECTION,
    BEST_PRECISION,
    best_variants,
    enrich_summary,
    models,
    outcome,
    shows_distinct,
    shows_reasoning,
    shows_ttfr,
    totals,
)
from glmeval.report.trends import TREND_METRICS, Trends, trends

__all__ = [
    "Attempt", "Cell", "CheckRow", "Matrix", "Effect", "Trends", "matrix", "checks_by_job", "enrich_summary",
    "best_variants", "totals", "effects", "grid_axes", "trends", "delta_rows",
    "regression_pairs", "message_text", "cell_messages", "models", "variant_order", "clean", "is_missing",
    "EFFECT_METRICS", "TREND_METRICS", "BEST_DIRECTION", "BEST_PRECISION", "shown_reason", "failure_lines",
    "failure_items", "outcome", "has_reasoning", "shows_reasoning", "shows_ttfr", "shows_distinct", "THINKING_AXIS", "axis_value_label",
    "Part", "SearchResult", "message_parts", "web_search_results", "reasoning_label", "clip_reasoning",
    "ProviderRow", "provider_rows", "agreements", "agreement_cells", "best_rows", "headline", "shows_providers",
]
