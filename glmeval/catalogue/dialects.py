"""How each kind of GLM host spells thinking: its switch in the request and its reasoning field.

One source for the harness (which sends the switch) and the local server (which reads it and
answers in the host's field), from zhipu-api-2026.md §8. (Placeholder of the ``prov`` branch;
``provsim`` owns this module and its fuller table.)
"""

from __future__ import annotations

from typing import Any, Literal, get_args

__all__ = ["DIALECTS", "Dialect", "REASONING_FIELD", "thinking_fields"]

Dialect = Literal["zhipu", "vllm", "sglang", "dashscope", "openrouter"]
DIALECTS: tuple[Dialect, ...] = get_args(Dialect)

REASONING_FIELD: dict[Dialect, str] = {
    "zhipu": "reasoning_content",
    "vllm": "reasoning",
    "sglang": "reasoning_content",
    "dashscope": "reasoning_content",
    "openrouter": "reasoning",
}
"""Where each host puts the reasoning of a thinking model (message and stream delta)."""


def thinking_fields(dialect: Dialect, enabled: bool) -> dict[str, Any]:
    """The request fields that turn thinking on or off on a host of ``dialect``."""
    if dialect == "zhipu":
        return {"thinking": {"type": "enabled" if enabled else "disabled"}}
    if dialect in ("vllm", "sglang"):
        return {"chat_template_kwargs": {"enable_thinking": enabled}}
    if dialect == "dashscope":
        return {"enable_thinking": enabled}
    return {"reasoning": {"enabled": enabled}}
