"""10,000 jobs in ``mode: batch`` against the local server, whole processes: wall time, the price
against the same suite in sync mode, and a ``kill -9`` mid-batch followed by ``--resume``.

Prints numbers and ratios, never pass/fail (issue 15, "Done when": half the sync price, and no
finished batch submitted again). The server runs in this process so its counters can be read;
each ``glmeval run`` is its own process, pointed at it with ``--base-url``.
Run: ``python benchmarks/batch.py [--jobs N] [--latency-ms L]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from glmeval.simulator import LocalServer

QUESTIONS = ["你好", "中国的首都是哪里？", "1+1等于几？", "写一首关于春天的诗", "hello", "今天天气怎么样？", "推荐一本书",
             "讲个笑话", "什么是机器学习？", "再见"]


def _suite(path: Path, jobs: int, models: list[str]) -> Path:
    per_model = max(1, jobs // len(models))
    cases = "\n".join(f"  - {{id: q{i}, vars: {{question: \"{q}\"}}}}" for i, q in enumerate(QUESTIONS))
    path.write_text(
        f"name: batch-bench\nmode: batch\nrepeat: {max(1, per_model // len(QUESTIONS))}\ngrid:\n  model: [{', '.join(models)}]\n"
        "messages:\n  - {role: user, content: \"{{ question }}\"}\nchecks:\n  - {type: max-chars, value: 10000}\n"
        f"cases:\n{cases}\n",
        encoding="utf-8",
    )
    return path


def _cost(db: Path, mode: str) -> tuple[int, float]:
    with sqlite3.connect(db) as conn:
        n, cost = conn.execute("SELECT COUNT(*), SUM(cost) FROM results WHERE mode = ?", (mode,)).fetchone()
    return int(n or 0), float(cost or 0.0)


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])
    except sqlite3.Error:
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=200.0, help="each request's simulated latency")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalServer(fixed_latency_ms=args.latency_ms) as server:
        root = Path(tmp)
        env = {**os.environ, "ZHIPUAI_API_KEY": server.api_key}
        base = ["--base-url", server.base_url, "--no-report", "-q"]
        suite = _suite(root / "s.yaml", args.jobs, ["glm-4-plus"])
        db = root / "r.db"

        def glmeval(*extra: str) -> float:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "glmeval", "run", str(suite), *base, "--db", str(db), *extra],
                           env=env, check=False, capture_output=True)
            return time.perf_counter() - started

        batch_s = glmeval()
        sync_s = glmeval("--mode", "sync", "-j", "64")
        (nb, batch_cost), (ns, sync_cost) = _cost(db, "batch"), _cost(db, "sync")
        print(f"batch mode: {nb:,} jobs in {batch_s:.1f} s (whole process; the server answers a line in "
              f"{args.latency_ms:g} ms / {server.batch.workers} at once)")
        print(f"sync mode:  {ns:,} jobs in {sync_s:.1f} s (-j 64)")
        print(f"price: batch ¥{batch_cost:.4f} vs sync ¥{sync_cost:.4f}: {batch_cost / sync_cost if sync_cost else 0:.3f}×")

        # kill -9 once the first of three batches is stored, then --resume.
        server.batch.parallel = 1
        suite = _suite(root / "k.yaml", args.jobs, ["glm-4-plus", "glm-4-air", "glm-4-flash"])
        db = root / "k.db"
        before = server.stats.batches_created
        command = [sys.executable, "-m", "glmeval", "run", str(suite), *base, "--db", str(db)]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        first = args.jobs // 3 // len(QUESTIONS) * len(QUESTIONS)
        while proc.poll() is None and _count(db) < first:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        at_kill, created = _count(db), server.stats.batches_created - before
        started = time.perf_counter()
        subprocess.run([*command, "--resume", "latest"], env=env, check=False, capture_output=True)
        total = _count(db)
        print(f"kill -9 with {at_kill:,} results stored and {created} batches created; --resume in "
              f"{time.perf_counter() - started:.1f} s: {total:,} results, "
              f"{server.stats.batches_created - before - created} batches submitted again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
