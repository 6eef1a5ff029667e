"""Reasoning from the wire to ``glmeval.results()``: client, store, frames, export/import, cache.

A thinking model's answer arrives with ``reasoning_content`` and usage that counts reasoning
tokens inside ``completion_tokens``. These tests follow that data through the real zhipuai SDK
against the local server: the client keeps the reasoning apart from the answer and times the
first reasoning and the first answer token, the store keeps every new field, the frames
expose them, and neither an export/import round trip nor a cached replay loses them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from zhipuai.types.chat.chat_completion import Completion as SDKCompletion
from zhipuai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall
from zhipuai.types.chat.chat_completion_chunk import CompletionUsage as ChunkUsage

import glmeval
from glmeval.analysis.frames import FRAME_COLUMNS, RESULT_COLUMNS, summary_frame
from glmeval.catalogue.tokens import count_tokens
from glmeval.cli import main
from glmeval.records import Completion, ToolCall
from glmeval.run.client import GLMClient
from glmeval.run.transports.common import from_response
from glmeval.run.transports.common import stream_tool_calls as _stream_tool_calls
from glmeval.run.transports.common import usage_into as _usage
from glmeval.simulator import LocalServer

HELLO = [{"role": "user", "content": "你好"}]
THINK = {"thinking": {"type": "enabled"}}
NEW_COLUMNS = ["reasoning", "reasoning_tokens", "reasoning_estimated", "ttfr_ms", "cached_tokens", "web_search", "thinking"]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(speed=0.05) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: LocalServer) -> Iterator[GLMClient]:
    c = GLMClient(server.api_key, server.base_url, timeout=20, poll_timeout=20)
    yield c
    c.close()


def _raw(server: LocalServer, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """The sync response body as the server sent it, read without the SDK."""
    body = {"model": model, "messages": messages, **params}
    url = server.base_url.rstrip("/") + "/chat/completions"
    response = httpx.post(url, json=body, headers={"Authorization": f"Bearer {server.api_key}"}, timeout=20)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def _assert_reasoning_apart(c: Completion) -> None:
    assert c.ok and c.text and c.reasoning
    assert c.reasoning not in c.text and c.text not in c.reasoning
    assert c.reasoning_tokens is not None and 0 < c.reasoning_tokens <= c.completion_tokens
    if c.reasoning_estimated:
        assert c.reasoning_tokens == min(count_tokens(c.reasoning), c.completion_tokens)


# -- the client -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "stream", "async"])
def test_thinking_answer_keeps_reasoning_apart(client: GLMClient, server: LocalServer, mode: str) -> None:
    greedy = {**THINK, "do_sample": False}  # two calls compared: sampled replies vary per call
    c = client.attempt("glm-4.5", mode, HELLO, greedy)
    _assert_reasoning_apart(c)
    raw = _raw(server, "glm-4.5", HELLO, greedy)
    message = raw["choices"][0]["message"]
    # The simulator answers a prompt the same way in every mode: the split is exactly the wire's.
    assert (c.text, c.reasoning) == (message["content"], message["reasoning_content"])
    details = raw["usage"].get("completion_tokens_details") or {}
    if "reasoning_tokens" in details:
        assert (c.reasoning_tokens, c.reasoning_estimated) == (details["reasoning_tokens"], False)
    else:
        assert c.reasoning_estimated
    if mode == "stream":
        assert c.ttfr_ms is not None and c.ttft_ms is not None and c.latency_ms is not None
        assert 0 < c.ttfr_ms < c.ttft_ms < c.latency_ms
    else:
        assert c.ttfr_ms is None and c.ttft_ms is None


@pytest.mark.parametrize("mode", ["sync", "stream", "async"])
def test_model_that_does_not_think_has_no_reasoning(client: GLMClient, server: LocalServer, mode: str) -> None:
    c = client.attempt("glm-4", mode, HELLO, {})
    assert c.ok and c.text and c.reasoning == ""
    assert c.reasoning_tokens == 0 and not c.reasoning_estimated
    assert c.ttfr_ms is None
    if mode == "stream":
        # TTFT is the first answer token, which for glm-4 is its first chunk, as before.
        assert c.ttft_ms is not None and 0 < c.ttft_ms < (c.latency_ms or 0)
    assert c.cached_tokens is None or 0 <= c.cached_tokens <= c.prompt_tokens
    details = _raw(server, "glm-4", HELLO, {})["usage"].get("prompt_tokens_details")
    if mode != "async" and details is not None:  # the count may differ between two calls (prefix caching)
        assert isinstance(c.cached_tokens, int)


@pytest.mark.parametrize("mode", ["sync", "stream"])
def test_web_search_results_come_through(client: GLMClient, server: LocalServer, mode: str) -> None:
    tools = [{"type": "web_search", "web_search": {"enable": True, "search_result": True}}]
    messages = [{"role": "user", "content": "今天北京有什么新闻？"}]
    c = client.attempt("glm-4", mode, messages, {"tools": tools})
    assert c.ok and c.web_search and all(item.get("title") and item.get("link") for item in c.web_search)
    assert c.web_search == _raw(server, "glm-4", messages, {"tools": tools}).get("web_search", [])


def test_parameters_create_does_not_take_go_in_extra_body(client: GLMClient) -> None:
    """zhipuai's create() has no ``reasoning_effort`` or ``tool_stream``; passing them as
    keywords would be a TypeError, so they travel in the request body through extra_body."""
    bodies: list[dict[str, Any]] = []

    def keep(request: httpx.Request) -> None:
        if request.url.path.endswith("/chat/completions"):
            bodies.append(json.loads(request.content))

    http = client.transport("zhipu")._http  # type: ignore[attr-defined]
    http.event_hooks["request"].append(keep)
    try:
        c = client.attempt("glm-4.5", "stream", HELLO, {**THINK, "reasoning_effort": "high", "tool_stream": True})
    finally:
        http.event_hooks["request"].remove(keep)
    assert c.ok
    assert bodies and bodies[-1]["reasoning_effort"] == "high" and bodies[-1]["tool_stream"] is True
    assert bodies[-1]["thinking"] == {"type": "enabled"} and bodies[-1]["stream"] is True


def test_2026_sync_capture_through_the_sdk_types() -> None:
    """The captured glm-4.7-flash response (zhipu-api-2026.md §2.2) plus a web_search array,
    parsed by the SDK's own type: its sync usage type declares no ``*_details`` and nothing
    declares ``web_search``; the client reads them all the same."""
    capture = {
        "choices": [{"finish_reason": "stop", "index": 0, "message": {
            "content": "I'll get the weather.", "reasoning_content": "The user is asking for the weather", "role": "assistant"}}],
        "created": 1773349530, "id": "20260313050528067228b617b540a4", "model": "glm-4.7-flash", "object": "chat.completion",
        "request_id": "20260313050528067228b617b540a4",
        "usage": {"completion_tokens": 89, "completion_tokens_details": {"reasoning_tokens": 61}, "prompt_tokens": 173,
                  "prompt_tokens_details": {"cached_tokens": 169}, "total_tokens": 262},
        "web_search": [{"title": "天气", "link": "https://example.com/w", "content": "晴", "refer": "ref_1",
                        "media": "example", "icon": "", "publish_date": "2026-03-13"}],
    }
    c = from_response(SDKCompletion.model_validate(capture))
    assert (c.text, c.reasoning) == ("I'll get the weather.", "The user is asking for the weather")
    assert (c.reasoning_tokens, c.reasoning_estimated, c.completion_tokens, c.total_tokens) == (61, False, 89, 262)
    assert c.cached_tokens == 169
    assert c.web_search == capture["web_search"]


def test_reasoning_tokens_are_never_counted_twice() -> None:
    """completion_tokens includes the reasoning tokens; a usage block whose reasoning count
    exceeds it cannot, and gets them added once, so cost (completion_tokens at the output
    price) counts reasoning as output exactly once either way."""
    included = Completion()
    _usage(included, ChunkUsage.model_validate(
        {"prompt_tokens": 15, "completion_tokens": 249, "total_tokens": 264, "completion_tokens_details": {"reasoning_tokens": 239}}))
    assert (included.completion_tokens, included.total_tokens, included.reasoning_tokens) == (249, 264, 239)
    excluded = Completion()
    _usage(excluded, ChunkUsage.model_validate(
        {"prompt_tokens": 15, "completion_tokens": 10, "total_tokens": 25, "completion_tokens_details": {"reasoning_tokens": 239}}))
    assert (excluded.completion_tokens, excluded.total_tokens, excluded.reasoning_tokens) == (249, 264, 239)


def test_tool_stream_fragments_join_into_one_call() -> None:
    """With ``tool_stream`` a call's arguments arrive in pieces under one index (the shape is
    unconfirmed; OpenAI's is assumed); whole calls, one per delta, stay apart."""
    deltas = [
        [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}],
        [{"index": 0, "function": {"arguments": '{"city": '}}],
        [{"index": 0, "function": {"arguments": '"北京"}'}}],
        [{"index": 1, "id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}],
        [{"index": 0, "id": "call_3", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "上海"}'}}],
    ]
    calls: list[ToolCall] = []
    by_index: dict[int, ToolCall] = {}
    for delta in deltas:
        assert _stream_tool_calls(calls, by_index, [ChoiceDeltaToolCall.model_validate(d) for d in delta])
    assert [(t.id, t.name, json.loads(t.arguments)) for t in calls] == [
        ("call_1", "get_weather", {"city": "北京"}), ("call_2", "get_time", {}), ("call_3", "get_weather", {"city": "上海"}),
    ]
    assert not _stream_tool_calls(calls, by_index, None)


# -- a run, stored, framed, exported, replayed ---------------------------------------------------------

THINKING_SUITE = """\
name: reasoning-data
grid:
  model: [glm-4.5]
  mode: [sync, stream]
params:
  thinking: {type: enabled}
messages:
  - {role: user, content: "{{ question }}"}
cases:
  - id: capital
    vars: {question: 中国的首都是哪里？}
  - id: hello
    vars: {question: 你好}
"""

PLAIN_SUITE = """\
name: reasoning-plain
grid:
  model: [glm-4]
  mode: [sync, stream]
messages:
  - {role: user, content: 你好}
cases:
  - id: hello
"""


def _same(left: list[Any], right: list[Any], column: str) -> None:
    """Equal lists, NaN equal to NaN (a float column's missing values)."""
    assert len(left) == len(right), column
    for a, b in zip(left, right):
        both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
        assert both_nan or a == b, (column, a, b)


def _run(folder: Path, suite_text: str, db: Path, *extra: str) -> None:
    suite = folder / "suite.yaml"
    suite.write_text(suite_text, encoding="utf-8")
    result = CliRunner().invoke(
        main, ["run", str(suite), "--local", "--local-speed", "0.05", "--db", str(db), "--no-report", *extra]
    )
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def thinking_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("reasoning")
    db = folder / "h.db"
    _run(folder, THINKING_SUITE, db)
    return db


def test_results_frame_has_reasoning_apart_from_the_answer(thinking_db: Path) -> None:
    frame = glmeval.results(db=thinking_db)
    assert set(NEW_COLUMNS) <= set(frame.columns)
    assert list(frame.columns[: len(FRAME_COLUMNS)]) == FRAME_COLUMNS  # the stored columns, provider after model
    assert [c for c in FRAME_COLUMNS if c != "provider"] == RESULT_COLUMNS and set(frame["provider"]) == {"zhipu"}
    assert sorted(frame["mode"]) == ["stream", "stream", "sync", "sync"]
    for row in frame.to_dict("records"):
        assert row["status"] == "pass" and row["output"] and row["reasoning"]
        assert row["reasoning"] not in row["output"]
        assert 0 < row["reasoning_tokens"] <= row["completion_tokens"]
        assert row["thinking"] == "on"
        assert row["cached_tokens"] >= 0
        if row["mode"] == "stream":
            assert 0 < row["ttfr_ms"] < row["ttft_ms"] < row["latency_ms"]
        else:
            assert math.isnan(row["ttfr_ms"])
    # Sync and stream answers of one case are the same answer, reasoning and all.
    for _, group in frame.groupby("case_id"):
        assert group["output"].nunique() == 1 and group["reasoning"].nunique() == 1


def test_store_reads_back_every_new_field(thinking_db: Path) -> None:
    from glmeval.store import Store

    with Store(thinking_db, create=False) as store:
        run_id = store.resolve_run("latest")
        loaded = [store.load_result(row) for row in store.iter_results(run_id)]
    frame = glmeval.results(db=thinking_db)
    for result, row in zip(loaded, frame.to_dict("records")):
        c = result.completion
        assert (c.reasoning, c.reasoning_tokens, c.reasoning_estimated) == (
            row["reasoning"], row["reasoning_tokens"], row["reasoning_estimated"])
        assert c.cached_tokens == row["cached_tokens"]
        assert (c.ttfr_ms is None) == math.isnan(row["ttfr_ms"])
        assert result.job.thinking == row["thinking"] == "on"


def test_summary_has_reasoning_tokens_and_ttfr(thinking_db: Path, tmp_path: Path) -> None:
    frame = glmeval.results(db=thinking_db)
    summary = summary_frame(frame)
    for _, row in summary.iterrows():
        tokens = frame[frame["variant_id"] == row["variant"]]["reasoning_tokens"]
        assert row["reasoning_tokens_total"] == tokens.sum()
        assert row["reasoning_tokens_mean"] == pytest.approx(tokens.mean())
    modes = dict(zip(frame["variant_id"], frame["mode"]))
    for _, row in summary.iterrows():
        assert math.isnan(row["ttfr_p50_ms"]) == (modes[row["variant"]] == "sync")

    db = tmp_path / "plain.db"
    _run(tmp_path, PLAIN_SUITE, db)
    plain = glmeval.results(db=db)
    assert set(NEW_COLUMNS) <= set(plain.columns)
    assert (plain["reasoning"] == "").all() and (plain["reasoning_tokens"] == 0).all()
    assert not plain["reasoning_estimated"].any() and plain["ttfr_ms"].isna().all()
    assert plain["thinking"].isna().all() and plain["web_search"].isna().all()
    plain_summary = summary_frame(plain)
    for column in ("reasoning_tokens_mean", "reasoning_tokens_total", "ttfr_p50_ms"):
        assert plain_summary[column].isna().all(), column


def test_export_import_keeps_reasoning_and_old_exports_still_import(thinking_db: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    export_file = tmp_path / "run.json"
    out = runner.invoke(main, ["export", "latest", "--out", str(export_file), "--db", str(thinking_db)])
    assert out.exit_code == 0, out.output
    imported = tmp_path / "b.db"
    out = runner.invoke(main, ["import", str(export_file), "--db", str(imported)])
    assert out.exit_code == 0, out.output
    before, after = glmeval.results(db=thinking_db), glmeval.results(db=imported)
    for column in ("output", "reasoning", "reasoning_tokens", "reasoning_estimated", "ttfr_ms", "cached_tokens", "thinking"):
        _same(before[column].tolist(), after[column].tolist(), column)

    # An export from before m004 has none of these keys; it imports, and reads as "not recorded".
    data = json.loads(export_file.read_text(encoding="utf-8"))
    for item in data["results"]:
        for column in NEW_COLUMNS:
            item.pop(column, None)
    old_file = tmp_path / "old.json"
    old_file.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    old_db = tmp_path / "old.db"
    out = runner.invoke(main, ["import", str(old_file), "--db", str(old_db)])
    assert out.exit_code == 0, out.output
    old = glmeval.results(db=old_db)
    assert old["output"].tolist() == before["output"].tolist()
    assert (old["reasoning"] == "").all() and old["reasoning_tokens"].isna().all()
    assert old["thinking"].isna().all() and not old["reasoning_estimated"].any()


def test_jsonl_export_carries_reasoning(thinking_db: Path) -> None:
    out = CliRunner().invoke(main, ["export", "latest", "--format", "jsonl", "--db", str(thinking_db)])
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.output.splitlines() if line.strip()]
    frame = glmeval.results(db=thinking_db)
    assert [r["reasoning"] for r in rows] == frame["reasoning"].tolist()
    assert all(r["reasoning_tokens"] > 0 and r["thinking"] == "on" for r in rows)


def test_cached_replay_keeps_reasoning(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    _run(tmp_path, THINKING_SUITE, db)
    first = glmeval.results(db=db).sort_values("job_id")
    _run(tmp_path, THINKING_SUITE, db, "--replay")
    replayed = glmeval.results(db=db).sort_values("job_id")
    assert replayed["cached"].all() and not first["cached"].any()
    for column in ("output", "reasoning", "reasoning_tokens", "reasoning_estimated", "cached_tokens", "thinking", "ttft_ms", "ttfr_ms"):
        _same(replayed[column].tolist(), first[column].tolist(), column)
    # The summary leaves replayed timing out, as it does for latency and TTFT.
    assert summary_frame(replayed)["ttfr_p50_ms"].isna().all()
    _run(tmp_path, THINKING_SUITE, db, "--cache")
    assert glmeval.results(db=db).sort_values("job_id")["reasoning"].tolist() == first["reasoning"].tolist()


SEARCH_SUITE = """\
name: reasoning-search
mode: stream
model: glm-4
params:
  tools: [{type: web_search, web_search: {enable: true, search_result: true}}]
messages:
  - {role: user, content: 今天北京有什么新闻？}
cases:
  - id: news
"""


def test_web_search_results_are_stored_framed_and_exported(tmp_path: Path) -> None:
    from glmeval.store import Store

    db = tmp_path / "h.db"
    _run(tmp_path, SEARCH_SUITE, db)
    frame = glmeval.results(db=db)
    stored = json.loads(frame["web_search"].iloc[0])
    assert stored and all(item["title"] and item["link"] for item in stored)
    with Store(db, create=False) as store:
        loaded = [store.load_result(row) for row in store.iter_results(store.resolve_run("latest"))]
    assert loaded[0].completion.web_search == stored
    out = CliRunner().invoke(main, ["export", "latest", "--db", str(db)])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["results"][0]["web_search"] == stored
    jsonl = CliRunner().invoke(main, ["export", "latest", "--format", "jsonl", "--db", str(db)])
    assert json.loads(jsonl.output.splitlines()[0])["web_search"] == stored
