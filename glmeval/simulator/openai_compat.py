"""The local server's OpenAI-compatible front: provider mounts, /v1 requests, OpenAI errors.

Hosts that serve GLM besides Zhipu (vLLM, SGLang, DashScope, OpenRouter) speak OpenAI's chat
wire, each in its dialect (:mod:`glmeval.catalogue.dialects`). The server stands in for them
without a second reply engine: a /v1 body is translated here into the Zhipu body the existing
validation takes (the dialect's thinking switch becomes ``thinking.type``, the host's spelling
of the model the catalogue id), the rules answer as they always do, and :mod:`.dialect_wire`
writes the answer back in the dialect's shape.

Mounts: ``/p/<name>/`` in front of any path says which provider a request is for; a
registered name uses its dialect, a dialect's own name that dialect, anything else is a 404
listing the names the server knows.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from glmeval.catalogue.dialects import DIALECTS, Dialect, ThinkingSwitchError, catalogue_model, host_model, read_thinking
from glmeval.catalogue.models import CATALOGUE_DATE, lookup

from .models import chat_models
from .protocol import ApiError

__all__ = ["MOUNT_PREFIX", "V1_ROUTES", "Mount", "models_list", "openai_error", "split_mount", "to_zhipu_body"]

MOUNT_PREFIX: Final = "/p/"
V1_ROUTES: Final = ("/v1/chat/completions", "/v1/models")
_UNPREFIXED: Final = "zhipu"


@dataclass(frozen=True, slots=True)
class Mount:
    """Where a request landed: the provider it names (None unprefixed), its dialect, the path
    after the mount, whether that path is the OpenAI-compatible /v1 one, and for a name the
    server does not know, the 404 message."""

    provider: str | None
    dialect: Dialect
    rest: str
    openai: bool
    unknown: str | None = None


NO_MOUNT: Final = Mount(None, _UNPREFIXED, "", False)


def split_mount(path: str, providers: Mapping[str, Dialect]) -> Mount:
    """Read the provider mount off ``path`` (already free of its query and double slashes)."""
    provider: str | None = None
    dialect: Dialect = _UNPREFIXED
    unknown = None
    rest = path
    if path.startswith(MOUNT_PREFIX):
        name, slash, tail = path[len(MOUNT_PREFIX):].partition("/")
        rest = slash + tail
        provider = name
        if name in providers:
            dialect = providers[name]
        elif name in DIALECTS:
            dialect = name
        else:
            known = sorted({*providers, *DIALECTS})
            unknown = f"no provider {name!r} on this server; known: {', '.join(known)} (mount as /p/<name>/...)"
    return Mount(provider, dialect, rest, rest == "/v1" or rest.startswith("/v1/"), unknown)


def to_zhipu_body(body: Mapping[str, Any], dialect: Dialect) -> dict[str, Any]:
    """The Zhipu v4 body that says what an OpenAI-compatible ``body`` of ``dialect`` asks.

    The model as the host spells it becomes the catalogue id (an unknown one is left for
    validation to refuse); the dialect's thinking switch becomes ``thinking.type``; the OpenAI
    fields Zhipu spells otherwise are mapped (``max_completion_tokens``, a ``json_schema``
    response format, ``tool_choice`` none/required). Everything else passes as sent, and Zhipu's
    validation judges it as it judges a native request.
    """
    out = dict(body)
    model = body.get("model")
    if isinstance(model, str) and model:
        name = catalogue_model(model)
        if name is None and dialect != "zhipu":
            # What vLLM and OpenAI answer; Zhipu's own 400 / 1211 comes from validation.
            raise ApiError(404, "1211", f"The model `{model}` does not exist.")
        out["model"] = name or model
    try:
        thinking = read_thinking(dialect, body)
    except ThinkingSwitchError as exc:
        raise ApiError(400, "1210", str(exc)) from None
    if dialect != "zhipu":
        out.pop("chat_template_kwargs", None)
        out.pop("enable_thinking", None)
        out.pop("reasoning", None)
        if thinking is not None:
            out["thinking"] = {"type": "enabled" if thinking else "disabled"}
    out.pop("stream_options", None)
    if out.get("max_tokens") is None and body.get("max_completion_tokens") is not None:
        out["max_tokens"] = body["max_completion_tokens"]
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_schema":
        out["response_format"] = {"type": "json_object"}
    choice = body.get("tool_choice")
    if choice == "none":
        out.pop("tools", None)
        out.pop("tool_choice", None)
    elif choice == "required":
        out["tool_choice"] = "auto"
    return out


_TYPES: Final = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                 404: "invalid_request_error", 405: "invalid_request_error", 413: "invalid_request_error",
                 429: "rate_limit_error"}
_CODES: Final = {"1211": "model_not_found", "1113": "insufficient_quota", "1000": "invalid_api_key",
                 "1001": "invalid_api_key", "1003": "invalid_api_key"}


def openai_error(error: ApiError, dialect: Dialect) -> tuple[int, dict[str, Any]]:
    """(status, body) of ``error`` on the /v1 wire: ``{"error": {"message", "type", "param", "code"}}``,
    which the openai SDK turns into its ``BadRequestError``, ``NotFoundError``... by status.

    Zhipu's own OpenAI-compatible endpoint keeps its status and business code (an unknown model
    is 400 / ``1211`` there); the other hosts answer an unknown model with 404 ``model_not_found``
    and name their codes as OpenAI does.
    """
    status = error.status
    if dialect == "zhipu":
        code = error.code
    else:
        code = _CODES.get(error.code) or ("rate_limit_exceeded" if status == 429 else
                                          "internal_error" if status >= 500 else
                                          "not_found" if status == 404 else "invalid_request")
        if code == "model_not_found":
            status = 404
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return status, {"error": {"message": error.message, "type": kind, "param": None, "code": code}}


_OWNERS: Final[dict[Dialect, str]] = {
    "zhipu": "z-ai", "vllm": "vllm", "sglang": "sglang", "dashscope": "system", "openrouter": "z-ai",
}


def _created(model: str) -> int:
    """A model's ``created``: its release day from the catalogue, else the catalogue's date."""
    info = lookup(model)
    day = (info.released if info is not None else None) or f"{CATALOGUE_DATE}-01"
    moment = datetime.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc)
    return int(moment.timestamp())


def models_list(dialect: Dialect) -> dict[str, Any]:
    """``GET /v1/models``: the chat models the server answers, spelled as a ``dialect`` host spells them."""
    return {
        "object": "list",
        "data": [
            {"id": host_model(dialect, name), "object": "model", "created": _created(name), "owned_by": _OWNERS[dialect]}
            for name in chat_models()
        ],
    }
