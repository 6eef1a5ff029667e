"""What the local server needs to answer from a cassette (``--cassette``, ``serve --cassette``).

:class:`ReplayIndex` finds the recorded answer to a request by its fingerprint and hands out
a fingerprint's answers in the order they were recorded. When they run out, an interaction
marked ``reuse`` (a judge or embedding call) answers with its last again; otherwise ``exhausted``
decides: ``"error"`` (``glmeval run --cassette``: a request asked more often than it was
recorded is a miss, so a suite that grew a repeat says so instead of reusing an answer) or
``"cycle"`` (``glmeval serve --cassette``: a long-lived server answers every run of an app the
same way, starting over). An async task's result poll is answered by time: "processing" until
as long after the replayed create as the recording waited, then its result, from then on.

:func:`send_reply` writes an answer at its recorded times (a stream event by event), through
the two callables the server's handler provides, so this module needs nothing of the server.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from .fingerprint import RequestKey, fingerprint, is_poll, request_key
from .format import Cassette, Interaction, Response, load_cassette

__all__ = ["CASSETTE_MISS_CODE", "Exhausted", "MissMode", "Reply", "ReplayIndex", "send_reply", "miss_body"]

# The error code of a cassette miss (HTTP 404, Zhipu's error shape). Not a Zhipu code: the
# harness recognises it and names the case and variant that asked.
CASSETTE_MISS_CODE: Final = "glmeval-cassette-miss"

Exhausted = Literal["error", "cycle"]
MissMode = Literal["error", "rules"]

_REASONS: Final = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}


@dataclass
class Reply:
    """A recorded answer ready to write: ``parts`` are (seconds after the request, bytes)."""

    status: int
    headers: dict[str, str]
    parts: list[tuple[float, bytes]]
    stream: bool
    complete: bool = True


class ReplayIndex:
    """A loaded cassette, by fingerprint, with a cursor per fingerprint (thread-safe)."""

    def __init__(
        self, cassette: Cassette | Path, miss: MissMode = "error", exhausted: Exhausted = "error", speed: float = 1.0
    ) -> None:
        self.cassette = cassette if isinstance(cassette, Cassette) else load_cassette(cassette)
        self.name = str(self.cassette.path) if self.cassette.path else "the cassette"
        self.miss = miss
        self.exhausted = exhausted
        self.speed = speed
        self._items: dict[RequestKey, Interaction] = {}
        for item in self.cassette.interactions:
            known = self._items.get(item.key)
            if known is None:
                self._items[item.key] = item
            else:  # the same request twice in a hand-edited file: its answers in file order
                known.responses.extend(item.responses)
        self._next: dict[RequestKey, int] = {}
        self._created: dict[str, float] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def answer(self, upstream: str, method: str, path: str, raw: bytes) -> Reply | str:
        """The next recorded answer to this request, or why there is none (a miss message)."""
        key = request_key(upstream, method, path, raw)
        item = self._items.get(key)
        now = time.monotonic()
        if item is None or not item.responses:
            return self._miss_text(key, raw, "")
        if is_poll(key[1], key[2]):
            return self._poll(item, key, now)
        with self._lock:
            n = self._next.get(key, 0)
            if n >= len(item.responses):
                if item.reuse:
                    n = len(item.responses) - 1
                elif self.exhausted == "error":
                    return self._miss_text(key, raw, f"; asked {n + 1} times, recorded {len(item.responses)}")
                else:
                    n = 0
            self._next[key] = n + 1
        response = item.responses[n]
        if key[2].startswith("/async/"):
            task = _field(response.body, "id")
            if isinstance(task, str):
                with self._lock:
                    self._created[task] = now
        return self._reply(response)

    def _poll(self, item: Interaction, key: RequestKey, now: float) -> Reply:
        task = key[2].rsplit("/", 1)[-1]
        with self._lock:
            created = self._created.setdefault(task, now)
        waited_ms = (now - created) * 1000 / self.speed if self.speed > 0 else float("inf")
        done = [r for r in item.responses if r.ms <= waited_ms]
        if not done and item.pending is not None:
            return Reply(200, {"content-type": "application/json; charset=UTF-8"}, [(0.0, item.pending)], stream=False)
        response = done[-1] if done else item.responses[0]
        return self._reply(response, timed=False)

    def _reply(self, response: Response, timed: bool = True) -> Reply:
        scale = self.speed / 1000.0 if timed else 0.0
        headers = dict(response.headers)
        if "content-type" not in headers:
            headers["content-type"] = "text/event-stream;charset=UTF-8" if response.events is not None else "application/json; charset=UTF-8"
        if response.events is None:
            return Reply(response.status, headers, [(response.ms * scale, response.body)], stream=False)
        parts = [(response.head_ms * scale, b"")]
        parts += [(event.ms * scale, event.sse.encode("utf-8") + b"\n\n") for event in response.events]
        if response.tail:
            parts.append((response.ms * scale, response.tail.encode("utf-8")))
        return Reply(response.status, headers, parts, stream=True, complete=response.complete)

    def _miss_text(self, key: RequestKey, raw: bytes, extra: str) -> str:
        model = _field(raw, "model")
        about = f", model {model}" if isinstance(model, str) else ""
        return (
            f"not in cassette {self.name}: {key[1]} {key[2]} (fingerprint {fingerprint(key)}{about}){extra}; "
            "record it with --record"
        )


def miss_body(message: str) -> dict[str, dict[str, str]]:
    """A miss as the API shapes errors (HTTP 404)."""
    return {"error": {"code": CASSETTE_MISS_CODE, "message": message}}


def _field(body: bytes, name: str) -> object:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data.get(name) if isinstance(data, dict) else None


def send_reply(
    reply: Reply,
    started: float,
    write: Callable[[bytes], object],
    wait_until: Callable[[float], None],
    chunked: bool = True,
    last: Callable[[], None] | None = None,
) -> bool:
    """Write ``reply`` at its recorded times after ``started`` (a ``time.monotonic()``);
    returns whether it ended cleanly (False: a cut stream, the connection must close).
    ``wait_until`` sleeps to a monotonic deadline (and may raise to abandon the answer);
    ``last`` runs just before the final write (the server's in-flight count)."""
    head = f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}\r\n"
    for key, value in reply.headers.items():
        head += f"{key}: {value}\r\n"
    if not reply.stream:
        at, body = reply.parts[0]
        wait_until(started + at)
        if last is not None:
            last()
        write((head + f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body)
        return True
    head += "Cache-Control: no-cache\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else "Connection: close\r\n\r\n"
    pending = head.encode("latin-1")
    for at, data in reply.parts:
        if at > 0 and started + at - time.monotonic() > 0.0005:
            if pending:
                write(pending)
                pending = b""
            wait_until(started + at)
        if data:
            pending += (b"%x\r\n%s\r\n" % (len(data), data)) if chunked else data
    if reply.complete and chunked:
        pending += b"0\r\n\r\n"
    if last is not None:
        last()
    write(pending)
    return reply.complete and chunked
