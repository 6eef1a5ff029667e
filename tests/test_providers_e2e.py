"""The issue's suite end to end: zhipu (zhipuai), zai (zai-sdk) and a self-hosted vLLM GLM (the
openai SDK) compared with thinking on and off, streamed, all through ``glmeval run --local``.

These need the local server's provider mounts (``/p/<name>/api/paas/v4``, ``/p/<name>/v1``,
``LocalServer(providers=...)``); until the server has them they are skipped by that check.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import glmeval
from glmeval.cli import main
from glmeval.run.client import Endpoint, GLMClient
from glmeval.simulator import LocalServer

MOUNTS = "providers" in inspect.signature(LocalServer).parameters
needs_mounts = pytest.mark.skipif(
    not MOUNTS, reason="the local server has no provider mounts yet (LocalServer(providers=...), /p/<name>/, /v1)"
)

ISSUE_SUITE = """\
name: providers
mode: stream
providers:
  selfhosted: {sdk: openai, base_url: "http://gpu-box:8000/v1", api_key_env: VLLM_API_KEY, dialect: vllm}
grid:
  provider: [zhipu, zai, selfhosted]
  model: [glm-4.7]
  thinking: [on, off]
messages:
  - {role: user, content: "{{ question }}"}
cases:
  - id: capital
    vars: {question: "What is the capital of France?"}
    checks: [{contains: Paris}]
  - id: beijing
    vars: {question: 中国的首都是哪里？}
    checks: [{contains: 北京}]
"""


@needs_mounts
def test_the_issue_suite_runs_green_against_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ZHIPUAI_API_KEY", "ZHIPU_API_KEY", "ZAI_API_KEY", "VLLM_API_KEY"):
        monkeypatch.delenv(name, raising=False)  # --local needs none of them
    suite = tmp_path / "providers.yaml"
    suite.write_text(ISSUE_SUITE, encoding="utf-8")
    db = tmp_path / "h.db"
    result = CliRunner().invoke(main, ["run", str(suite), "--local", "--local-speed", "0", "--db", str(db), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    frame = glmeval.results(db=db)
    assert sorted(frame["provider"].astype(str).unique()) == ["selfhosted", "zai", "zhipu"]
    assert (frame["status"] == "pass").all()
    for provider in ("zhipu", "zai", "selfhosted"):
        rows = frame[frame["provider"].astype(str) == provider]
        on, off = rows[rows["thinking"] == "on"], rows[rows["thinking"] == "off"]
        assert len(on) == 2 and len(off) == 2, provider
        # Whatever the wire calls it (reasoning_content, reasoning), it is in `reasoning`.
        assert (on["reasoning"].str.len() > 0).all() and (on["reasoning_tokens"] > 0).all(), provider
        assert not on["output"].str.contains("The user asks").any(), provider
        assert (off["reasoning"] == "").all(), provider
        assert on["ttfr_ms"].notna().all() and (on["ttfr_ms"] < on["ttft_ms"]).all(), provider


@pytest.fixture(scope="module")
def mounted() -> Iterator[Any]:
    if not MOUNTS:
        pytest.skip("the local server has no provider mounts yet")
    dialects = {"vllm": "vllm", "sglang": "sglang", "dashscope": "dashscope", "openrouter": "openrouter"}
    with LocalServer(speed=0.0, providers=dialects) as srv:  # type: ignore[call-arg]
        yield srv


@needs_mounts
@pytest.mark.parametrize("dialect", ["vllm", "sglang", "dashscope", "openrouter"])
@pytest.mark.parametrize("mode", ["sync", "stream"])
def test_every_dialect_switches_thinking_and_lands_in_reasoning(mounted: Any, dialect: str, mode: Any) -> None:
    root = mounted.base_url.rsplit("/api/paas/v4", 1)[0]
    client = GLMClient(None, timeout=10, endpoints=[Endpoint(dialect, "openai", f"{root}/p/{dialect}/v1", mounted.api_key, dialect, {}, "K")])  # type: ignore[arg-type]
    try:
        ask = [{"role": "user", "content": "What is the capital of France?"}]
        on = client.attempt("glm-4.7", mode, ask, {"thinking": {"type": "enabled"}}, dialect)
        off = client.attempt("glm-4.7", mode, ask, {"thinking": {"type": "disabled"}}, dialect)
    finally:
        client.close()
    assert "Paris" in on.text and "Paris" in off.text
    assert on.reasoning and on.reasoning_tokens
    assert off.reasoning == "" and not off.reasoning_tokens
    assert on.prompt_tokens > 0 and on.completion_tokens > on.reasoning_tokens
