"""The local GLM server: the Zhipu v4 chat protocol over real loopback HTTP.

glmeval and its tests talk to this server through the real ``zhipuai`` SDK, so the code path
is the production one: HTTP/1.1 keep-alive, SSE over chunked transfer-encoding with real
delays between chunks, Zhipu-shaped errors, TCP resets. Only the standard library is used
(``http.server``), with the per-request work kept small because benchmarks push 100,000
requests through it: no logging per request, one ``write`` per response when possible,
precompiled regexes, and TCP_NODELAY so small SSE chunks are not held back by Nagle.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from os import PathLike
from typing import Any, Final

from glmeval.catalogue.tokens import count_tokens, split_tokens, truncate_to_tokens

from .embeddings import embed
from .faults import NO_FAULT, FaultConfig, FaultDecision, decide_fault
from .models import ModelSpec
from .protocol import (
    ApiError,
    ChatRequest,
    check_auth,
    parse_json_body,
    validate_chat,
    validate_embeddings,
)
from .rules import Reply, RuleSet, ToolCall, reasoning_for

__all__ = ["DEFAULT_API_KEY", "API_PREFIX", "LocalServer", "Stats", "serve_forever"]

DEFAULT_API_KEY: Final = "glmeval-local.simulator"
API_PREFIX: Final = "/api/paas/v4"
SIMULATOR_HEADER: Final = "X-Glmeval-Simulator: 1\r\n"

_MAX_BODY = 64 * 1024 * 1024
_MAX_TASKS = 200_000
_REASONS = {s.value: s.phrase for s in HTTPStatus}
_JUDGE_FAULTS = frozenset({"rate_limit", "server_error"})
_ERR_RATE = ("1302", "您的账户已达到速率限制，请您控制请求频率")
_ERR_BALANCE = ("1113", "余额不足或无可用资源包,请充值。")
_ERR_SERVER = ("500", "Internal Error")
_ERR_SENSITIVE = (
    "1301",
    "系统检测到输入或生成内容可能包含不安全或敏感内容，请您避免输入易产生敏感内容的提示语，感谢您的配合。",
)
_ROUTES = ("/chat/completions", "/async/chat/completions", "/async-result", "/embeddings")


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _new_id() -> str:
    return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(8)


class Stats:
    """Thread-safe counters of what the server saw, for tests and benchmarks.

    Also owns the per-body sighting counts that fault decisions depend on, so ``reset()``
    makes a fault sequence start over.

    Concurrency as the server observed it: a request is *in flight* from the moment its
    request line arrives until just before the last byte of its answer is written (or the
    connection is reset), so a client can never see an answer while the server still counts
    that request. ``in_flight`` / ``max_in_flight`` count every request (async-result polls
    too); ``max_in_flight_by_model`` and ``by_model`` count requests that name a model (chat,
    async create, embeddings), from the moment the body was validated. That is what a client's
    concurrency limits can be checked against: ``max_in_flight <= concurrency``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero every counter (and restart fault sequences)."""
        with self._lock:
            self._requests = 0
            self._by_path: dict[str, int] = {}
            self._by_status: dict[int, int] = {}
            self._faults: dict[str, int] = {}
            self._seen: dict[bytes, int] = {}
            self._by_model: dict[str, int] = {}
            # In-flight counts are live state, not counters: requests being served when
            # reset() runs still land later. The maxima restart from what is in flight now.
            if not hasattr(self, "_in_flight"):
                self._in_flight = 0
                self._in_flight_by_model: dict[str, int] = {}
            self._max_in_flight = self._in_flight
            self._max_in_flight_by_model = {m: n for m, n in self._in_flight_by_model.items() if n > 0}

    def _request(self, route: str) -> None:
        """A request arrived: counted, and in flight until :meth:`_landed`."""
        with self._lock:
            self._requests += 1
            self._by_path[route] = self._by_path.get(route, 0) + 1
            self._in_flight += 1
            if self._in_flight > self._max_in_flight:
                self._max_in_flight = self._in_flight

    def _model(self, model: str) -> None:
        """The in-flight request names ``model`` (its body was validated)."""
        with self._lock:
            self._by_model[model] = self._by_model.get(model, 0) + 1
            n = self._in_flight_by_model.get(model, 0) + 1
            self._in_flight_by_model[model] = n
            if n > self._max_in_flight_by_model.get(model, 0):
                self._max_in_flight_by_model[model] = n

    def _landed(self, model: str | None) -> None:
        """A request is answered (about to be) or dropped: no longer in flight."""
        with self._lock:
            self._in_flight -= 1
            if model is not None:
                self._in_flight_by_model[model] -= 1

    def _status(self, status: int) -> None:
        with self._lock:
            self._by_status[status] = self._by_status.get(status, 0) + 1

    def _fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] = self._faults.get(kind, 0) + 1

    def _sighting(self, digest: bytes) -> int:
        with self._lock:
            nth = self._seen.get(digest, 0)
            self._seen[digest] = nth + 1
            return nth

    @property
    def requests(self) -> int:
        """Requests received (every path, including errors)."""
        with self._lock:
            return self._requests

    @property
    def by_path(self) -> dict[str, int]:
        """Requests per route: /chat/completions, /async/chat/completions, /async-result, /embeddings, other."""
        with self._lock:
            return dict(self._by_path)

    @property
    def by_status(self) -> dict[int, int]:
        """Responses per HTTP status (reset connections are not responses and are not counted)."""
        with self._lock:
            return dict(self._by_status)

    @property
    def faults(self) -> dict[str, int]:
        """Injected faults per kind (slow counts as ``slow``)."""
        with self._lock:
            return dict(self._faults)

    @property
    def by_model(self) -> dict[str, int]:
        """Requests per model named in a valid body (chat, async create, embeddings)."""
        with self._lock:
            return dict(self._by_model)

    @property
    def in_flight(self) -> int:
        """Requests being processed right now (received, not yet answered)."""
        with self._lock:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The most requests processed at once since start (or ``reset()``)."""
        with self._lock:
            return self._max_in_flight

    @property
    def max_in_flight_by_model(self) -> dict[str, int]:
        """Per model, the most of its requests processed at once since start (or ``reset()``)."""
        with self._lock:
            return dict(self._max_in_flight_by_model)

    @property
    def bodies_seen(self) -> dict[str, int]:
        """How often each distinct request body (BLAKE2 hex digest) went through fault decision."""
        with self._lock:
            return {digest.hex(): count for digest, count in self._seen.items()}


@dataclass(frozen=True, slots=True)
class _Outcome:
    """A reply after response_format, stop and max_tokens were applied."""

    content: str | None
    reasoning: str | None
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str
    completion_tokens: int


@dataclass(slots=True)
class _Task:
    id: str
    request_id: str
    model: str
    ready_at: float
    result: dict[str, Any]


def _as_json_text(content: str) -> str:
    """Honour response_format json_object: bare JSON object text, wrapping prose if needed."""
    text = content.strip()
    if text.startswith("```"):
        inner = text.split("\n", 1)[1] if "\n" in text else ""
        text = inner.rsplit("```", 1)[0].strip()
    else:
        start, end = text.find("{"), text.rfind("}")
        if start >= 0 and end > start:
            text = text[start:end + 1]
    try:
        if isinstance(json.loads(text), dict):
            return text
    except ValueError:
        pass
    return json.dumps({"response": content}, ensure_ascii=False)


def _shape(request: ChatRequest, reply: Reply) -> _Outcome:
    reasoning = reasoning_for(request.conversation, reply) if request.thinking else None
    reasoning_tokens = count_tokens(reasoning) if reasoning else 0
    if reply.tool_calls:
        tokens = sum(count_tokens(c.name) + count_tokens(c.arguments) + 4 for c in reply.tool_calls)
        return _Outcome(None, reasoning, reply.tool_calls, "tool_calls", tokens + reasoning_tokens)
    content = reply.content or ""
    finish = reply.finish_reason
    if request.json_mode and content:
        content = _as_json_text(content)
    if request.stop and finish == "stop":
        cut = min((i for i in (content.find(s) for s in request.stop) if i >= 0), default=-1)
        if cut >= 0:
            content = content[:cut]
    tokens = count_tokens(content)
    if tokens > request.max_tokens:
        content = truncate_to_tokens(content, request.max_tokens)
        tokens = count_tokens(content)
        finish = "length"
    return _Outcome(content, reasoning, (), finish, tokens + reasoning_tokens)


def _usage(prompt: int, completion: int, details: bool = True) -> dict[str, Any]:
    if details:
        return {
            "completion_tokens": completion,
            "prompt_tokens": prompt,
            "prompt_tokens_details": {"cached_tokens": 0},
            "total_tokens": prompt + completion,
        }
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _tool_calls_json(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "index": i, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for i, c in enumerate(calls)
    ]


def _message(model: ModelSpec, outcome: _Outcome, *, explicit_null_tools: bool = False) -> dict[str, Any]:
    message: dict[str, Any] = {}
    if outcome.tool_calls:
        if model.thinking:
            message["content"] = "\n\n"
    else:
        message["content"] = outcome.content
    if outcome.reasoning:
        message["reasoning_content"] = outcome.reasoning
    message["role"] = "assistant"
    if outcome.tool_calls:
        message["tool_calls"] = _tool_calls_json(outcome.tool_calls)
    elif explicit_null_tools:
        message["tool_calls"] = None
    return message


class _Simulator:
    """Configuration and shared state behind the HTTP handler (rules, stats, async tasks)."""

    def __init__(
        self,
        rules: RuleSet,
        speed: float,
        faults: FaultConfig | None,
        api_key: str | None,
        fixed_latency_ms: float | None,
        max_stream_chunks: int,
    ) -> None:
        self.rules = rules
        self.max_stream_chunks = max_stream_chunks
        self.speed = speed
        self.faults = faults
        self.api_key = api_key
        self.fixed_latency_ms = fixed_latency_ms
        self.stats = Stats()
        self.stopping = threading.Event()
        self._tasks: OrderedDict[str, _Task] = OrderedDict()
        self._tasks_lock = threading.Lock()

    def decide(self, raw: bytes, allowed: frozenset[str] | None) -> FaultDecision:
        config = self.faults
        if config is None or not config.active:
            return NO_FAULT
        digest = hashlib.blake2b(raw, digest_size=16).digest()
        decision = decide_fault(config, digest, self.stats._sighting(digest), allowed)
        if decision.kind:
            self.stats._fault(decision.kind)
        if decision.slow:
            self.stats._fault("slow")
        return decision

    def delays(self, model: ModelSpec, prompt: int, completion: int, fault: FaultDecision) -> tuple[float, float]:
        """(time to first token, total) in seconds, after speed / fixed latency / slow fault."""
        first, total = model.latency_ms(prompt, completion)
        if self.fixed_latency_ms is not None:
            scale = self.fixed_latency_ms / total if total > 0 else 0.0
            first, total = first * scale, float(self.fixed_latency_ms)
        else:
            first, total = first * self.speed, total * self.speed
        if fault.slow and self.faults is not None:
            first += self.faults.slow_ms
            total += self.faults.slow_ms
        return first / 1000.0, total / 1000.0

    def add_task(self, task: _Task) -> None:
        with self._tasks_lock:
            self._tasks[task.id] = task
            while len(self._tasks) > _MAX_TASKS:
                self._tasks.popitem(last=False)

    def task(self, task_id: str) -> _Task | None:
        with self._tasks_lock:
            return self._tasks.get(task_id)


class _Abort(Exception):
    """The connection is gone (or the server is stopping): stop handling this request."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "glmeval-simulator"
    sys_version = ""
    timeout = 600
    server: _HTTPServer
    # The request being served counts as in flight (Stats) until _land(); per request.
    _flying = False
    _flight_model: str | None = None

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: per-request logging would dominate the cost of a benchmark."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed requests get a Zhipu-shaped JSON error too (and the connection closes)."""
        self.close_connection = True
        try:
            self._send_json(code, {"error": {"code": str(int(code)), "message": message or _REASONS.get(code, "Error")}})
        except OSError:
            pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    # ------------------------------------------------------------------ plumbing

    @property
    def sim(self) -> _Simulator:
        return self.server.sim

    def _read_body(self) -> bytes:
        try:
            return self._read_body_unchecked()
        except ValueError:
            self.close_connection = True
            raise ApiError(400, "1210", "请求格式有误：无法读取请求体") from None

    def _read_body_unchecked(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts: list[bytes] = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                total += size
                if total > _MAX_BODY:
                    raise ApiError(413, "1210", "请求体过大")
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        n = int(length)
        if n < 0 or n > _MAX_BODY:
            raise ApiError(413, "1210", "请求体过大")
        return self.rfile.read(n)

    def _head(self, status: int, content_type: str, headers: Mapping[str, str] | None, length: int | None) -> str:
        head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\nContent-Type: {content_type}\r\n"
        if length is not None:
            head += f"Content-Length: {length}\r\n"
        elif self.request_version == "HTTP/1.0":
            self.close_connection = True
        else:
            head += "Transfer-Encoding: chunked\r\n"
        head += SIMULATOR_HEADER
        if headers:
            for key, value in headers.items():
                head += f"{key}: {value}\r\n"
        if self.close_connection:
            head += "Connection: close\r\n"
        return head + "\r\n"

    def _fly(self, model: str) -> None:
        """The request in flight names ``model`` (for the per-model concurrency stats)."""
        if self._flying and self._flight_model is None:
            self._flight_model = model
            self.sim.stats._model(model)

    def _land(self) -> None:
        """No longer in flight; called just before the answer's last byte goes out, so a
        client never sees an answer to a request the server still counts."""
        if self._flying:
            self._flying = False
            self.sim.stats._landed(self._flight_model)
            self._flight_model = None

    def _send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        body = _dumps(payload)
        head = self._head(status, "application/json; charset=UTF-8", headers, len(body))
        # Counted before the write, like _land(): once a client has the answer, so do the stats.
        self.sim.stats._status(status)
        self._land()
        self.wfile.write(head.encode("latin-1") + body)

    def _send_api_error(self, error: ApiError) -> None:
        self._send_json(error.status, error.body(), error.headers)

    def _wait_until(self, deadline: float) -> None:
        delay = deadline - time.monotonic()
        if delay > 0 and self.sim.stopping.wait(delay):
            raise _Abort()

    def _reset(self) -> None:
        """Close with a TCP RST and no response, like a dropped upstream connection."""
        self.close_connection = True
        self._land()
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass

    def _dispatch(self, method: str) -> None:
        started = time.monotonic()
        path = self.path.partition("?")[0]
        while "//" in path:
            path = path.replace("//", "/")
        sub = path[len(API_PREFIX):] if path.startswith(API_PREFIX + "/") else None
        if sub is not None and len(sub) > 1:
            sub = sub.rstrip("/")
        route = "other"
        if sub is not None:
            route = "/async-result" if sub.startswith("/async-result/") else sub if sub in _ROUTES else "other"
        self._flying, self._flight_model = True, None
        self.sim.stats._request(route)
        try:
            raw = self._read_body()
            expected = "GET" if route == "/async-result" else "POST"
            if route == "other":
                raise ApiError(404, "404", f"Not Found: {path}")
            if method != expected:
                raise ApiError(405, "1212", f"不支持 {method} 调用方式")
            check_auth(self.headers.get("Authorization"), self.sim.api_key)
            if route == "/chat/completions":
                self._chat(raw, started)
            elif route == "/async/chat/completions":
                self._async_create(raw, started)
            elif route == "/async-result":
                self._async_result(sub[len("/async-result/"):])  # type: ignore[index]
            else:
                self._embeddings(raw, started)
        except ApiError as error:
            if error.status == 413:
                self.close_connection = True
            try:
                self._send_api_error(error)
            except OSError:
                self.close_connection = True
        except (_Abort, ConnectionError, TimeoutError):
            self.close_connection = True
        except OSError:
            self.close_connection = True
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            try:
                self._send_json(500, {"error": {"code": "500", "message": "Internal Error"}})
            except OSError:
                pass
        finally:
            self._land()

    # ------------------------------------------------------------------ faults

    def _raise_for_fault(self, fault: FaultDecision, *, stream: bool) -> bool:
        """Answer error faults; True when the request was reset (nothing more to send)."""
        kind = fault.kind
        if kind is None or kind == "content_filter" and stream:
            return False
        if kind == "balance":
            raise ApiError(429, *_ERR_BALANCE)
        if kind == "rate_limit":
            retry = self.sim.faults.retry_after_header if self.sim.faults else "1"
            raise ApiError(429, *_ERR_RATE, headers={"Retry-After": retry})
        if kind == "server_error":
            raise ApiError(500, *_ERR_SERVER)
        if kind == "content_filter":
            raise ApiError(400, *_ERR_SENSITIVE)
        if kind == "reset" or (kind == "cut_stream" and not stream):
            self._reset()
            return True
        return False

    # ------------------------------------------------------------------ endpoints

    def _chat(self, raw: bytes, started: float) -> None:
        request = validate_chat(parse_json_body(raw))
        self._fly(request.model.name)
        reply = self.sim.rules.respond(request.conversation, request.model, request.sampling)
        fault = self.sim.decide(raw, _JUDGE_FAULTS if reply.action == "judge" else None)
        outcome = _shape(request, reply)
        first, total = self.sim.delays(request.model, request.prompt_tokens, outcome.completion_tokens, fault)
        if fault.slow:
            self._wait_until(started + first)
        if self._raise_for_fault(fault, stream=request.stream):
            return
        ident = _new_id()
        created = int(time.time())
        if request.stream:
            self._stream(request, outcome, ident, created, started + first, started + total, fault.kind)
            return
        self._wait_until(started + total)
        self._send_json(200, {
            "choices": [{"finish_reason": outcome.finish_reason, "index": 0, "message": _message(request.model, outcome)}],
            "created": created,
            "id": ident,
            "model": request.model.name,
            "request_id": request.request_id or ident,
            "usage": _usage(request.prompt_tokens, outcome.completion_tokens),
        })

    def _stream(
        self,
        request: ChatRequest,
        outcome: _Outcome,
        ident: str,
        created: int,
        first_at: float,
        end_at: float,
        fault: str | None,
    ) -> None:
        prefix = '{"id":%s,"created":%d,"model":%s,"choices":[{"index":0,' % (
            json.dumps(ident), created, json.dumps(request.model.name, ensure_ascii=False)
        )

        def event(choice: str, usage: dict[str, Any] | None = None) -> bytes:
            tail = "}]" + (',"usage":' + json.dumps(usage) if usage is not None else "") + "}"
            return ("data: " + prefix + choice + tail + "\n\n").encode("utf-8")

        def delta(field: str, text: str) -> bytes:
            return event('"delta":{"role":"assistant","%s":%s}' % (field, json.dumps(text, ensure_ascii=False)))

        def final(reason: str, tokens: int) -> bytes:
            return event(
                '"finish_reason":"%s","delta":{"role":"assistant","content":""}' % reason,
                _usage(request.prompt_tokens, tokens),
            )

        timeline: list[tuple[float, bytes, int]]
        if outcome.tool_calls:
            calls = json.dumps(_tool_calls_json(outcome.tool_calls), ensure_ascii=False)
            pieces = [("reasoning_content", p) for p in split_tokens(outcome.reasoning or "")]
            timeline = self._timeline(pieces, first_at, first_at, delta)
            timeline.append((first_at, event('"finish_reason":"tool_calls","delta":{"tool_calls":%s}' % calls), 0))
            timeline.append((end_at, final("tool_calls", outcome.completion_tokens), 0))
        else:
            pieces = [("reasoning_content", p) for p in split_tokens(outcome.reasoning or "")]
            pieces += [("content", p) for p in split_tokens(outcome.content or "")]
            timeline = self._timeline(pieces, first_at, end_at, delta)
            if fault == "content_filter":
                timeline = timeline[: len(timeline) // 2]
                sent = sum(tokens for _, _, tokens in timeline)
                timeline.append((timeline[-1][0] if timeline else first_at, final("sensitive", sent), 0))
            else:
                timeline.append((end_at, final(outcome.finish_reason, outcome.completion_tokens), 0))
        cut = fault == "cut_stream"
        if cut:
            timeline = timeline[: max(1, (len(timeline) - 1) // 2)]
        head = self._head(200, "text/event-stream;charset=UTF-8", {"Cache-Control": "no-cache"}, None)
        self._send_timeline(head.encode("latin-1"), timeline, not cut)
        if cut:
            self.close_connection = True

    def _timeline(
        self,
        pieces: list[tuple[str, str]],
        first_at: float,
        end_at: float,
        delta: Any,
    ) -> list[tuple[float, bytes, int]]:
        """Group token pieces into chunks and give each its send time.

        The first chunk goes out at ``first_at``; later ones are spaced by the tokens before
        them so the last content arrives just before ``end_at``, the sync latency.
        """
        if not pieces:
            return []
        group = max(1, -(-len(pieces) // max(1, self.sim.max_stream_chunks)))
        span = end_at - first_at
        timeline: list[tuple[float, bytes, int]] = []
        for start in range(0, len(pieces), group):
            batch = pieces[start:start + group]
            at = first_at + span * start / len(pieces)
            field = batch[0][0]
            text = ""
            for kind, piece in batch:
                if kind != field:
                    timeline.append((at, delta(field, text), count_tokens(text)))
                    field, text = kind, ""
                text += piece
            timeline.append((at, delta(field, text), count_tokens(text)))
        return timeline

    def _send_timeline(self, head: bytes, timeline: list[tuple[float, bytes, int]], complete: bool) -> None:
        """Write SSE events at their times, coalescing events that are already due."""
        chunked = self.request_version != "HTTP/1.0"
        pending: list[bytes] = []
        head_out = False

        def flush(last: bool = False) -> None:
            nonlocal head_out
            data = b"".join(pending)
            pending.clear()
            if not head_out:
                self.sim.stats._status(200)  # the head goes out now (streams are always 200)
            out = b"" if head_out else head
            head_out = True
            if data:
                out += (b"%x\r\n%s\r\n" % (len(data), data)) if chunked else data
            if last and chunked:
                out += b"0\r\n\r\n"
            if last:
                self._land()
            if out:
                self.wfile.write(out)

        for at, data, _ in timeline:
            if at - time.monotonic() > 0.0005:
                if pending:
                    flush()
                self._wait_until(at)
            pending.append(data)
        if complete:
            pending.append(b"data: [DONE]\n\n")
        flush(last=complete)

    def _async_create(self, raw: bytes, started: float) -> None:
        request = validate_chat(parse_json_body(raw), async_mode=True)
        self._fly(request.model.name)
        reply = self.sim.rules.respond(request.conversation, request.model, request.sampling)
        fault = self.sim.decide(raw, _JUDGE_FAULTS if reply.action == "judge" else None)
        outcome = _shape(request, reply)
        ident = _new_id()
        request_id = request.request_id or ident
        fail: tuple[str, str] | None = None
        if fault.kind == "content_filter":
            fail = _ERR_SENSITIVE
        elif fault.kind == "server_error" and fault.roll >= 0.5:
            fail = _ERR_SERVER
        elif self._raise_for_fault(fault, stream=False):
            return
        _, total = self.sim.delays(request.model, request.prompt_tokens, outcome.completion_tokens, fault)
        result: dict[str, Any]
        if fail is not None:
            # The FAIL body's error detail is [unconfirmed]; the SDK keeps unknown keys.
            result = {"id": ident, "request_id": request_id, "model": request.model.name,
                      "task_status": "FAIL", "error": {"code": fail[0], "message": fail[1]}}
        else:
            result = {
                "id": ident,
                "request_id": request_id,
                "model": request.model.name,
                "task_status": "SUCCESS",
                "created": int(time.time() + total),
                "choices": [{"index": 0, "finish_reason": outcome.finish_reason,
                             "message": _message(request.model, outcome, explicit_null_tools=True)}],
                "usage": _usage(request.prompt_tokens, outcome.completion_tokens, details=False),
            }
        self.sim.add_task(_Task(ident, request_id, request.model.name, started + total, result))
        self._send_json(200, {"id": ident, "request_id": request_id, "model": request.model.name,
                              "task_status": "PROCESSING"})

    def _async_result(self, task_id: str) -> None:
        task = self.sim.task(task_id)
        if task is None:
            # The real status/code for an unknown task id is [unconfirmed]; 400/1210 is a guess.
            raise ApiError(400, "1210", f"任务不存在：{task_id}，请检查任务 ID。")
        if time.monotonic() < task.ready_at:
            self._send_json(200, {"id": task.id, "request_id": task.request_id, "model": None,
                                  "task_status": "PROCESSING"})
            return
        self._send_json(200, task.result)

    def _embeddings(self, raw: bytes, started: float) -> None:
        request = validate_embeddings(parse_json_body(raw))
        self._fly(request.model.name)
        fault = self.sim.decide(raw, _JUDGE_FAULTS)
        tokens = sum(count_tokens(text) for text in request.inputs)
        _, total = self.sim.delays(request.model, tokens, 0, fault)
        self._wait_until(started + total)
        self._raise_for_fault(fault, stream=False)
        data = [
            {"index": i, "object": "embedding", "embedding": embed(text, request.dimensions)}
            for i, text in enumerate(request.inputs)
        ]
        self._send_json(200, {
            "model": request.model.name,
            "data": data,
            "object": "list",
            "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
        })


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections and threads so ``stop()`` is clean."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 512
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: _Simulator) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sim = sim
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse-DNS lookup (``getfqdn``), which can take seconds."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._work, args=(request, client_address), name="glmeval-sim-conn", daemon=True
        )
        with self._lock:
            self._workers.add(thread)
        thread.start()

    def _work(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._workers.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client disconnects are normal under load and faults; only real bugs are printed."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        traceback.print_exc(file=sys.stderr)

    def close_all(self, timeout: float) -> None:
        """Wake every connection thread (idle keep-alive ones block in recv) and join them."""
        with self._lock:
            connections = list(self._connections)
            workers = list(self._workers)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))


RulesPath = str | PathLike[str] | Sequence[str | PathLike[str]] | None


class LocalServer:
    """A local GLM server on a background thread (a simulator: every reply is canned).

    ``speed`` scales the simulated latency (1.0 realistic, 0.0 instant); ``fixed_latency_ms``
    replaces the model formula with one fixed total per request (streams keep the model's
    first-token share). ``api_key=None`` accepts any non-empty bearer token. ``speed``,
    ``faults`` and ``fixed_latency_ms`` may be changed while the server runs.

    ``max_stream_chunks`` caps the content chunks of one stream (tokens are grouped to fit).
    The real API sends about one token per chunk, but the zhipuai SDK spends ~2 ms of CPU
    parsing each chunk, so a realistic chunk count would make SDK-driven load tests
    CPU-bound on the client; 8 keeps streams multi-chunk and tests fast.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        rules_path: RulesPath = None,
        speed: float = 1.0,
        faults: FaultConfig | None = None,
        api_key: str | None = DEFAULT_API_KEY,
        fixed_latency_ms: float | None = None,
        max_stream_chunks: int = 8,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        if fixed_latency_ms is not None and fixed_latency_ms < 0:
            raise ValueError("fixed_latency_ms must be >= 0")
        self.host = host
        self._requested_port = port
        self._sim = _Simulator(
            RuleSet.from_paths(rules_path), speed, faults, api_key, fixed_latency_ms, max_stream_chunks
        )
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the requested one until started)."""
        return self._httpd.server_address[1] if self._httpd else self._requested_port

    @property
    def base_url(self) -> str:
        """What to pass as ``ZhipuAI(base_url=...)``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{API_PREFIX}"

    @property
    def api_key(self) -> str:
        """The key to pass as ``ZhipuAI(api_key=...)`` (any key works when constructed with None)."""
        return self._sim.api_key if self._sim.api_key is not None else DEFAULT_API_KEY

    @property
    def stats(self) -> Stats:
        """Live, thread-safe counters."""
        return self._sim.stats

    @property
    def faults(self) -> FaultConfig | None:
        return self._sim.faults

    @faults.setter
    def faults(self, value: FaultConfig | None) -> None:
        self._sim.faults = value

    @property
    def speed(self) -> float:
        return self._sim.speed

    @speed.setter
    def speed(self, value: float) -> None:
        self._sim.speed = value

    @property
    def fixed_latency_ms(self) -> float | None:
        return self._sim.fixed_latency_ms

    @fixed_latency_ms.setter
    def fixed_latency_ms(self, value: float | None) -> None:
        self._sim.fixed_latency_ms = value

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> LocalServer:
        """Bind and serve on a daemon thread; returns self so ``LocalServer().start()`` chains."""
        if self._httpd is not None:
            return self
        self._sim.stopping.clear()
        self._httpd = _HTTPServer((self.host, self._requested_port), self._sim)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="glmeval-sim", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, end open connections and sleeping requests, join threads, free the port."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._sim.stopping.set()
        httpd.shutdown()
        if thread is not None:
            thread.join(timeout)
        httpd.close_all(timeout)
        httpd.server_close()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<LocalServer {self.base_url} {state}>"


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 8000,
    rules_path: RulesPath = None,
    speed: float = 1.0,
    faults: FaultConfig | None = None,
    api_key: str | None = DEFAULT_API_KEY,
    fixed_latency_ms: float | None = None,
) -> None:
    """Run in the foreground until Ctrl-C (or SIGTERM); prints one line saying how to connect."""
    server = LocalServer(host, port, rules_path, speed, faults, api_key, fixed_latency_ms).start()
    # Only the built-in demo key is printed: a key given on the command line may be a real one,
    # and this banner ends up in CI logs.
    key = "<any key>" if api_key is None else api_key if api_key == DEFAULT_API_KEY else "<the --api-key you gave>"
    print(
        f"glmeval local GLM server (simulated replies) on {server.base_url}  api_key={key}  (Ctrl-C to stop)",
        flush=True,
    )
    previous = None
    if threading.current_thread() is threading.main_thread():
        def _terminate(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        while server.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
