"""pandas frames built from the store: the one place reports and the Python API get data.

A report is a view of stored runs, so every renderer starts from these frames and never from
live runner state; any past run, or any pair of runs, renders the same way.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from glmeval.analysis.stats import wilson_interval
from glmeval.errors import GlmevalError
from glmeval.hints import did_you_mean
from glmeval.store import Store, StoreReader
from glmeval.store.runinfo import Row, RunInfo

RESULT_COLUMNS = [
    "run_id", "job_id", "case_id", "variant_id", "repeat", "model", "mode", "status", "passed", "score",
    "output", "tool_calls", "finish_reason", "prompt_tokens", "completion_tokens", "total_tokens",
    "latency_ms", "ttft_ms", "queue_ms", "retry_ms", "cost", "error_kind", "error_status", "error_code",
    "error_message", "attempts", "cached", "request_id", "judge_tokens", "judge_cost",
    "reasoning", "reasoning_tokens", "reasoning_estimated", "ttfr_ms", "cached_tokens", "web_search", "thinking",
]
# Columns results_frame adds to the stored ones (before the per-parameter columns).
EXTRA_COLUMNS = ["suite", "threshold", "tags"]
# The provider each result was asked of, read from the stored job (runs before providers: "zhipu"),
# shown right after ``model``: the frame's leading columns are FRAME_COLUMNS.
DEFAULT_PROVIDER = "zhipu"
_AFTER_MODEL = RESULT_COLUMNS.index("model") + 1
FRAME_COLUMNS = [*RESULT_COLUMNS[:_AFTER_MODEL], "provider", *RESULT_COLUMNS[_AFTER_MODEL:]]


def _open(db: str | Path | StoreReader | None) -> tuple[StoreReader, Store | None]:
    """The store to read, and the one we opened for a path (so must close), if any."""
    if db is None or isinstance(db, (str, Path)):
        opened = Store(db, create=False)
        return opened, opened
    return db, None


def _scalar(value: Any) -> Any:
    """A cell value: scalars as they are, lists and dicts as JSON text (hashable, groupable)."""
    return value if not isinstance(value, (list, dict)) else json.dumps(value, ensure_ascii=False, sort_keys=True)


RunsArg = int | str | Sequence[str] | None
# Columns glmeval.results() keeps as floats (NaN where unknown: an error, a price glmeval lacks).
FLOAT_COLUMNS = [
    "score", "prompt_tokens", "completion_tokens", "total_tokens", "latency_ms", "ttft_ms", "queue_ms", "retry_ms",
    "cost", "judge_tokens", "judge_cost", "reasoning_tokens", "ttfr_ms", "cached_tokens",
]
# Columns glmeval.results() makes categorical besides the grid axes: few values, many rows.
CATEGORY_COLUMNS = ["suite", "model", "provider", "mode", "status", "thinking"]


def _no_runs(store: StoreReader, suite: str | None) -> GlmevalError:
    if suite is None:
        return GlmevalError(f"no runs in {store.path} yet; `glmeval run SUITE` records one")
    known = store.suites()
    listed = f"; its suites: {', '.join(known)}" if known else ""
    return GlmevalError(f"no runs of suite {suite!r} in {store.path}{did_you_mean(suite, known)}{listed}")


def _pick_runs(store: StoreReader, run: str | None, suite: str | None, runs: RunsArg) -> list[RunInfo]:
    """The runs a results frame covers, oldest first.

    ``run`` is one reference (``latest`` when nothing is given, the suite's latest with
    ``suite``); ``runs`` is several references or the last N runs; ``suite`` alone is every
    run of that suite. Oldest first so that a frame reads, and plots, as a history.
    """
    if run is not None and runs is not None:
        raise ValueError("give run= (one run) or runs= (several runs or a count), not both")
    if runs is None:
        if run is None and suite is not None:
            found = store.list_runs(suite=suite, limit=None, oldest_first=True)
            if not found:
                raise _no_runs(store, suite)
            return found
        return [store.require_run(store.resolve_run(run or "latest", suite))]
    if isinstance(runs, bool):
        raise TypeError("runs= takes a count or a list of run references, not a bool")
    if isinstance(runs, int):
        if runs < 1:
            raise ValueError(f"runs={runs}: the count of runs must be 1 or more")
        found = store.list_runs(suite=suite, limit=runs, oldest_first=True)
        if not found:
            raise _no_runs(store, suite)
        return found
    refs = [runs] if isinstance(runs, str) else list(runs)
    if not refs:
        raise ValueError("runs= is an empty list; give run references or a count")
    ids = dict.fromkeys(store.resolve_run(str(ref), suite) for ref in refs)
    return sorted((store.require_run(run_id) for run_id in ids), key=lambda info: info.started_at)


def _result_record(row: Row, suite: str, axes: dict[str, None]) -> dict[str, Any]:
    """One results-frame row: the stored columns, then the job's and the variant's parameters.
    Notes the variant's keys (the grid axes) in ``axes``."""
    job = json.loads(row["job"])
    variant = json.loads(row["variant"])
    record: dict[str, Any] = {k: row[k] for k in RESULT_COLUMNS[:_AFTER_MODEL]}
    record["provider"] = job.get("provider") or variant.get("provider") or DEFAULT_PROVIDER
    record.update({k: row[k] for k in RESULT_COLUMNS[_AFTER_MODEL:]})
    record["suite"] = suite
    record["threshold"] = job.get("threshold")
    record["tags"] = ",".join(job.get("tags") or [])
    params: dict[str, Any] = {}
    for key, value in (job.get("params") or {}).items():
        if not isinstance(value, (list, dict)):
            params[key] = value
    for key, value in variant.items():
        params[key] = _scalar(value)
        axes[key] = None
    for key, value in params.items():
        if key not in record:
            record[key] = value
    return record


def _categorical(values: pd.Series, order: list[Any] | None = None) -> pd.Series:
    """``values`` as a categorical: in ``order`` where given (variants in the grid's order, runs
    in time order), numbers sorted and ordered (so sorting and ``max()`` follow the numbers), other
    values sorted."""
    present = list(pd.unique(values.dropna()))
    ordered = False
    if order is not None:
        seen = set(present)
        categories = [v for v in dict.fromkeys(order) if v in seen]
        categories += [v for v in present if v not in set(categories)]
    elif present and all(isinstance(v, numbers.Real) and not pd.api.types.is_bool(v) for v in present):
        categories, ordered = sorted(present), True
    else:
        try:
            categories = sorted(present)
        except TypeError:
            categories = present
    return pd.Series(pd.Categorical(values, categories=categories, ordered=ordered), index=values.index, name=values.name)


def _analysis_dtypes(frame: pd.DataFrame, infos: list[RunInfo], axes: list[str]) -> pd.DataFrame:
    """The Python API's dtypes: ``run_started`` after the stored columns, floats with
    NaN for unknown numbers, categoricals for the grid axes and the few-valued columns."""
    started = {info.id: info.started_at for info in infos}
    frame.insert(len(FRAME_COLUMNS), "run_started", pd.to_datetime(frame["run_id"].map(started).astype(float), unit="s", utc=True))
    frame["run_id"] = _categorical(frame["run_id"], [info.id for info in infos])
    for column in FLOAT_COLUMNS:
        if column in frame.columns:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    variant_order = [v for info in infos for v in info.variants]
    frame["variant_id"] = _categorical(frame["variant_id"], variant_order)
    for column in dict.fromkeys(CATEGORY_COLUMNS + axes):
        if column in frame.columns and column != "variant_id":
            frame[column] = _categorical(frame[column])
    return frame


def results_frame(
    db: str | Path | StoreReader | None = None,
    run: str | None = None,
    *,
    suite: str | None = None,
    runs: RunsArg = None,
    analysis_dtypes: bool = False,
    jobs: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per result (job), with the request parameters as columns.

    Besides the stored columns: ``suite``, ``threshold`` (the case's minimum pass rate across
    repeats, NaN for "every repeat must pass"), ``tags`` (comma-separated), then one column
    per grid axis (``temperature``, ``prompt``...) and per scalar request parameter
    (``max_tokens``, ``top_p``...), so ``df.groupby("temperature")`` works without parsing
    JSON.

    Which runs: ``run`` is any reference :meth:`Store.resolve_run` accepts (default
    ``latest``; the suite's latest with ``suite``); ``suite`` alone is every run of that suite;
    ``runs`` is a list of references or a count (the last N runs, of ``suite`` when given).
    Rows come run by run, oldest run first; ``run_id`` tells them apart.

    ``analysis_dtypes`` (what ``glmeval.results()`` asks for) adds ``run_started`` (a UTC
    datetime) after the stored columns and gives analysis dtypes: token, latency and cost columns as
    floats (NaN for unknown), ``run_id``, ``variant_id`` (in the grid's order), ``suite``,
    ``model``, ``mode``, ``status``, ``thinking`` and every grid axis as categoricals (numeric
    axes ordered). Reports and comparisons read the plain frame, whose values stay as stored.

    A thinking model's ``reasoning`` is its own column (``output`` is the answer alone), with
    ``reasoning_tokens`` (part of ``completion_tokens``; NaN where unknown, as in runs recorded
    before glmeval kept it), ``reasoning_estimated``, ``ttfr_ms`` (time to the first reasoning
    token, streams only; ``ttft_ms`` is the first *answer* token), ``cached_tokens``,
    ``web_search`` (JSON text, like ``tool_calls``) and ``thinking`` (on/off/auto, None for a
    model that does not think). ``provider`` (right after ``model``) names who served the answer
    (``zhipu``, ``zai``, a suite's own provider), ``zhipu`` for runs stored before providers.
    ``jobs`` keeps only those job ids (a big run's report reads the cases it shows).
    """
    store, opened = _open(db)
    try:
        infos = _pick_runs(store, run, suite, runs)
        select = f"SELECT {', '.join(RESULT_COLUMNS)}, variant, job FROM results WHERE run_id = ?"
        rows_by_run = [(info, _rows_of(store, select, info.id, jobs, "ORDER BY rowid")) for info in infos]
    finally:
        if opened is not None:
            opened.close()
    axes: dict[str, None] = {}
    records = [_result_record(row, info.suite, axes) for info, rows in rows_by_run for row in rows]
    frame = pd.DataFrame.from_records(records, columns=None if records else FRAME_COLUMNS + EXTRA_COLUMNS)
    frame["passed"] = frame["passed"].astype(bool)
    frame["cached"] = frame["cached"].astype(bool)
    frame["reasoning"] = frame["reasoning"].fillna("").astype(str)
    frame["reasoning_estimated"] = frame["reasoning_estimated"].fillna(0).astype(bool)
    for column in ("reasoning_tokens", "ttfr_ms", "cached_tokens"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["threshold"] = pd.to_numeric(frame["threshold"], errors="coerce").astype(float)
    if analysis_dtypes:
        frame = _analysis_dtypes(frame, infos, list(axes))
    return frame


RUN_COLUMNS = [
    "run_id", "suite", "status", "started", "finished", "duration_s", "git_commit", "git_branch", "git_dirty",
    "local", "replay", "total_jobs", "results", "passed", "failed", "errors", "pass_rate", "tokens",
    "judge_tokens", "answer_cost", "judge_cost", "cost", "variants", "baseline", "version",
]


def _run_totals(store: StoreReader, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per run: result counts, tokens and costs, from the results table (a few hundred runs per
    query, under SQLite's limit on bound parameters)."""
    totals: dict[str, dict[str, Any]] = {}
    for start in range(0, len(run_ids), 500):
        chunk = run_ids[start : start + 500]
        rows = store.conn.execute(
            f"""SELECT run_id, COUNT(*) AS results, SUM(CASE WHEN status = 'pass' THEN 1 ELSE 0 END) AS passed,
                       SUM(CASE WHEN status = 'fail' THEN 1 ELSE 0 END) AS failed,
                       SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,
                       SUM(total_tokens) AS tokens, SUM(judge_tokens) AS judge_tokens,
                       SUM(cost) AS answer_cost, SUM(judge_cost) AS judge_cost
                FROM results WHERE run_id IN ({', '.join('?' * len(chunk))}) GROUP BY run_id""",
            chunk,
        ).fetchall()
        keys = ("results", "passed", "failed", "errors", "tokens", "judge_tokens", "answer_cost", "judge_cost")
        totals.update({row["run_id"]: {k: row[k] for k in keys} for row in rows})
    return totals


def _run_record(info: RunInfo, totals: dict[str, Any]) -> dict[str, Any]:
    results = int(totals.get("results") or 0)
    passed = int(totals.get("passed") or 0)
    answer = totals.get("answer_cost")
    # No results is ¥0; results none of whose prices is known is unknown, never ¥0.
    answer_cost = float("nan") if answer is None and results else float(answer or 0.0)
    judge_cost = float(totals.get("judge_cost") or 0.0)
    return {
        "run_id": info.id,
        "suite": info.suite,
        "status": info.status,
        "started": info.started_at,
        "finished": info.ended_at,
        "duration_s": info.ended_at - info.started_at if info.ended_at is not None else float("nan"),
        "git_commit": info.git_commit,
        "git_branch": info.git_branch,
        "git_dirty": info.git_dirty,
        "local": info.local,
        "replay": info.replay,
        "total_jobs": info.total_jobs,
        "results": results,
        "passed": passed,
        "failed": int(totals.get("failed") or 0),
        "errors": int(totals.get("errors") or 0),
        "pass_rate": passed / results if results else float("nan"),
        "tokens": totals.get("tokens"),
        "judge_tokens": totals.get("judge_tokens") or 0,
        "answer_cost": answer_cost,
        "judge_cost": judge_cost,
        "cost": run_cost(answer_cost, judge_cost),
        "variants": len(info.variants),
        "baseline": info.baseline,
        "version": info.version,
    }


def runs_frame(db: str | Path | StoreReader | None = None, suite: str | None = None, limit: int | None = None) -> pd.DataFrame:
    """One row per run, oldest first (so it plots as a history): the ``glmeval runs`` table as data.

    ``started`` / ``finished`` are UTC datetimes (``finished`` NaT while a run is running or
    after it was killed), ``duration_s`` seconds; ``local`` is a run against the local
    (simulated) server, ``replay`` one answered from the cache. ``total_jobs`` is what the run
    planned, ``results`` what it recorded, and ``passed`` / ``failed`` / ``errors`` /
    ``pass_rate`` count those results. ``cost`` is ``answer_cost`` (the answers' own price, NaN
    when none is known) plus ``judge_cost`` (what model-graded checks spent grading);
    ``tokens`` are the answers' tokens, ``judge_tokens`` the graders'. ``variants`` is how many
    the run had. ``limit`` keeps the newest N runs (of ``suite`` when given).
    """
    if limit is not None and (isinstance(limit, bool) or limit < 1):
        raise ValueError(f"limit={limit!r}: give a count of 1 or more, or None for every run")
    store, opened = _open(db)
    try:
        infos = store.list_runs(suite=suite, limit=limit, oldest_first=True)
        if suite is not None and not infos:
            raise _no_runs(store, suite)
        totals = _run_totals(store, [info.id for info in infos])
    finally:
        if opened is not None:
            opened.close()
    frame = pd.DataFrame([_run_record(info, totals.get(info.id, {})) for info in infos], columns=RUN_COLUMNS)
    for column in ("started", "finished"):
        frame[column] = pd.to_datetime(pd.to_numeric(frame[column], errors="coerce"), unit="s", utc=True)
    for column in ("suite", "status"):
        frame[column] = _categorical(frame[column])
    for column in ("duration_s", "pass_rate", "tokens", "judge_tokens", "answer_cost", "judge_cost", "cost"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for column in ("results", "passed", "failed", "errors", "variants"):
        frame[column] = frame[column].astype("int64")
    frame["local"] = frame["local"].astype(bool)
    frame["replay"] = frame["replay"].astype(bool)
    frame["git_dirty"] = frame["git_dirty"].astype("boolean")
    frame["total_jobs"] = pd.to_numeric(frame["total_jobs"], errors="coerce").astype("Int64")
    return frame


def _rows_of(store: StoreReader, select: str, run_id: str, jobs: Sequence[str] | None, order: str, column: str = "job_id") -> list[Any]:
    """``select`` (whose first placeholder is the run id) for the run, or for ``jobs`` only: a
    few hundred job ids per query (under SQLite's limit on bound parameters), each looked up by
    the primary key."""
    if jobs is None:
        return list(store.conn.execute(f"{select} {order}", (run_id,)).fetchall())
    out: list[Any] = []
    ids = list(dict.fromkeys(jobs))
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        out += store.conn.execute(f"{select} AND {column} IN ({', '.join('?' * len(chunk))}) {order}", (run_id, *chunk)).fetchall()
    return out


def checks_frame(
    db: str | Path | StoreReader | None = None, run: str | None = None, *, jobs: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per check result, with the case, variant, repeat and model it belongs to
    (of ``jobs`` only, when given)."""
    store, opened = _open(db)
    try:
        run_id = store.resolve_run(run or "latest")
        columns = ["run_id", "job_id", "case_id", "variant_id", "repeat", "model", "idx", "type", "label",
                   "metric", "passed", "score", "weight", "reason", "error"]
        rows = _rows_of(
            store,
            """SELECT c.run_id, c.job_id, r.case_id, r.variant_id, r.repeat, r.model, c.idx, c.type, c.label,
                      c.metric, c.passed, c.score, c.weight, c.reason, c.error
               FROM checks c JOIN results r ON r.run_id = c.run_id AND r.job_id = c.job_id
               WHERE c.run_id = ?""",
            run_id, jobs, "ORDER BY r.rowid, c.idx", column="c.job_id",
        )
        frame = pd.DataFrame([tuple(r) for r in rows], columns=columns)
    finally:
        if opened is not None:
            opened.close()
    frame["passed"] = frame["passed"].astype(bool)
    frame["error"] = frame["error"].astype(bool)
    return frame


def case_frame(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant, case), in first-seen order: its repeats aggregated into one pass/fail.

    A case passes when its pass rate across repeats reaches the job's ``threshold`` (by
    default every repeat must pass). An errored repeat counts as not passing: a call that
    produced no answer (a content filter, a timeout) did not do the job. ``outputs`` holds the
    answers in repeat order, so two runs can tell whether a case's output changed. Used by
    comparisons and by the summary's case-level pass rate.

    Computed on whole columns (rows sorted into contiguous groups, then summed per segment):
    a pandas group per case cost about half a millisecond, a minute for a 100,000-case run.
    """
    columns = ["variant_id", "case_id", "repeats", "passes", "errors", "rate", "threshold", "passed", "score", "outputs"]
    if results.empty:
        return pd.DataFrame(columns=columns)
    key = results.groupby(["variant_id", "case_id"], sort=False, dropna=False).ngroup().to_numpy()
    repeat = pd.to_numeric(results["repeat"], errors="coerce").fillna(0).to_numpy() if "repeat" in results.columns else np.zeros(len(key))
    order = np.lexsort((repeat, key))  # stable: by group in first-seen order, then by repeat
    grouped = key[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    sizes = np.diff(np.r_[starts, len(grouped)])
    status = results["status"].to_numpy()[order]
    errored = status == "error"
    passes = np.add.reduceat((status == "pass").astype(np.int64), starts)
    errors = np.add.reduceat(errored.astype(np.int64), starts)
    scores = np.where(errored, 0.0, pd.to_numeric(results["score"], errors="coerce").fillna(0.0).to_numpy(dtype=float)[order])
    if "threshold" in results.columns:
        first = pd.to_numeric(results["threshold"], errors="coerce").to_numpy(dtype=float)[order][starts]
        need = np.where(np.isnan(first), 1.0, first)
    else:
        need = np.ones(len(starts))
    rate = passes / sizes
    texts = results["output"].to_numpy()[order] if "output" in results.columns else np.full(len(order), None)
    calls = results["tool_calls"].to_numpy()[order] if "tool_calls" in results.columns else np.full(len(order), None)
    answers = [
        ("<error>" if err else "") + _answer_text(text) + (("\x00" + call) if isinstance(call, str) and call else "")
        for err, text, call in zip(errored.tolist(), texts.tolist(), calls.tolist())
    ]
    bounds = np.r_[starts, len(grouped)].tolist()
    return pd.DataFrame({
        "variant_id": results["variant_id"].to_numpy()[order][starts],
        "case_id": results["case_id"].to_numpy()[order][starts],
        "repeats": sizes,
        "passes": passes,
        "errors": errors,
        "rate": rate,
        "threshold": need,
        "passed": rate >= need - 1e-9,
        "score": np.add.reduceat(scores, starts) / sizes,
        "outputs": [tuple(answers[a:b]) for a, b in zip(bounds, bounds[1:])],
    }, columns=columns)


def _answer_text(value: Any) -> str:
    """An answer as :func:`case_frame` compares it: its text, a big run's digest of it
    (:func:`glmeval.analysis.lean.answer_digest`) as digits, nothing for no answer."""
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def _numeric(results: pd.DataFrame, column: str) -> pd.Series:
    """``column`` as floats, all NaN when the frame has no such column (a frame built by hand
    or by an older glmeval)."""
    if column not in results.columns:
        return pd.Series(float("nan"), index=results.index, dtype=float)
    return pd.to_numeric(results[column], errors="coerce").astype(float)


SUMMARY_COLUMNS = [
    "variant", "model", "provider", "jobs", "passed", "failed", "errors", "pass_rate", "latency_p50_ms",
    "latency_p95_ms", "ttft_p50_ms", "prompt_tokens", "completion_tokens", "total_tokens", "cost", "answer_cost", "grader_cost",
    "cached", "judge_cost", "reasoning_tokens_mean", "reasoning_tokens_total", "ttfr_p50_ms",
    "pass_rate_lo", "pass_rate_hi", "cases", "cases_passed", "case_pass_rate",
]


def _sum_known(values: pd.Series) -> float:
    """A sum that stays unknown (NaN) when every value is unknown: a model without a known price
    costs "?", not ¥0."""
    return float(values.sum(min_count=1))


def run_cost(answer_cost: float, grader_cost: float) -> float:
    """What a variant's answers and their grading cost together. Unknown ("?") only when no
    answer has a known price and nothing was spent grading: a known grader share is real money
    spent, so it is never hidden behind an unknown answer price."""
    if pd.isna(answer_cost):
        return float(grader_cost) if grader_cost else float("nan")
    return float(answer_cost) + float(grader_cost)


def summary_frame(results: pd.DataFrame, variant_order: list[str] | None = None) -> pd.DataFrame:
    """Per variant: pass rate, latency p50/p95 (fresh calls only), TTFT, tokens, cost, errors.

    ``cost`` is what the variant's run cost: ``answer_cost`` (the answers' own price, NaN when
    no answer's price is known) plus ``grader_cost`` (what llm-rubric / similar checks spent
    judging them). ``judge_cost`` is the same figure as ``grader_cost``, kept for code that
    reads the older name.

    Cached answers are left out of the latency and TTFT figures: their timing was measured
    on another day and would flatter or slander the model.

    ``pass_rate`` is the share of jobs (answers) that passed, with its 95% Wilson interval in
    ``pass_rate_lo`` / ``pass_rate_hi``: with 12 answers, 75% means "somewhere between 47% and
    91%", and a report should say so. ``cases`` / ``cases_passed`` / ``case_pass_rate``
    aggregate repeats per case by the case's threshold (the same rule as :func:`case_frame`),
    which is what comparisons and gates count. Grouped aggregations keep a 10,000-result run
    well under a second.

    ``reasoning_tokens_mean`` / ``reasoning_tokens_total`` are over the answers whose reasoning
    tokens are known (already inside the completion-token figures, never added to them), and
    ``ttfr_p50_ms`` is the median time to the first reasoning token of fresh streamed answers;
    each is NaN for a variant that has none: a model that does not think, thinking off, a run
    recorded before glmeval kept them (so a glm-4 summary shows no reasoning at all).
    """
    if results.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    seen = list(dict.fromkeys(results["variant_id"].tolist()))
    order = [v for v in (variant_order or []) if v in set(seen)] + [v for v in seen if v not in (variant_order or [])]
    status = results["status"]
    answered = status != "error"
    fresh = ~results["cached"].astype(bool) & answered
    frame = pd.DataFrame(
        {
            "variant": results["variant_id"],
            "case": results["case_id"],
            "model": results["model"],
            "provider": results["provider"] if "provider" in results.columns else DEFAULT_PROVIDER,
            "ok": (status == "pass").astype(int),
            "bad": (status == "fail").astype(int),
            "err": (~answered).astype(int),
            "lat": pd.to_numeric(results["latency_ms"], errors="coerce").where(fresh),
            "ttft": pd.to_numeric(results["ttft_ms"], errors="coerce").where(fresh),
            "pt": pd.to_numeric(results["prompt_tokens"], errors="coerce").where(answered),
            "ct": pd.to_numeric(results["completion_tokens"], errors="coerce").where(answered),
            "tt": pd.to_numeric(results["total_tokens"], errors="coerce"),
            "cost": pd.to_numeric(results["cost"], errors="coerce"),
            "judge_cost": pd.to_numeric(results["judge_cost"], errors="coerce") if "judge_cost" in results.columns else 0.0,
            "cached": results["cached"].astype(int),
            "threshold": pd.to_numeric(results["threshold"], errors="coerce") if "threshold" in results.columns else float("nan"),
            "rt": _numeric(results, "reasoning_tokens").where(answered),
            "ttfr": _numeric(results, "ttfr_ms").where(fresh),
        }
    )
    g = frame.groupby("variant", sort=False)
    agg = g.agg(
        model=("model", "first"), provider=("provider", "first"), jobs=("ok", "size"), passed=("ok", "sum"), failed=("bad", "sum"), errors=("err", "sum"),
        prompt_tokens=("pt", "mean"), completion_tokens=("ct", "mean"), total_tokens=("tt", "sum"), cost=("cost", _sum_known), judge_cost=("judge_cost", "sum"),
        cached=("cached", "sum"),
    )
    agg["latency_p50_ms"] = g["lat"].quantile(0.5)
    agg["latency_p95_ms"] = g["lat"].quantile(0.95)
    agg["ttft_p50_ms"] = g["ttft"].median()
    reasoned = g["rt"].max() > 0
    agg["reasoning_tokens_mean"] = g["rt"].mean().where(reasoned)
    agg["reasoning_tokens_total"] = g["rt"].sum(min_count=1).where(reasoned)
    agg["ttfr_p50_ms"] = g["ttfr"].median()
    cases = frame.groupby(["variant", "case"], sort=False).agg(passes=("ok", "sum"), n=("ok", "size"), threshold=("threshold", "first"))
    need = cases["threshold"].fillna(1.0)
    cases["passed"] = (cases["passes"] / cases["n"]) >= need - 1e-9
    per_case = cases.groupby(level="variant", sort=False)["passed"].agg(["size", "sum", "mean"])
    rows = []
    for variant in order:
        a = agg.loc[variant]
        jobs, passed = int(a["jobs"]), int(a["passed"])
        lo, hi = wilson_interval(passed, jobs)
        rows.append(
            {
                "variant": variant,
                "model": a["model"],
                "provider": a["provider"],
                "jobs": jobs,
                "passed": passed,
                "failed": int(a["failed"]),
                "errors": int(a["errors"]),
                "pass_rate": passed / jobs if jobs else float("nan"),
                "latency_p50_ms": float(a["latency_p50_ms"]),
                "latency_p95_ms": float(a["latency_p95_ms"]),
                "ttft_p50_ms": float(a["ttft_p50_ms"]),
                "prompt_tokens": float(a["prompt_tokens"]),
                "completion_tokens": float(a["completion_tokens"]),
                "total_tokens": int(a["total_tokens"]),
                "cost": run_cost(float(a["cost"]), float(a["judge_cost"])),
                "answer_cost": float(a["cost"]),
                "grader_cost": float(a["judge_cost"]),
                "judge_cost": float(a["judge_cost"]),
                "cached": int(a["cached"]),
                "pass_rate_lo": lo,
                "pass_rate_hi": hi,
                "cases": int(per_case.at[variant, "size"]),
                "cases_passed": int(per_case.at[variant, "sum"]),
                "case_pass_rate": float(per_case.at[variant, "mean"]),
                "reasoning_tokens_mean": float(a["reasoning_tokens_mean"]),
                "reasoning_tokens_total": float(a["reasoning_tokens_total"]),
                "ttfr_p50_ms": float(a["ttfr_p50_ms"]),
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)

