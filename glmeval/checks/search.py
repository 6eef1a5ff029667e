"""Checks on web search: that the response carries ``web_search`` results, and that the answer cites one.

GLM returns the results of its ``web_search`` tool beside the answer
(``[{title, link, content, refer, media, icon, publish_date}]``) and marks citations in the
answer as ``[ref_1]``, matching a result's ``refer``. An answer cites a result when it carries
such a marker, or names the result's title or link.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from glmeval.checks.args import got, is_template, number_problem, unknown_args
from glmeval.checks.context import CheckContext
from glmeval.checks.registry import register
from glmeval.records import CheckSpec, Completion

__all__ = ["citations", "search_disabled"]

_MARKER = re.compile(r"[\[【]\s*(ref_\d+)\s*[\]】]", re.IGNORECASE)
_OFF = ("false", "0", "no", "off")


def _excerpt(text: str, limit: int = 80) -> str:
    text = text.replace("\n", " ")
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _refer(value: Any) -> str:
    """A result's ``refer`` as the marker names it: ``ref_1`` (a bare ``1`` counts as ``ref_1``)."""
    text = str(value or "").strip().lower()
    return f"ref_{text}" if text.isdigit() else text


def _title(result: dict[str, Any]) -> str:
    return str(result.get("title") or result.get("link") or result.get("refer") or "untitled").strip()


def _results(completion: Completion) -> list[dict[str, Any]]:
    return [r for r in completion.web_search if isinstance(r, dict)]


def citations(text: str, results: list[dict[str, Any]]) -> list[str]:
    """How ``text`` cites ``results``, one phrase per cited result (``[ref_1] ('北京天气')``,
    ``the title '北京天气'``, ``the link https://...``), in the order of the results."""
    markers = {m.lower() for m in _MARKER.findall(text)}
    folded = text.casefold()
    out: list[str] = []
    for result in results:
        refer = _refer(result.get("refer"))
        title = str(result.get("title") or "").strip()
        link = str(result.get("link") or "").strip().rstrip("/")
        if refer and refer in markers:
            out.append(f"[{refer}] ({title!r})" if title else f"[{refer}]")
        elif title and title.casefold() in folded:
            out.append(f"the title {title!r}")
        elif link and link.casefold() in folded:
            out.append(f"the link {link}")
    return out


def search_disabled(tools: list[Any] | None) -> bool:
    """True when the tools declare web search and every declaration turns it off
    (``web_search: {enable: false}``, or the SDK's string ``"False"``)."""
    declared = [t.get("web_search") for t in tools or [] if isinstance(t, dict) and t.get("type") == "web_search"]
    if not declared:
        return False
    return all(
        isinstance(d, dict)
        and "enable" in d
        and not is_template(d["enable"])
        and (d["enable"] is False or str(d["enable"]).strip().lower() in _OFF)
        for d in declared
    )


def _search_off_problem(spec: CheckSpec, tools: list[Any] | None) -> list[str]:
    if spec.negate or not search_disabled(tools):
        return []
    return ["the case turns web search off (web_search: {enable: false}), so no search results can come back"]


def _min_results(spec: CheckSpec) -> int:
    value = spec.args.get("min", spec.args.get("value"))
    if value is None or value is True:
        return 1
    return int(value)


def _validate_web_search_used(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    problems = unknown_args(spec, ("min", "value"))
    value = spec.args.get("value")
    if "min" in spec.args and value not in (None, True):
        problems.append("give the minimum as min or as value, not both")
    given = [("min", spec.args["min"])] if "min" in spec.args else []
    given += [("value", value)] if value not in (None, True) else []
    for key, number in given:
        problem = number_problem(number, key, whole=True, minimum=1, example="{web-search-used: {min: 3}}")
        if problem:
            problems.append(problem)
    return problems + _search_off_problem(spec, tools)


@register("web-search-used", validate=_validate_web_search_used, text_check=False)
def web_search_used(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The response carries web search results (at least `min`, default 1)."""
    wanted = _min_results(spec)
    results = _results(completion)
    titles = ", ".join(repr(_title(r)) for r in results[:3]) + (", ..." if len(results) > 3 else "")
    count = f"{len(results)} web search result{'' if len(results) == 1 else 's'}"
    if len(results) >= wanted:
        return True, f"{count} (at least {wanted}): {titles}"
    if not results:
        declared = any(isinstance(t, dict) and t.get("type") == "web_search" for t in ctx.job.tools or [])
        hint = "" if declared else " (the request declared no web_search tool)"
        return False, f"expected web search results; the response has none{hint}"
    return False, f"expected at least {wanted} web search results, got {count}: {titles}"


def _validate_cites_search(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    problems = unknown_args(spec, ("value",))
    if spec.args.get("value") not in (None, True):
        problems.append(f"cites-search takes no value; write `- cites-search`; {got(spec.args['value'])}")
    return problems + _search_off_problem(spec, tools)


@register("cites-search", validate=_validate_cites_search)
def cites_search(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The answer cites a web search result: a [ref_N] marker matching its refer, or its title or link."""
    results = _results(completion)
    subject = ctx.subject
    if not results:
        return False, f"expected the {subject} to cite a web search result; the response has no web_search results"
    cited = citations(completion.text, results)
    if cited:
        return True, f"{subject} cites {', '.join(cited[:3])}{', ...' if len(cited) > 3 else ''}"
    markers = sorted({m.lower() for m in _MARKER.findall(completion.text)})
    stray = f"; its markers {', '.join(f'[{m}]' for m in markers)} match no result's refer" if markers else ""
    refers = ", ".join(_refer(r.get("refer")) for r in results if r.get("refer"))
    known = f" (refers: {refers})" if refers else ""
    return False, (
        f"the {subject} cites none of the {len(results)} web search results{known}: no [ref_N] marker, "
        f"title or link of one{stray}; {subject} was {_excerpt(completion.text)}"
    )
