"""Batch API files on glmeval's side: jobs as JSONL request lines, and result lines back as answers.

Pure functions over bytes, so the format is tested without a server. The line format is the
documented one (zhipu-api-2026.md §6): ``{"custom_id", "method": "POST", "url": "/v4/chat/completions",
"body": {model, messages, ...}}``, at most 50,000 lines and 100 MB per file; result lines carry
``custom_id`` and ``response: {status_code, request_id, body}``, or an ``error``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from glmeval.records import ErrorInfo, ErrorKind, Job

__all__ = [
    "ENDPOINT",
    "MAX_BYTES",
    "MAX_LINES",
    "BatchFile",
    "LineResult",
    "custom_id",
    "error_kind",
    "read_results",
    "request_body",
    "request_line",
    "split_files",
]

ENDPOINT: Final = "/v4/chat/completions"  # the docs' path (zai-sdk's Literal says /v1; not enforced)
MAX_LINES: Final = 50_000
MAX_BYTES: Final = 100 * 1024 * 1024


def custom_id(job: Job) -> str:
    """The job id itself: 16 hex characters, stable across runs and unique in one (at least the
    6 characters a custom_id needs), so a result line maps back without any table."""
    return job.id


def request_body(job: Job) -> dict[str, Any]:
    """What the sync call would send: model, messages and the job's parameters, ``extra_body``
    merged in as the SDK merges it (``stream`` is the call mode's, and a batch has none)."""
    body: dict[str, Any] = {"model": job.model, "messages": job.messages}
    for key, value in job.params.items():
        if value is None or key == "stream":
            continue
        if key == "extra_body" and isinstance(value, Mapping):
            body.update(value)
        else:
            body[key] = value
    return body


def request_line(job: Job) -> bytes:
    """One JSONL line (newline included)."""
    line = {"custom_id": custom_id(job), "method": "POST", "url": ENDPOINT, "body": request_body(job)}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8") + b"\n"


@dataclass
class BatchFile:
    """One input file: a single model's jobs (and provider's), within the per-file limits."""

    model: str
    jobs: list[Job]
    content: bytes


def split_files(jobs: list[Job], max_lines: int = MAX_LINES, max_bytes: int = MAX_BYTES) -> list[BatchFile]:
    """Jobs into input files, one model per file (batches are queued and capped per model) and
    none over ``max_lines`` lines or ``max_bytes`` bytes; plan order is kept within a model."""
    groups: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        groups.setdefault((job.model, getattr(job, "provider", "zhipu")), []).append(job)
    files: list[BatchFile] = []
    for (model, _), group in groups.items():
        chunk: list[Job] = []
        parts: list[bytes] = []
        size = 0
        for job in group:
            line = request_line(job)
            if chunk and (len(chunk) >= max_lines or size + len(line) > max_bytes):
                files.append(BatchFile(model, chunk, b"".join(parts)))
                chunk, parts, size = [], [], 0
            chunk.append(job)
            parts.append(line)
            size += len(line)
        if chunk:
            files.append(BatchFile(model, chunk, b"".join(parts)))
    return files


@dataclass
class LineResult:
    """One result line: the chat completion ``body`` of a success, or the ``error``."""

    custom_id: str
    body: dict[str, Any] | None
    request_id: str | None
    error: ErrorInfo | None


def error_kind(status: int | None, code: str | None) -> ErrorKind:
    """A failed line's kind: the table :func:`glmeval.run.client.classify` applies to a sync
    call's HTTP error, plus the batch's own endings (expired: ``timeout``, cancelled)."""
    if code == "batch_expired":
        return "timeout"
    if code == "batch_cancelled":
        return "cancelled"
    if status == 401:
        return "auth"
    if status == 429:
        return "balance" if code == "1113" else "rate_limit"
    if status is not None and status >= 500:
        return "server"
    if code == "1301":
        return "content_filter"
    return "bad_request" if status is not None else "task_failed"


def _line_error(response: Mapping[str, Any] | None, error: Any) -> ErrorInfo:
    status = response.get("status_code") if isinstance(response, Mapping) else None
    body = response.get("body") if isinstance(response, Mapping) else None
    detail = error if isinstance(error, Mapping) else (body or {}).get("error") if isinstance(body, Mapping) else None
    detail = detail if isinstance(detail, Mapping) else {}
    code = str(detail["code"]) if detail.get("code") is not None else None
    message = str(detail.get("message") or "") or f"the batch request failed (status {status})"
    kind = error_kind(int(status) if isinstance(status, int) else None, code)
    return ErrorInfo(kind, message, int(status) if isinstance(status, int) and status != 200 else None, code)


def read_results(content: bytes) -> Iterator[LineResult]:
    """Every line of an output or error file; a line that is not a JSON object is skipped
    (its job is then reported as missing from the batch's files)."""
    for raw in content.splitlines():
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            continue
        if not isinstance(item, dict) or not isinstance(item.get("custom_id"), str):
            continue
        response = item.get("response")
        error = item.get("error")
        response = response if isinstance(response, Mapping) else None
        request_id = str(response["request_id"]) if response and response.get("request_id") else None
        body = response.get("body") if response else None
        if response and response.get("status_code") == 200 and not error and isinstance(body, dict):
            yield LineResult(item["custom_id"], body, request_id, None)
        else:
            yield LineResult(item["custom_id"], None, request_id, _line_error(response, error))
