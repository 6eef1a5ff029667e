"""The Zhipu v4 wire contract the local server enforces: auth, request validation, error bodies.

Kept apart from the HTTP plumbing so the rules are readable in one place and match
/work/shared/zhipu-api.md: which status and business code each mistake earns, what the SDK
actually sends (``null`` for response_format and thinking, a float request_id), and which
limits come from the model table.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from glmeval.catalogue.tokens import count_prompt_tokens, count_tokens

from .conversation import Conversation, Sampling
from .models import MODELS, ModelSpec

__all__ = [
    "ApiError",
    "ChatRequest",
    "EmbeddingRequest",
    "check_auth",
    "parse_json_body",
    "validate_chat",
    "validate_embeddings",
]

_ROLES = frozenset({"system", "user", "assistant", "tool"})
_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PARAM_ERROR = "API 调用参数有误，请检查文档。"


class ApiError(Exception):
    """An error the server answers with ``{"error": {"code", "message"}}`` and an HTTP status."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body, exactly as the real API shapes it."""
        return {"error": {"code": self.code, "message": self.message}}


def _invalid(field: str) -> ApiError:
    return ApiError(400, "1214", f"{field} 参数非法。请检查文档。")


def _bad_value(message: str) -> ApiError:
    return ApiError(400, "1210", message)


# --------------------------------------------------------------------------------------------
# Auth


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _check_jwt(token: str, api_key: str | None, now_ms: float) -> bool:
    """Verify a zhipuai-style HS256 JWT (§1.1): key "id.secret", payload api_key/exp in ms.

    Returns False when the token is not a JWT at all (so the caller can treat it as a raw
    key); raises ApiError for a JWT that is expired or signed with the wrong secret.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return False
    try:
        header = json.loads(_b64decode(parts[0]))
        payload = json.loads(_b64decode(parts[1]))
        signature = _b64decode(parts[2])
    except (ValueError, UnicodeDecodeError):
        return False
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(payload, dict):
        return False
    if api_key is not None:
        key_id, dot, secret = api_key.partition(".")
        if not dot:
            raise ApiError(401, "1000", "身份验证失败。")
        expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode("ascii"), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature) or payload.get("api_key") != key_id:
            raise ApiError(401, "1000", "身份验证失败。")
    exp = payload.get("exp")
    if isinstance(exp, (int, float)) and exp < now_ms:
        # The business code 1003 (Token 已过期) is documented; this exact message is [unconfirmed].
        raise ApiError(401, "1003", "Authentication Token已过期，请重新生成/获取。")
    return True


def check_auth(header: str | None, api_key: str | None) -> None:
    """Accept ``Bearer <raw key>`` or ``Bearer <HS256 JWT>``; ``api_key=None`` accepts any key."""
    token = (header or "").strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    if not token:
        raise ApiError(401, "1001", "Header中未收到Authentication参数，无法进行身份验证。")
    if api_key is not None and hmac.compare_digest(token.encode(), api_key.encode()):
        return
    if _check_jwt(token, api_key, time.time() * 1000):
        return
    if api_key is None:
        return
    raise ApiError(401, "1000", "身份验证失败。")


# --------------------------------------------------------------------------------------------
# Requests


def parse_json_body(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or 400/1210."""
    if not raw:
        raise _bad_value("请求体为空，请传入 JSON 格式的请求参数。")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _bad_value("请求体不是合法的 JSON，请检查请求参数。") from None
    if not isinstance(body, dict):
        raise _bad_value("请求体必须是 JSON 对象，请检查请求参数。")
    return body


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _request_id(body: Mapping[str, Any]) -> str | None:
    value = body.get("request_id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _invalid("request_id")
    return str(value)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated chat request, with everything the reply engine and the latency model need."""

    model: ModelSpec
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    sampling: Sampling
    max_tokens: int
    stop: tuple[str, ...]
    stream: bool
    request_id: str | None
    json_mode: bool
    thinking: bool
    prompt_tokens: int
    conversation: Conversation


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages")
    has_user = False
    for message in messages:
        if not isinstance(message, dict):
            raise _invalid("messages")
        role = message.get("role")
        if role not in _ROLES:
            raise _invalid("messages.role")
        content = message.get("content")
        if role == "assistant":
            if content is None and not message.get("tool_calls"):
                raise _invalid("messages.content")
            calls = message.get("tool_calls")
            if calls is not None and not isinstance(calls, list):
                raise _invalid("messages.tool_calls")
        elif not isinstance(content, (str, list)) or (role == "user" and not content):
            raise _invalid("messages.content")
        if role == "user":
            has_user = True
    if not has_user:
        raise _invalid("messages")
    return messages


def _check_tools(tools: Any) -> tuple[list[dict[str, Any]] | None, frozenset[str]]:
    if tools is None:
        return None, frozenset()
    if not isinstance(tools, list) or len(tools) > 128:
        raise _invalid("tools")
    names: set[str] = set()
    for tool in tools:
        if not isinstance(tool, dict):
            raise _invalid("tools")
        kind = tool.get("type")
        if kind == "function":
            function = tool.get("function")
            if not isinstance(function, dict):
                raise _invalid("tools.function")
            name = function.get("name")
            if not isinstance(name, str) or not _FUNCTION_NAME.fullmatch(name):
                raise _invalid("tools.function.name")
            parameters = function.get("parameters")
            if parameters is not None and not isinstance(parameters, dict):
                raise _invalid("tools.function.parameters")
            names.add(name)
        elif kind not in ("retrieval", "web_search"):
            raise _invalid("tools.type")
    return tools, frozenset(names)


def _check_stop(stop: Any) -> tuple[str, ...]:
    if stop is None:
        return ()
    if isinstance(stop, str):
        stop = [stop]
    if (
        not isinstance(stop, list)
        or len(stop) > 4
        or not all(isinstance(s, str) and s for s in stop)
    ):
        raise _bad_value("stop参数非法：仅支持字符串或最多4个非空字符串的列表")
    return tuple(stop)


def _check_type_object(value: Any, field: str, allowed: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") not in allowed:
        raise _bad_value(f"{field}参数非法：type 取值范围为 {', '.join(allowed)}")
    return str(value["type"])


def validate_chat(body: Mapping[str, Any], *, async_mode: bool = False) -> ChatRequest:
    """Validate a chat body the way the real API does, in the same order of precedence."""
    model_name = body.get("model")
    if not isinstance(model_name, str) or not model_name:
        raise _invalid("model")
    model = MODELS.get(model_name)
    if model is None or model.kind != "chat":
        raise ApiError(400, "1211", "模型不存在，请检查模型代码。")
    messages = _check_messages(body.get("messages"))
    tools, tool_names = _check_tools(body.get("tools"))
    tool_choice = body.get("tool_choice")
    if tool_choice is not None and tool_choice != "auto":
        raise _bad_value("tool_choice参数非法：目前仅支持 auto")

    temperature = body.get("temperature")
    if temperature is None:
        temperature = model.default_temperature
    elif not _number(temperature) or not 0.0 <= temperature <= 1.0:
        raise _bad_value("temperature参数非法：限制数值范围[0.0,1.0]")
    top_p = body.get("top_p")
    if top_p is None:
        top_p = model.default_top_p
    elif not _number(top_p) or not 0.0 <= top_p <= 1.0:
        raise _bad_value("top_p参数非法：限制数值范围[0.0,1.0]")
    do_sample = body.get("do_sample")
    if do_sample is None:
        do_sample = True
    elif not isinstance(do_sample, bool):
        raise _bad_value("do_sample参数非法：必须为布尔值")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _bad_value("seed参数非法：必须为整数")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        max_tokens = model.default_max_tokens
    elif isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= model.max_output:
        raise _bad_value(f"max_tokens参数非法：限制数值范围[1,{model.max_output}]")
    stop = _check_stop(body.get("stop"))
    stream = body.get("stream")
    if stream is None or async_mode:
        stream = False
    elif not isinstance(stream, bool):
        raise _bad_value("stream参数非法：必须为布尔值")
    response_type = _check_type_object(body.get("response_format"), "response_format", ("text", "json_object"))
    thinking_type = _check_type_object(body.get("thinking"), "thinking", ("enabled", "disabled"))
    request_id = _request_id(body)
    user_id = body.get("user_id")
    if user_id is not None and not isinstance(user_id, str):
        raise _invalid("user_id")

    prompt_tokens = count_prompt_tokens(messages, tools)
    if prompt_tokens > model.context_window:
        raise ApiError(400, "1261", "Prompt 超长")
    return ChatRequest(
        model=model,
        messages=messages,
        tools=tools,
        sampling=Sampling(do_sample=do_sample, temperature=float(temperature), top_p=float(top_p), seed=seed),
        max_tokens=max_tokens,
        stop=stop,
        stream=stream,
        request_id=request_id,
        json_mode=response_type == "json_object",
        thinking=model.thinking and thinking_type == "enabled",
        prompt_tokens=prompt_tokens,
        conversation=Conversation(messages, tool_names),
    )


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    """A validated embeddings request."""

    model: ModelSpec
    inputs: list[str]
    dimensions: int
    request_id: str | None


_MAX_EMBEDDING_INPUTS = 64


def validate_embeddings(body: Mapping[str, Any]) -> EmbeddingRequest:
    """Validate ``client.embeddings.create`` bodies (input str or list of str, dimensions)."""
    model_name = body.get("model")
    if not isinstance(model_name, str) or not model_name:
        raise _invalid("model")
    model = MODELS.get(model_name)
    if model is None or model.kind != "embedding":
        raise ApiError(400, "1211", "模型不存在，请检查模型代码。")
    raw = body.get("input")
    inputs: Sequence[Any] = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    if not inputs or len(inputs) > _MAX_EMBEDDING_INPUTS or not all(isinstance(t, str) and t.strip() for t in inputs):
        raise _invalid("input")
    dimensions = body.get("dimensions")
    if dimensions is None:
        dimensions = model.default_dimensions
    elif isinstance(dimensions, bool) or dimensions not in model.embedding_dimensions:
        allowed = ", ".join(str(d) for d in model.embedding_dimensions)
        raise _bad_value(f"dimensions参数非法：取值范围为 {allowed}")
    if any(count_tokens(text) > model.context_window for text in inputs):
        raise ApiError(400, "1261", "Prompt 超长")
    return EmbeddingRequest(model, list(inputs), int(dimensions), _request_id(body))
