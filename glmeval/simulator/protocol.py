"""The Zhipu v4 wire contract the local server enforces: auth, request validation, error bodies.

Kept apart from the HTTP plumbing so the rules are readable in one place and match
/work/shared/zhipu-api.md: which status and business code each mistake earns, what the SDK
actually sends (``null`` for response_format and thinking, a float request_id), and which
limits come from the model table. The 2026 additions (zhipu-api-2026.md §2-§3) are here too:
whether a request thinks (``thinking``, ``reasoning_effort``), image parts (1210 on a text
model, 1213 for a vision message without text), the ``web_search`` tool, and an object
``tool_choice``. Unknown top-level fields are tolerated, as the 2026 captures show.
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
from typing import Any, Final

from glmeval.catalogue.models import EFFECTIVE_EFFORT, REASONING_EFFORT_VALUES
from glmeval.catalogue.tokens import MESSAGE_OVERHEAD_TOKENS, content_text, count_prompt_tokens, count_tokens

from .conversation import Conversation, Sampling
from .models import MODELS, ModelSpec
from .phrasing import CJK
from .search import WebSearch, parse_web_search, result_tokens, search_results
from .vision import IMAGE_TOKENS, ImageError, Picture, is_text_part, part_type, read_picture

__all__ = [
    "DEFAULT_API_KEY",
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
# The bigmodel message for an image part sent to a text model (zhipu-api-2026.md §3, §5).
_TEXT_ONLY = 'messages.content.type 参数非法，取值范围 ["text"]'
# A vision model's types; the message for another type there is [unconfirmed] (modelled on _TEXT_ONLY).
_VISION_TYPES = ("text", "image_url")
_VISION_ONLY = 'messages.content.type 参数非法，取值范围 ["text", "image_url"]'
_NO_PROMPT = "未正常接收到prompt参数。"  # 1213, glm-4v-flash with an image-only message (§3)
_BAD_IMAGE = "图片输入格式/解析错误"  # 1210, as glm-5.3-flash words it (§3) [envelope differs there]


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
        expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode("ascii"), hashlib.sha256).digest()
        if not dot or not hmac.compare_digest(expected, signature) or payload.get("api_key") != key_id:
            raise ApiError(401, "1000", "身份验证失败。" + _LOCAL + "the JWT is not signed with the --api-key it was started with)")
    exp = payload.get("exp")
    if isinstance(exp, (int, float)) and exp < now_ms:
        # The business code 1003 (Token 已过期) is documented; this exact message is [unconfirmed].
        raise ApiError(401, "1003", "Authentication Token已过期，请重新生成/获取。")
    return True


DEFAULT_API_KEY: Final = "glmeval-local.simulator"
"""The demo key of the local server: public, so a 401 may name it (a key given with
``--api-key`` may be a real one and is never echoed)."""

_NO_AUTH = "Header中未收到Authentication参数，无法进行身份验证。"
_LOCAL = " (glmeval local server: "


def _wanted(api_key: str) -> str:
    """What a strict server tells a client whose key it refused."""
    if api_key == DEFAULT_API_KEY:
        return f"it was started with --api-key and wants the key {DEFAULT_API_KEY}"
    return "it was started with --api-key and wants that key; this one differs (start it without --api-key to accept any key)"


def _malformed(token: str) -> str | None:
    """Why a bearer token cannot be a key at all, or None when it is well-formed."""
    for char in token:
        if char.isspace():
            return "the key contains whitespace; send `Authorization: Bearer <key>` with the key alone"
        if not " " < char < "\x7f":
            return "the key contains a control or non-ASCII character; copy it again"
    return None


def check_auth(header: str | None, api_key: str | None) -> None:
    """Accept ``Bearer <raw key>`` or ``Bearer <HS256 JWT>``.

    ``api_key=None`` (the default of ``glmeval serve`` and ``LocalServer``) accepts any
    well-formed key, so an app pointed at the local server works with whatever key it has;
    an expired JWT is still refused. A given ``api_key`` makes the server strict (auth
    tests). Every 401 keeps the real business code and adds, in brackets, what the local
    server wants, without echoing the key it got.
    """
    token = (header or "").strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    elif token.lower() == "bearer":
        token = ""
    if not token:
        raise ApiError(401, "1001", _NO_AUTH + _LOCAL + "send `Authorization: Bearer <key>`; any key works unless it was started with --api-key)")
    problem = _malformed(token)
    if problem is not None:
        raise ApiError(401, "1002", "Authentication Token非法。" + _LOCAL + problem + ")")
    if api_key is not None and hmac.compare_digest(token.encode(), api_key.encode()):
        return
    if _check_jwt(token, api_key, time.time() * 1000):
        return
    if api_key is None:
        return
    raise ApiError(401, "1000", "身份验证失败。" + _LOCAL + _wanted(api_key) + ")")


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
    effort: str | None = None
    pictures: tuple[Picture, ...] = ()
    search: WebSearch | None = None
    search_results: tuple[dict[str, str], ...] = ()
    cached_tokens: int = 0
    provider: str | None = None  # the provider mount (/p/<name>/) the request came through

    @property
    def english(self) -> bool:
        """The last user message is English (no CJK), so generated wording is English too."""
        return _is_english(self.conversation.last_user)


def _is_english(text: str) -> bool:
    return bool(text.strip()) and CJK.search(text) is None


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


def _check_parts(messages: list[dict[str, Any]], model: ModelSpec) -> tuple[tuple[Picture, ...], int]:
    """Content parts: (the last user message's pictures, images in the whole request).

    A text model answers 400/1210 for any part that is not text; a vision model reads its
    images and wants a text part in every user message whose content is a list (400/1213).
    """
    last: tuple[Picture, ...] = ()
    total = 0
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            if message.get("role") == "user":
                last = ()
            continue
        kinds = [part_type(part) for part in content]
        if not model.vision and any(kind != "text" for kind in kinds):
            raise _bad_value(_TEXT_ONLY)
        if not model.vision:
            continue
        if any(kind not in _VISION_TYPES for kind in kinds):
            raise _bad_value(_VISION_ONLY)
        if message.get("role") == "user" and not any(is_text_part(part) for part in content):
            raise ApiError(400, "1213", _NO_PROMPT)
        try:
            pictures = tuple(read_picture(part) for part, kind in zip(content, kinds) if kind == "image_url")
        except ImageError:
            raise _bad_value(_BAD_IMAGE) from None
        total += len(pictures)
        if message.get("role") == "user":
            last = pictures
    return last, total


def _think(body: Mapping[str, Any], model: ModelSpec) -> tuple[bool, str | None]:
    """(does the request think, the effort level in effect) for this model.

    The model's default when the request says nothing; ``thinking.type`` switches a hybrid
    model; ``reasoning_effort`` none/minimal turns thinking off on the models that take it
    (others ignore it: CAP26 saw glm-4.7-flash accept "high"), low/medium act as high and
    xhigh as max (zhipu-api-2026.md §2.1).
    """
    thinking_type = _check_type_object(body.get("thinking"), "thinking", ("enabled", "disabled"))
    effort = body.get("reasoning_effort")
    if model.reasoning_effort and effort is not None and effort not in REASONING_EFFORT_VALUES:
        # The real message for a bad value is [unconfirmed].
        raise _bad_value(f"reasoning_effort参数非法：取值范围为 {', '.join(REASONING_EFFORT_VALUES)}")
    if not model.thinking:
        return False, None
    if model.thinking_always:
        on = True
    elif thinking_type is not None:
        on = thinking_type == "enabled"
    else:
        on = model.thinking_default
    if not model.reasoning_effort:
        return on, None
    level = EFFECTIVE_EFFORT[effort] if effort is not None else model.default_effort
    if level is None:
        return False, None
    return on, level if on else None


def _check_tool_choice(tool_choice: Any) -> None:
    """``auto`` (the documented value) or the object form CAP26 saw accepted (not enforced here)."""
    if tool_choice is None or tool_choice == "auto":
        return
    if isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
        function = tool_choice.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return
    raise _bad_value("tool_choice参数非法：目前仅支持 auto")


def _web_search(tools: list[dict[str, Any]] | None) -> WebSearch | None:
    """The request's web search, if a ``web_search`` tool asks for one (a retrieval tool wins, §3 old ref)."""
    if not tools or any(tool.get("type") == "retrieval" for tool in tools):
        return None
    for tool in tools:
        if tool.get("type") == "web_search":
            try:
                search = parse_web_search(tool)
            except ValueError as exc:
                raise _invalid(str(exc)) from None
            if search.enabled:
                return search
    return None


def _cached_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, prompt_tokens: int) -> int:
    """The cache-hit estimate: the leading system messages and the tool definitions.

    That is the prefix every case of a suite repeats, which is what the real API's implicit
    prefix cache hits (169 of 173 prompt tokens on a repeated system + tools prefix, §4). It is
    computed from the request alone, never from earlier requests, so it is the same every run.
    """
    cached = count_tokens(json.dumps(tools, ensure_ascii=False)) if tools else 0
    for message in messages:
        if message.get("role") != "system":
            break
        cached += MESSAGE_OVERHEAD_TOKENS + count_tokens(content_text(message.get("content")))
    return min(cached, max(0, prompt_tokens - 1))


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
    pictures, image_count = _check_parts(messages, model)
    tools, tool_names = _check_tools(body.get("tools"))
    _check_tool_choice(body.get("tool_choice"))

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
    thinking, effort = _think(body, model)
    request_id = _request_id(body)
    user_id = body.get("user_id")
    if user_id is not None and not isinstance(user_id, str):
        raise _invalid("user_id")

    conversation = Conversation(messages, tool_names)
    search = _web_search(tools)
    results: list[dict[str, str]] = []
    if search is not None:
        results = search_results(search, conversation.last_user, _is_english(conversation.last_user))
    prompt_tokens = count_prompt_tokens(messages, tools) + image_count * IMAGE_TOKENS + result_tokens(results)
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
        thinking=thinking,
        prompt_tokens=prompt_tokens,
        conversation=conversation,
        effort=effort,
        pictures=pictures,
        search=search,
        search_results=tuple(results) if search is not None and search.show_results else (),
        cached_tokens=_cached_tokens(messages, tools, prompt_tokens) if model.wire == "2026" else 0,
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
