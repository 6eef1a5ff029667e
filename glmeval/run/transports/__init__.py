"""One client interface, three transports: the zhipuai SDK, zai-sdk and the openai SDK.

Each :class:`Transport` makes one attempt of a chat call to one provider and returns the same
:class:`~glmeval.records.Completion` (answer, reasoning, tool calls, usage with reasoning and
cached tokens, TTFT/TTFR, request id) or raises a :class:`~glmeval.run.callerrors.CallError`
with the same error kinds, whatever the host's wire dialect. :class:`glmeval.run.client.GLMClient`
builds one per :class:`Endpoint` and routes jobs to them by provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from glmeval.catalogue.dialects import Dialect, thinking_fields
from glmeval.records import Completion, Mode

__all__ = ["Endpoint", "Sdk", "Transport", "dialect_params"]

Sdk = Literal["zhipuai", "zai", "openai"]


@dataclass(frozen=True)
class Endpoint:
    """Where and how one provider is reached: its SDK, base URL (``None``: the SDK's default),
    key (never shown: left out of the repr), thinking dialect and model names as it spells them."""

    name: str
    sdk: Sdk
    base_url: str | None
    api_key: str = field(repr=False)
    dialect: Dialect = "zhipu"
    models: Mapping[str, str] = field(default_factory=dict)
    key_env: str = "ZHIPUAI_API_KEY"

    def host_model(self, model: str) -> str:
        """``model`` as this provider spells it (``glm-4.7`` → ``z-ai/glm-4.7`` on OpenRouter)."""
        return self.models.get(model, model)


class Transport(Protocol):
    """One provider's client: what the router and the runner call."""

    endpoint: Endpoint
    base_url: str
    simulated: bool

    def attempt(self, model: str, mode: Mode, messages: list[dict[str, Any]], params: dict[str, Any]) -> Completion: ...

    def embed(self, model: str, texts: list[str]) -> list[list[float]]: ...

    def close(self) -> None: ...


def dialect_params(params: Mapping[str, Any], dialect: Dialect) -> dict[str, Any]:
    """``params`` (in Zhipu's form, as planned) with the thinking switch spelled the host's way.

    Jobs are planned once, in Zhipu's wire form (``thinking: {type: enabled}``), so every
    provider's job records the same parameters; only what goes on the wire differs: vLLM and
    SGLang take ``chat_template_kwargs.enable_thinking``, DashScope ``enable_thinking``,
    OpenRouter ``reasoning.enabled``. Those travel in ``extra_body`` (the openai SDK has no
    argument for them). ``auto`` (no ``type`` to translate) sends nothing, the host's default.
    """
    out = dict(params)
    if dialect == "zhipu":
        return out
    thinking = out.pop("thinking", None)
    kind = thinking.get("type") if isinstance(thinking, Mapping) else None
    if kind in ("enabled", "disabled"):
        extra = dict(out.get("extra_body") or {})
        for key, value in thinking_fields(dialect, kind == "enabled").items():
            if isinstance(value, Mapping) and isinstance(extra.get(key), Mapping):
                value = {**extra[key], **value}
            extra[key] = value
        out["extra_body"] = extra
    return out
