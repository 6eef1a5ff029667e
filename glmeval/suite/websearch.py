"""The web_search tool's settings (zhipu-api-2026 §3), as one pydantic type.

The SDK's own example writes flags and numbers as text (``enable: "True"``, ``count: "5"``), so
both forms are taken. Keys the reference does not list are sent as written (the API decides),
but a near miss of a listed key (``serach_result``) is an error, since it would be ignored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, get_type_hints

from pydantic import AfterValidator, ConfigDict, Field, WithJsonSchema, with_config
from typing_extensions import NotRequired, TypedDict

from glmeval.checks.args import got
from glmeval.hints import typo_of
from glmeval.suite.problems import PathProblem

__all__ = ["MAX_RESULTS", "WEB_SEARCH_KEYS", "WebSearch", "web_search_typos"]

MAX_RESULTS = 50
_FLAG_TEXTS = ("True", "False", "true", "false")


def _flag(value: Any) -> Any:
    if isinstance(value, bool) or value in _FLAG_TEXTS:
        return value
    raise ValueError(f"must be true or false (the SDK's example writes the text \"True\"); {got(value)}")


def _count(value: Any) -> Any:
    number = int(value) if isinstance(value, str) and re.fullmatch(r"[0-9]{1,3}", value) else value
    if not (isinstance(number, int) and not isinstance(number, bool) and 1 <= number <= MAX_RESULTS):
        raise ValueError(f"must be a whole number from 1 to {MAX_RESULTS} (or that number as text); {got(value)}")
    return value


def _text(value: Any) -> Any:
    if isinstance(value, str):
        return value
    raise ValueError(f"must be text; {got(value)}")


_Flag = Annotated[Any, AfterValidator(_flag), WithJsonSchema({"anyOf": [{"type": "boolean"}, {"enum": list(_FLAG_TEXTS)}]})]
_Text = Annotated[Any, AfterValidator(_text), WithJsonSchema({"type": "string"})]
_Count = Annotated[
    Any,
    AfterValidator(_count),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_RESULTS}, {"type": "string", "pattern": "^[0-9]{1,3}$"}]}),
]


@with_config(ConfigDict(strict=True, extra="allow"))
class WebSearch(TypedDict):
    """The web_search tool's settings; flags and numbers may be written as text ("True", "5")."""

    enable: NotRequired[Annotated[_Flag, Field(description="Search the web for this request.")]]
    search_engine: NotRequired[
        Annotated[_Text, Field(description="The search engine.", examples=["search_std", "search_pro", "search_pro_sogou", "search_pro_quark"])]
    ]
    search_query: NotRequired[Annotated[_Text, Field(description="Search for this text instead of what the model chooses.")]]
    search_result: NotRequired[Annotated[_Flag, Field(description="Return the results (the response's web_search list).")]]
    search_prompt: NotRequired[Annotated[_Text, Field(description="How the model should use the results; {{search_result}} stands for them.")]]
    count: NotRequired[Annotated[_Count, Field(description=f"How many results, 1 to {MAX_RESULTS}.")]]
    search_domain_filter: NotRequired[Annotated[_Text, Field(description="Only results from this domain, e.g. www.sohu.com.")]]
    search_recency_filter: NotRequired[
        Annotated[_Text, Field(description="How recent the results must be.", examples=["oneDay", "oneWeek", "oneMonth", "oneYear", "noLimit"])]
    ]
    content_size: NotRequired[Annotated[_Text, Field(description="How much of each page the results carry.", examples=["medium", "high"])]]


WEB_SEARCH_KEYS: tuple[str, ...] = tuple(get_type_hints(WebSearch))


def web_search_typos(tools: list[Any]) -> list[tuple[int, PathProblem]]:
    """Near misses of the listed keys in each web_search tool: (tool index, problem)."""
    out: list[tuple[int, PathProblem]] = []
    for i, tool in enumerate(tools):
        body = tool.get("web_search") if isinstance(tool, dict) and tool.get("type") == "web_search" else None
        if not isinstance(body, dict):
            continue
        for key in body:
            meant = typo_of(key, WEB_SEARCH_KEYS) if isinstance(key, str) and key not in WEB_SEARCH_KEYS else None
            if meant:
                out.append((i, ((i, "web_search", key), f"unknown key {key!r} in web_search (did you mean {meant!r}?)")))
    return out
