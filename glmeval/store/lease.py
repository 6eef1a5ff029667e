"""The run lease: which process is running (or resuming) a run, so no job is sent twice.

A run's jobs are sent by exactly one holder at a time: a ``glmeval run``, a ``--resume``, or
one pytest session (its xdist workers share the holder's token). The holder keeps a row in
``leases`` and a daemon thread refreshes its ``heartbeat`` every :data:`HEARTBEAT_S`
seconds; the row goes when the run ends. A holder is dead when its heartbeat is older than
:data:`STALE_S` (this works across machines) or, on the same host, when its pid is gone
(so a run killed with ``kill -9`` can be resumed at once rather than after the stale time).

Taking a lease is one transaction: read the row, and if its holder is alive refuse
(:class:`LeaseHeld`, one line naming host, pid and since); otherwise a conditional upsert
that only replaces the holder that was read. Two resumers racing for a dead lease both read
the same dead holder, and only the first upsert still finds it there: exactly one wins, on
SQLite (writes are serialised) and on PostgreSQL (``ON CONFLICT DO UPDATE ... WHERE`` sees
the row's latest version). The SQL is portable: ``?`` placeholders, no SQLite-only verbs.

A run whose status is still ``running`` but whose holder is dead (or absent, past the start
window) was killed: :func:`effective_status` reads it as ``interrupted``, and
:func:`unfinished_line` says how many jobs it lacks and how to finish it.
"""

from __future__ import annotations

import atexit
import os
import platform
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from glmeval.errors import GlmevalError
from glmeval.store.shards import is_sharded
from glmeval.store.sqlite import write_transaction

if TYPE_CHECKING:
    from glmeval.store.runinfo import RunInfo
    from glmeval.store.store import Store

HEARTBEAT_S = 5.0
STALE_S = 30.0

_COLUMNS = "run_id, holder, host, pid, since, heartbeat"


def this_host() -> str:
    return platform.node() or "localhost"


@dataclass(frozen=True)
class Holder:
    """Who holds a run: a random ``token`` (what the lease is compared by), where it runs
    (``host``, ``pid``), since when, and its last heartbeat (Unix seconds)."""

    token: str
    host: str
    pid: int
    since: float
    heartbeat: float

    def alive(self, now: float | None = None, stale_s: float = STALE_S) -> bool:
        """Whether the holder may still be sending: a recent heartbeat, and on this host a
        live pid (a dead pid frees the lease at once, whatever the heartbeat says)."""
        now = time.time() if now is None else now
        if now - self.heartbeat > stale_s:
            return False
        return self.host != this_host() or pid_alive(self.pid)

    def describe(self) -> str:
        """``pid 1234 on ci-7 since 2026-12-01 22:53:20``."""
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"pid {self.pid} on {self.host} since {when}"

    def encode(self) -> str:
        return f"{self.token}:{self.host}:{self.pid}"

    @classmethod
    def decode(cls, text: str) -> Holder | None:
        """A holder handed to a process that joins it (an xdist worker); None for anything
        malformed."""
        token, _, rest = text.partition(":")
        host, _, pid = rest.rpartition(":")
        if not token or not host or not pid.isdigit():
            return None
        now = time.time()
        return cls(token, host, int(pid), now, now)


def new_holder(host: str | None = None, pid: int | None = None) -> Holder:
    """A holder for this process (or for ``host``/``pid``, the process it stands for)."""
    now = time.time()
    return Holder(uuid.uuid4().hex, host or this_host(), os.getpid() if pid is None else pid, now, now)


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rpartition(")")[2].split()[:1] != ["Z"]
    except OSError:  # no /proc (macOS): os.kill said it exists
        return True


class LeaseHeld(GlmevalError):
    """Another live process holds the run (one line, exit 2)."""

    def __init__(self, run_id: str, holder: Holder) -> None:
        self.run_id = run_id
        self.holder = holder
        super().__init__(
            f"run {run_id} is being run by {holder.describe()}; wait for it to finish "
            f"(or stop that process), then glmeval run --resume {run_id}"
        )


def _holder(row: Any) -> Holder:
    return Holder(str(row[1]), str(row[2]), int(row[3]), float(row[4]), float(row[5]))


def read_holder(conn: Any, run_id: str) -> Holder | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM leases WHERE run_id = ?", (run_id,)).fetchone()
    return _holder(row) if row else None


def read_holders(conn: Any, run_ids: Iterable[str]) -> dict[str, Holder]:
    ids = list(dict.fromkeys(run_ids))
    out: dict[str, Holder] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(f"SELECT {_COLUMNS} FROM leases WHERE run_id IN ({marks})", chunk):
            out[str(row[0])] = _holder(row)
    return out


def try_acquire(conn: Any, run_id: str, me: Holder, now: float | None = None) -> Holder:
    """Take the lease of ``run_id`` for ``me`` unless another live holder has it; returns the
    holder after the attempt (``me``'s token when taken, the live one's when refused).

    Holding it already (same token: a second xdist worker) refreshes the heartbeat and keeps
    ``since``. The upsert replaces only the holder read in this transaction, so of two
    processes taking over one dead lease exactly one gets it.
    """
    now = time.time() if now is None else now
    with write_transaction(conn):
        current = read_holder(conn, run_id)
        if current is not None and current.token != me.token and current.alive(now):
            return current
        expected = current.token if current is not None else me.token
        conn.execute(
            f"INSERT INTO leases ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id) DO UPDATE SET holder = excluded.holder, host = excluded.host, pid = excluded.pid, "
            "since = CASE WHEN leases.holder = excluded.holder THEN leases.since ELSE excluded.since END, "
            "heartbeat = excluded.heartbeat "
            "WHERE leases.holder = ? OR leases.holder = ?",
            (run_id, me.token, me.host, me.pid, now, now, expected, me.token),
        )
        after = read_holder(conn, run_id)
    assert after is not None
    return after


def beat(conn: Any, run_id: str, token: str, now: float | None = None) -> bool:
    """Refresh the heartbeat; False when the lease is no longer ``token``'s."""
    cursor = conn.execute(
        "UPDATE leases SET heartbeat = ? WHERE run_id = ? AND holder = ?",
        (time.time() if now is None else now, run_id, token),
    )
    return bool(cursor.rowcount)


def release(conn: Any, run_id: str, token: str) -> None:
    """Give the lease up (only if it is still ``token``'s)."""
    conn.execute("DELETE FROM leases WHERE run_id = ? AND holder = ?", (run_id, token))


class RunLease:
    """The lease one process holds on one run, with its heartbeat thread.

    ``acquire()`` takes it or raises :class:`LeaseHeld`; ``release()`` (also on ``with``
    exit and, as a last resort, at interpreter exit) gives it up. The heartbeat runs on its
    own connection (a :class:`Store` is not shared across threads), opened by ``connect``.
    When a beat finds the lease gone (taken over because this process stalled for longer
    than :data:`STALE_S`), ``on_lost`` is called once: the runner stops sending.
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        holder: Holder | None = None,
        *,
        connect: Callable[[], Store] | None = None,
        heartbeat_s: float = HEARTBEAT_S,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.holder = holder or new_holder()
        self.connect = connect or store.reopen
        self.heartbeat_s = heartbeat_s
        self.on_lost = on_lost
        self.held = False
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> RunLease:
        current = try_acquire(self.store.conn, self.run_id, self.holder)
        if current.token != self.holder.token:
            raise LeaseHeld(self.run_id, current)
        self.holder = current
        self.held = True
        atexit.register(self.release)
        self._thread = threading.Thread(target=self._beat, name=f"glmeval-lease-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        store: Store | None = None
        try:
            while not self._stop.wait(self.heartbeat_s):
                try:
                    if store is None:
                        store = self.connect()
                    still = beat(store.conn, self.run_id, self.holder.token)
                except Exception:  # a busy or briefly unreachable database: beat again next time
                    continue
                if not still and not self._stop.is_set():
                    self.lost = True
                    if self.on_lost is not None:
                        self.on_lost()
                    return
        finally:
            if store is not None:
                store.close()

    def release(self, delete: bool = True) -> None:
        """Stop the heartbeat and delete the row (safe to call twice, and after a loss).
        ``delete=False`` only stops beating: an xdist worker done with its share leaves the
        row to the others and to the controller, which deletes it when the session ends."""
        if not self.held:
            return
        self.held = False
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.heartbeat_s + 1)
        atexit.unregister(self.release)
        if not delete:
            return
        try:
            release(self.store.conn, self.run_id, self.holder.token)
        except Exception:  # the store is closed or gone: the heartbeat goes stale instead
            pass

    def __enter__(self) -> RunLease:
        return self.acquire() if not self.held else self

    def __exit__(self, *exc: object) -> None:
        self.release()


def effective_status(info: RunInfo, holder: Holder | None, now: float | None = None) -> str:
    """A run's status as a reader should see it: a ``running`` run without a live holder
    was killed, and is ``interrupted``. A run just started may not have its lease row yet,
    so one without any row counts as running for :data:`STALE_S` after it started."""
    if info.status != "running":
        return info.status
    now = time.time() if now is None else now
    if holder is not None:
        return "running" if holder.alive(now) else "interrupted"
    return "running" if now - info.started_at <= STALE_S else "interrupted"


def with_live_status(conn: Any, runs: list[RunInfo]) -> list[RunInfo]:
    """``runs`` with every stored ``running`` replaced by :func:`effective_status`, and the
    live holder kept on the run (``RunInfo.holder``) for ``glmeval show``."""
    running = [r for r in runs if r.status == "running"]
    if running:
        # A run split into shards is running until its last shard ends (glmeval.store.shards
        # settles it); no one process holds it, so no lease says it died.
        running = [r for r in running if not is_sharded(conn, r.id)]
    if not running:
        return runs
    holders = read_holders(conn, [r.id for r in running])
    now = time.time()
    for run in running:
        holder = holders.get(run.id)
        run.status = effective_status(run, holder, now)
        if run.status == "running":
            run.holder = holder.describe() if holder is not None else None
    return runs


def unfinished_line(info: RunInfo, results: int) -> str | None:
    """``interrupted: 336 of 400 jobs have no result: glmeval run --resume RUN`` for a run
    that stopped before every planned job had a result; None for a finished one (or when the
    planned count was never stored)."""
    planned = info.total_jobs
    if not planned or results >= planned or info.status == "complete":
        return None
    missing = planned - results
    jobs = "jobs have"
    if info.status == "running":
        return f"running: {missing} of {planned} {jobs} no result yet"
    if info.settings.get("runner") == "pytest":
        return f"{info.status}: {missing} of {planned} {jobs} no result (pytest run {info.id}): run the tests again"
    return f"{info.status}: {missing} of {planned} {jobs} no result: glmeval run --resume {info.id}"


__all__ = [
    "HEARTBEAT_S",
    "STALE_S",
    "Holder",
    "LeaseHeld",
    "RunLease",
    "beat",
    "effective_status",
    "new_holder",
    "pid_alive",
    "read_holder",
    "read_holders",
    "release",
    "this_host",
    "try_acquire",
    "unfinished_line",
    "with_live_status",
]
