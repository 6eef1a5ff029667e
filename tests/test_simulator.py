"""The local GLM server, driven through the real zhipuai SDK over loopback HTTP.

Nothing is mocked: every test sends real requests to a LocalServer and asserts what a user of
the SDK would see (reply text, chunks, exceptions, business codes in the error body).
"""

from __future__ import annotations

import json
import math
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import zhipuai
from hypothesis import given, settings
from hypothesis import strategies as st
from zhipuai import ZhipuAI

from glmeval.catalogue.tokens import count_prompt_tokens, count_tokens, split_tokens, truncate_to_tokens
from glmeval.simulator import DEFAULT_API_KEY, MODELS, FaultConfig, LocalServer, RulesError, load_rules

GLM4_HELLO = "你好👋！我是人工智能助手智谱清言，可以叫我小智🤖，很高兴见到你，欢迎问我任何问题。"
WEATHER_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "查询城市天气",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
ROOT = Path(__file__).resolve().parents[1]


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def client_for(srv: LocalServer, **kwargs: Any) -> ZhipuAI:
    return ZhipuAI(api_key=kwargs.pop("api_key", srv.api_key), base_url=srv.base_url, max_retries=0, timeout=10, **kwargs)


@pytest.fixture(scope="module")
def srv() -> Iterator[LocalServer]:
    with LocalServer(speed=0.02, api_key=DEFAULT_API_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def client(srv: LocalServer) -> ZhipuAI:
    return client_for(srv)


def error_code(exc: zhipuai.APIStatusError) -> str:
    return exc.response.json()["error"]["code"]


# ------------------------------------------------------------------ replies


def test_sync_hello_on_glm4_is_the_real_glm4_greeting(client: ZhipuAI) -> None:
    reply = client.chat.completions.create(model="glm-4", messages=user("你好"))
    choice = reply.choices[0]
    assert choice.message.content == GLM4_HELLO
    assert choice.message.role == "assistant"
    assert choice.finish_reason == "stop"
    assert reply.model == "glm-4"
    assert reply.request_id == reply.id
    assert reply.usage.completion_tokens == count_tokens(GLM4_HELLO)
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert abs(reply.created - time.time()) < 5


def test_other_models_greet_differently_but_still_say_hello(client: ZhipuAI) -> None:
    answers = {m: client.chat.completions.create(model=m, messages=user("你好")).choices[0].message.content
               for m in ("glm-3-turbo", "glm-4-flash", "glm-4-air", "glm-4-plus")}
    assert all("你好" in a or "您好" in a for a in answers.values())
    assert answers["glm-3-turbo"] != GLM4_HELLO
    assert len(answers["glm-4-plus"]) > len(answers["glm-3-turbo"])


def test_stream_chunks_rebuild_the_sync_answer_with_usage_last(client: ZhipuAI) -> None:
    started = time.perf_counter()
    stream = client.chat.completions.create(model="glm-4", messages=user("你好"), stream=True)
    chunks, arrivals = [], []
    for chunk in stream:
        chunks.append(chunk)
        arrivals.append(time.perf_counter() - started)
    assert len(chunks) >= 5
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == GLM4_HELLO
    assert all(c.choices[0].delta.role == "assistant" for c in chunks)
    assert [c.usage is not None for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert chunks[-1].usage.completion_tokens == count_tokens(GLM4_HELLO)
    assert arrivals[0] < arrivals[-1]
    assert len({c.id for c in chunks}) == 1


def test_stream_is_a_real_sse_body_with_done_and_simulator_header(srv: LocalServer) -> None:
    body = {"model": "glm-4-flash", "messages": user("中国的首都是哪里？"), "stream": True}
    headers = {"Authorization": f"Bearer {srv.api_key}"}
    with httpx.Client(timeout=10) as http:
        with http.stream("POST", srv.base_url + "/chat/completions", json=body, headers=headers) as response:
            assert response.headers["content-type"] == "text/event-stream;charset=UTF-8"
            assert response.headers["x-glmeval-simulator"] == "1"
            text = response.read().decode()
    events = [e for e in text.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    payloads = [json.loads(e[len("data: "):]) for e in events[:-1]]
    assert "finish_reason" not in payloads[0]["choices"][0]
    assert "北京" in "".join(p["choices"][0]["delta"]["content"] for p in payloads)


def test_capital_answer_mentions_beijing_and_is_short(client: ZhipuAI) -> None:
    for model in ("glm-4", "glm-3-turbo", "glm-4-flash", "glm-4.6"):
        text = client.chat.completions.create(model=model, messages=user("中国的首都是哪里？")).choices[0].message.content
        assert "北京" in text and len(text) < 200


def test_english_and_multi_turn_rules(client: ZhipuAI) -> None:
    paris = client.chat.completions.create(model="glm-4", messages=user("What is the capital of France?"))
    assert "Paris" in paris.choices[0].message.content
    conversation = [
        {"role": "user", "content": "我叫小明"},
        {"role": "assistant", "content": "你好，小明！"},
        {"role": "user", "content": "我叫什么名字？"},
    ]
    recall = client.chat.completions.create(model="glm-4-air", messages=conversation)
    assert "小明" in recall.choices[0].message.content
    total = client.chat.completions.create(model="glm-4", messages=user("12 * 7 等于多少？"))
    assert "84" in total.choices[0].message.content


def test_json_rule_and_response_format(client: ZhipuAI) -> None:
    raw = client.chat.completions.create(model="glm-3-turbo", messages=user("用JSON列出三种水果"))
    assert isinstance(json.loads(raw.choices[0].message.content), dict)
    forced = client.chat.completions.create(
        model="glm-4", messages=user("你好"), response_format={"type": "json_object"}
    )
    assert json.loads(forced.choices[0].message.content) == {"response": GLM4_HELLO}


def test_unmatched_prompt_gets_a_marked_fallback_that_differs_by_model(client: ZhipuAI) -> None:
    prompt = user("量子纠缠在日常生活中有什么应用前景")
    a = client.chat.completions.create(model="glm-4", messages=prompt).choices[0].message.content
    b = client.chat.completions.create(model="glm-3-turbo", messages=prompt).choices[0].message.content
    assert a.startswith("（模拟回复）关于“量子纠缠在日常生活中有什么应用前景”")
    assert a != b and len(a) > len(b)


def test_tool_call_sync_then_tool_result_turn(client: ZhipuAI) -> None:
    question = user("北京今天天气怎么样？")
    first = client.chat.completions.create(model="glm-4", messages=question, tools=WEATHER_TOOLS)
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "北京"}
    followup = question + [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"weather": "晴", "temperature": "25°C"}'},
    ]
    second = client.chat.completions.create(model="glm-4", messages=followup, tools=WEATHER_TOOLS)
    answer = second.choices[0].message.content
    assert second.choices[0].finish_reason == "stop"
    assert "北京" in answer and "晴" in answer and "25°C" in answer
    without_tools = client.chat.completions.create(model="glm-4", messages=question)
    assert without_tools.choices[0].message.tool_calls is None


def test_tool_call_stream_arrives_whole_then_usage(client: ZhipuAI) -> None:
    chunks = list(client.chat.completions.create(
        model="glm-4-plus", messages=user("上海明天天气如何"), tools=WEATHER_TOOLS, stream=True
    ))
    assert len(chunks) == 2
    calls = chunks[0].choices[0].delta.tool_calls
    assert chunks[0].choices[0].finish_reason == "tool_calls" and chunks[0].usage is None
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "上海"}
    assert chunks[1].usage is not None and chunks[1].choices[0].finish_reason == "tool_calls"


def test_thinking_model_streams_reasoning_before_content(client: ZhipuAI) -> None:
    chunks = list(client.chat.completions.create(
        model="glm-4.5", messages=user("中国的首都是哪里？"), stream=True, thinking={"type": "enabled"}
    ))
    kinds = ["r" if c.choices[0].delta.reasoning_content else "c" if c.choices[0].delta.content else "-" for c in chunks]
    assert "r" in kinds and "c" in kinds and kinds.index("c") > max(i for i, k in enumerate(kinds) if k == "r")


def test_async_task_goes_from_processing_to_success() -> None:
    with LocalServer(speed=0.2) as server:
        _poll_async_task(client_for(server))


def _poll_async_task(client: ZhipuAI) -> None:
    task = client.chat.asyncCompletions.create(model="glm-4", messages=user("你好"), request_id="case-123456")
    assert task.task_status == "PROCESSING" and task.request_id == "case-123456"
    statuses = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        result = client.chat.asyncCompletions.retrieve_completion_result(id=task.id)
        statuses.append(result.task_status)
        if result.task_status != "PROCESSING":
            break
        time.sleep(0.005)
    assert statuses[0] == "PROCESSING" and statuses[-1] == "SUCCESS"
    assert result.choices[0].message.content == GLM4_HELLO
    assert result.usage.total_tokens > 0 and result.request_id == "case-123456"


def test_async_unknown_task_is_a_400(client: ZhipuAI) -> None:
    with pytest.raises(zhipuai.APIRequestFailedError) as caught:
        client.chat.asyncCompletions.retrieve_completion_result(id="no-such-task")
    assert caught.value.status_code == 400 and error_code(caught.value) == "1210"


def test_sampling_changes_phrasing_but_greedy_and_repeats_are_stable(client: ZhipuAI) -> None:
    def poem(**params: Any) -> str:
        return client.chat.completions.create(model="glm-4-air", messages=user("写一首诗"), **params).choices[0].message.content

    sampled = {poem(temperature=0.95, top_p=0.95, seed=seed) for seed in range(12)}
    assert len(sampled) > 1
    greedy = {poem(do_sample=False, temperature=t, seed=seed) for t, seed in [(0.9, 1), (0.5, 2), (0.95, 3)]}
    assert len(greedy) == 1
    assert {poem(temperature=0.0)} == greedy
    assert poem(temperature=0.9, seed=7) == poem(temperature=0.9, seed=7)


def test_max_tokens_truncates_with_length_and_stop_cuts(client: ZhipuAI) -> None:
    short = client.chat.completions.create(model="glm-4", messages=user("你好"), max_tokens=5)
    assert short.choices[0].finish_reason == "length"
    assert short.choices[0].message.content == truncate_to_tokens(GLM4_HELLO, 5) and short.usage.completion_tokens == 5
    stopped = client.chat.completions.create(model="glm-4", messages=user("你好"), stop=["智谱"])
    assert stopped.choices[0].message.content == GLM4_HELLO.split("智谱")[0]
    assert stopped.choices[0].finish_reason == "stop"


def test_models_table_drives_validation_and_latency() -> None:
    assert MODELS["glm-4"].max_output == 4095 and MODELS["glm-4-long"].context_window > 10**6
    assert MODELS["glm-4"].latency_ms(0, 10)[1] > MODELS["glm-4-flash"].latency_ms(0, 10)[1]
    assert {"embedding-2", "embedding-3"} <= set(MODELS)


def test_embeddings_are_deterministic_and_meaningful(client: ZhipuAI) -> None:
    texts = ["今天天气很好", "今天天气不错", "我喜欢编程和写代码"]
    response = client.embeddings.create(model="embedding-3", input=texts)
    vectors = [d.embedding for d in response.data]
    assert response.object == "list" and [d.index for d in response.data] == [0, 1, 2]
    assert all(len(v) == 2048 and math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-3) for v in vectors)

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b))

    assert cos(vectors[0], vectors[1]) > 0.4 > cos(vectors[0], vectors[2])
    again = client.embeddings.create(model="embedding-3", input="今天天气很好", dimensions=512)
    assert len(again.data[0].embedding) == 512
    assert response.usage.prompt_tokens == sum(count_tokens(t) for t in texts)
    assert len(client.embeddings.create(model="embedding-2", input="hi").data[0].embedding) == 1024


def test_judge_rule_grades_with_json(client: ZhipuAI) -> None:
    def judge(output: str, rubric: str) -> dict[str, Any]:
        prompt = (
            "[[glmeval-judge]] You are grading an answer against a rubric. Reply with JSON.\n"
            f"<rubric>{rubric}</rubric>\n<output>{output}</output>"
        )
        text = client.chat.completions.create(model="glm-4", messages=user(prompt), temperature=0).choices[0].message.content
        return json.loads(text)

    good = judge("中国的首都是北京。", "回答应提到北京是中国的首都")
    bad = judge("我不知道。", "回答应提到北京是中国的首都")
    assert good["pass"] is True and bad["pass"] is False
    assert 0 <= bad["score"] < good["score"] <= 1 and good["reason"]
    quoted = judge("The capital is Paris.", 'The answer must mention "Paris"')
    assert quoted["pass"] is True
    generic = "Grade the response using the rubric. Answer PASS or FAIL.\nRubric: mentions Paris\nOutput: Paris is the capital"
    assert json.loads(client.chat.completions.create(model="glm-4", messages=user(generic)).choices[0].message.content)["pass"]


# ------------------------------------------------------------------ errors


def test_auth_errors_carry_zhipu_codes(srv: LocalServer) -> None:
    with pytest.raises(zhipuai.APIAuthenticationError) as missing:
        client_for(srv).chat.completions.create(model="glm-4", messages=user("你好"), extra_headers={"Authorization": ""})
    assert missing.value.status_code == 401 and error_code(missing.value) == "1001"
    with pytest.raises(zhipuai.APIAuthenticationError) as wrong:
        client_for(srv, api_key="someone.else").chat.completions.create(model="glm-4", messages=user("你好"))
    assert error_code(wrong.value) == "1000"
    jwt_client = client_for(srv, disable_token_cache=False)
    assert jwt_client.chat.completions.create(model="glm-4", messages=user("你好")).choices[0].message.content == GLM4_HELLO
    key_id, secret = srv.api_key.split(".")
    now_ms = int(time.time() * 1000)
    expired = jwt.encode({"api_key": key_id, "exp": now_ms - 1000, "timestamp": now_ms - 5000}, secret,
                         algorithm="HS256", headers={"alg": "HS256", "sign_type": "SIGN"})
    with pytest.raises(zhipuai.APIAuthenticationError) as old:
        client_for(srv).chat.completions.create(
            model="glm-4", messages=user("你好"), extra_headers={"Authorization": f"Bearer {expired}"}
        )
    assert error_code(old.value) == "1003"
    with LocalServer(api_key=None, speed=0) as open_server:
        anyone = client_for(open_server, api_key="whatever-key")
        assert anyone.chat.completions.create(model="glm-4", messages=user("你好")).choices[0].message.content


@pytest.mark.parametrize(
    ("params", "code", "needle"),
    [
        ({"model": "glm-5-imaginary", "messages": user("你好")}, "1211", "模型不存在"),
        ({"model": "glm-4", "messages": []}, "1214", "messages"),
        ({"model": "glm-4", "messages": [{"role": "system", "content": "你是助手"}]}, "1214", "messages"),
        ({"model": "glm-4", "messages": [{"role": "robot", "content": "hi"}]}, "1214", "role"),
        ({"model": "glm-4", "messages": user("你好"), "max_tokens": 4096}, "1210", "max_tokens参数非法：限制数值范围[1,4095]"),
        ({"model": "glm-4", "messages": user("你好"), "extra_body": {"temperature": 1.5}}, "1210", "temperature"),
        ({"model": "glm-4", "messages": user("你好"), "stop": ["a", "b", "c", "d", "e"]}, "1210", "stop"),
        ({"model": "glm-4-airx", "messages": user("字" * 14000)}, "1261", "Prompt"),
    ],
)
def test_invalid_requests_get_400_with_business_code(client: ZhipuAI, params: dict[str, Any], code: str, needle: str) -> None:
    with pytest.raises(zhipuai.APIRequestFailedError) as caught:
        client.chat.completions.create(**params)
    assert caught.value.status_code == 400
    assert error_code(caught.value) == code
    assert needle in caught.value.response.json()["error"]["message"]


def test_raw_http_errors_are_zhipu_json(srv: LocalServer) -> None:
    headers = {"Authorization": f"Bearer {srv.api_key}", "Content-Type": "application/json"}
    with httpx.Client(timeout=10) as http:
        bad_json = http.post(srv.base_url + "/chat/completions", content=b"{not json", headers=headers)
        assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "1210"
        missing = http.post(srv.base_url + "/no/such/path", json={}, headers=headers)
        assert missing.status_code == 404 and "error" in missing.json()
        assert missing.headers["x-glmeval-simulator"] == "1"
        ok = http.post(srv.base_url + "/chat/completions", headers=headers,
                       json={"model": "glm-4", "messages": user("你好"), "request_id": 12345.5,
                             "response_format": None, "thinking": None})
        assert ok.status_code == 200 and ok.json()["request_id"] == "12345.5"
        assert ok.headers["content-type"] == "application/json; charset=UTF-8"
        assert list(ok.json()) == ["choices", "created", "id", "model", "request_id", "usage"]
        assert ok.json()["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}


# ------------------------------------------------------------------ faults


def test_rate_limit_fault_is_429_with_retry_after() -> None:
    with LocalServer(speed=0, faults=FaultConfig(rate_limit=1.0, retry_after=0.05)) as server:
        with pytest.raises(zhipuai.APIReachLimitError) as caught:
            client_for(server).chat.completions.create(model="glm-4", messages=user("你好"))
        assert caught.value.status_code == 429 and error_code(caught.value) == "1302"
        assert caught.value.response.headers["retry-after"] == "0.05"
        assert server.stats.faults == {"rate_limit": 1}


def test_faults_are_repeatable_and_retries_can_succeed() -> None:
    def outcomes(server: LocalServer) -> list[str]:
        sdk = client_for(server)
        results = []
        for attempt in range(20):
            try:
                sdk.chat.completions.create(model="glm-4", messages=user("你好"))
                results.append("ok")
            except zhipuai.APIStatusError as exc:
                results.append(str(exc.status_code))
        return results

    config = FaultConfig(rate_limit=0.3, server_error=0.2, seed=42)
    with LocalServer(speed=0, faults=config) as server:
        first = outcomes(server)
        server.stats.reset()
        second = outcomes(server)
    with LocalServer(speed=0, faults=config) as other:
        third = outcomes(other)
    assert first == second == third
    assert {"ok", "429", "500"} <= set(first)


def test_cut_stream_breaks_the_iteration_with_an_httpx_error() -> None:
    with LocalServer(speed=0.02, faults=FaultConfig(cut_stream=1.0)) as server:
        stream = client_for(server).chat.completions.create(model="glm-4", messages=user("你好"), stream=True)
        received = []
        with pytest.raises(httpx.HTTPError) as caught:
            for chunk in stream:
                received.append(chunk)
        assert isinstance(caught.value, (httpx.RemoteProtocolError, httpx.ReadError))
        assert 0 < len(received) < count_tokens(GLM4_HELLO)
        with pytest.raises(zhipuai.APIConnectionError):
            client_for(server).chat.completions.create(model="glm-4", messages=user("你好"))


def test_reset_is_a_connection_error_and_the_server_survives() -> None:
    with LocalServer(speed=0, faults=FaultConfig(reset=1.0)) as server:
        for _ in range(2):
            with pytest.raises(zhipuai.APIConnectionError):
                client_for(server).chat.completions.create(model="glm-4", messages=user("你好"))
        server.faults = None
        assert client_for(server).chat.completions.create(model="glm-4", messages=user("你好")).choices[0].message.content


def test_content_filter_balance_and_async_fail() -> None:
    with LocalServer(speed=0, faults=FaultConfig(content_filter=1.0)) as server:
        sdk = client_for(server)
        with pytest.raises(zhipuai.APIRequestFailedError) as blocked:
            sdk.chat.completions.create(model="glm-4", messages=user("你好"))
        assert error_code(blocked.value) == "1301"
        chunks = list(sdk.chat.completions.create(model="glm-4", messages=user("你好"), stream=True))
        assert chunks[-1].choices[0].finish_reason == "sensitive" and chunks[-1].usage is not None
        task = sdk.chat.asyncCompletions.create(model="glm-4", messages=user("你好"))
        result = sdk.chat.asyncCompletions.retrieve_completion_result(id=task.id)
        assert result.task_status == "FAIL"
        grading = user("<rubric>mentions 你好</rubric>\n<output>你好</output>")
        assert json.loads(sdk.chat.completions.create(model="glm-4", messages=grading).choices[0].message.content)["pass"]
        server.faults = FaultConfig(balance=1.0)
        with pytest.raises(zhipuai.APIReachLimitError) as broke:
            sdk.chat.completions.create(model="glm-4", messages=user("你好"))
        assert error_code(broke.value) == "1113"
        server.faults = FaultConfig(rate_limit=1.0)
        with pytest.raises(zhipuai.APIReachLimitError):
            sdk.embeddings.create(model="embedding-3", input="你好")


def test_slow_fault_trips_a_client_timeout() -> None:
    with LocalServer(speed=0, faults=FaultConfig(slow=1.0, slow_ms=1500)) as server:
        sdk = ZhipuAI(api_key=server.api_key, base_url=server.base_url, max_retries=0, timeout=0.3)
        with pytest.raises(zhipuai.APITimeoutError):
            sdk.chat.completions.create(model="glm-4", messages=user("你好"))


# ------------------------------------------------------------------ rules files


def test_user_rules_come_first_and_replace_builtins_by_name(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - name: greeting\n"
        "    match: '你好'\n"
        "    reply: 你好，这是自定义的问候。\n"
        "  - name: order-status\n"
        "    match: '订单\\s*(\\d+)'\n"
        "    reply: '订单 {1} 已发货。'\n"
        "    models: [glm-4]\n",
        encoding="utf-8",
    )
    assert [r.name for r in load_rules(rules)] == ["greeting", "order-status"]
    with LocalServer(speed=0, rules_path=rules) as server:
        sdk = client_for(server)
        assert sdk.chat.completions.create(model="glm-4", messages=user("你好")).choices[0].message.content == "你好，这是自定义的问候。"
        assert sdk.chat.completions.create(model="glm-4", messages=user("我的订单 42 呢")).choices[0].message.content == "订单 42 已发货。"
        other = sdk.chat.completions.create(model="glm-3-turbo", messages=user("我的订单 42 呢")).choices[0].message.content
        assert other.startswith("（模拟回复）")
        assert "北京" in sdk.chat.completions.create(model="glm-4", messages=user("中国的首都")).choices[0].message.content
        grading = user("[[glmeval-judge]]\n<rubric>greets the user</rubric>\n<output>你好</output>")
        assert "pass" in json.loads(sdk.chat.completions.create(model="glm-4", messages=grading).choices[0].message.content)


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("- name: ok\n  match: hi\n  reply: hello\n- name: broken\n  match: '(unclosed'\n  reply: x\n", 5, "invalid regex"),
        ("- name: a\n  match: hi\n  replies: oops\n", 3, "unknown key"),
        ("rules:\n  - name: a\n    match: [unclosed\n", 4, "YAML"),
        ("- name: a\n  match: hi\n", 1, "needs 'reply'"),
        ("- name: a\n  match: hi\n  reply: x\n  models: [glm-99]\n", 4, "unknown model"),
    ],
)
def test_rules_errors_name_file_and_line(tmp_path: Path, text: str, line: int, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert caught.value.line == line and caught.value.path == str(path)
    assert needle in str(caught.value) and f"bad.yaml:{line}:" in str(caught.value)
    with pytest.raises(RulesError):
        LocalServer(rules_path=path)


# ------------------------------------------------------------------ server lifecycle and load


def test_concurrent_load_over_keep_alive(srv: LocalServer) -> None:
    sdk = client_for(srv)
    prompts = ["你好", "中国的首都是哪里？", "写一首诗", "hello", "讲个笑话"]
    before = srv.stats.requests

    def one(i: int) -> str:
        if i % 3 == 0:
            chunks = sdk.chat.completions.create(model="glm-4-flash", messages=user(prompts[i % 5]), stream=True)
            return "".join(c.choices[0].delta.content or "" for c in chunks)
        return sdk.chat.completions.create(model="glm-3-turbo", messages=user(prompts[i % 5])).choices[0].message.content

    started = time.perf_counter()
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(one, range(400)))
    assert all(answers) and time.perf_counter() - started < 10
    assert srv.stats.requests - before == 400


def test_stop_frees_the_port_and_ends_idle_connections() -> None:
    server = LocalServer(speed=0).start()
    port = server.port
    client_for(server).chat.completions.create(model="glm-4", messages=user("你好"))
    started = time.perf_counter()
    server.stop()
    assert time.perf_counter() - started < 2 and not server.running
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
        probe.listen()
    with LocalServer(port=port, speed=0) as again:
        assert again.base_url == f"http://127.0.0.1:{port}/api/paas/v4"


def test_serve_command_prints_its_url_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "glmeval.simulator", "--port", "0", "--speed", "0", "--api-key", "glmeval-local.simulator"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline()
        assert "http://127.0.0.1:" in line and "api_key=glmeval-local.simulator" in line
        url = line.split(" on ")[1].split()[0]
        reply = ZhipuAI(api_key="glmeval-local.simulator", base_url=url, max_retries=0, timeout=10).chat.completions.create(
            model="glm-4", messages=user("你好"))
        assert reply.choices[0].message.content == GLM4_HELLO
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()


# ------------------------------------------------------------------ tokens


def test_token_counting_rules() -> None:
    # The calibrated rules (issue 14; tests/test_fidelity_tokens.py checks them against real usage).
    assert count_tokens("你好") == 1 and count_tokens("我是人工智能助手") == 5
    assert count_tokens("hello") == 1 and count_tokens("2024") == 2 and count_tokens("hi!") == 2
    assert count_tokens("👋🤖") == 2 and count_tokens(" ") == 0 and count_tokens("") == 0
    assert truncate_to_tokens("hello world", 1) == "hello"
    assert count_prompt_tokens(user("你好")) == 1 + 1 + 5


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.integers(min_value=0, max_value=40))
def test_token_pieces_rebuild_text_and_truncation_fits(text: str, n: int) -> None:
    pieces = split_tokens(text)
    assert "".join(pieces) == text
    assert sum(1 for p in pieces if count_tokens(p)) == count_tokens(text)
    cut = truncate_to_tokens(text, n)
    assert text.startswith(cut) and count_tokens(cut) <= n
    if count_tokens(text) <= n:
        assert cut == text
