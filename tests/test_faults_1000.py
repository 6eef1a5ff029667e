"""1,000 jobs through ``glmeval run`` at its default retry settings under the faults of issue 16.

The local server answers 20% of requests with 429, 5% with 500, resets 2% of connections and
cuts 3% of streams (a non-stream request it would cut is reset instead). At the default
settings (a retry budget of wall time per job, no attempt count) not one job may end without
an answer, in sync mode (the server sends a small ``Retry-After``, which is honoured) and in
stream mode (no ``Retry-After``, as /api/paas/v4 sends none: glmeval's own backoff). And no
job is paid twice: the server saw exactly one request per job plus one per injected fault,
which is what the stored attempts add up to.

Only ``-j 32`` differs from the defaults (many jobs in flight, the local server at speed 0),
to bound the wall time; 429s halve the in-flight limit anyway, and the progress line says so.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from glmeval.cli import main
from glmeval.simulator import FaultConfig, LocalServer
from glmeval.store import Store

QUESTIONS = ["你好", "中国的首都是哪里？", "1+1等于几？", "写一首关于春天的诗", "hello", "今天天气怎么样？", "推荐一本书", "讲个笑话", "什么是机器学习？", "再见"]
FAULT_KINDS = ("rate_limit", "server_error", "reset", "cut_stream")


def _suite(path: Path, mode: str) -> Path:
    cases = "\n".join(f"  - id: q{i}\n    vars: {{question: \"{q}\"}}" for i, q in enumerate(QUESTIONS))
    path.write_text(
        f"""\
name: faults-{mode}
model: glm-4
mode: {mode}
repeat: 100
messages:
  - {{role: user, content: "{{{{ question }}}}"}}
checks:
  - {{type: max-chars, value: 10000}}
cases:
{cases}
""",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("mode, retry_after", [("sync", 0.05), ("stream", None)])
def test_thousand_jobs_under_faults_lose_none_at_default_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, retry_after: float | None
) -> None:
    faults = FaultConfig(rate_limit=0.20, server_error=0.05, reset=0.02, cut_stream=0.03, retry_after=retry_after, seed=16)
    suite = _suite(tmp_path / f"faults-{mode}.yaml", mode)
    db = tmp_path / "r.db"
    with LocalServer(speed=0, faults=faults) as server:
        monkeypatch.setenv("ZHIPUAI_API_KEY", server.api_key)
        started = time.monotonic()
        result = CliRunner().invoke(
            main,
            ["run", str(suite), "--base-url", server.base_url, "-j", "32", "--db", str(db), "--no-report"],
            catch_exceptions=False,
        )
        elapsed = time.monotonic() - started
        requests = server.stats.by_path.get("/chat/completions", 0)
        injected = server.stats.faults
        most_in_flight = server.stats.max_in_flight

    assert result.exit_code == 0, result.output
    assert "1000 passed, 0 failed, 0 errors of 1,000 jobs" in result.output
    assert "without an answer" not in result.output
    # The progress line says the 429s cut the in-flight limit.
    assert "glm-4: 32→" in result.stderr and "in flight (429s)" in result.stderr, result.stderr[-2000:]

    run = Store(db).list_runs()[-1]
    assert run.status == "complete"
    rows = [dict(r) for r in Store(db).iter_results(run.id)]
    assert len(rows) == 1000 and len({r["job_id"] for r in rows}) == 1000
    assert all(r["status"] == "pass" and r["output"] for r in rows)

    # Every fault kind happened; each cost one more request, never a job and never a second answer.
    assert set(FAULT_KINDS) <= set(injected) if mode == "stream" else set(FAULT_KINDS) - {"cut_stream"} <= set(injected)
    assert sum(injected.get(k, 0) for k in FAULT_KINDS) >= 250
    assert requests == sum(r["attempts"] for r in rows) == 1000 + sum(r["attempts"] - 1 for r in rows)
    assert requests == 1000 + sum(injected.get(k, 0) for k in FAULT_KINDS)
    assert max(r["attempts"] for r in rows) > 1 and all(r["retry_ms"] > 0 for r in rows if r["attempts"] > 1)
    assert most_in_flight <= 32
    assert elapsed < 150, f"{elapsed:.0f} s"
