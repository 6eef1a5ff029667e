"""How each host that serves GLM spells the things that differ: the wire dialects.

GLM is served by Zhipu / Z.ai and, its weights being open, by vLLM, SGLang, Alibaba Model
Studio (DashScope) and OpenRouter, all OpenAI-compatible but each with its own thinking switch,
its own name for the reasoning field and its own stream quirks (zhipu-api-2026.md §2.3, §8).
This table is the one place those facts live: the harness reads it to build requests and parse
answers, the local server reads it to stand in for each host, so the two cannot drift apart.

Every entry names its source; **[unconfirmed]** marks what rests on one weak source or an inference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from glmeval.catalogue.models import lookup

__all__ = [
    "DIALECTS",
    "Dialect",
    "DialectSpec",
    "ReasoningField",
    "SPECS",
    "ThinkingSwitchError",
    "catalogue_model",
    "dialect_spec",
    "host_model",
    "read_thinking",
    "thinking_fields",
]

Dialect = Literal["zhipu", "vllm", "sglang", "dashscope", "openrouter"]
DIALECTS: tuple[Dialect, ...] = get_args(Dialect)
ReasoningField = Literal["reasoning_content", "reasoning"]
UsageChunk = Literal["last_choice", "own_chunk"]


@dataclass(frozen=True, slots=True)
class DialectSpec:
    """One host's dialect.

    ``thinking_path`` is where the thinking switch sits in the request body (the OpenAI SDK
    sends it through ``extra_body``), ``thinking_on`` / ``thinking_off`` the leaf values.
    ``reasoning_field`` is the key of the reasoning text in the sync ``message`` and in stream
    ``delta``s. ``reasoning_details``: reasoning also comes as ``reasoning_details`` entries and
    every reasoning delta carries ``content: ""`` (OpenRouter). ``usage_chunk``: ``last_choice``,
    the usage rides on the chunk with ``finish_reason``; ``own_chunk``, a chunk of its own after
    it, with ``choices: []``. ``usage_needs_include``: a stream carries usage only when the
    request has ``stream_options: {include_usage: true}``. ``role_chunk``: the stream opens
    with a delta holding only ``role`` (and an empty content), as OpenAI's own server does.
    ``model_prefix`` / ``model_case`` say how the host spells a catalogue model id.
    """

    name: Dialect
    thinking_path: tuple[str, ...]
    thinking_on: Any
    thinking_off: Any
    reasoning_field: ReasoningField
    usage_chunk: UsageChunk
    usage_needs_include: bool
    source: str
    reasoning_details: bool = False
    role_chunk: bool = False
    model_prefix: str = ""
    model_case: Literal["lower", "title"] = "lower"


SPECS: Mapping[Dialect, DialectSpec] = {
    "zhipu": DialectSpec(
        "zhipu", ("thinking", "type"), "enabled", "disabled", "reasoning_content", "last_choice", False,
        source="zhipu-api-2026.md §2.1-§2.3 (BM-THINK; CAP26 thinking.yaml, thinking-streaming.yaml): usage arrives "
               "on the final chunk whatever stream_options says",
    ),
    "vllm": DialectSpec(
        "vllm", ("chat_template_kwargs", "enable_thinking"), True, False, "reasoning", "own_chunk", True,
        source="zhipu-api-2026.md §8 (docs.vllm.ai reasoning parser glm45 / glm47_moe: chat_template_kwargs; "
               "v0.26 renamed reasoning_content to reasoning); usage chunk as OpenAI's stream_options [unconfirmed for GLM]",
        role_chunk=True, model_prefix="zai-org/", model_case="title",
    ),
    "sglang": DialectSpec(
        "sglang", ("chat_template_kwargs", "enable_thinking"), True, False, "reasoning_content", "own_chunk", True,
        source="zhipu-api-2026.md §8 (cookbook.sglang.io GLM-4.6): chat_template_kwargs and reasoning_content "
               "[unconfirmed details]; usage chunk as OpenAI's stream_options [unconfirmed]",
        role_chunk=True, model_prefix="zai-org/", model_case="title",
    ),
    "dashscope": DialectSpec(
        "dashscope", ("enable_thinking",), True, False, "reasoning_content", "own_chunk", True,
        source="zhipu-api-2026.md §8 (ALI: extra_body enable_thinking; the sample code asks for include_usage and "
               "reads the usage chunk by `if not chunk.choices`)",
        role_chunk=True,
    ),
    "openrouter": DialectSpec(
        "openrouter", ("reasoning", "enabled"), True, False, "reasoning", "last_choice", False,
        source="zhipu-api-2026.md §2.3, §8 (openrouter.ai z-ai/glm-4.5v: reasoning.enabled; CAP-OR tool_streaming.yaml: "
               "delta.reasoning + reasoning_details, content \"\" on reasoning deltas, usage on the last chunk)",
        reasoning_details=True, model_prefix="z-ai/",
    ),
}


def dialect_spec(dialect: str) -> DialectSpec:
    """The spec of ``dialect``; ``KeyError`` naming the known dialects for another name."""
    spec = SPECS.get(dialect)  # type: ignore[call-overload]
    if spec is None:
        raise KeyError(f"unknown dialect {dialect!r}; known: {', '.join(DIALECTS)}")
    return spec


def thinking_fields(dialect: Dialect, on: bool) -> dict[str, Any]:
    """The request fields that switch thinking on or off in ``dialect``, nested as sent:
    ``{"chat_template_kwargs": {"enable_thinking": False}}`` for vLLM (merge into ``extra_body``)."""
    spec = SPECS[dialect]
    value: Any = spec.thinking_on if on else spec.thinking_off
    for key in reversed(spec.thinking_path):
        value = {key: value}
    result: dict[str, Any] = value
    return result


class ThinkingSwitchError(ValueError):
    """The request's thinking switch has a value the dialect does not take."""


def read_thinking(dialect: Dialect, body: Mapping[str, Any]) -> bool | None:
    """Whether a request body of ``dialect`` asks for thinking: True / False, None when it says nothing.

    OpenRouter also counts a ``reasoning`` object with an ``effort`` or ``max_tokens`` as on
    (``effort: "none"`` as off), as its docs describe reasoning [unconfirmed for GLM].
    Raises :class:`ThinkingSwitchError` for a value of the wrong shape.
    """
    spec = SPECS[dialect]
    node: Any = body
    for key in spec.thinking_path[:-1]:
        node = node.get(key) if isinstance(node, Mapping) else None
        if node is None:
            return None
    if not isinstance(node, Mapping):
        raise ThinkingSwitchError(f"{'.'.join(spec.thinking_path[:-1])} must be an object")
    leaf = spec.thinking_path[-1]
    value = node.get(leaf)
    if value is None and dialect == "openrouter":
        if node.get("effort") is not None:
            return node.get("effort") != "none"
        return True if node.get("max_tokens") is not None else None
    if value is None:
        return None
    if value == spec.thinking_on and type(value) is type(spec.thinking_on):
        return True
    if value == spec.thinking_off and type(value) is type(spec.thinking_off):
        return False
    raise ThinkingSwitchError(
        f"{'.'.join(spec.thinking_path)} must be {spec.thinking_on!r} or {spec.thinking_off!r}, not {value!r}"
    )


_DATED = re.compile(r"-20\d{6}$")  # OpenRouter reports dated ids: z-ai/glm-5-turbo-20260315 (CAP-OR)
_QUANTISED = re.compile(r"-(fp8|fp4|awq|gptq|int4|int8|bf16)$")  # zai-org/GLM-4.7-FP8 and friends


def catalogue_model(name: str) -> str | None:
    """The catalogue id behind a host's spelling of a model, or None when it is not a GLM model
    glmeval knows: ``z-ai/glm-4.7``, ``zai-org/GLM-4.7``, ``GLM-5``, ``~z-ai/glm-5`` and a dated
    ``z-ai/glm-5-turbo-20260315`` all resolve (case-insensitively, any ``org/`` prefix dropped)."""
    if not isinstance(name, str) or not name.strip():
        return None
    base = name.strip().lstrip("~").rsplit("/", 1)[-1].lower()
    for candidate in (base, _DATED.sub("", base), _QUANTISED.sub("", base)):
        info = lookup(candidate)
        if info is not None:
            return info.name
    return None


def host_model(dialect: Dialect, model: str) -> str:
    """How a ``dialect`` host usually spells catalogue ``model``: ``z-ai/glm-4.7`` on OpenRouter,
    ``zai-org/GLM-4.7`` for self-hosted zai-org weights, the id itself on Zhipu and DashScope.
    A suite's per-provider model map overrides this."""
    spec = SPECS[dialect]
    name = model
    if spec.model_case == "title":
        name = "-".join(part.upper() if part.startswith("glm") else part.capitalize() for part in model.split("-"))
    return spec.model_prefix + name
