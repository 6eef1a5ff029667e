"""The local server's configuration and shared state, behind every request handler.

One :class:`SimState` per :class:`~glmeval.simulator.server.LocalServer`: the rules, the
latency settings and faults (changeable while the server runs), the counters and the async
task store. Fault decisions and delays live here because they read that shared state.
"""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING

from glmeval.catalogue.dialects import Dialect

from .batches import BatchStore
from .faults import NO_FAULT, FaultConfig, FaultDecision, decide_fault
from .models import ModelSpec
from .rules import RuleSet
from .stats import Stats
from .tasks import TaskStore

if TYPE_CHECKING:
    from glmeval.cassette.replay import ReplayIndex

__all__ = ["SimState"]


class SimState:
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
        self.tasks = TaskStore()
        self.batches = BatchStore(self)  # /files and /batches (the Batch API)
        self.providers: dict[str, Dialect] = {}  # provider mounts: name -> dialect (LocalServer providers=)
        self.cassette: ReplayIndex | None = None  # --cassette: recorded answers come first

    def decide(self, raw: bytes, allowed: frozenset[str] | None) -> FaultDecision:
        """The fault for this request body; keyed by how often the body was seen, so a retry can differ."""
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
