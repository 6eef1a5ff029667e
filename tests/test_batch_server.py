"""The local server's Batch API through the real SDKs (zhipu-api-2026.md §6): files, batches, states,
request counts, output and error files, validation, partial failures, expiry, cancel, limits."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import zhipuai
from zai import ZhipuAiClient

from glmeval.simulator import FaultConfig, LocalServer

FINAL = ("completed", "failed", "expired", "cancelled")


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer(speed=0) as srv:
        yield srv


def _client(server: LocalServer) -> zhipuai.ZhipuAI:
    return zhipuai.ZhipuAI(api_key=server.api_key, base_url=server.base_url, max_retries=0, timeout=10)


def _line(i: int, model: str = "glm-4-plus", question: str = "中国的首都是哪里？", **extra: Any) -> dict[str, Any]:
    line = {"custom_id": f"request-{i}", "method": "POST", "url": "/v4/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": question}], "do_sample": False}}
    line.update(extra)
    return line


def _upload(client: Any, lines: list[Any], name: str = "in.jsonl") -> str:
    content = "\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines).encode()
    return str(client.files.create(file=(name, content, "application/jsonl"), purpose="batch").id)


def _wait(client: Any, batch_id: str, timeout: float = 20.0) -> tuple[Any, list[str]]:
    """The ended batch, and every state seen on the way (polling fast)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = client.batches.retrieve(batch_id)
        if not seen or seen[-1] != batch.status:
            seen.append(batch.status)
        if batch.status in FINAL:
            return batch, seen
        time.sleep(0.005)
    raise AssertionError(f"batch {batch_id} did not end within {timeout} s: {seen}")


def _lines(client: Any, file_id: str | None) -> list[dict[str, Any]]:
    if not file_id:
        return []
    return [json.loads(x) for x in client.files.content(file_id).content.splitlines() if x.strip()]


def test_a_batch_runs_through_its_states_and_answers_what_a_sync_call_answers(server: LocalServer) -> None:
    server.fixed_latency_ms = 40
    server.batch.workers = 4  # 10 ms a line: the counts move while it is polled
    client = _client(server)
    lines = [_line(i, question=q) for i, q in enumerate(["中国的首都是哪里？", "你好", "1+1等于几？"] * 10)]
    file = client.files.create(file=("questions.jsonl", "\n".join(json.dumps(x) for x in lines).encode(), "application/jsonl"),
                               purpose="batch")
    assert (file.object, file.purpose, file.filename, file.status) == ("file", "batch", "questions.jsonl", "processed")
    assert file.bytes and file.created_at and file.created_at > 10**12  # milliseconds, as recorded

    created = client.batches.create(input_file_id=file.id, endpoint="/v4/chat/completions", completion_window="24h",
                                    metadata={"suite": "capitals"})
    assert created.status == "validating" and created.id.startswith("batch_") and created.object == "batch"
    assert created.output_file_id == "" and created.metadata == {"suite": "capitals"}
    progress: list[int] = []
    deadline = time.monotonic() + 20
    while True:
        batch = client.batches.retrieve(created.id)
        if batch.status == "in_progress":
            progress.append(batch.request_counts.completed)
        if batch.status in FINAL or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert batch.status == "completed", batch
    assert len(set(progress)) > 2 and progress == sorted(progress), progress  # the counts moved, never back
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (30, 30, 0)
    assert batch.created_at <= batch.in_progress_at <= batch.finalizing_at <= batch.completed_at < batch.expires_at
    assert batch.expires_at - batch.created_at == 24 * 3600 * 1000
    assert not batch.error_file_id

    out = _lines(client, batch.output_file_id)
    assert [x["custom_id"] for x in out] == [f"request-{i}" for i in range(30)]
    # Greedy on both sides: sampled replies vary call by call, as the real API's do.
    sync = client.chat.completions.create(model="glm-4-plus", messages=[{"role": "user", "content": "中国的首都是哪里？"}], do_sample=False)
    first = out[0]
    assert first["error"] is None and first["response"]["status_code"] == 200
    body = first["response"]["body"]
    assert first["response"]["request_id"] == body["request_id"]
    assert body["choices"][0]["message"]["content"] == sync.choices[0].message.content
    assert "北京" in body["choices"][0]["message"]["content"]
    assert body["usage"]["prompt_tokens"] == sync.usage.prompt_tokens
    assert server.stats.batches_created == 1 and server.stats.batch_lines == {"glm-4-plus": 30}
    # auto_delete_input_file (default true): the input is gone once the batch is done.
    with pytest.raises(zhipuai.APIStatusError) as gone:
        client.files.content(file.id)
    assert gone.value.status_code == 404


def test_list_pages_newest_first_and_cancel_of_an_ended_batch_is_refused(server: LocalServer) -> None:
    client = _client(server)
    ids = [client.batches.create(input_file_id=_upload(client, [_line(1)]), endpoint="/v4/chat/completions").id
           for _ in range(3)]
    page = client.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[:0:-1] and page.has_more
    rest = client.batches.list(limit=2, after=page.data[-1].id)
    assert [b.id for b in rest.data] == [ids[0]] and not rest.has_more
    done, _ = _wait(client, ids[0])
    with pytest.raises(zhipuai.APIStatusError) as refused:
        client.batches.cancel(done.id)
    assert refused.value.status_code == 400 and "completed" in refused.value.response.json()["error"]["message"]
    deleted = client.files.delete(done.output_file_id)
    assert deleted.deleted and deleted.id == done.output_file_id


def test_every_bad_line_is_listed_and_fails_the_batch(server: LocalServer) -> None:
    client = _client(server)
    lines: list[Any] = [
        _line(100001),
        _line(1),                                   # custom_id "request-1" is fine (9 chars)
        {**_line(2), "custom_id": "abc"},           # under 6 characters
        _line(1),                                   # duplicate custom_id
        {**_line(3), "method": "GET"},
        {**_line(4), "url": "/v1/embeddings"},
        {"custom_id": "request-5", "method": "POST", "url": "/v4/chat/completions", "body": {"messages": []}},
        "{not json",
    ]
    batch, seen = _wait(client, client.batches.create(input_file_id=_upload(client, lines), endpoint="/v4/chat/completions").id)
    assert batch.status == "failed" and seen[-1] == "failed" and "in_progress" not in seen
    assert batch.failed_at and not batch.output_file_id
    found = {(e.line, e.code, e.param) for e in batch.errors.data}
    assert found == {
        (3, "invalid_custom_id", "custom_id"), (4, "duplicate_custom_id", "custom_id"), (5, "invalid_method", "method"),
        (6, "mismatched_url", "url"), (7, "invalid_body", "body"), (8, "invalid_json_line", None),
    }
    assert server.stats.batch_lines == {}  # nothing was answered


def test_upload_and_create_refuse_what_the_docs_refuse(server: LocalServer) -> None:
    client = _client(server)
    with pytest.raises(zhipuai.APIStatusError) as wrong_name:
        client.files.create(file=("in.txt", b'{"a":1}', "text/plain"), purpose="batch")
    assert wrong_name.value.status_code == 400 and ".jsonl" in wrong_name.value.response.json()["error"]["message"]
    server.batch.max_file_bytes = 1000
    with pytest.raises(zhipuai.APIStatusError) as too_big:
        _upload(client, [_line(i) for i in range(20)])
    assert too_big.value.status_code == 435  # "a file over 100 MB gives HTTP 435" (api-code)
    server.batch.max_file_bytes = 100 * 1024 * 1024
    file_id = _upload(client, [_line(1)])
    for bad, word in [({"endpoint": "/v4/embeddings"}, "endpoint"), ({"completion_window": "soon"}, "completion_window"),
                      ({"metadata": {"k" * 65: "v"}}, "metadata"), ({"input_file_id": "nope"}, "nope")]:
        args = {"input_file_id": file_id, "endpoint": "/v4/chat/completions", **bad}
        with pytest.raises(zhipuai.APIStatusError) as refused:
            client.batches.create(**args)
        assert word in refused.value.response.json()["error"]["message"], bad
    assert server.stats.batches_created == 0
    server.batch.max_lines = 5
    batch, _ = _wait(client, client.batches.create(input_file_id=_upload(client, [_line(i) for i in range(6)]),
                                                   endpoint="/v4/chat/completions").id)
    assert batch.status == "failed" and batch.errors.data[0].code == "too_many_requests"


def test_partial_failures_go_to_the_error_file_and_the_batch_completes(server: LocalServer) -> None:
    server.faults = FaultConfig(server_error=0.3, seed=7)
    client = _client(server)
    lines = [_line(i, model="glm-4-nope" if i % 10 == 0 else "glm-4-plus", question=f"第{i}个问题：你好") for i in range(100)]
    batch, _ = _wait(client, client.batches.create(input_file_id=_upload(client, lines), endpoint="/v4/chat/completions").id)
    assert batch.status == "completed"
    out, errors = _lines(client, batch.output_file_id), _lines(client, batch.error_file_id)
    counts = batch.request_counts
    assert counts.total == 100 and counts.completed == len(out) and counts.failed == len(errors)
    assert len(out) + len(errors) == 100 and {x["custom_id"] for x in out}.isdisjoint(x["custom_id"] for x in errors)
    unknown = [x for x in errors if x["error"]["code"] == "1211"]
    faulted = [x for x in errors if x["error"]["code"] == "500"]
    assert len(unknown) == 10 and unknown[0]["response"]["status_code"] == 400
    assert faulted and all(x["response"]["status_code"] == 500 for x in faulted)
    assert len(unknown) + len(faulted) == len(errors)


def test_a_batch_past_its_window_expires_keeping_what_it_answered(server: LocalServer) -> None:
    server.fixed_latency_ms = 50
    server.batch.workers = 1  # 50 ms a line
    server.batch.expire_after_s = 0.5
    client = _client(server)
    batch, seen = _wait(client, client.batches.create(input_file_id=_upload(client, [_line(i) for i in range(40)]),
                                                      endpoint="/v4/chat/completions").id)
    assert batch.status == "expired" and "completed" not in seen and batch.expired_at
    out, errors = _lines(client, batch.output_file_id), _lines(client, batch.error_file_id)
    assert 0 < len(out) < 40 and len(out) + len(errors) == 40
    assert {x["error"]["code"] for x in errors} == {"batch_expired"}


def test_cancel_stops_the_work_and_says_what_was_not_run(server: LocalServer) -> None:
    server.fixed_latency_ms = 50
    server.batch.workers = 1
    client = _client(server)
    created = client.batches.create(input_file_id=_upload(client, [_line(i) for i in range(40)]), endpoint="/v4/chat/completions")
    while client.batches.retrieve(created.id).request_counts.completed < 2:
        time.sleep(0.01)
    cancelling = client.batches.cancel(created.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at
    batch, _ = _wait(client, created.id)
    assert batch.status == "cancelled" and batch.cancelled_at
    errors = _lines(client, batch.error_file_id)
    assert errors and {x["error"]["code"] for x in errors} == {"batch_cancelled"}
    assert len(_lines(client, batch.output_file_id)) + len(errors) == 40


def test_zai_sdk_reads_the_same_batch_objects(server: LocalServer) -> None:
    zai = ZhipuAiClient(api_key=server.api_key, base_url=server.base_url, max_retries=0)
    content = json.dumps(_line(1), ensure_ascii=False).encode()
    file = zai.files.create(file=("in.jsonl", content, "application/jsonl"), purpose="batch")
    batch = zai.batches.create(input_file_id=file.id, endpoint="/v4/chat/completions", completion_window="24h")
    batch, _ = _wait(zai, batch.id)
    assert batch.status == "completed" and batch.request_counts.completed == 1
    line = json.loads(zai.files.content(batch.output_file_id).content)
    assert "北京" in line["response"]["body"]["choices"][0]["message"]["content"]
