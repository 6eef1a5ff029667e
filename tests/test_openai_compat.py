"""The local server standing in for every host of GLM, driven by the real SDKs over loopback.

The openai SDK talks to ``/p/<name>/v1`` mounts in each dialect (vLLM, SGLang, DashScope,
OpenRouter, Zhipu's own OpenAI-compatible wire); zai-sdk and zhipuai talk to the Zhipu v4 paths
under a mount. What a user of each host sees: the thinking switch that host reads, the reasoning
in that host's field, usage with reasoning tokens where that host puts it, tool calls, the SDK's
own exception classes for errors, the model list, and a clear 404 for a mount nobody registered.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import zhipuai
from zai import ZaiClient, ZhipuAiClient
from zai.core import _errors as zai_errors

from glmeval.catalogue.dialects import DIALECTS, Dialect, thinking_fields
from glmeval.catalogue.tokens import count_tokens
from glmeval.simulator import DEFAULT_API_KEY, FaultConfig, LocalServer
from glmeval.simulator.models import chat_models

PROVIDERS: dict[str, Dialect] = {"zai": "zhipu", "selfhosted": "vllm", "sg": "sglang", "ali": "dashscope", "router": "openrouter"}
BY_DIALECT = {dialect: name for name, dialect in PROVIDERS.items()}
OTHER_FIELD = {"reasoning_content": "reasoning", "reasoning": "reasoning_content"}
# What zhipu-api-2026.md §2.3 and §8 say of each host, written out here rather than read from
# the table under test: (reasoning field, usage on its own choiceless chunk, usage only when asked).
HOSTS: dict[Dialect, tuple[str, bool, bool]] = {
    "zhipu": ("reasoning_content", False, False),
    "vllm": ("reasoning", True, True),
    "sglang": ("reasoning_content", True, True),
    "dashscope": ("reasoning_content", True, True),
    "openrouter": ("reasoning", False, False),
}
WEATHER_TOOLS: list[dict[str, Any]] = [{
    "type": "function",
    "function": {"name": "get_weather", "description": "查询城市天气",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
}]


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def srv() -> Iterator[LocalServer]:
    # Strict about the key: these tests check what a wrong key gets on every wire.
    with LocalServer(speed=0.0, providers=PROVIDERS, api_key=DEFAULT_API_KEY) as server:
        yield server


def client(srv: LocalServer, dialect: Dialect, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(api_key=key or srv.api_key, base_url=srv.provider_url(BY_DIALECT[dialect]),
                         max_retries=0, timeout=20)


def reasoning_of(obj: Any, dialect: Dialect) -> str | None:
    """The reasoning an openai SDK message or delta carries in ``dialect``'s field (an extra attribute)."""
    value = (obj.model_extra or {}).get(HOSTS[dialect][0])
    return value if isinstance(value, str) else None


def raw_stream(srv: LocalServer, dialect: Dialect, body: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """(the SSE lines as sent, the parsed data payloads) of one stream, read without any SDK."""
    url = srv.provider_url(BY_DIALECT[dialect]) + "/chat/completions"
    response = httpx.post(url, json={**body, "stream": True}, headers={"Authorization": f"Bearer {srv.api_key}"}, timeout=20)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in response.text.split("\n") if line]
    assert lines[-1] == "data: [DONE]"
    payloads = [json.loads(line[6:]) for line in lines[:-1] if line.startswith("data: ")]
    return lines, payloads


# ---------------------------------------------------------------------------------- sync


@pytest.mark.parametrize("dialect", DIALECTS)
def test_reasoning_arrives_in_the_dialects_field_with_reasoning_tokens(srv: LocalServer, dialect: Dialect) -> None:
    reply = client(srv, dialect).chat.completions.create(model="glm-4.7", messages=user("中国的首都是哪里？"))
    message = reply.choices[0].message
    reasoning = reasoning_of(message, dialect)
    assert reasoning and "北京" in (message.content or "")
    assert OTHER_FIELD[HOSTS[dialect][0]] not in (message.model_extra or {})
    usage = reply.usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == count_tokens(reasoning)
    assert usage.completion_tokens == count_tokens(reasoning) + count_tokens(message.content or "")
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert reply.object == "chat.completion" and reply.model == "glm-4.7"
    if dialect == "openrouter":
        details = (message.model_extra or {})["reasoning_details"]
        assert details == [{"type": "reasoning.text", "text": reasoning, "format": "unknown", "index": 0}]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_each_dialect_reads_its_own_thinking_switch(srv: LocalServer, dialect: Dialect) -> None:
    api = client(srv, dialect)
    off = api.chat.completions.create(model="glm-4.7", messages=user("你好"), extra_body=thinking_fields(dialect, False))
    assert reasoning_of(off.choices[0].message, dialect) is None and off.choices[0].message.content
    assert off.usage is not None and off.usage.completion_tokens_details is not None
    assert off.usage.completion_tokens_details.reasoning_tokens == 0
    # glm-4.6 decides not to think when nothing is said; the dialect's switch turns it on.
    quiet = api.chat.completions.create(model="glm-4.6", messages=user("你好"))
    assert reasoning_of(quiet.choices[0].message, dialect) is None
    on = api.chat.completions.create(model="glm-4.6", messages=user("你好"), extra_body=thinking_fields(dialect, True))
    assert reasoning_of(on.choices[0].message, dialect)


def test_another_dialects_switch_is_not_read(srv: LocalServer) -> None:
    """A vLLM-style switch sent to OpenRouter does nothing: each host reads only its own."""
    reply = client(srv, "openrouter").chat.completions.create(
        model="glm-4.7", messages=user("你好"), extra_body=thinking_fields("vllm", False))
    assert reasoning_of(reply.choices[0].message, "openrouter")


@pytest.mark.parametrize("sent", ["z-ai/glm-4.7", "zai-org/GLM-4.7", "GLM-4.7", "zai-org/GLM-4.7-FP8", "~z-ai/glm-4.7"])
def test_model_names_as_hosts_spell_them_resolve_and_are_echoed(srv: LocalServer, sent: str) -> None:
    api = client(srv, "vllm")
    plain = api.chat.completions.create(model="glm-4.7", messages=user("中国的首都是哪里？"), temperature=0.0)
    spelled = api.chat.completions.create(model=sent, messages=user("中国的首都是哪里？"), temperature=0.0)
    assert spelled.model == sent
    assert spelled.choices[0].message.content == plain.choices[0].message.content


def test_dated_openrouter_id_resolves(srv: LocalServer) -> None:
    reply = client(srv, "openrouter").chat.completions.create(model="z-ai/glm-5-turbo-20260315", messages=user("你好"))
    assert reply.model == "z-ai/glm-5-turbo-20260315" and reply.choices[0].message.content


@pytest.mark.parametrize("dialect", DIALECTS)
def test_tool_calls_sync_and_stream(srv: LocalServer, dialect: Dialect) -> None:
    api = client(srv, dialect)
    reply = api.chat.completions.create(model="glm-4.7", messages=user("北京今天天气怎么样？"), tools=WEATHER_TOOLS)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and "北京" in json.loads(call.function.arguments)["city"]
    names, finish = [], None
    for chunk in api.chat.completions.create(model="glm-4.7", messages=user("北京今天天气怎么样？"), tools=WEATHER_TOOLS,
                                             stream=True, stream_options={"include_usage": True}):
        for c in chunk.choices:
            names += [t.function.name for t in c.delta.tool_calls or [] if t.function]
            finish = c.finish_reason or finish
    assert names == ["get_weather"] and finish == "tool_calls"


# ---------------------------------------------------------------------------------- streams


@pytest.mark.parametrize("dialect", DIALECTS)
def test_stream_carries_reasoning_first_then_content_and_usage_where_the_host_puts_it(
    srv: LocalServer, dialect: Dialect
) -> None:
    api = client(srv, dialect)
    args: dict[str, Any] = {"model": "glm-4.7", "messages": user("中国的首都是哪里？"), "temperature": 0.0}
    sync = api.chat.completions.create(**args)
    reasoning, content, order, usage_chunks = "", "", [], []
    for chunk in api.chat.completions.create(**args, stream=True, stream_options={"include_usage": True}):
        assert chunk.object == "chat.completion.chunk" and chunk.model == "glm-4.7"
        if chunk.usage is not None:
            usage_chunks.append(chunk)
        for c in chunk.choices:
            piece = reasoning_of(c.delta, dialect)
            if piece:
                reasoning += piece
                order.append("r")
            if c.delta.content:
                content += c.delta.content
                order.append("c")
    assert reasoning == reasoning_of(sync.choices[0].message, dialect)
    assert content == sync.choices[0].message.content
    assert order == sorted(order, reverse=True)  # every reasoning delta before the first content delta
    assert len(usage_chunks) == 1
    last = usage_chunks[0]
    assert last.usage is not None and last.usage.completion_tokens_details is not None
    assert last.usage.completion_tokens_details.reasoning_tokens == count_tokens(reasoning)
    if HOSTS[dialect][1]:
        assert last.choices == []  # DashScope's sample reads it by `if not chunk.choices`
    else:
        assert last.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_usage_without_include_usage_only_where_the_host_always_sends_it(srv: LocalServer, dialect: Dialect) -> None:
    chunks = list(client(srv, dialect).chat.completions.create(model="glm-4.7", messages=user("你好"), stream=True))
    with_usage = [c for c in chunks if c.usage is not None]
    assert len(with_usage) == (0 if HOSTS[dialect][2] else 1)
    assert chunks[-1].choices


def test_openrouter_stream_shape_is_the_captures(srv: LocalServer) -> None:
    lines, payloads = raw_stream(srv, "openrouter", {"model": "z-ai/glm-4.7", "messages": user("hello")})
    assert lines[0] == ": OPENROUTER PROCESSING"
    reasoning = [p for p in payloads if p["choices"] and p["choices"][0]["delta"].get("reasoning")]
    assert reasoning
    for p in payloads:
        assert p["provider"] == "Z.AI" and p["model"] == "z-ai/glm-4.7"
        assert set(p["choices"][0]) >= {"finish_reason", "native_finish_reason"}
    for p in reasoning:
        delta = p["choices"][0]["delta"]
        assert delta["content"] == "" and delta["reasoning_details"][0]["text"] == delta["reasoning"]
        assert "reasoning_content" not in delta
    assert payloads[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] == len(reasoning)


def test_vllm_stream_opens_with_a_role_delta_and_ends_with_a_choiceless_usage_chunk(srv: LocalServer) -> None:
    _, payloads = raw_stream(srv, "vllm", {"model": "zai-org/GLM-4.7", "messages": user("hello"),
                                           "stream_options": {"include_usage": True}})
    assert payloads[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert payloads[-1]["choices"] == [] and payloads[-1]["usage"]["total_tokens"] > 0
    assert payloads[-2]["choices"][0]["finish_reason"] == "stop"
    assert all(p["id"].startswith("chatcmpl-") and p["id"] == payloads[0]["id"] for p in payloads)
    assert any("reasoning" in p["choices"][0]["delta"] for p in payloads if p["choices"])
    assert not any("reasoning_content" in p["choices"][0]["delta"] for p in payloads if p["choices"])


def test_zhipu_dialect_on_v1_is_the_v4_wire(srv: LocalServer) -> None:
    _, payloads = raw_stream(srv, "zhipu", {"model": "glm-4.7", "messages": user("hello")})
    for p in payloads[:-1]:
        assert "finish_reason" not in p["choices"][0] and "usage" not in p
    final = payloads[-1]["choices"][0]
    assert final["delta"] == {"role": "assistant", "content": ""} and final["finish_reason"] == "stop"
    assert list(payloads[-1]["usage"]) == ["prompt_tokens", "completion_tokens", "total_tokens",
                                           "prompt_tokens_details", "completion_tokens_details"]


def test_content_filter_and_cut_stream_faults_on_v1() -> None:
    with LocalServer(speed=0.0, providers={"selfhosted": "vllm"}, faults=FaultConfig(content_filter=1.0)) as server:
        api = openai.OpenAI(api_key=server.api_key, base_url=server.provider_url("selfhosted"), max_retries=0, timeout=20)
        finishes = [c.choices[0].finish_reason for c in api.chat.completions.create(
            model="glm-4.7", messages=user("你好"), stream=True) if c.choices]
        assert finishes[-1] == "content_filter"
        server.faults = FaultConfig(cut_stream=1.0)
        with pytest.raises(openai.APIConnectionError):
            list(api.chat.completions.create(model="glm-4.7", messages=user("你好"), stream=True))


# ---------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("dialect", [d for d in DIALECTS if d != "zhipu"])
def test_unknown_model_is_the_sdks_not_found_error(srv: LocalServer, dialect: Dialect) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client(srv, dialect).chat.completions.create(model="z-ai/glm-9", messages=user("hi"))
    assert info.value.status_code == 404 and info.value.code == "model_not_found"
    assert info.value.type == "invalid_request_error" and "z-ai/glm-9" in info.value.message


def test_zhipu_dialect_keeps_its_400_and_business_code(srv: LocalServer) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client(srv, "zhipu").chat.completions.create(model="glm-9", messages=user("hi"))
    assert info.value.code == "1211" and info.value.type == "invalid_request_error"


def test_errors_are_openai_shaped_with_the_right_status(srv: LocalServer) -> None:
    api = client(srv, "vllm")
    with pytest.raises(openai.AuthenticationError) as auth:
        client(srv, "vllm", key="wrong-key").chat.completions.create(model="glm-4.7", messages=user("hi"))
    assert auth.value.status_code == 401 and auth.value.code == "invalid_api_key"
    assert "wrong-key" not in str(auth.value.body)
    with pytest.raises(openai.BadRequestError) as bad:
        api.chat.completions.create(model="glm-4.7", messages=user("hi"), temperature=1.5)
    assert set(bad.value.body) == {"message", "type", "param", "code"}  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError) as switch:
        api.chat.completions.create(model="glm-4.7", messages=user("hi"),
                                    extra_body={"chat_template_kwargs": {"enable_thinking": "no"}})
    assert "chat_template_kwargs.enable_thinking" in switch.value.message
    response = httpx.get(srv.provider_url("selfhosted") + "/embeddings", headers={"Authorization": f"Bearer {srv.api_key}"})
    assert response.status_code == 404 and set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_rate_limit_is_the_sdks_rate_limit_error() -> None:
    with LocalServer(speed=0.0, providers={"router": "openrouter"}, faults=FaultConfig(rate_limit=1.0, retry_after=0.5)) as server:
        api = openai.OpenAI(api_key=server.api_key, base_url=server.provider_url("router"), max_retries=0, timeout=20)
        with pytest.raises(openai.RateLimitError) as info:
            api.chat.completions.create(model="z-ai/glm-4.7", messages=user("hi"))
    assert info.value.status_code == 429 and info.value.code == "rate_limit_exceeded"
    assert info.value.response.headers["retry-after"] == "0.5"


# ---------------------------------------------------------------------------------- models, mounts


@pytest.mark.parametrize("dialect", DIALECTS)
def test_models_lists_the_catalogue_as_the_host_spells_it(srv: LocalServer, dialect: Dialect) -> None:
    api = client(srv, dialect)
    listed = [m.id for m in api.models.list().data]
    assert len(listed) == len(chat_models()) == len(set(listed))
    if dialect == "openrouter":
        assert "z-ai/glm-4.7" in listed
    elif dialect in ("vllm", "sglang"):
        assert "zai-org/GLM-4.7" in listed and "zai-org/GLM-4.5-Air" in listed
    else:
        assert "glm-4.7" in listed
    reply = api.chat.completions.create(model=listed[listed.index(next(m for m in listed if m.lower().endswith("glm-4.7")))],
                                        messages=user("你好"))
    assert reply.choices[0].message.content


def test_unprefixed_v1_is_the_zhipu_dialect(srv: LocalServer) -> None:
    base = f"http://127.0.0.1:{srv.port}/v1"
    api = openai.OpenAI(api_key=srv.api_key, base_url=base, max_retries=0, timeout=20)
    reply = api.chat.completions.create(model="glm-4.7", messages=user("你好"))
    assert reasoning_of(reply.choices[0].message, "zhipu")
    assert "glm-4.7" in [m.id for m in api.models.list().data]


def test_a_dialect_name_mounts_without_registering(srv: LocalServer) -> None:
    api = openai.OpenAI(api_key=srv.api_key, base_url=f"http://127.0.0.1:{srv.port}/p/vllm/v1", max_retries=0, timeout=20)
    reply = api.chat.completions.create(model="zai-org/GLM-4.7", messages=user("你好"))
    assert reasoning_of(reply.choices[0].message, "vllm")


def test_unknown_mount_is_404_naming_the_known_ones(srv: LocalServer) -> None:
    api = openai.OpenAI(api_key=srv.api_key, base_url=f"http://127.0.0.1:{srv.port}/p/gpu-box/v1", max_retries=0, timeout=20)
    with pytest.raises(openai.NotFoundError) as info:
        api.chat.completions.create(model="glm-4.7", messages=user("hi"))
    assert "gpu-box" in info.value.message and "selfhosted" in info.value.message and "openrouter" in info.value.message
    zhipu = zhipuai.ZhipuAI(api_key=srv.api_key, base_url=f"http://127.0.0.1:{srv.port}/p/gpu-box/api/paas/v4", max_retries=0)
    with pytest.raises(zhipuai.APIStatusError) as native:
        zhipu.chat.completions.create(model="glm-4.7", messages=user("hi"))
    assert native.value.status_code == 404 and "selfhosted" in str(native.value)


# ---------------------------------------------------------------------------------- Zhipu SDKs under a mount


@pytest.mark.parametrize("make", [ZaiClient, ZhipuAiClient], ids=["ZaiClient", "ZhipuAiClient"])
def test_zai_sdk_under_a_mount_sync_stream_and_thinking_off(srv: LocalServer, make: Any) -> None:
    api = make(api_key=srv.api_key, base_url=srv.provider_url("zai", "zhipu"), max_retries=0)
    reply = api.chat.completions.create(model="glm-4.7", messages=user("中国的首都是哪里？"), temperature=0.5)
    message = reply.choices[0].message
    assert message.reasoning_content and "北京" in message.content
    assert reply.usage.completion_tokens_details.reasoning_tokens == count_tokens(message.reasoning_content)
    streamed, thought = "", ""
    for chunk in api.chat.completions.create(model="glm-4.7", messages=user("中国的首都是哪里？"), temperature=0.5, stream=True):
        delta = chunk.choices[0].delta
        streamed += delta.content or ""
        thought += getattr(delta, "reasoning_content", None) or ""
    assert streamed == message.content and thought == message.reasoning_content
    off = api.chat.completions.create(model="glm-4.7", messages=user("你好"), thinking={"type": "disabled"})
    assert not off.choices[0].message.reasoning_content
    with pytest.raises(zai_errors.APIAuthenticationError):
        make(api_key="wrong", base_url=srv.provider_url("zai", "zhipu"), max_retries=0).chat.completions.create(
            model="glm-4.7", messages=user("hi"))


def test_zhipuai_under_a_mount_answers_as_unprefixed(srv: LocalServer) -> None:
    mounted = zhipuai.ZhipuAI(api_key=srv.api_key, base_url=srv.provider_url("selfhosted", "zhipu"), max_retries=0)
    plain = zhipuai.ZhipuAI(api_key=srv.api_key, base_url=srv.base_url, max_retries=0)
    a = mounted.chat.completions.create(model="glm-4-plus", messages=user("你好"), temperature=0.01)
    b = plain.chat.completions.create(model="glm-4-plus", messages=user("你好"), temperature=0.01)
    assert a.choices[0].message.content == b.choices[0].message.content
