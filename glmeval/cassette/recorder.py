"""``--record``: a loopback reverse proxy that forwards each request to the real API and
tees every answer into a cassette.

One proxy fronts any number of upstreams, each under its own mount
(``http://127.0.0.1:PORT/u/<name>`` → that upstream's base URL), so a suite that calls
several providers records them all into one file. Requests are forwarded as they came
(headers, key included, go upstream and nowhere else); responses go back to the client chunk
by chunk as they arrive, while the recorder notes the time of each SSE event. Nothing is
written until :meth:`Recorder.stop`, which orders and labels the interactions and writes the
file with every key it saw scrubbed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .fingerprint import is_poll, normal_path, request_key
from .format import KEPT_HEADERS, Cassette, Event, Interaction, Response, write_cassette
from .labels import order_and_label

if TYPE_CHECKING:
    import httpx

    from glmeval.records import Job

__all__ = ["Recorder", "start_recorder"]

MOUNT: Final = "/u/"
# Hop-by-hop headers (RFC 9110 §7.6.1) and those httpx sets itself.
_HOP: Final = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
    "transfer-encoding", "upgrade", "host", "content-length", "accept-encoding", "content-encoding",
})
_SSE_BREAKS: Final = (b"\r\n\r\n", b"\n\n", b"\r\r")


class _SSESplitter:
    """Cuts a byte stream into SSE events as bytes arrive; each event is stamped with the time
    its terminating blank line came in."""

    def __init__(self) -> None:
        self.buffer = b""
        self.events: list[Event] = []

    def feed(self, data: bytes, ms: float) -> None:
        self.buffer += data
        while True:
            cuts = [(i, sep) for sep in _SSE_BREAKS if (i := self.buffer.find(sep)) >= 0]
            if not cuts:
                return
            i, sep = min(cuts)
            event, self.buffer = self.buffer[:i], self.buffer[i + len(sep):]
            self.events.append(Event(ms, event.decode("utf-8", "replace")))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "glmeval-recorder"
    sys_version = ""
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a request line may carry a token in its query."""

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_PUT(self) -> None:
        self._forward()

    def do_DELETE(self) -> None:
        self._forward()

    def do_PATCH(self) -> None:
        self._forward()

    def _reply_error(self, status: int, message: str) -> None:
        body = json.dumps({"error": {"code": str(status), "message": message}}, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _forward(self) -> None:
        started = time.perf_counter()
        recorder = self.server.recorder
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        name, _, rest = self.path[len(MOUNT):].partition("/") if self.path.startswith(MOUNT) else ("", "", "")
        upstream = recorder.upstreams.get(name)
        if upstream is None:
            self._reply_error(404, f"the recording proxy has no upstream {name!r}; known: {', '.join(recorder.upstreams)}")
            return
        for value in self.headers.get_all("Authorization") or []:
            recorder.note_secret(value.partition(" ")[2] or value)
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP]
        path = "/" + rest
        request = recorder.http.build_request(self.command, upstream.rstrip("/") + path, headers=headers, content=raw)
        try:
            upstream_response = recorder.http.send(request, stream=True)
        except Exception:
            # Unreachable upstream: drop the connection, so the client sees a connection error
            # (as it would without the proxy) and the run stops with "cannot reach".
            self.close_connection = True
            self.connection.close()
            return
        try:
            response = self._relay(upstream_response, started)
        finally:
            upstream_response.close()
        recorder.add(name, self.command, normal_path(path.partition("?")[0]), raw, response, started)

    def _relay(self, upstream: httpx.Response, started: float) -> Response:
        """Send the upstream's answer on as it arrives (chunked) and return what was sent."""
        import httpx

        def ms() -> float:
            return (time.perf_counter() - started) * 1000

        kept = {k.lower(): v for k, v in upstream.headers.items() if k.lower() in KEPT_HEADERS}
        response = Response(status=upstream.status_code, headers=kept, head_ms=ms())
        streaming = "text/event-stream" in upstream.headers.get("content-type", "")
        splitter = _SSESplitter() if streaming else None
        head = f"HTTP/1.1 {upstream.status_code} {upstream.reason_phrase}\r\n"
        for key, value in upstream.headers.multi_items():
            if key.lower() not in _HOP:
                head += f"{key}: {value}\r\n"
        self.wfile.write((head + "Transfer-Encoding: chunked\r\n\r\n").encode("latin-1"))
        body = bytearray()
        client_gone = False
        try:
            for chunk in upstream.iter_bytes():
                if splitter is not None:
                    splitter.feed(chunk, ms())
                else:
                    body += chunk
                if not client_gone:
                    try:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                    except OSError:
                        client_gone = True
                        response.complete = False
                        break
        except httpx.HTTPError:
            response.complete = False
        response.ms = ms()
        if splitter is not None:
            response.events = splitter.events
            response.tail = splitter.buffer.decode("utf-8", "replace")
        else:
            response.body = bytes(body)
        if response.complete:
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.close_connection = True
        return response


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], recorder: Recorder) -> None:
        self.recorder = recorder
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without the reverse-DNS lookup HTTPServer does (it can take seconds)."""
        import socketserver

        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer is not an error worth a traceback."""


class Recorder:
    """The recording proxy and what it heard; see the module docstring."""

    def __init__(self, upstreams: Mapping[str, str], path: Path, secrets: Iterable[str] = (), timeout: float = 600.0) -> None:
        import httpx

        self.upstreams = {name: url.rstrip("/") for name, url in upstreams.items()}
        self.path = path
        self.http = httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=False)
        self._secrets = {s for s in secrets if s}
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str, str, str], Interaction] = {}
        self._created: dict[str, float] = {}  # async task id -> when its create request came in
        self._server = _ProxyServer(("127.0.0.1", 0), self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="glmeval-recorder", daemon=True)
        self.started_at = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")

    @property
    def base_urls(self) -> dict[str, str]:
        """Each upstream's local base URL: what to hand the SDK instead of the real one."""
        port = self._server.server_address[1]
        return {name: f"http://127.0.0.1:{port}{MOUNT}{name}" for name in self.upstreams}

    def start(self) -> Recorder:
        self._thread.start()
        return self

    def note_secret(self, value: str) -> None:
        with self._lock:
            self._secrets.add(value.strip())

    def add(self, upstream: str, method: str, path: str, raw: bytes, response: Response, started: float) -> None:
        """File one answer under its request's fingerprint; a poll keeps only the answer that
        ended the wait (timed from its task's create) and the first "processing" body."""
        key = request_key(upstream, method, path, raw)
        with self._lock:
            item = self._items.get(key)
            if item is None:
                item = self._items[key] = Interaction(upstream, method, path, raw)
            if is_poll(method, path):
                task = path.rsplit("/", 1)[-1]
                created = self._created.setdefault(task, started)
                if _processing(response):
                    if item.pending is None:
                        item.pending = response.body
                    return
                if item.responses and item.responses[-1].status == response.status == 200:
                    return  # the task had already finished: nothing new to replay
                response.ms = (started - created) * 1000 + response.ms
            elif path.startswith("/async/") and response.status == 200:
                task_id = _json_field(response.body, "id")
                if task_id:
                    self._created[task_id] = started
            item.responses.append(response)

    def stop(self, jobs: Sequence[Job] = (), secrets: Iterable[str] = ()) -> Path | None:
        """Stop listening and write the cassette: interactions in the plans' order, each
        labelled with the case and variant that asked. With nothing recorded, nothing is
        written (None), so a failed attempt never replaces a good recording."""
        self._server.shutdown()
        self._thread.join(5.0)
        self._server.server_close()
        self.http.close()
        with self._lock:
            items = list(self._items.values())
            known = self._secrets | {s for s in secrets if s}
        if not items:
            return None  # nothing answered (the API unreachable, a bad key): keep any old file
        cassette = Cassette(upstreams=dict(self.upstreams), interactions=order_and_label(items, jobs), recorded=self.started_at)
        write_cassette(self.path, cassette, known)
        return self.path


def _json_field(body: bytes, name: str) -> Any:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data.get(name) if isinstance(data, dict) else None


def _processing(response: Response) -> bool:
    return response.status == 200 and _json_field(response.body, "task_status") == "PROCESSING"


def start_recorder(upstreams: Mapping[str, str], path: Path, secrets: Iterable[str] = ()) -> Recorder:
    """Start the recording proxy in front of ``upstreams`` (name → real base URL); its
    :attr:`Recorder.base_urls` are the local URLs to send each upstream's calls to."""
    return Recorder(upstreams, path, secrets).start()
