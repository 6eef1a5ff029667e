"""What the local server saw: thread-safe counters for tests and benchmarks."""

from __future__ import annotations

import threading
import time

__all__ = ["Stats"]


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
            self._first_at: dict[str, float] = {}
            self._by_status: dict[int, int] = {}
            self._faults: dict[str, int] = {}
            self._seen: dict[bytes, int] = {}
            self._by_model: dict[str, int] = {}
            self._batches = 0
            self._batch_lines: dict[str, int] = {}
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
            self._first_at.setdefault(route, time.monotonic())
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

    def _batch_created(self) -> None:
        with self._lock:
            self._batches += 1

    def _batch_line(self, model: str) -> None:
        with self._lock:
            self._batch_lines[model] = self._batch_lines.get(model, 0) + 1

    @property
    def batches_created(self) -> int:
        """Batches created (``POST /batches`` accepted): a resumed run that resubmits shows here."""
        with self._lock:
            return self._batches

    @property
    def batch_lines(self) -> dict[str, int]:
        """Batch requests answered per model (valid lines only; they are not in ``by_model``)."""
        with self._lock:
            return dict(self._batch_lines)

    @property
    def requests(self) -> int:
        """Requests received (every path, including errors)."""
        with self._lock:
            return self._requests

    def first_at(self, route: str) -> float | None:
        """When the first request of ``route`` arrived (``time.monotonic()``), None before one
        did: benchmarks time a client's start-up by it."""
        with self._lock:
            return self._first_at.get(route)

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
