"""The local server in character for the 2026 lineup, through the real zhipuai SDK over loopback.

What zhipu-api-2026.md §2-§5 and §9 show of the real API: thinking models reason by default and
stop when told, reasoning tokens inside completion_tokens, the strict stream order, image parts
refused by text models (1210) and read by vision models, the web_search tool's results. The
exact keys of each stream chunk are read from the raw SSE body as well, since the SDK's parsed
objects add defaults for keys the wire did not carry. The 2024 models must not change.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import zhipuai
from PIL import Image
from zhipuai import ZhipuAI

from glmeval.catalogue.tokens import count_tokens, truncate_to_tokens
from glmeval.simulator import LocalServer
from glmeval.simulator.vision import IMAGE_TOKENS

GLM4_HELLO = "你好👋！我是人工智能助手智谱清言，可以叫我小智🤖，很高兴见到你，欢迎问我任何问题。"
TEXT_ONLY = 'messages.content.type 参数非法，取值范围 ["text"]'
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
WEB_SEARCH_KEYS = ["icon", "title", "link", "media", "content", "refer", "publish_date"]


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def png(width: int, height: int, colour: tuple[int, int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def picture_message(text: str | None, url: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": url}}]
    if text is not None:
        parts.insert(0, {"type": "text", "text": text})
    return [{"role": "user", "content": parts}]


def get(obj: Any, key: str) -> Any:
    """A field of an SDK object whether the SDK typed it (attribute) or kept it as an extra (dict)."""
    if isinstance(obj, dict):
        return obj.get(key)
    value = getattr(obj, key, None)
    if value is None and getattr(obj, "model_extra", None):
        value = obj.model_extra.get(key)
    return value


@pytest.fixture(scope="module")
def srv() -> Iterator[LocalServer]:
    with LocalServer(speed=0.02) as server:
        yield server


@pytest.fixture(scope="module")
def client(srv: LocalServer) -> ZhipuAI:
    return ZhipuAI(api_key=srv.api_key, base_url=srv.base_url, max_retries=0, timeout=10)


def raw_stream(srv: LocalServer, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The data payloads of a stream, exactly as sent; asserts the ``[DONE]`` terminator."""
    headers = {"Authorization": f"Bearer {srv.api_key}"}
    with httpx.Client(timeout=10) as http:
        with http.stream("POST", srv.base_url + "/chat/completions", json={**body, "stream": True}, headers=headers) as r:
            assert r.status_code == 200
            text = r.read().decode("utf-8")
    events = [e for e in text.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    return [json.loads(e[len("data: "):]) for e in events[:-1]]


def usage_adds_up(usage: Any) -> int:
    """Checks the usage arithmetic of §2.2 / §4 and returns the reasoning tokens."""
    reasoning = get(get(usage, "completion_tokens_details"), "reasoning_tokens")
    cached = get(get(usage, "prompt_tokens_details"), "cached_tokens")
    assert isinstance(reasoning, int) and isinstance(cached, int)
    assert 0 <= reasoning <= get(usage, "completion_tokens")
    assert 0 <= cached <= get(usage, "prompt_tokens")
    assert get(usage, "total_tokens") == get(usage, "prompt_tokens") + get(usage, "completion_tokens")
    return reasoning


# ------------------------------------------------------------------ thinking


def test_glm47_reasons_by_default_in_sync(client: ZhipuAI) -> None:
    reply = client.chat.completions.create(model="glm-4.7", messages=user("中国的首都是哪里？"))
    message = reply.choices[0].message
    assert "北京" in message.content
    assert message.reasoning_content and message.reasoning_content not in message.content
    assert get(reply, "object") == "chat.completion"
    assert reply.id == reply.request_id
    reasoning = usage_adds_up(reply.usage)
    assert reasoning == count_tokens(message.reasoning_content) > 0
    assert reply.usage.completion_tokens == reasoning + count_tokens(message.content)


def test_glm47_reasons_by_default_in_stream_and_reasoning_comes_first(client: ZhipuAI) -> None:
    started = time.perf_counter()
    first_reasoning = first_content = None
    chunks = []
    # Greedy: the stream is compared with a sync call below (sampled replies vary per call).
    for chunk in client.chat.completions.create(model="glm-4.7", messages=user("中国的首都是哪里？"), stream=True,
                                                do_sample=False):
        now = time.perf_counter() - started
        delta = chunk.choices[0].delta
        if delta.reasoning_content and first_reasoning is None:
            first_reasoning = now
        if delta.content and first_content is None:
            first_content = now
        chunks.append(chunk)
    reasoning = "".join(c.choices[0].delta.reasoning_content or "" for c in chunks)
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert reasoning and "北京" in content and reasoning not in content
    assert first_reasoning is not None and first_content is not None and first_reasoning < first_content
    usage = chunks[-1].usage
    assert usage.completion_tokens_details.reasoning_tokens == count_tokens(reasoning)
    assert usage.completion_tokens == count_tokens(reasoning) + count_tokens(content)
    assert usage_adds_up(usage) > 0
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1
    sync = client.chat.completions.create(model="glm-4.7", messages=user("中国的首都是哪里？"), do_sample=False)
    assert (sync.choices[0].message.content, sync.choices[0].message.reasoning_content) == (content, reasoning)


def test_thinking_disabled_gives_no_reasoning(client: ZhipuAI) -> None:
    reply = client.chat.completions.create(model="glm-4.7", messages=user("你好"), thinking={"type": "disabled"})
    assert reply.choices[0].message.reasoning_content is None
    assert usage_adds_up(reply.usage) == 0
    assert reply.usage.completion_tokens == count_tokens(reply.choices[0].message.content)
    chunks = list(client.chat.completions.create(
        model="glm-4.7", messages=user("你好"), thinking={"type": "disabled", "clear_thinking": True}, stream=True
    ))
    assert not any(c.choices[0].delta.reasoning_content for c in chunks)
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == 0


def test_hybrid_models_reason_when_asked(client: ZhipuAI) -> None:
    for model in ("glm-4.5", "glm-4.5-air", "glm-4.6", "glm-4.5-flash", "glm-5"):
        # Greedy, so the two calls' answers can be compared (sampled replies vary per call).
        on = client.chat.completions.create(model=model, messages=user("你好"), thinking={"type": "enabled"}, do_sample=False)
        assert on.choices[0].message.reasoning_content, model
        assert usage_adds_up(on.usage) > 0
        off = client.chat.completions.create(model=model, messages=user("你好"), thinking={"type": "disabled"}, do_sample=False)
        assert off.choices[0].message.reasoning_content is None, model
        assert off.choices[0].message.content == on.choices[0].message.content
        assert on.usage.completion_tokens == off.usage.completion_tokens + usage_adds_up(on.usage)


def test_glm45_thinks_by_default_and_glm46_decides_not_to(client: ZhipuAI) -> None:
    for model in ("glm-4.5", "glm-4.5-air"):
        reply = client.chat.completions.create(model=model, messages=user("你好"))
        assert reply.choices[0].message.reasoning_content, model
        off = client.chat.completions.create(model=model, messages=user("你好"), thinking={"type": "disabled"})
        assert off.choices[0].message.reasoning_content is None, model
    auto = client.chat.completions.create(model="glm-4.6", messages=user("你好"))
    assert auto.choices[0].message.reasoning_content is None
    asked = client.chat.completions.create(model="glm-4.6", messages=user("你好"), thinking={"type": "enabled"})
    assert asked.choices[0].message.reasoning_content


def test_reasoning_effort_none_turns_glm52_thinking_off(client: ZhipuAI) -> None:
    default = client.chat.completions.create(model="glm-5.2", messages=user("你好"))
    assert default.choices[0].message.reasoning_content
    for effort in ("none", "minimal"):
        off = client.chat.completions.create(model="glm-5.2", messages=user("你好"), extra_body={"reasoning_effort": effort})
        assert off.choices[0].message.reasoning_content is None and usage_adds_up(off.usage) == 0
    high = client.chat.completions.create(model="glm-5.2", messages=user("你好"), extra_body={"reasoning_effort": "low"})
    assert 0 < usage_adds_up(high.usage) < usage_adds_up(default.usage)  # low acts as high; the default is max
    ignored = client.chat.completions.create(model="glm-4.7", messages=user("你好"), extra_body={"reasoning_effort": "none"})
    assert ignored.choices[0].message.reasoning_content  # glm-4.7 does not take reasoning_effort
    with pytest.raises(zhipuai.APIRequestFailedError) as bad:
        client.chat.completions.create(model="glm-5.2", messages=user("你好"), extra_body={"reasoning_effort": "huge"})
    assert bad.value.response.json()["error"]["code"] == "1210"


def test_unknown_fields_and_reasoning_content_in_history_are_accepted(client: ZhipuAI) -> None:
    first = client.chat.completions.create(model="glm-4.7", messages=user("北京今天天气怎么样？"), tools=WEATHER_TOOLS)
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls" and message.reasoning_content
    history = user("北京今天天气怎么样？") + [
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": '{"weather": "晴"}'},
    ]
    assert history[1]["reasoning_content"]
    second = client.chat.completions.create(
        model="glm-4.7", messages=history, tools=WEATHER_TOOLS, tool_choice="auto",
        extra_body={"stream_options": {"include_usage": True}, "some_future_field": 1, "tool_stream": False},
    )
    assert "晴" in second.choices[0].message.content


def test_max_tokens_bounds_reasoning_and_answer_together(client: ZhipuAI) -> None:
    full = client.chat.completions.create(model="glm-4.7", messages=user("你好"), do_sample=False)  # two calls compared
    reasoning = usage_adds_up(full.usage)
    short = client.chat.completions.create(model="glm-4.7", messages=user("你好"), max_tokens=reasoning + 3, do_sample=False)
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == reasoning + 3
    assert short.choices[0].message.content == truncate_to_tokens(full.choices[0].message.content, 3)


# ------------------------------------------------------------------ the wire, exactly


def test_stream_order_and_keys_are_exactly_those_of_the_2026_captures(srv: LocalServer) -> None:
    payloads = raw_stream(srv, {"model": "glm-4.7", "messages": user("北京今天天气怎么样？"), "tools": WEATHER_TOOLS})
    assert all(list(p)[:5] == ["id", "created", "object", "model", "choices"] for p in payloads)
    assert {p["object"] for p in payloads} == {"chat.completion.chunk"}
    assert len({(p["id"], p["created"]) for p in payloads}) == 1
    kinds = []
    for p in payloads[:-1]:
        choice = p["choices"][0]
        assert list(choice) == ["index", "delta"] and "usage" not in p
        delta = choice["delta"]
        if "reasoning_content" in delta:
            assert list(delta) == ["role", "reasoning_content"] and delta["role"] == "assistant"
            assert count_tokens(delta["reasoning_content"]) == 1  # about one token per chunk (§9)
            kinds.append("r")
        elif "tool_calls" in delta:
            assert list(delta) == ["tool_calls"] and len(delta["tool_calls"]) == 1
            assert delta["tool_calls"][0]["function"]["name"] == "get_weather"
            kinds.append("t")
        else:
            assert list(delta) == ["role", "content"]
            kinds.append("c")
    assert "".join(kinds) == "r" * kinds.count("r") + "c" * kinds.count("c") + "t"
    assert kinds.count("r") > 5
    final = payloads[-1]
    assert final["choices"] == [{"index": 0, "finish_reason": "tool_calls", "delta": {"role": "assistant", "content": ""}}]
    usage = final["usage"]
    assert list(usage) == ["prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details", "completion_tokens_details"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == kinds.count("r")
    usage_adds_up(usage)


def test_answer_stream_has_reasoning_then_content_then_the_final_chunk(srv: LocalServer) -> None:
    payloads = raw_stream(srv, {"model": "glm-5", "messages": user("中国的首都是哪里？")})
    deltas = [p["choices"][0]["delta"] for p in payloads]
    split = next(i for i, d in enumerate(deltas) if "content" in d)
    assert split > 0 and all(list(d) == ["role", "reasoning_content"] for d in deltas[:split])
    assert all(list(d) == ["role", "content"] for d in deltas[split:])
    assert payloads[-1]["choices"][0]["finish_reason"] == "stop" and deltas[-1] == {"role": "assistant", "content": ""}
    assert all("finish_reason" not in p["choices"][0] for p in payloads[:-1])


def test_sync_body_keys_are_sorted_like_the_capture(srv: LocalServer) -> None:
    headers = {"Authorization": f"Bearer {srv.api_key}"}
    messages = [{"role": "system", "content": "你是一个乐于助人的助手。"}] + user("你好")
    body = httpx.post(srv.base_url + "/chat/completions", headers=headers, timeout=10,
                      json={"model": "glm-4.7-flash", "messages": messages, "thinking": None}).json()
    assert list(body) == ["choices", "created", "id", "model", "object", "request_id", "usage"]
    assert list(body["choices"][0]["message"]) == ["content", "reasoning_content", "role"]
    assert list(body["usage"]) == ["completion_tokens", "completion_tokens_details", "prompt_tokens",
                                   "prompt_tokens_details", "total_tokens"]
    assert body["id"] == body["request_id"] and body["object"] == "chat.completion"
    # The repeated system prefix counts as a cache hit, computed from the request alone.
    assert 0 < body["usage"]["prompt_tokens_details"]["cached_tokens"] < body["usage"]["prompt_tokens"]


def test_one_token_per_content_chunk_when_asked() -> None:
    with LocalServer(speed=0, max_stream_chunks=0) as server:
        payloads = raw_stream(server, {"model": "glm-4.7", "messages": user("中国的首都是哪里？")})
    content = [p["choices"][0]["delta"]["content"] for p in payloads[:-1] if "content" in p["choices"][0]["delta"]]
    assert len(content) == count_tokens("".join(content)) and all(count_tokens(c) == 1 for c in content)


# ------------------------------------------------------------------ vision


def test_image_to_a_text_model_is_1210_with_the_real_message(client: ZhipuAI) -> None:
    for model, url in (("glm-4.7", "data:image/png;base64," + png(8, 8, (255, 0, 0))), ("glm-4", "https://example.com/a.png")):
        with pytest.raises(zhipuai.APIRequestFailedError) as caught:
            client.chat.completions.create(model=model, messages=picture_message("这是什么？", url))
        assert caught.value.status_code == 400
        assert caught.value.response.json() == {"error": {"code": "1210", "message": TEXT_ONLY}}


def test_image_only_message_to_a_vision_model_is_1213(client: ZhipuAI) -> None:
    with pytest.raises(zhipuai.APIRequestFailedError) as caught:
        client.chat.completions.create(model="glm-4.6v", messages=picture_message(None, png(8, 8, (0, 0, 255))))
    assert caught.value.status_code == 400
    assert caught.value.response.json() == {"error": {"code": "1213", "message": "未正常接收到prompt参数。"}}


@pytest.mark.parametrize(("size", "rgb", "name"), [((64, 48), (220, 30, 30), "红色"), ((32, 32), (20, 60, 230), "蓝色"),
                                                   ((10, 20), (40, 180, 60), "绿色")])
def test_a_vision_model_answers_from_the_image(client: ZhipuAI, size: tuple[int, int], rgb: tuple[int, int, int], name: str) -> None:
    data_url = "data:image/png;base64," + png(*size, rgb)
    reply = client.chat.completions.create(model="glm-4.6v", messages=picture_message("这张图片是什么颜色？", data_url))
    content = reply.choices[0].message.content
    assert content == f"这是一张 {size[0]}×{size[1]} 的图片，主色调是{name}。"
    assert reply.choices[0].message.reasoning_content not in content
    assert reply.usage.prompt_tokens >= IMAGE_TOKENS
    again = client.chat.completions.create(model="glm-4.6v", messages=picture_message("这张图片是什么颜色？", data_url))
    assert again.choices[0].message.content == content


def test_vision_takes_raw_base64_and_names_an_unfetched_url(client: ZhipuAI) -> None:
    raw = client.chat.completions.create(model="glm-5v-turbo", messages=picture_message("What colour is it?", png(64, 48, (230, 20, 20))),
                                         thinking={"type": "disabled"})
    assert raw.choices[0].message.content == "This is a 64×48 image; its dominant colour is red."
    url = "https://example.com/photos/cat.jpg"
    remote = client.chat.completions.create(model="glm-4.6v", messages=picture_message("描述这张图", url))
    assert url in remote.choices[0].message.content
    with pytest.raises(zhipuai.APIRequestFailedError) as bad:
        client.chat.completions.create(model="glm-4.6v", messages=picture_message("描述", "data:image/png;base64,bm90IGFuIGltYWdl"))
    assert bad.value.response.json()["error"]["code"] == "1210"


# ------------------------------------------------------------------ web search


def test_web_search_results_shape_and_the_answer_cites_them(client: ZhipuAI) -> None:
    tool = {"type": "web_search", "web_search": {"enable": "True", "search_result": "True", "count": "3"}}
    reply = client.chat.completions.create(model="glm-4.7", messages=user("2026年有哪些新的大模型？"), tools=[tool])
    results = get(reply, "web_search")
    assert isinstance(results, list) and len(results) == 3
    assert all(list(r) == WEB_SEARCH_KEYS and all(isinstance(v, str) and v for v in r.values()) for r in results)
    assert [r["refer"] for r in results] == ["ref_1", "ref_2", "ref_3"]
    content = reply.choices[0].message.content
    assert "[ref_1]" in content and results[0]["title"] in content
    again = client.chat.completions.create(model="glm-4.7", messages=user("2026年有哪些新的大模型？"), tools=[tool])
    assert get(again, "web_search") == results
    default = client.chat.completions.create(model="glm-4", messages=user("今天的新闻"),
                                             tools=[{"type": "web_search", "web_search": {"enable": True}}])
    assert len(get(default, "web_search")) == 5
    off = client.chat.completions.create(model="glm-4", messages=user("今天的新闻"),
                                         tools=[{"type": "web_search", "web_search": {"enable": "False"}}])
    assert get(off, "web_search") is None and "[ref_" not in off.choices[0].message.content


def test_web_search_in_a_stream_arrives_on_the_first_chunk(srv: LocalServer) -> None:
    tool = {"type": "web_search", "web_search": {"enable": True, "search_result": True, "count": 2}}
    payloads = raw_stream(srv, {"model": "glm-4.5-flash", "messages": user("杭州有什么好玩的"), "tools": [tool]})
    assert len(payloads[0]["web_search"]) == 2 and all("web_search" not in p for p in payloads[1:])
    content = "".join(p["choices"][0]["delta"].get("content", "") for p in payloads)
    assert "[ref_1]" in content


# ------------------------------------------------------------------ the 2024 models


def test_glm4_is_unchanged(srv: LocalServer, client: ZhipuAI) -> None:
    reply = client.chat.completions.create(model="glm-4", messages=user("你好"))
    assert reply.choices[0].message.content == GLM4_HELLO and reply.choices[0].message.reasoning_content is None
    assert reply.usage.completion_tokens == count_tokens(GLM4_HELLO)
    headers = {"Authorization": f"Bearer {srv.api_key}"}
    body = httpx.post(srv.base_url + "/chat/completions", headers=headers, timeout=10,
                      json={"model": "glm-4", "messages": user("你好"), "thinking": {"type": "enabled"}}).json()
    assert list(body) == ["choices", "created", "id", "model", "request_id", "usage"]
    assert body["usage"] == {"completion_tokens": count_tokens(GLM4_HELLO), "prompt_tokens": 7,
                             "prompt_tokens_details": {"cached_tokens": 0}, "total_tokens": 7 + count_tokens(GLM4_HELLO)}
    payloads = raw_stream(srv, {"model": "glm-3-turbo", "messages": user("你好")})
    assert all("object" not in p and "reasoning_content" not in p["choices"][0]["delta"] for p in payloads)
    tool_chunks = raw_stream(srv, {"model": "glm-4", "messages": user("上海明天天气如何"), "tools": WEATHER_TOOLS})
    assert len(tool_chunks) == 2 and tool_chunks[0]["choices"][0]["finish_reason"] == "tool_calls"


def test_async_task_of_a_thinking_model_carries_reasoning() -> None:
    with LocalServer(speed=0) as server:
        sdk = ZhipuAI(api_key=server.api_key, base_url=server.base_url, max_retries=0, timeout=10)
        task = sdk.chat.asyncCompletions.create(model="glm-4.7", messages=user("你好"))
        result = sdk.chat.asyncCompletions.retrieve_completion_result(id=task.id)
    assert result.task_status == "SUCCESS"
    assert result.choices[0].message.reasoning_content
    assert usage_adds_up(result.usage) > 0
