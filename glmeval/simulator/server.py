"""The local GLM server: the Zhipu v4 chat protocol over real loopback HTTP.

glmeval and its tests talk to this server through the real ``zhipuai`` SDK, so the code path
is the production one: HTTP/1.1 keep-alive, SSE over chunked transfer-encoding with real
delays between chunks, Zhipu-shaped errors, TCP resets. This module is the front door
(:class:`LocalServer` on a background thread, :func:`serve_forever` in the foreground); the
parts are :mod:`.httpd` (handler and routing), :mod:`.sse` (streams), :mod:`.bodies`
(response shapes), :mod:`.state` and :mod:`.tasks` (shared state, async tasks),
:mod:`.stats` (counters) and :mod:`.protocol` (validation and auth).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from glmeval.cassette.format import Cassette
from glmeval.cassette.replay import Exhausted, MissMode, ReplayIndex
from glmeval.catalogue.dialects import DIALECTS, Dialect

from .batches import BatchConfig
from .faults import FaultConfig
from .httpd import API_PREFIX, SimHTTPServer
from .protocol import DEFAULT_API_KEY
from .rules import RuleSet
from .state import SimState
from .stats import Stats

__all__ = ["API_PREFIX", "DEFAULT_API_KEY", "LocalServer", "RulesPath", "Stats", "check_providers", "serve_forever"]

RulesPath = str | PathLike[str] | Sequence[str | PathLike[str]] | None


class LocalServer:
    """A local GLM server on a background thread (a simulator: every reply is canned).

    ``speed`` scales the simulated latency (1.0 realistic, 0.0 instant); ``fixed_latency_ms``
    replaces the model formula with one fixed total per request (streams keep the model's
    first-token share). ``api_key=None`` (the default) accepts any well-formed key, so an app
    works with whatever key it has; a given ``api_key`` makes the server strict (auth tests).
    ``speed``, ``faults`` and ``fixed_latency_ms`` may be changed while the server runs.

    ``seed`` seeds the sampler that picks each sampled reply's phrasing: the same seed gives
    the same answers call after call (see :mod:`.phrasing`).

    Streams go one token per chunk by default, as the real API (zhipu-api-2026.md §9).
    ``max_stream_chunks`` > 0 groups content tokens into at most that many chunks: the
    zhipuai SDK spends ~2 ms of CPU parsing each chunk, so load tests of thousands of streams
    would otherwise measure the client. A thinking model's reasoning always streams one token
    per chunk, whatever the cap.

    ``providers`` maps provider names to dialects: ``/p/<name>/api/paas/v4/...`` then serves the
    Zhipu wire and ``/p/<name>/v1/...`` the OpenAI-compatible wire in that dialect
    (:meth:`provider_url`); a dialect's own name (``/p/vllm/v1``) works without registering.
    ``cassette`` (a file or a loaded :class:`~glmeval.cassette.Cassette`) answers chat, async
    and embeddings requests from recorded answers, at their recorded times; a request it lacks
    is a 404 ``glmeval-cassette-miss``, or goes to the rules with ``cassette_miss="rules"``.
    ``cassette_exhausted`` says what a request asked more often than recorded gets (see
    :mod:`glmeval.cassette.replay`).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        rules_path: RulesPath = None,
        speed: float = 1.0,
        faults: FaultConfig | None = None,
        api_key: str | None = None,
        fixed_latency_ms: float | None = None,
        max_stream_chunks: int = 0,
        providers: Mapping[str, Dialect] | None = None,
        cassette: Cassette | Path | None = None,
        cassette_miss: MissMode = "error",
        cassette_exhausted: Exhausted = "error",
        seed: int = 0,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        if fixed_latency_ms is not None and fixed_latency_ms < 0:
            raise ValueError("fixed_latency_ms must be >= 0")
        if max_stream_chunks < 0:
            raise ValueError("max_stream_chunks must be >= 0 (0: one token per chunk)")
        self.host = host
        self._requested_port = port
        self._sim = SimState(
            RuleSet.from_paths(rules_path, seed=seed), speed, faults, api_key, fixed_latency_ms, max_stream_chunks
        )
        self._sim.providers = check_providers(providers or {})
        if cassette is not None:
            self._sim.cassette = ReplayIndex(cassette, cassette_miss, cassette_exhausted)
        self._httpd: SimHTTPServer | None = None
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
    def providers(self) -> dict[str, Dialect]:
        """The registered provider mounts: name -> dialect."""
        return dict(self._sim.providers)

    def provider_url(self, name: str, wire: str = "openai") -> str:
        """The base URL a client of provider ``name`` is given: ``.../p/<name>/v1`` for the
        openai SDK (``wire="openai"``), ``.../p/<name>/api/paas/v4`` for zhipuai and zai-sdk (``"zhipu"``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        tail = "/v1" if wire == "openai" else API_PREFIX
        return f"http://{host}:{self.port}/p/{name}{tail}"

    @property
    def strict(self) -> bool:
        """Whether only one key is accepted (``api_key`` was given)."""
        return self._sim.api_key is not None

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
    def batch(self) -> BatchConfig:
        """How batches run (``/batches``): speed, queueing, expiry, limits; change it while running."""
        return self._sim.batches.config

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
        self._httpd = SimHTTPServer((self.host, self._requested_port), self._sim)
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
    api_key: str | None = None,
    fixed_latency_ms: float | None = None,
    max_stream_chunks: int = 0,
    providers: Mapping[str, Dialect] | None = None,
    cassette: Cassette | Path | None = None,
    cassette_miss: MissMode = "error",
    seed: int = 0,
) -> None:
    """Run in the foreground until Ctrl-C (or SIGTERM); prints one line saying how to connect,
    and one per provider mount. A cassette's answers cycle: every run of an app against this
    server gets the same ones."""
    server = LocalServer(
        host, port, rules_path, speed, faults, api_key, fixed_latency_ms, max_stream_chunks, providers,
        cassette=cassette, cassette_miss=cassette_miss, cassette_exhausted="cycle", seed=seed,
    ).start()
    # Only the built-in demo key is printed: a key given on the command line may be a real one,
    # and this banner ends up in CI logs.
    if api_key is None:
        key = "any well-formed key is accepted (--api-key KEY to require one)"
    else:
        key = f"api_key={api_key}" if api_key == DEFAULT_API_KEY else "api_key=<the --api-key you gave>"
    replies = "simulated replies"
    if server._sim.cassette is not None:
        index = server._sim.cassette
        misses = "the rules answer the rest" if cassette_miss == "rules" else "others get 404 glmeval-cassette-miss"
        replies = f"replaying cassette {index.name}: {len(index)} recorded requests, {misses}"
    print(f"glmeval local GLM server ({replies}) on {server.base_url}  {key}  seed={seed}  (Ctrl-C to stop)", flush=True)
    for name, dialect in server.providers.items():
        print(f"  provider {name} ({dialect}): {server.provider_url(name)} (openai SDK), "
              f"{server.provider_url(name, 'zhipu')} (zhipuai, zai-sdk)", flush=True)
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


def check_providers(providers: Mapping[str, str]) -> dict[str, Dialect]:
    """``providers`` checked: each name one path segment, each dialect a known one (ValueError naming it)."""
    checked: dict[str, Dialect] = {}
    for name, dialect in providers.items():
        if not isinstance(name, str) or not name or "/" in name or name != name.strip():
            raise ValueError(f"provider name {name!r}: give one path segment, such as 'selfhosted'")
        if dialect not in DIALECTS:
            raise ValueError(f"provider {name!r}: unknown dialect {dialect!r}; known: {', '.join(DIALECTS)}")
        checked[name] = dialect
    return checked
