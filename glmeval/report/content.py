"""What a message or an answer holds besides plain text, laid out for the renderers: the parts
of a multimodal message (text, images), the web search results of an answer, and the
reasoning of a thinking model.

Everything here is untrusted (a suite's images, a search engine's titles and links, the
model's reasoning), so these helpers only classify and tidy; the renderers escape. A link is
kept as a link only when it is ``http(s)``, an image only as an inline ``data:image/…`` URL,
so a report never fetches anything and never carries a ``javascript:`` URL.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from glmeval.report.data import is_missing

MAX_INLINE_IMAGE_CHARS = 2_000_000  # a bigger embedded image is named, not inlined
MAX_REASONING_CHARS = 8_000  # per answer in the HTML; report.json and glmeval.results() hold it whole
MAX_SNIPPET_CHARS = 300  # of a search result's content under an answer

_DATA_IMAGE = re.compile(r"data:image/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=\s]*\Z", re.I)
_HTTP = re.compile(r"https?://[^\s\"'<>]+\Z", re.I)
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]{16,}\Z")
# what a bare base64 image (the API takes one without a data: prefix) starts with
_MAGIC = {"iVBOR": "image/png", "/9j/": "image/jpeg", "R0lGOD": "image/gif", "UklGR": "image/webp", "Qk": "image/bmp"}
# C0 controls and DEL except tab, newline and carriage return, lone surrogates, U+FFFE/U+FFFF.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")

PartKind = Literal["text", "image", "link", "other"]


@dataclass
class Part:
    """One piece of a message as shown: ``text`` (``text`` holds it), ``image`` (``url`` is an
    inline ``data:`` URL), ``link`` (an http(s) image, video or file, shown as a link and never
    fetched; ``text`` says which) or ``other`` (anything else, as text)."""

    kind: PartKind
    text: str = ""
    url: str = ""


def visible(text: Any) -> str:
    """Text with control characters replaced by U+FFFD: what a page can show as typed."""
    return _CONTROL.sub("\ufffd", "" if is_missing(text) else str(text))


def safe_link(url: Any) -> str | None:
    """``url`` when it is a plain http(s) URL a reader may follow, else ``None``."""
    return url.strip() if isinstance(url, str) and _HTTP.match(url.strip()) else None


def _image_url(part: dict[str, Any]) -> str | None:
    """The image URL of a part in any form a suite or the wire gives it."""
    raw = part.get("image_url", part.get("image"))
    if isinstance(raw, dict):
        raw = raw.get("url")
    return raw if isinstance(raw, str) else None


def _media_type(data_url: str) -> str:
    return data_url[5:data_url.index(";")] if ";" in data_url else "image"


def _kilobytes(data_url: str) -> str:
    """The decoded size of a base64 ``data:`` URL, in KB (at least 1)."""
    payload = len(data_url) - data_url.find(",") - 1
    return f"{max(1, payload * 3 // 4 // 1024):,}"


def image_part(url: str) -> Part:
    """An image part: a thumbnail for an inline image (a ``data:`` URL, or bare base64 of a
    PNG, JPEG, GIF, WebP or BMP), a link for an http(s) one, a short note for anything else."""
    if _BASE64.match(url[:4096]) and _BASE64.match(url):
        kind = next((m for prefix, m in _MAGIC.items() if url.lstrip().startswith(prefix)), None)
        if kind is None:
            return Part("other", text=f"[image: base64, {max(1, len(url) * 3 // 4 // 1024):,} KB]")
        url = f"data:{kind};base64,{url.strip()}"
    if _DATA_IMAGE.match(url):
        if len(url) <= MAX_INLINE_IMAGE_CHARS:
            return Part("image", url=url)
        return Part("other", text=f"[image: {_media_type(url)}, {_kilobytes(url)} KB, too large to show]")
    link = safe_link(url)
    if link:
        return Part("link", text="image", url=link)
    return Part("other", text=f"[image: {visible(url[:200])}]")


_OTHER_MEDIA = ("video_url", "file_url")


def _media_part(kind: str, value: Any) -> Part:
    """A video or file part: a link when it is http(s), else a note (never its base64)."""
    url = value.get("url") if isinstance(value, dict) else value
    link = safe_link(url)
    if link:
        return Part("link", text=kind.removesuffix("_url"), url=link)
    size = f", {max(1, len(url) * 3 // 4 // 1024):,} KB" if isinstance(url, str) else ""
    return Part("other", text=f"[{kind.removesuffix('_url')}{size}]")


def message_parts(content: Any) -> list[Part]:
    """A message's content as parts in order; a plain string is one text part."""
    if is_missing(content):
        return []
    if isinstance(content, str):
        return [Part("text", text=content)]
    if not isinstance(content, list):
        return [Part("other", text=json.dumps(content, ensure_ascii=False, indent=2))]
    parts: list[Part] = []
    for item in content:
        if isinstance(item, str):
            parts.append(Part("text", text=item))
        elif isinstance(item, dict) and (item.get("type") == "text" or ("text" in item and "type" not in item)):
            parts.append(Part("text", text=str(item.get("text", ""))))
        elif isinstance(item, dict) and _image_url(item) is not None:
            parts.append(image_part(str(_image_url(item))))
        elif isinstance(item, dict) and item.get("type") in _OTHER_MEDIA:
            parts.append(_media_part(str(item["type"]), item.get(str(item["type"]))))
        else:
            parts.append(Part("other", text=json.dumps(item, ensure_ascii=False)))
    return parts


def is_multimodal(message: dict[str, Any]) -> bool:
    """Whether the message's content is a list of parts (the conversation view renders each)."""
    return isinstance(message.get("content"), list)


def part_text(part: Part) -> str:
    """A part flattened for plain-text views: images become a short ``[image: …]`` note."""
    if part.kind == "image":
        return f"[image: {_media_type(part.url)}, {_kilobytes(part.url)} KB]"
    if part.kind == "link":
        return f"[{part.text}: {part.url}]"
    return part.text


@dataclass
class SearchResult:
    """One web search result as shown under an answer; ``link`` is ``None`` unless http(s)."""

    title: str
    link: str | None
    refer: str
    media: str
    content: str
    publish_date: str


def web_search_results(raw: Any) -> list[SearchResult]:
    """The stored ``web_search`` array (a list, or its JSON text) as results to show."""
    if is_missing(raw) or raw == "" or raw == []:
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return []
    if not isinstance(raw, list):
        return []
    out = []
    for item in raw:
        if not isinstance(item, dict):
            continue

        def field(key: str, item: dict[str, Any] = item) -> str:
            value = item.get(key)
            return "" if is_missing(value) else visible(value)

        title = field("title") or field("link") or "(untitled)"
        snippet = " ".join(field("content").split())
        if len(snippet) > MAX_SNIPPET_CHARS:
            snippet = snippet[: MAX_SNIPPET_CHARS - 1] + "…"
        out.append(SearchResult(title, safe_link(item.get("link")), field("refer"), field("media"), snippet,
                                field("publish_date")))
    return out


def reasoning_label(tokens: Any, estimated: Any) -> str:
    """``reasoning · 1,234 tokens (estimated)``: the summary line of a collapsed reasoning."""
    if is_missing(tokens):
        return "reasoning"
    shown = f"reasoning · {int(tokens):,} token{'' if int(tokens) == 1 else 's'}"
    return shown + (" (estimated)" if not is_missing(estimated) and bool(estimated) else "")


def clip_reasoning(text: str, limit: int = MAX_REASONING_CHARS) -> str:
    """The reasoning as the HTML shows it: visible characters, cut with a note past ``limit``."""
    text = visible(text)
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… (+{len(text) - limit:,} chars; report.json and glmeval.results() hold the full reasoning)"


__all__ = [
    "Part", "SearchResult", "message_parts", "is_multimodal", "part_text", "image_part", "web_search_results",
    "reasoning_label", "clip_reasoning", "visible", "safe_link", "MAX_INLINE_IMAGE_CHARS", "MAX_REASONING_CHARS",
]
