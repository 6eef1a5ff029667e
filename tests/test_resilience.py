"""A long run under real API conditions, end to end through the real SDK and the local server.

1,000 jobs against a local server that answers 20% of requests with 429 (Retry-After 0.01 s),
5% with 500, cuts 3% of streams mid-way and resets 2% of connections. Every job must end as a
pass/fail result, or as an error that says why; none may be missing; retried jobs record their
attempts, and the attempts the store records are exactly the requests the server saw.
"""

from __future__ import annotations

import time
from pathlib import Path

from glmeval.plan import build_plan
from glmeval.run.runner import RunOptions
from glmeval.session import Target, run_plan
from glmeval.simulator import FaultConfig
from glmeval.store import Store
from glmeval.suite import load_suite

QUESTIONS = ["你好", "中国的首都是哪里？", "1+1等于几？", "写一首关于春天的诗", "hello", "今天天气怎么样？", "推荐一本书", "讲个笑话", "什么是机器学习？", "再见"]


def _suite(path: Path, repeat: int) -> Path:
    cases = "\n".join(f"  - id: q{i}\n    vars: {{question: \"{q}\"}}" for i, q in enumerate(QUESTIONS))
    path.write_text(
        f"""\
name: resilience
model: glm-4
grid:
  mode: [sync, stream]
repeat: {repeat}
messages:
  - {{role: user, content: "{{{{ question }}}}"}}
checks:
  - {{type: max-chars, value: 60}}
cases:
{cases}
""",
        encoding="utf-8",
    )
    return path


def test_thousand_jobs_under_faults_lose_nothing(tmp_path: Path) -> None:
    suite = load_suite(_suite(tmp_path / "resilience.yaml", repeat=50))
    plan = build_plan(suite)
    assert len(plan.jobs) == 1000
    faults = FaultConfig(rate_limit=0.20, server_error=0.05, cut_stream=0.03, reset=0.02, retry_after=0.01, seed=7)
    store = Store(tmp_path / "r.db")
    started = time.monotonic()
    # A load test: coarse streams, or the SDK's per-chunk parsing would be what it measures.
    with Target(local=True, speed=0.0, faults=faults, concurrency=16, timeout=10, max_stream_chunks=8) as target:
        options = RunOptions(concurrency=16, retries=8, backoff_base=0.02, backoff_max=0.2, seed=1)
        outcome = run_plan(plan, store, target, options)
        server_stats = target.server.stats
        requests = server_stats.by_path.get("/chat/completions", 0)
        injected = server_stats.faults
    elapsed = time.monotonic() - started

    assert outcome.status == "complete"
    rows = [dict(r) for r in store.iter_results(outcome.run_id)]
    assert len(rows) == 1000
    assert {r["job_id"] for r in rows} == {j.id for j in plan.jobs}  # none missing, none twice
    for row in rows:
        assert row["status"] in ("pass", "fail", "error")
        if row["status"] == "error":
            assert row["error_kind"] and row["error_message"], row
        else:
            assert row["output"] and row["latency_ms"] is not None
    # Every fault kind was injected, and each one cost a retry, not a job.
    assert {"rate_limit", "server_error", "cut_stream", "reset"} <= set(injected)
    retried = [r for r in rows if r["attempts"] > 1]
    assert len(retried) >= 200
    assert all(r["retry_ms"] > 0 for r in retried)
    assert all(r["attempts"] == 1 and r["retry_ms"] == 0 for r in rows if r not in retried)
    # The attempts recorded are exactly the requests the server received.
    assert sum(r["attempts"] for r in rows) == requests
    assert sum(injected.get(k, 0) for k in ("rate_limit", "server_error", "cut_stream", "reset")) == requests - 1000 + sum(
        1 for r in rows if r["status"] == "error"
    )
    # Cut streams happened in stream mode and were retried as such.
    assert injected["cut_stream"] > 0
    assert elapsed < 60
