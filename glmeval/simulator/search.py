"""The ``web_search`` tool: its settings as the API takes them, and deterministic search results.

A suite that declares web search must see it used (a top-level ``web_search`` array of
``{icon, title, link, media, content, refer, publish_date}``, zhipu-api.md §1.3) and an answer
that cites a result, the same every run. Nothing is searched: results are made from a hash of
the query, under reserved ``example.*`` domains (RFC 2606) so no link in a report points at a
real site's invented page; a ``search_domain_filter`` is honoured as the domain of every result.

The SDK example passes every value as a string (``"True"``, ``"5"``, zhipu-api-2026.md §3), so
both strings and bools/ints are read. What the real API does when ``search_result`` is left out
is [unconfirmed]; here results are returned unless it is explicitly false.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from glmeval.catalogue.tokens import count_tokens

from .phrasing import digest

__all__ = ["WebSearch", "cite", "parse_web_search", "result_tokens", "search_results"]

_MAX_COUNT = 50  # zai-sdk release note v0.0.1b2: count is 1-50
_DEFAULT_COUNT = 5
_TOPIC_CHARS = 24
_SOURCES = (
    ("模拟百科", "baike.example.com"),
    ("模拟新闻网", "news.example.com"),
    ("模拟问答社区", "qa.example.org"),
    ("模拟技术博客", "blog.example.net"),
    ("模拟财经", "finance.example.com"),
    ("模拟政务公开", "gov.example.org"),
    ("模拟科普", "science.example.net"),
)
_ASPECTS = (
    ("概述", "overview"),
    ("最新进展", "latest news"),
    ("常见问题解答", "frequently asked questions"),
    ("深度解读", "in-depth analysis"),
    ("数据与事实", "facts and figures"),
    ("背景资料", "background"),
    ("专家观点", "expert views"),
    ("入门指南", "a beginner's guide"),
)
_EPOCH = date(2026, 1, 1)


@dataclass(frozen=True, slots=True)
class WebSearch:
    """One request's ``web_search`` tool: whether it runs, whether results are returned, how many."""

    enabled: bool = True
    show_results: bool = True
    count: int = _DEFAULT_COUNT
    query: str | None = None
    domain: str | None = None


def _flag(value: Any, default: bool) -> bool | None:
    """A bool from True/False, "True"/"false"/"1"/"0", 1/0; None when unreadable."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    return None


def parse_web_search(tool: Mapping[str, Any]) -> WebSearch:
    """The settings of ``{"type": "web_search", "web_search": {...}}``; ValueError names a bad field."""
    settings = tool.get("web_search")
    if settings is None:
        settings = {}
    if not isinstance(settings, Mapping):
        raise ValueError("tools.web_search")
    enabled = _flag(settings.get("enable"), True)
    shown = _flag(settings.get("search_result"), True)
    if enabled is None:
        raise ValueError("tools.web_search.enable")
    if shown is None:
        raise ValueError("tools.web_search.search_result")
    raw = settings.get("count")
    count = _DEFAULT_COUNT
    if raw is not None:
        text = str(raw).strip() if isinstance(raw, (int, str)) and not isinstance(raw, bool) else ""
        if not text.isdigit() or not 1 <= int(text) <= _MAX_COUNT:
            raise ValueError("tools.web_search.count")
        count = int(text)
    query = settings.get("search_query")
    domain = settings.get("search_domain_filter")
    return WebSearch(
        enabled=enabled,
        show_results=shown,
        count=count,
        query=query.strip() if isinstance(query, str) and query.strip() else None,
        domain=_domain(domain) if isinstance(domain, str) and domain.strip() else None,
    )


def _domain(value: str) -> str:
    host = value.strip().split("://", 1)[-1]
    return host.split("/", 1)[0] or value.strip()


def _topic(query: str) -> str:
    topic = " ".join(query.split()).strip("。.!！?？,，;；:： ")
    return topic[:_TOPIC_CHARS] + ("…" if len(topic) > _TOPIC_CHARS else "") if topic else "搜索"


def search_results(search: WebSearch, question: str, english: bool) -> list[dict[str, str]]:
    """``search.count`` results for the query (the tool's ``search_query``, else the question)."""
    query = search.query or question
    topic = _topic(query)
    results: list[dict[str, str]] = []
    for index in range(search.count):
        h = digest("web_search", query, index)
        media, domain = _SOURCES[h % len(_SOURCES)]
        if search.domain:
            domain = search.domain
        zh, en = _ASPECTS[(h >> 8) % len(_ASPECTS)]
        if english:
            title = f"{topic}: {en}"
            content = f"(simulated search result) {en.capitalize()} of “{topic}” from {domain}, made up by the local server."
        else:
            title = f"{topic}：{zh}"
            content = f"（模拟搜索结果）{media}关于“{topic}”的{zh}，由本地服务器生成，并非真实网页。"
        results.append({
            "icon": f"https://{domain}/favicon.ico",
            "title": title,
            "link": f"https://{domain}/article/{h:016x}.html",
            "media": media if not search.domain else domain,
            "content": content,
            "refer": f"ref_{index + 1}",
            "publish_date": (_EPOCH + timedelta(days=(h >> 16) % 330)).isoformat(),
        })
    return results


def result_tokens(results: Sequence[Mapping[str, str]]) -> int:
    """Prompt tokens the results add: the model reads every title and snippet before answering."""
    return sum(count_tokens(r["title"]) + count_tokens(r["content"]) for r in results)


def cite(content: str, results: Sequence[Mapping[str, str]], english: bool) -> str:
    """The answer with a ``[ref_1]`` marker and a sources line naming the first results by title."""
    if not results:
        return content
    cited = results[:2]
    if english:
        sources = "; ".join(f"[{r['refer']}] {r['title']}" for r in cited)
        return f"{content.rstrip()}[{cited[0]['refer']}]\n\nSources: {sources}"
    sources = "；".join(f"[{r['refer']}] {r['title']}" for r in cited)
    return f"{content.rstrip()}[{cited[0]['refer']}]\n\n参考来源：{sources}"
