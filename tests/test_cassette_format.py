"""The cassette file and its parts: what a fingerprint ignores, a file that survives any text,
keys that never reach it, bad files named by line, cut streams and async polls replayed
through the SDK, and one recorder in front of several upstreams."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from glmeval.cassette import Cassette, Interaction, Response, load_cassette, request_key, write_cassette
from glmeval.cassette.format import Event, dump_cassette
from glmeval.cassette.recorder import start_recorder
from glmeval.cassette.replay import ReplayIndex
from glmeval.cli import main
from glmeval.errors import GlmevalError
from glmeval.simulator import LocalServer

TRICKY = "it's \"quoted\" \\ back\x1b[31m red \u202e rtl \x85 nel 🤖\n  indented line  \r\nend "


def test_the_fingerprint_ignores_key_order_volatile_fields_query_and_slashes() -> None:
    a = request_key("zhipu", "post", "/chat/completions/", b'{"b": 1, "a": 2, "request_id": "r-1", "user_id": "u", "thinking": null}')
    b = request_key("zhipu", "POST", "//chat/completions?token=x", b'{"a":2,"b":1,"request_id":"r-2"}')
    assert a == b
    assert a != request_key("zhipu", "POST", "/chat/completions", b'{"a":2,"b":3}')
    assert a != request_key("other", "POST", "/chat/completions", b'{"a":2,"b":1}')
    assert a != request_key("zhipu", "POST", "/embeddings", b'{"a":2,"b":1}')


def _sample() -> Cassette:
    body = json.dumps({"model": "glm-4", "messages": [{"role": "user", "content": TRICKY}], "request_id": "volatile"}).encode()
    answer = json.dumps({"choices": [{"message": {"content": TRICKY}}], "embedding": [0.25, -1.5e-05, 3]}, ensure_ascii=False).encode()
    stream = Response(
        status=200, headers={"content-type": "text/event-stream"}, ms=40, head_ms=10,
        events=[Event(12, "data: " + json.dumps({"delta": TRICKY}, ensure_ascii=False)), Event(30, "data: [DONE]")],
    )
    cut = Response(status=200, ms=25, head_ms=5, events=[Event(20, "data: {\"a\": 1}")], complete=False, tail='data: {"cho')
    return Cassette(
        upstreams={"zhipu": "https://open.bigmodel.cn/api/paas/v4"},
        interactions=[
            Interaction("zhipu", "POST", "/chat/completions", body, [Response(200, {"x-request-id": "r1"}, 812.4, answer)], label="case a, variant b\nsecond line"),
            Interaction("zhipu", "POST", "/chat/completions", b'{"stream": true}', [stream, cut]),
            Interaction("zhipu", "GET", "/async-result/task 1", b"", [Response(200, {}, 300, b"not json at all \x00\xff")], pending=b'{"task_status":"PROCESSING"}'),
        ],
    )


def test_a_cassette_survives_any_text_and_reads_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    write_cassette(path, _sample())
    text = path.read_text(encoding="utf-8")
    assert "volatile" not in text  # request_id is not part of the request, and not written
    assert "# case a, variant b\n# second line\n- upstream: zhipu" in text
    back = load_cassette(path)
    first, streamed, poll = back.interactions
    assert first.label == "case a, variant b\nsecond line" and first.line > 1
    assert first.json_body()["messages"][0]["content"] == TRICKY
    assert json.loads(first.responses[0].body)["choices"][0]["message"]["content"] == TRICKY
    assert json.loads(first.responses[0].body)["embedding"] == [0.25, -1.5e-05, 3]
    assert first.responses[0].headers == {"x-request-id": "r1"} and first.responses[0].ms == 812
    events = streamed.responses[0].events
    assert events is not None and [e.ms for e in events] == [12, 30]
    assert json.loads(events[0].sse.removeprefix("data: "))["delta"] == TRICKY
    assert not streamed.responses[1].complete and streamed.responses[1].tail == 'data: {"cho'
    assert poll.path == "/async-result/task 1" and poll.responses[0].body == b"not json at all \x00\xff"
    assert poll.pending == b'{"task_status":"PROCESSING"}'
    assert load_cassette(path).interactions[0].key == _sample().interactions[0].key


def test_no_key_or_url_token_reaches_the_file() -> None:
    key = "9a8b7c6d5e4f.S3cretPart0fKey"
    cassette = _sample()
    cassette.upstreams["proxy"] = "https://user:pa55Word99@proxy.example:8443/api/paas/v4/?token=Tok3nValue#frag"
    cassette.interactions[0].responses[0].body = json.dumps({"error": f"bad key {key} or {key.split('.')[1]}"}).encode()
    text = dump_cassette(cassette, secrets=[key])
    for secret in (key, "9a8b7c6d5e4f", "S3cretPart0fKey", "pa55Word99", "Tok3nValue", "user:", "frag"):
        assert secret not in text
    assert "proxy: 'https://proxy.example:8443/api/paas/v4'" in text and "bad key *** or ***" in text


def test_every_problem_in_a_bad_cassette_is_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    write_cassette(path, _sample())
    text = path.read_text(encoding="utf-8").replace("status: 200", "status: two hundred", 1)
    text = text.replace("GET /async-result/", "FETCH /async-result/")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(GlmevalError) as caught:
        load_cassette(path)
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}:") and "status must be an HTTP status code" in lines[0]
    assert "must be METHOD /path" in lines[1]
    path.write_text("format: glmeval-cassette/1\ninteractions: [\n", encoding="utf-8")
    with pytest.raises(GlmevalError, match=rf"^{path}:\d+: not valid YAML"):
        load_cassette(path)
    with pytest.raises(GlmevalError, match="record one with `glmeval run SUITE --record"):
        load_cassette(tmp_path / "missing.yaml")


def test_a_bad_cassette_stops_the_run_with_one_line(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\ncases:\n  - id: a\n    messages: [{role: user, content: hi}]\n", encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: something-else\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["run", str(suite), "--cassette", str(bad), "--db", str(tmp_path / "r.db"), "--no-report"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == f"error: {bad}:1: not a glmeval cassette (it needs `format: glmeval-cassette/1`)"
    both = CliRunner().invoke(main, ["run", str(suite), "--cassette", str(bad), "--record", str(bad)])
    assert both.exit_code == 2 and "contradict" in both.output


def _stream_cassette(path: Path, complete: bool) -> None:
    body = {"model": "glm-4", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    chunk = {"id": "r", "model": "glm-4", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "你好"}}]}
    final = {**chunk, "choices": [{"index": 0, "delta": {"content": "！"}, "finish_reason": "stop"}]}
    events = [Event(5, "data: " + json.dumps(chunk, ensure_ascii=False)), Event(150, "data: " + json.dumps(final, ensure_ascii=False))]
    if complete:
        events.append(Event(151, "data: [DONE]"))
    else:
        events = events[:1]
    write_cassette(path, Cassette(
        upstreams={"zhipu": "https://open.bigmodel.cn/api/paas/v4"},
        interactions=[Interaction("zhipu", "POST", "/chat/completions", json.dumps(body).encode(),
                                  [Response(200, {"content-type": "text/event-stream;charset=UTF-8"}, 160, head_ms=2, events=events, complete=complete)])],
    ))


@pytest.mark.parametrize("complete", [True, False], ids=["whole", "cut"])
def test_a_stream_replays_at_its_recorded_pace_and_a_cut_one_is_cut(tmp_path: Path, complete: bool) -> None:
    from glmeval.run.client import CallError, GLMClient

    path = tmp_path / "s.yaml"
    _stream_cassette(path, complete)
    with LocalServer(cassette=path) as server:
        client = GLMClient(server.api_key, server.base_url, timeout=10)
        try:
            if complete:
                completion = client.attempt("glm-4", "stream", [{"role": "user", "content": "hi"}], {})
                assert completion.text == "你好！" and completion.finish_reason == "stop"
                assert completion.ttft_ms is not None and completion.ttft_ms < 140 <= completion.latency_ms
            else:
                with pytest.raises(CallError) as caught:
                    client.attempt("glm-4", "stream", [{"role": "user", "content": "hi"}], {})
                assert caught.value.info.kind == "stream_cut"
        finally:
            client.close()


def test_an_async_poll_waits_as_long_as_the_recording_did(tmp_path: Path) -> None:
    import zhipuai

    create = {"model": "glm-4", "messages": [{"role": "user", "content": "hi"}]}
    task = {"id": "task-7", "request_id": "task-7", "model": "glm-4", "task_status": "PROCESSING"}
    done = {**task, "task_status": "SUCCESS", "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "好"}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
    path = tmp_path / "a.yaml"
    write_cassette(path, Cassette(interactions=[
        Interaction("zhipu", "POST", "/async/chat/completions", json.dumps(create).encode(), [Response(200, {}, 5, json.dumps(task).encode())]),
        Interaction("zhipu", "GET", "/async-result/task-7", b"", [Response(200, {}, 400, json.dumps(done).encode())], pending=json.dumps(task).encode()),
    ]))
    with LocalServer(cassette=path) as server:
        client = zhipuai.ZhipuAI(api_key=server.api_key, base_url=server.base_url, max_retries=0)
        started = time.monotonic()
        created = client.chat.asyncCompletions.create(**create)  # type: ignore[arg-type]
        assert created.id == "task-7"
        assert client.chat.asyncCompletions.retrieve_completion_result(id="task-7").task_status == "PROCESSING"
        time.sleep(max(0.0, 0.45 - (time.monotonic() - started)))
        result = client.chat.asyncCompletions.retrieve_completion_result(id="task-7")
        assert result.task_status == "SUCCESS" and result.choices[0].message.content == "好"


def test_one_recorder_fronts_several_upstreams(tmp_path: Path) -> None:
    import zhipuai

    path = tmp_path / "multi.yaml"
    with LocalServer(speed=0, api_key="k1") as first, LocalServer(speed=0, api_key="k2", rules_path=None) as second:
        recorder = start_recorder({"zhipu": first.base_url, "other": second.base_url}, path)
        urls = recorder.base_urls
        assert set(urls) == {"zhipu", "other"} and urls["zhipu"] != urls["other"]
        for name, key in (("zhipu", "k1"), ("other", "k2")):
            client = zhipuai.ZhipuAI(api_key=key, base_url=urls[name], max_retries=0)
            reply = client.chat.completions.create(model="glm-4", messages=[{"role": "user", "content": f"你好 {name}"}])
            assert reply.choices[0].message.content
        recorder.stop()
    cassette = load_cassette(path)
    assert set(cassette.upstreams) == {"zhipu", "other"}
    assert sorted(item.upstream for item in cassette.interactions) == ["other", "zhipu"]
    index = ReplayIndex(cassette)
    other = next(item for item in cassette.interactions if item.upstream == "other")
    assert not isinstance(index.answer("other", "POST", "/chat/completions", other.body), str)
    assert isinstance(index.answer("zhipu", "POST", "/chat/completions", other.body), str)  # filed under its upstream


def test_recording_an_unreachable_api_names_it_and_keeps_the_old_cassette(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\ncases:\n  - id: a\n    messages: [{role: user, content: hi}]\n", encoding="utf-8")
    cassette = tmp_path / "c.yaml"
    cassette.write_text("a good recording\n", encoding="utf-8")
    monkeypatch.setenv("ZHIPUAI_API_KEY", "abc123.Def456")
    url = f"http://127.0.0.1:{port}/api/paas/v4"
    result = CliRunner().invoke(main, [
        "run", str(suite), "--base-url", url, "--record", str(cassette), "--retries", "0",
        "--db", str(tmp_path / "r.db"), "--no-report", "-q",
    ])
    assert result.exit_code == 2
    assert f"cannot reach {url}" in result.output and "/u/zhipu" not in result.output
    assert cassette.read_text(encoding="utf-8") == "a good recording\n"
