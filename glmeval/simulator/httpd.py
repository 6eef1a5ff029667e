"""The HTTP layer of the local GLM server: the request handler (routing, endpoints) and its server.

Only the standard library is used (``http.server``), with the per-request work kept small
because benchmarks push 100,000 requests through it: no logging per request, one ``write``
per response when possible, precompiled regexes, and TCP_NODELAY so small SSE chunks are
not held back by Nagle. What the answers say comes from the rules, how they are shaped from
:mod:`.bodies` and :mod:`.sse`; what is valid from :mod:`.protocol`.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from glmeval.cassette.replay import CASSETTE_MISS_CODE, send_reply
from glmeval.catalogue.tokens import count_tokens

from .bodies import Outcome, chat_body, chat_message, dumps, new_id, shape, usage_for
from .dialect_wire import wire_for
from .embeddings import embed
from .faults import BUSY_ERRORS, STREAM_CUTS, FaultDecision
from .openai_compat import NO_MOUNT, V1_ROUTES, Mount, models_list, openai_error, split_mount, to_zhipu_body
from .protocol import (
    ApiError,
    ChatRequest,
    check_auth,
    parse_json_body,
    validate_chat,
    validate_embeddings,
)
from .replies import answer
from .sse import Timeline, stream_timeline
from .state import SimState
from .tasks import Task

__all__ = ["API_PREFIX", "SIMULATOR_HEADER", "Handler", "SimHTTPServer"]

API_PREFIX: Final = "/api/paas/v4"
SIMULATOR_HEADER: Final = "X-Glmeval-Simulator: 1\r\n"

_MAX_BODY = 64 * 1024 * 1024
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
_BATCH_API = ("/files", "/batches")  # the Batch API (simulator/batches.py): methods per sub-path
_MAX_UPLOAD = 101 * 1024 * 1024  # past the files' 100 MB limit, so a too-big file gets its own 435


class _Abort(Exception):
    """The connection is gone (or the server is stopping): stop handling this request."""


class Handler(BaseHTTPRequestHandler):
    """One connection's requests, routed by path under :data:`API_PREFIX` to the chat, async and
    embeddings endpoints; every answer, errors included, carries :data:`SIMULATOR_HEADER`."""

    protocol_version = "HTTP/1.1"
    server_version = "glmeval-simulator"
    sys_version = ""
    timeout = 600
    server: SimHTTPServer
    # The request being served counts as in flight (Stats) until _land(); per request.
    _flying = False
    _flight_model: str | None = None
    _mount: Mount = NO_MOUNT  # the provider mount (/p/<name>/) of the request being served
    _body_cap = _MAX_BODY

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
    def sim(self) -> SimState:
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
                if total > self._body_cap:
                    raise ApiError(413, "1210", "请求体过大")
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        n = int(length)
        if n < 0 or n > self._body_cap:
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
        body = dumps(payload)
        head = self._head(status, "application/json; charset=UTF-8", headers, len(body))
        # Counted before the write, like _land(): once a client has the answer, so do the stats.
        self.sim.stats._status(status)
        self._land()
        self.wfile.write(head.encode("latin-1") + body)

    def _send_bytes(self, status: int, body: bytes, content_type: str) -> None:
        head = self._head(status, content_type, None, len(body))
        self.sim.stats._status(status)
        self._land()
        self.wfile.write(head.encode("latin-1") + body)

    def _send_api_error(self, error: ApiError) -> None:
        if self._mount.openai:
            self._send_json(*openai_error(error, self._mount.dialect), error.headers)
            return
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
        self._mount = mount = split_mount(path, self.sim.providers)
        rest = mount.rest
        sub = rest[len(API_PREFIX):] if rest.startswith(API_PREFIX + "/") else None
        if sub is not None and len(sub) > 1:
            sub = sub.rstrip("/")
        route = "other"
        if sub is not None:
            route = "/async-result" if sub.startswith("/async-result/") else sub if sub in _ROUTES else "other"
        elif mount.openai and rest.rstrip("/") in V1_ROUTES:
            route = rest.rstrip("/")
        if route == "other" and sub and "/" + sub.split("/")[1] in _BATCH_API:
            route = "/" + sub.split("/")[1]
        self._body_cap = _MAX_UPLOAD if route == "/files" else _MAX_BODY
        self._flying, self._flight_model = True, None
        self.sim.stats._request(route)
        try:
            raw = self._read_body()
            expected = "GET" if route in ("/async-result", "/v1/models") else "POST"
            if mount.unknown:
                raise ApiError(404, "404", mount.unknown)
            if route == "other":
                raise ApiError(404, "404", f"Not Found: {path}")
            if method != expected and route not in _BATCH_API:
                raise ApiError(405, "1212", f"不支持 {method} 调用方式")
            check_auth(self.headers.get("Authorization"), self.sim.api_key)
            if route in _BATCH_API:
                query, ctype = self.path.partition("?")[2], self.headers.get("Content-Type") or ""
                self._send_bytes(*self.sim.batches.serve(method, sub or "", query, raw, ctype))
                return
            under = rest.rstrip("/")[len("/v1"):] if mount.openai and sub is None else sub or ""
            if self.sim.cassette is not None and self._replay(mount.provider or "zhipu", method, under, raw, started):
                return
            if route in ("/chat/completions", "/v1/chat/completions"):
                self._chat(raw, started, openai=route != "/chat/completions")
            elif route == "/v1/models":
                self._send_json(200, models_list(mount.dialect))
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

    def _replay(self, upstream: str, method: str, sub: str, raw: bytes, started: float) -> bool:
        """Answer from the cassette (``--cassette``) at its recorded times; False for a miss
        the rules are to answer (``--cassette-miss rules``)."""
        cassette = self.sim.cassette
        assert cassette is not None
        reply = cassette.answer(upstream, method, sub, raw)
        if isinstance(reply, str):
            if cassette.miss == "rules":
                return False
            raise ApiError(404, CASSETTE_MISS_CODE, reply)
        self.sim.stats._status(reply.status)
        chunked = self.request_version != "HTTP/1.0"
        if not send_reply(reply, started, self.wfile.write, self._wait_until, chunked, last=self._land):
            self.close_connection = True
        return True

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
            raise ApiError(429, *_ERR_RATE, headers={"Retry-After": retry} if retry is not None else None)
        if kind == "server_error":
            raise ApiError(500, *_ERR_SERVER)
        if kind == "content_filter":
            raise ApiError(400, *_ERR_SENSITIVE)
        if kind in BUSY_ERRORS:
            raise ApiError(429, *BUSY_ERRORS[kind])
        if kind == "reset" or (kind in STREAM_CUTS and not stream):
            self._reset()
            return True
        return False

    # ------------------------------------------------------------------ endpoints

    def _chat(self, raw: bytes, started: float, openai: bool = False) -> None:
        body = parse_json_body(raw)
        wire = wire_for(body, self._mount.dialect) if openai else None
        request = validate_chat(to_zhipu_body(body, self._mount.dialect) if wire else body)
        if self._mount.provider is not None:
            request = replace(request, provider=self._mount.provider)
        self._fly(request.model.name)
        reply = answer(request, self.sim.rules)
        fault = self.sim.decide(raw, _JUDGE_FAULTS if reply.action == "judge" else None)
        outcome = shape(request, reply)
        first, total = self.sim.delays(request.model, request.prompt_tokens, outcome.completion_tokens, fault)
        if fault.slow:
            self._wait_until(started + first)
        if self._raise_for_fault(fault, stream=request.stream):
            return
        ident = new_id()
        created = int(time.time())
        if request.stream and wire is not None:
            self._send_stream(*wire.timeline(request, outcome, created, started + first, started + total, fault.kind,
                                             self.sim.max_stream_chunks))
            return
        if request.stream:
            self._stream(request, outcome, ident, created, started + first, started + total, fault.kind)
            return
        self._wait_until(started + total)
        self._send_json(200, wire.body(request, outcome, created) if wire else chat_body(request, outcome, ident, created))

    def _stream(
        self,
        request: ChatRequest,
        outcome: Outcome,
        ident: str,
        created: int,
        first_at: float,
        end_at: float,
        fault: str | None,
    ) -> None:
        timeline, complete = stream_timeline(
            request, outcome, ident, created, first_at, end_at, fault, self.sim.max_stream_chunks
        )
        head = self._head(200, "text/event-stream;charset=UTF-8", {"Cache-Control": "no-cache"}, None)
        self._send_timeline(head.encode("latin-1"), timeline, complete)
        if not complete:
            self.close_connection = True

    def _send_stream(self, timeline: Timeline, complete: bool) -> None:
        head = self._head(200, "text/event-stream; charset=utf-8", {"Cache-Control": "no-cache"}, None)
        self._send_timeline(head.encode("latin-1"), timeline, complete)
        if not complete:
            self.close_connection = True

    def _send_timeline(self, head: bytes, timeline: Timeline, complete: bool) -> None:
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
        if self._mount.provider is not None:
            request = replace(request, provider=self._mount.provider)
        self._fly(request.model.name)
        reply = answer(request, self.sim.rules)
        fault = self.sim.decide(raw, _JUDGE_FAULTS if reply.action == "judge" else None)
        outcome = shape(request, reply)
        ident = new_id()
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
                             "message": chat_message(request.model, outcome, explicit_null_tools=True)}],
                "usage": usage_for(request, outcome.completion_tokens, outcome.reasoning_tokens, order="async"),
            }
            if request.search_results:
                result["web_search"] = list(request.search_results)
        self.sim.tasks.add(Task(ident, request_id, request.model.name, started + total, result))
        self._send_json(200, {"id": ident, "request_id": request_id, "model": request.model.name,
                              "task_status": "PROCESSING"})

    def _async_result(self, task_id: str) -> None:
        task = self.sim.tasks.get(task_id)
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


class SimHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections and threads so ``stop()`` is clean."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 512
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: SimState) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sim = sim
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()
        super().__init__(address, Handler)

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
