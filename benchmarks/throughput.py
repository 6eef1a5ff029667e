"""Throughput of glmeval's runner against a bare loop of raw SDK calls, same process, same server.

    python benchmarks/throughput.py --jobs 2000 --latency 200 --concurrency 32
    python benchmarks/throughput.py --jobs 5000 --latency 0 --concurrency 8
    python benchmarks/throughput.py --jobs 100000 --latency 0 --concurrency 32 --skip-bare

Both sides send N sync chat calls to the local GLM server answering after a fixed latency L
(``fixed_latency_ms``), C at a time:

- **glmeval**: what ``glmeval run`` does: load a suite, plan it, ``run_plan`` (Runner, checks,
  SQLite store in a temporary file, a result written per job, every answer cached).
- **bare**: ``zhipuai.ZhipuAI(...).chat.completions.create`` on a ``ThreadPoolExecutor(C)``,
  results dropped; no checks, no store.

Printed: both wall times and their ratio; CPU seconds of each (``time.process_time``) and
glmeval's extra CPU per job (its own overhead: the client-side work both share cancels out);
peak RSS, and the RSS sampled as the glmeval run progresses (flat = nothing accumulates).

The server runs in a separate process by default (``--server process``): the real API is
remote, and an in-process server would compete with the client for the GIL and put its own
CPU time in the measurement. ``--server thread`` runs it in this process instead.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

QUESTION = "中国的首都是哪里？"
MAX_REPEAT = 1000  # the suite format's limit on repeat


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS, KiB on Linux
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


@contextmanager
def server(kind: str, latency: float) -> Iterator[tuple[str, str, Any]]:
    """(base_url, api_key, LocalServer or None) of a local server with fixed latency."""
    from glmeval.simulator import DEFAULT_API_KEY, LocalServer

    if kind == "thread":
        with LocalServer(fixed_latency_ms=latency) as srv:
            yield srv.base_url, srv.api_key, srv
        return
    proc = subprocess.Popen(
        [sys.executable, "-m", "glmeval.simulator", "--port", "0", "--fixed-latency-ms", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://\S+)", line)
        if not match:
            raise SystemExit(f"the server did not start: {line!r}")
        yield match.group(1), DEFAULT_API_KEY, None
    finally:
        proc.terminate()
        proc.wait(10)


def write_suite(folder: Path, jobs: int) -> Path:
    """A suite of exactly ``jobs`` jobs: cases x repeat, one check each."""
    repeat = min(jobs, MAX_REPEAT)
    cases = -(-jobs // repeat)
    lines = [
        "name: throughput",
        "model: glm-4",
        "mode: sync",
        f"repeat: {repeat}",
        "messages:",
        f"  - {{role: user, content: '{QUESTION} {{{{ n }}}}'}}",
        "checks:",
        "  - contains: 北京",
        "cases:",
    ]
    lines += [f"  - {{id: c{i}, vars: {{n: {i}}}}}" for i in range(cases)]
    path = folder / "throughput.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_glmeval(base_url: str, api_key: str, jobs: int, concurrency: int, folder: Path) -> dict[str, Any]:
    from glmeval.plan import build_plan
    from glmeval.run.runner import RunOptions
    from glmeval.session import Target, run_plan
    from glmeval.store import Store
    from glmeval.suite import load_suite

    plan = build_plan(load_suite(write_suite(folder, jobs)))
    del plan.jobs[jobs:]
    gc.collect()
    rss_plan = rss_mb()
    store = Store(folder / "results.db")
    samples: list[tuple[int, float]] = []
    every = max(1, jobs // 10)

    def on_result(result: Any, counts: Any) -> None:
        if counts.done % every == 0:
            samples.append((counts.done, rss_mb()))

    with Target(base_url=base_url, api_key=api_key, concurrency=concurrency, timeout=60) as target:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        outcome = run_plan(plan, store, target, RunOptions(concurrency=concurrency, retries=0), on_result=on_result)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    rows = store.conn.execute("SELECT COUNT(*), SUM(status = 'pass') FROM results").fetchone()
    store.close()
    return {
        "wall": wall,
        "cpu": cpu,
        "status": outcome.status,
        "stored": rows[0],
        "passed": rows[1],
        "rss_plan": rss_plan,
        "samples": samples,
    }


def run_bare(base_url: str, api_key: str, jobs: int, concurrency: int) -> dict[str, Any]:
    import httpx
    import zhipuai

    http = httpx.Client(limits=httpx.Limits(max_connections=max(16, concurrency * 2), max_keepalive_connections=max(16, concurrency * 2)))
    sdk = zhipuai.ZhipuAI(api_key=api_key, base_url=base_url, max_retries=0, http_client=http, timeout=60)
    cases = -(-jobs // min(jobs, MAX_REPEAT))
    repeat = min(jobs, MAX_REPEAT)
    requests = [[{"role": "user", "content": f"{QUESTION} {i}"}] for i in range(cases) for _ in range(repeat)][:jobs]
    failures = 0

    def call(messages: list[dict[str, str]]) -> None:
        nonlocal failures
        try:
            sdk.chat.completions.create(model="glm-4", messages=messages)
        except Exception:
            failures += 1

    cpu0, wall0 = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for _ in pool.map(call, requests):
            pass
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    http.close()
    return {"wall": wall, "cpu": cpu, "failures": failures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=200.0, help="fixed server latency per call, ms")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--server", choices=["process", "thread"], default="process")
    parser.add_argument("--skip-bare", action="store_true", help="only the glmeval side (for memory runs)")
    parser.add_argument("--bare-first", action="store_true", help="run the bare loop before glmeval (warm-up order check)")
    args = parser.parse_args(argv)

    print(f"jobs={args.jobs} latency={args.latency:g} ms concurrency={args.concurrency} server={args.server}")
    ideal = args.jobs * args.latency / 1000 / args.concurrency
    with server(args.server, args.latency) as (base_url, api_key, _), tempfile.TemporaryDirectory() as tmp:
        bare: dict[str, Any] | None = None
        if not args.skip_bare and args.bare_first:
            bare = run_bare(base_url, api_key, args.jobs, args.concurrency)
        ours = run_glmeval(base_url, api_key, args.jobs, args.concurrency, Path(tmp))
        if not args.skip_bare and not args.bare_first:
            bare = run_bare(base_url, api_key, args.jobs, args.concurrency)

    print(f"ideal (N*L/C):     {ideal:8.2f} s")
    print(
        f"glmeval run:       {ours['wall']:8.2f} s wall  {ours['cpu']:8.2f} s CPU  "
        f"({ours['stored']} stored, {ours['passed']} passed, {ours['status']})"
    )
    if bare is not None:
        print(f"bare SDK loop:     {bare['wall']:8.2f} s wall  {bare['cpu']:8.2f} s CPU  ({bare['failures']} failed)")
        print(f"ratio glmeval/bare: {ours['wall'] / bare['wall']:.3f}x wall")
        extra = (ours["cpu"] - bare["cpu"]) / args.jobs * 1000
        print(f"glmeval CPU per job: {ours['cpu'] / args.jobs * 1000:.3f} ms, of which glmeval's own (minus bare): {extra:.3f} ms")
    else:
        print(f"glmeval CPU per job: {ours['cpu'] / args.jobs * 1000:.3f} ms (client + glmeval)")
    trail = "  ".join(f"{done}:{mb:.0f}" for done, mb in ours["samples"])
    print(f"RSS after plan: {ours['rss_plan']:.0f} MB; during the run (done:MB): {trail}")
    print(f"peak RSS: {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
