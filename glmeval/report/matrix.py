"""The case × variant matrix: every answer, how it was judged, and the verdict per cell.

Markdown, HTML, JUnit and JSON must agree on what "passed" means for a case with repeats, so
that is decided here once. Results are grouped with dictionaries built in one pass (never a
DataFrame filter per row), because a 10,000-result run must render in a second or two; the
matrix is memoised on ``data.cache`` so rendering several formats builds it once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from glmeval.report.content import SearchResult, message_parts, part_text, web_search_results
from glmeval.report.data import ReportData, clean, is_missing, matrix_rows, memo, variant_order
from glmeval.sanitize import visible


@dataclass
class CheckRow:
    """One check's verdict as shown to a person."""

    label: str
    type: str
    passed: bool
    score: float | None
    reason: str
    error: bool


@dataclass
class Attempt:
    """One repeat of a case on a variant: the answer and how it was judged.

    ``output`` is the answer alone; a thinking model's ``reasoning`` is kept beside it (with
    its token count, estimated or not, and ``ttfr_ms``, the time to its first token), and
    ``web_search`` holds the search results the answer came with. Runs stored before these
    existed give empty values.
    """

    job_id: str
    repeat: int
    status: str
    output: str
    tool_calls: list[dict[str, Any]]
    finish_reason: str | None
    latency_ms: float | None
    ttft_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: float | None
    error: str | None
    error_kind: str | None
    cached: bool
    attempts: int | None
    checks: list[CheckRow] = field(default_factory=list)
    reasoning: str = ""
    reasoning_tokens: int | None = None
    reasoning_estimated: bool = False
    ttfr_ms: float | None = None
    web_search: list[SearchResult] = field(default_factory=list)

    @property
    def failed_checks(self) -> list[CheckRow]:
        return [c for c in self.checks if not c.passed]

    def why(self) -> str:
        """One line saying why this answer did not pass."""
        if self.status == "error":
            return f"error ({self.error_kind}): {self.error}"
        failed = self.failed_checks
        return "; ".join(shown_reason(c) for c in failed) if failed else ""


def shown_reason(check: CheckRow) -> str:
    """``label: reason`` for one failed check, as every report and the terminal show it.

    A reason that already starts with the check's type (``tool-call get_weather: …``) loses
    that prefix when the label shows the type, so it is not printed twice; a check that
    errored (raised, returned nothing usable, its file vanished) is marked ``check error:``
    so a broken check is not read as the model's failure."""
    label, reason = check.label, check.reason
    if check.type and label.split(" ", 1)[0] in (check.type, "not"):
        for prefix in (f"{label}: ", f"{label} ", f"not {check.type}: ", f"{check.type}: ", f"{check.type} "):
            if reason.startswith(prefix) and (prefix.startswith("not ") == label.startswith("not ")):
                reason = reason[len(prefix):]
                break
    text = f"{label}: {reason}"
    return f"check error: {text}" if check.error else text


@dataclass
class Cell:
    """A case on a variant: all its repeats and the verdict across them.

    ``passed`` follows the case's ``threshold`` (minimum share of passing repeats; every
    repeat by default), so a flaky case the suite tolerates is not shown as a failure.
    ``kind`` is for colour: ``pass`` (every repeat), ``partial`` (some), ``fail`` (none) or
    ``error`` (every non-passing repeat had no answer at all).
    """

    case_id: str
    variant_id: str
    vi: int
    attempts: list[Attempt]
    threshold: float | None = None

    @property
    def n(self) -> int:
        return len(self.attempts)

    @property
    def passes(self) -> int:
        return sum(a.status == "pass" for a in self.attempts)

    @property
    def errors(self) -> int:
        return sum(a.status == "error" for a in self.attempts)

    @property
    def passed(self) -> bool:
        need = 1.0 if self.threshold is None else float(self.threshold)
        return self.n > 0 and self.passes / self.n >= need - 1e-9

    @property
    def kind(self) -> str:
        if self.passes == self.n:
            return "pass"
        if self.errors and self.errors == self.n - self.passes:
            return "error"
        return "partial" if self.passes else "fail"

    @property
    def label(self) -> str:
        if self.n == 1:
            return {"pass": "pass", "fail": "fail", "error": "error", "partial": "fail"}[self.kind]
        return f"{self.passes}/{self.n}"

    @property
    def icon(self) -> str:
        return {"pass": "✅", "partial": "⚠️", "fail": "❌", "error": "💥"}[self.kind]

    def why(self) -> str:
        """The distinct reasons of the failing repeats, in repeat order."""
        reasons: list[str] = []
        for a in self.attempts:
            w = a.why()
            if w and w not in reasons:
                reasons.append(w)
        return " | ".join(reasons)


@dataclass
class Matrix:
    cases: list[str]
    variants: list[str]
    cells: dict[tuple[str, str], Cell]
    case_info: dict[str, dict[str, Any]]

    def row(self, case_id: str) -> list[Cell | None]:
        return [self.cells.get((case_id, v)) for v in self.variants]

    def case_passed(self, case_id: str) -> bool:
        return all(c.passed for c in self.row(case_id) if c is not None)

    def messages(self, case_id: str) -> list[dict[str, Any]]:
        return self.case_info.get(case_id, {}).get("messages", [])

    def same_conversation(self, case_id: str) -> bool:
        return bool(self.case_info.get(case_id, {}).get("same_messages", True))


def failure_lines(data: ReportData, limit: int = 10, width: int = 160) -> list[str]:
    """One line per failing case × variant, errors first: what a terminal shows after a run,
    so nobody has to open a report to learn why the build is red."""
    bad = [c for c in matrix(data).cells.values() if not c.passed]
    bad.sort(key=lambda c: (c.kind != "error", c.case_id, c.vi))
    total = data.scale.cells_failed if data.scale is not None else len(bad)
    lines = []
    for cell in bad[:limit]:
        why = " ".join(cell.why().split())
        if len(why) > width:
            why = why[: width - 1] + "…"
        lines.append(visible(f"{cell.icon} {cell.case_id} [{cell.variant_id}] {cell.label}: {why}"))
    shown = min(limit, len(bad))
    if total > shown:
        lines.append(f"… and {total - shown} more (see the report)")
    return lines


def failure_items(data: ReportData, limit: int = 200, width: int = 400) -> tuple[list[dict[str, Any]], int]:
    """The HTML report's "Failures and errors" list: one item per failing case × variant
    (errors first, then in matrix order) with why it failed (the failing checks' reasons or
    the error text), and how many there are in all (a big run's every failing cell, listed
    from the cases its matrix shows)."""
    m = matrix(data)
    bad = [m.cells[(c, v)] for c in m.cases for v in m.variants if (c, v) in m.cells and not m.cells[(c, v)].passed]
    bad.sort(key=lambda c: c.kind != "error")  # stable: matrix order within each group
    items = []
    for cell in bad[:limit]:
        why = " ".join(cell.why().split())
        if len(why) > width:
            why = why[: width - 1] + "…"
        items.append({
            "case_id": cell.case_id,
            "variant_id": cell.variant_id,
            "kind": cell.kind,
            "label": f"{cell.passes}/{cell.n}" if cell.n > 1 else cell.label,
            "errors": cell.errors,
            "why": why or "below the case's threshold",
        })
    return items, (data.scale.cells_failed if data.scale is not None else len(bad))


def checks_by_job(data: ReportData) -> dict[str, list[CheckRow]]:
    def build() -> dict[str, list[CheckRow]]:
        out: dict[str, list[CheckRow]] = {}
        c = data.checks
        if c.empty:
            return out
        cols = [c[k].tolist() for k in ("job_id", "label", "type", "passed", "score", "reason", "error")]
        for job_id, label, typ, passed, score, reason, error in zip(*cols):
            out.setdefault(job_id, []).append(
                CheckRow(label or typ, typ, bool(passed), clean(score), reason or "", bool(error))
            )
        return out

    return memo(data, "checks_by_job", build)


def _tool_calls(raw: Any) -> list[dict[str, Any]]:
    if is_missing(raw) or not raw:
        return []
    try:
        calls = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return [{"name": "?", "arguments": str(raw)}]
    out = []
    for call in calls or []:
        args = call.get("arguments", "")
        try:
            pretty = json.dumps(json.loads(args), ensure_ascii=False, indent=2) if args else ""
        except (TypeError, ValueError):
            pretty = str(args)
        out.append({"name": call.get("name", "?"), "arguments": pretty, "id": call.get("id")})
    return out


def matrix(data: ReportData) -> Matrix:
    def build() -> Matrix:
        variants = variant_order(data)
        vindex = {v: i for i, v in enumerate(variants)}
        by_job = checks_by_job(data)
        cells: dict[tuple[str, str], Cell] = {}
        cases: list[str] = []
        info: dict[str, dict[str, Any]] = {}
        res = matrix_rows(data)
        if res.empty:
            return Matrix([], variants, {}, {})
        cols = (
            "job_id", "case_id", "variant_id", "repeat", "status", "output", "tool_calls", "finish_reason",
            "latency_ms", "ttft_ms", "prompt_tokens", "completion_tokens", "cost", "error_kind", "error_message",
            "error_status", "cached", "attempts", "threshold", "reasoning", "reasoning_tokens", "reasoning_estimated",
            "ttfr_ms", "web_search",
        )
        columns = [res[k].tolist() if k in res.columns else [None] * len(res) for k in cols]
        for row in zip(*columns):
            (job_id, case_id, variant_id, repeat, status, output, tool_calls, finish, latency, ttft, pt, ct, cost,
             ekind, emsg, estatus, cached, attempts, threshold, reasoning, rtokens, restimated, ttfr, search) = row
            job = data.jobs.get(job_id, {})
            error = None
            if status == "error":
                where = f"HTTP {int(estatus)} " if not is_missing(estatus) else ""
                error = f"{where}{emsg or ''}".strip() or str(ekind)
            attempt = Attempt(
                job_id=job_id,
                repeat=int(repeat),
                status=status,
                output=output if isinstance(output, str) else "",
                tool_calls=_tool_calls(tool_calls),
                finish_reason=clean(finish),
                latency_ms=clean(latency),
                ttft_ms=clean(ttft),
                prompt_tokens=clean(pt),
                completion_tokens=clean(ct),
                cost=clean(cost),
                error=error,
                error_kind=clean(ekind),
                cached=bool(cached),
                attempts=clean(attempts),
                checks=by_job.get(job_id, []),
                reasoning=reasoning if isinstance(reasoning, str) else "",
                reasoning_tokens=None if is_missing(rtokens) else int(rtokens),
                reasoning_estimated=not is_missing(restimated) and bool(restimated),
                ttfr_ms=clean(ttfr),
                web_search=web_search_results(search),
            )
            key = (case_id, variant_id)
            cell = cells.get(key)
            if cell is None:
                if case_id not in info:
                    cases.append(case_id)
                    info[case_id] = {
                        "messages": job.get("messages") or [],
                        "description": job.get("description"),
                        "tags": job.get("tags") or [],
                        "tools": (job.get("params") or {}).get("tools"),
                        "same_messages": True,
                    }
                elif job.get("messages") is not None and job.get("messages") != info[case_id]["messages"]:
                    info[case_id]["same_messages"] = False
                if variant_id not in vindex:
                    vindex[variant_id] = len(variants)
                    variants.append(variant_id)
                if is_missing(threshold):
                    threshold = job.get("threshold")
                cell = cells[key] = Cell(case_id, variant_id, vindex[variant_id], [], clean(threshold))
            cell.attempts.append(attempt)
        for cell in cells.values():
            cell.attempts.sort(key=lambda a: a.repeat)
        if data.scale is not None:  # a big run's shown cases, worst first
            rank = {c: i for i, c in enumerate(data.scale.shown)}
            cases.sort(key=lambda c: rank.get(c, len(rank)))
        return Matrix(cases, variants, cells, info)

    return memo(data, "matrix", build)


def cell_messages(data: ReportData, cell: Cell) -> list[dict[str, Any]]:
    """The conversation sent for this cell (all repeats share it)."""
    if not cell.attempts:
        return []
    return data.jobs.get(cell.attempts[0].job_id, {}).get("messages") or []


def variant_codes(data: ReportData) -> dict[str, str]:
    """``V1``, ``V2``... per variant in matrix order: the short name a chart axis, a matrix
    column head or a filter chip uses where the full label does not fit (a key gives it)."""
    return {v: f"V{i + 1}" for i, v in enumerate(matrix(data).variants)}


def message_tool_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The calls an assistant turn of the conversation made, as the answer's calls are shown:
    name, pretty JSON arguments and id. Reads the API's form (``{"function": {"name",
    "arguments"}}``) and the flat one; arguments that are not JSON are shown as they are."""
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        return []
    flat: list[dict[str, Any]] = []
    for call in calls:
        if not isinstance(call, dict):
            flat.append({"name": "?", "arguments": str(call)})
            continue
        inner = call.get("function")
        fn: dict[str, Any] = inner if isinstance(inner, dict) else call
        args = fn.get("arguments", "")
        flat.append({"name": fn.get("name", call.get("type", "?")), "id": call.get("id"),
                     "arguments": args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)})
    return _tool_calls(flat)


def message_text(message: dict[str, Any], *, with_calls: bool = True) -> str:
    """A message's content as text: multimodal parts and tool results flattened for reading
    (an embedded image becomes a short ``[image: image/png, 12 KB]`` note, never its base64).
    Tool calls follow as JSON unless ``with_calls`` is false (the HTML draws them as calls)."""
    content = message.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = "\n".join(part_text(p) for p in message_parts(content))
    else:
        text = json.dumps(content, ensure_ascii=False, indent=2)
    calls = message.get("tool_calls")
    if calls and with_calls:
        text += ("\n" if text else "") + json.dumps(calls, ensure_ascii=False, indent=2)
    return text


__all__ = [
    "CheckRow", "Attempt", "Cell", "Matrix", "shown_reason", "matrix", "checks_by_job", "cell_messages", "message_text",
    "failure_lines", "failure_items", "variant_codes", "message_tool_calls",
]
