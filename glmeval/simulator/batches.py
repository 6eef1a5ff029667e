"""The local server's Batch API: ``/batches`` create, retrieve, list and cancel, and the work itself.

What the reference documents (zhipu-api-2026.md §6) and this server does:

- ``POST /batches`` ``{input_file_id, endpoint, completion_window, metadata, auto_delete_input_file}``
  (only the first two required; metadata keys up to 64 chars, values up to 512). The batch starts
  ``validating``: every line of the input file is checked (JSON object, ``custom_id`` of at least 6
  characters [unconfirmed] and unique, ``method`` POST, ``url`` the batch's endpoint, a ``body`` with a
  ``model``, at most 50,000 lines). Any bad line fails the whole batch (``failed``, with every
  problem in ``errors.data`` as ``{code, line, message, param}``; the codes are [unconfirmed]).
- ``in_progress``: each line is answered by the same path a sync call takes (``validate_chat``, the
  rules, ``shape``, ``chat_body``), so a batch answers exactly what ``/chat/completions`` would; a
  line the chat path refuses (an unknown model) or a fault-injected error becomes a line of the
  error file, the batch goes on. ``request_counts`` move as lines finish, at the server's speed: a
  line takes its model's simulated latency divided by :attr:`BatchConfig.workers` (lines worked on at
  once), so ``speed`` and ``fixed_latency_ms`` apply to batches too.
- ``finalizing`` → ``completed``: the output file (one line per success:
  ``{id, custom_id, response: {status_code, request_id, body}, error: null}``) and the error file
  (``response`` with the error body, and ``error: {code, message}``) are written to the file store.
- ``expired``: past the completion window (``expire_after_s`` overrides it, for tests), what was done is
  kept and every unanswered line goes to the error file with code ``batch_expired``; ``cancelling`` →
  ``cancelled`` likewise with ``batch_cancelled``.
- Timestamps are **milliseconds**, as recorded (the SDK docstring says seconds).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs

from .bodies import chat_body, dumps, new_id, shape
from .files import MAX_FILE_BYTES, FileStore
from .protocol import ApiError, parse_json_body, validate_chat
from .replies import answer

if TYPE_CHECKING:
    from .state import SimState

__all__ = ["ENDPOINTS", "MAX_LINES", "BatchConfig", "BatchStore"]

MAX_LINES: Final = 50_000
ENDPOINTS: Final = ("/v4/chat/completions", "/v1/chat/completions")  # docs use /v4; zai-sdk's Literal /v1
_WINDOW = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_FINAL = frozenset({"completed", "failed", "expired", "cancelled"})
# The sync path's fault answers (httpd._raise_for_fault): a batch line gets the same errors.
_FAULT_ERRORS: Final = {
    "rate_limit": (429, "1302", "您的账户已达到速率限制，请您控制请求频率"),
    "balance": (429, "1113", "余额不足或无可用资源包,请充值。"),
    "server_error": (500, "500", "Internal Error"),
    "reset": (500, "500", "Internal Error"),
    "cut_stream": (500, "500", "Internal Error"),
    "content_filter": (400, "1301", "系统检测到输入或生成内容可能包含不安全或敏感内容，请您避免输入易产生敏感内容的提示语，感谢您的配合。"),
}


@dataclass
class BatchConfig:
    """How the server runs batches (changeable while it runs, like faults).

    ``workers``: lines of one batch answered at once (each takes its simulated latency);
    ``parallel``: batches in progress at once (0: no limit; the rest wait in ``validating``, as
    behind a per-model queue cap); ``expire_after_s`` replaces every completion window;
    ``validating_s`` / ``finalizing_s`` how long those states last."""

    workers: int = 1000
    parallel: int = 0
    expire_after_s: float | None = None
    validating_s: float = 0.02
    finalizing_s: float = 0.02
    max_lines: int = MAX_LINES
    max_file_bytes: int = MAX_FILE_BYTES


@dataclass
class _Batch:
    """One batch: its wire object and the lines answered so far."""

    obj: dict[str, Any]
    lines: list[dict[str, Any]] = field(default_factory=list)
    output: list[bytes] = field(default_factory=list)
    errors: list[bytes] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    expires_at: float = 0.0  # monotonic

    @property
    def id(self) -> str:
        return str(self.obj["id"])


def _ms() -> int:
    return int(time.time() * 1000)


class BatchStore:
    """Every batch of one server, and the routes of ``/files`` and ``/batches``."""

    def __init__(self, sim: SimState) -> None:
        self.sim = sim
        self.config = BatchConfig()
        self.files = FileStore()
        self._batches: dict[str, _Batch] = {}
        self._lock = threading.Lock()
        self._slots = threading.Condition(self._lock)
        self._running = 0

    # -- routing ------------------------------------------------------------------------------

    def serve(self, method: str, sub: str, query: str, raw: bytes, content_type: str) -> tuple[int, bytes, str]:
        """Answer one request under ``/files`` or ``/batches``: (status, body, content type)."""
        parts = [p for p in sub.split("/") if p]
        json_type = "application/json; charset=UTF-8"
        if parts[0] == "files":
            if len(parts) == 1 and method == "POST":
                return 200, dumps(self.files.upload(raw, content_type, self.config.max_file_bytes)), json_type
            if len(parts) == 1 and method == "GET":
                purpose = next(iter(parse_qs(query).get("purpose") or []), None)
                return 200, dumps(self.files.listing(purpose)), json_type
            if len(parts) == 2 and method == "DELETE":
                return 200, dumps(self.files.delete(parts[1])), json_type
            if len(parts) == 3 and parts[2] == "content" and method == "GET":
                return 200, self.files.get(parts[1]).content, "application/octet-stream"
        elif parts[0] == "batches":
            if len(parts) == 1 and method == "POST":
                return 200, dumps(self.create(parse_json_body(raw))), json_type
            if len(parts) == 1 and method == "GET":
                return 200, dumps(self.listing(parse_qs(query))), json_type
            if len(parts) == 2 and method == "GET":
                return 200, dumps(self._get(parts[1]).obj), json_type
            if len(parts) == 3 and parts[2] == "cancel" and method == "POST":
                return 200, dumps(self.cancel(parts[1])), json_type
        if len(parts) <= 3:
            raise ApiError(405, "1212", f"不支持 {method} 调用方式")
        raise ApiError(404, "404", f"Not Found: {sub}")

    # -- the endpoints ------------------------------------------------------------------------

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /batches``: checked, stored as ``validating``, and worked on in a thread."""
        file_id, endpoint = body.get("input_file_id"), body.get("endpoint")
        if not isinstance(file_id, str) or not file_id:
            raise ApiError(400, "1214", "input_file_id 参数非法。请检查文档。")
        if endpoint not in ENDPOINTS:
            raise ApiError(400, "1214", f"endpoint 参数非法，取值范围 {list(ENDPOINTS)}（本地服务器不支持 embeddings 批处理）。")
        window = body.get("completion_window") or "24h"
        match = _WINDOW.match(str(window))
        if not match:
            raise ApiError(400, "1214", "completion_window 参数非法，例如 24h。")
        metadata = body.get("metadata")
        if metadata is not None and (
            not isinstance(metadata, dict)
            or any(not isinstance(k, str) or len(k) > 64 or not isinstance(v, str) or len(v) > 512 for k, v in metadata.items())
        ):
            raise ApiError(400, "1214", "metadata 参数非法：键最长 64 个字符，值最长 512 个字符。")
        source = self.files.get(file_id)
        if source.purpose != "batch":
            raise ApiError(400, "1214", f"文件 {file_id} 的 purpose 不是 batch。")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        if self.config.expire_after_s is not None:
            seconds = self.config.expire_after_s
        now = _ms()
        ident = f"batch_{now}{secrets.randbelow(10**6):06d}"
        obj: dict[str, Any] = {
            "id": ident, "object": "batch", "endpoint": endpoint, "input_file_id": file_id,
            "completion_window": str(window), "status": "validating", "output_file_id": "", "error_file_id": "",
            "created_at": now, "in_progress_at": None, "expires_at": now + int(seconds * 1000),
            "finalizing_at": None, "completed_at": None, "failed_at": None, "expired_at": None,
            "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": metadata, "errors": None,
        }
        batch = _Batch(obj, expires_at=time.monotonic() + seconds)
        with self._lock:
            self._batches[ident] = batch
        self.sim.stats._batch_created()
        auto_delete = body.get("auto_delete_input_file", True) is not False
        threading.Thread(target=self._work, args=(batch, source.content, auto_delete),
                         name=f"glmeval-sim-{ident}", daemon=True).start()
        return self._snapshot(batch)

    def _get(self, batch_id: str) -> _Batch:
        with self._lock:
            batch = self._batches.get(batch_id)
        if batch is None:
            # The real code for an unknown batch id is [unconfirmed].
            raise ApiError(404, "1214", f"批处理任务不存在：{batch_id}")
        return batch

    def _snapshot(self, batch: _Batch) -> dict[str, Any]:
        with self._lock:
            return json.loads(dumps(batch.obj))

    def listing(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """``GET /batches?after=&limit=`` newest first: ``{object, data, first_id, last_id, has_more}``."""
        try:
            limit = max(1, min(100, int((query.get("limit") or ["20"])[0])))
        except ValueError:
            raise ApiError(400, "1214", "limit 参数非法，取值范围 1-100。") from None
        after = next(iter(query.get("after") or []), None)
        with self._lock:
            ordered = list(reversed(self._batches.values()))
        if after:
            ids = [b.id for b in ordered]
            ordered = ordered[ids.index(after) + 1:] if after in ids else []
        page = [self._snapshot(b) for b in ordered[:limit]]
        return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None, "has_more": len(ordered) > limit}

    def cancel(self, batch_id: str) -> dict[str, Any]:
        """``POST /batches/{id}/cancel``: ``cancelling`` until the worker stops, then ``cancelled``."""
        batch = self._get(batch_id)
        with self._lock:
            if batch.obj["status"] in _FINAL:
                raise ApiError(400, "1214", f"批处理任务 {batch_id} 已结束（{batch.obj['status']}），无法取消。")
            batch.obj["status"], batch.obj["cancelling_at"] = "cancelling", _ms()
        batch.cancel.set()
        return self._snapshot(batch)

    # -- the work -----------------------------------------------------------------------------

    def _set(self, batch: _Batch, **values: Any) -> None:
        with self._lock:
            batch.obj.update(values)

    def _work(self, batch: _Batch, content: bytes, auto_delete: bool) -> None:
        config = self.config
        if self.sim.stopping.wait(config.validating_s):
            return
        lines, problems = self._validate(content, batch.obj["endpoint"])
        if problems:
            self._set(batch, status="failed", failed_at=_ms(),
                      errors={"object": "list", "data": problems})
            return
        with self._slots:
            while config.parallel and self._running >= config.parallel and not batch.cancel.is_set():
                self._slots.wait(0.05)
            self._running += 1
        try:
            self._set(batch, status="in_progress", in_progress_at=_ms(),
                      request_counts={"total": len(lines), "completed": 0, "failed": 0})
            end = self._answer_all(batch, lines)
        finally:
            with self._slots:
                self._running -= 1
                self._slots.notify_all()
        if end is None:  # the server is stopping
            return
        if end == "completed":
            self._set(batch, status="finalizing", finalizing_at=_ms())
            if self.sim.stopping.wait(config.finalizing_s):
                return
        updates: dict[str, Any] = {"status": end, f"{end}_at": _ms()}
        if batch.output:
            updates["output_file_id"] = self.files.add(f"{batch.id}_output.jsonl", "batch", b"".join(batch.output)).id
        if batch.errors:
            updates["error_file_id"] = self.files.add(f"{batch.id}_error.jsonl", "batch", b"".join(batch.errors)).id
        self._set(batch, **updates)
        if auto_delete:
            try:
                self.files.delete(batch.obj["input_file_id"])
            except ApiError:
                pass

    def _validate(self, content: bytes, endpoint: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The input file's requests, and every problem found (``{code, line, message, param}``)."""
        lines: list[dict[str, Any]] = []
        problems: list[dict[str, Any]] = []
        seen: set[str] = set()

        def problem(code: str, n: int, message: str, param: str | None = None) -> None:
            if len(problems) < 1000:
                problems.append({"code": code, "line": n, "message": message, "param": param})

        raw_lines = [line for line in content.split(b"\n")]
        count = sum(1 for line in raw_lines if line.strip())
        if count > self.config.max_lines:
            problem("too_many_requests", count, f"文件包含 {count} 个请求，超过上限 {self.config.max_lines}。")
            return [], problems
        for n, raw in enumerate(raw_lines, 1):
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                problem("invalid_json_line", n, f"第 {n} 行不是合法的 JSON。")
                continue
            if not isinstance(item, dict):
                problem("invalid_json_line", n, f"第 {n} 行不是 JSON 对象。")
                continue
            custom_id = item.get("custom_id")
            if not isinstance(custom_id, str) or len(custom_id) < 6:
                problem("invalid_custom_id", n, "custom_id 须为至少 6 个字符的字符串。", "custom_id")
            elif custom_id in seen:
                problem("duplicate_custom_id", n, f"custom_id {custom_id} 重复。", "custom_id")
            else:
                seen.add(custom_id)
            if item.get("method") != "POST":
                problem("invalid_method", n, "method 须为 POST。", "method")
            if item.get("url") != endpoint:
                problem("mismatched_url", n, f"url 须与批处理的 endpoint 一致：{endpoint}。", "url")
            body = item.get("body")
            if not isinstance(body, dict) or not isinstance(body.get("model"), str):
                problem("invalid_body", n, "body 须为包含 model 的 JSON 对象。", "body")
            lines.append(item)
        if not lines and not problems:
            problem("empty_file", 0, "文件中没有请求。")
        return lines, problems

    def _answer_all(self, batch: _Batch, lines: list[dict[str, Any]]) -> str | None:
        """Answer every line in order at the server's speed; how the batch ended (None: server stopping)."""
        started = time.monotonic()
        due = 0.0
        done = failed = 0
        for i, item in enumerate(lines):
            if self.sim.stopping.is_set():
                return None
            if batch.cancel.is_set() or time.monotonic() >= batch.expires_at:
                code = "batch_cancelled" if batch.cancel.is_set() else "batch_expired"
                message = "the batch was cancelled before this request ran" if code == "batch_cancelled" else \
                    "the batch expired before this request ran"
                for rest in lines[i:]:
                    batch.errors.append(dumps({"id": f"batch_req_{new_id()}", "custom_id": rest["custom_id"],
                                               "response": None, "error": {"code": code, "message": message}}) + b"\n")
                return "cancelled" if code == "batch_cancelled" else "expired"
            status, body, seconds = self._answer_line(item["body"])
            line = {"id": f"batch_req_{new_id()}", "custom_id": item["custom_id"],
                    "response": {"status_code": status, "request_id": body.get("request_id") or new_id(), "body": body},
                    "error": None}
            if status == 200:
                batch.output.append(dumps(line) + b"\n")
                done += 1
            else:
                line["error"] = body["error"]
                batch.errors.append(dumps(line) + b"\n")
                failed += 1
            self._set(batch, request_counts={"total": len(lines), "completed": done, "failed": failed})
            due += seconds / max(1, self.config.workers)
            ahead = started + due - time.monotonic()
            if ahead > 0.002 and self.sim.stopping.wait(ahead):
                return None
        return "completed"

    def _answer_line(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        """One request through the sync chat path: (status, body, simulated seconds it took)."""
        try:
            request = validate_chat(body)
        except ApiError as error:
            return error.status, error.body(), 0.0
        self.sim.stats._batch_line(request.model.name)
        reply = answer(request, self.sim.rules)
        fault = self.sim.decide(dumps(body), None)
        if fault.kind in _FAULT_ERRORS:
            status, code, message = _FAULT_ERRORS[fault.kind]
            return status, {"error": {"code": code, "message": message}}, 0.0
        outcome = shape(request, reply)
        _, total = self.sim.delays(request.model, request.prompt_tokens, outcome.completion_tokens, fault)
        return 200, chat_body(request, outcome, new_id(), int(time.time())), total
