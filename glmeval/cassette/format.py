"""The cassette file: recorded answers as YAML a person can read and a diff can show.

One interaction per request fingerprint (see :mod:`.fingerprint`), in the suite's order, each
under a comment naming the case and variant that asked. Request and JSON response bodies are
pretty-printed block scalars; a stream is one line per SSE event with the milliseconds since
the request at which it arrived, so a replay keeps the recorded pacing. Repeats of one request
are the interaction's ``responses`` in the order they were received. An async task's result
poll keeps only the answer that ended the wait (``responses``, timed from the task's create)
and the first "still processing" body (``pending``), not every poll.

The writer never writes a request header, a query string, URL user info or any string it was
given as a secret (:func:`dump_cassette` replaces those with ``***``).

Example::

    # case greet, variant model=glm-4-flash
    - upstream: zhipu
      request: POST /chat/completions
      body: |-
        {
          "model": "glm-4-flash",
          "messages": [{"role": "user", "content": "你好"}]
        }
      responses:
      - status: 200
        ms: 812
        headers: {content-type: 'application/json; charset=UTF-8', x-request-id: '2024...'}
        json: |-
          {
            "choices": [...]
          }
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from glmeval.errors import GlmevalError

from .fingerprint import RequestKey, canonical_body, normal_path

__all__ = [
    "FORMAT", "Event", "Response", "Interaction", "Cassette", "dump_cassette", "load_cassette",
    "write_cassette", "safe_url",
]

FORMAT: Final = "glmeval-cassette/1"

# Response headers worth keeping: what a client reads (type, request id, Retry-After) and the
# local server's mark, so answers recorded from `glmeval serve` replay as simulated ones.
KEPT_HEADERS: Final = ("content-type", "x-request-id", "x-log-id", "retry-after", "x-should-retry", "x-glmeval-simulator")

_HEADER_NAME = re.compile(r"^[a-z0-9-]+$")
_UPSTREAM_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
# Characters YAML allows unescaped (YAML 1.1 "printable"), minus line breaks for one-line scalars.
# Bidi controls are printable to YAML but make a reviewer read a line wrongly: escaped too.
_BIDI = "\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNPRINTABLE = re.compile(f"[^\x09\x0a\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]|[{_BIDI}]")
_UNPRINTABLE_LINE = re.compile(f"[^\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]|[{_BIDI}]")
_PLAIN_PATH = re.compile(r"^/[A-Za-z0-9/_.~-]*$")
# The halves of an id.secret key are scrubbed too when they look random (a digit or a capital
# letter), so a readable demo key like the local server's does not blank out ordinary words.
_RANDOM = re.compile(r"[0-9A-Z]")

_HEAD: Final = """\
# glmeval cassette: answers recorded by `glmeval run SUITE --record FILE`, replayed with no
# network and no key by `glmeval run SUITE --cassette FILE` and `glmeval serve --cassette FILE`.
# A request matches on its upstream, method, path under the base URL and JSON body (keys sorted;
# request_id and user_id left out). Repeats answer in order. Timings are ms since the request.
# No key, Authorization header or URL token is ever written here.
"""


@dataclass
class Event:
    """One SSE event as the API sent it (without the blank line ending it), and when."""

    ms: float
    sse: str


@dataclass
class Response:
    """One recorded answer. ``ms`` is when its last byte arrived, since the request (a poll's:
    since its task's create); a stream has ``events`` instead of a body, and ``complete`` False
    when it was cut before its end (``tail`` holds any bytes after the last whole event)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    ms: float = 0.0
    body: bytes = b""
    events: list[Event] | None = None
    head_ms: float = 0.0
    complete: bool = True
    tail: str = ""


@dataclass
class Interaction:
    """A request (by fingerprint) and every answer it got, in order."""

    upstream: str
    method: str
    path: str
    body: bytes = b""
    responses: list[Response] = field(default_factory=list)
    pending: bytes | None = None
    label: str = ""
    line: int = 0
    # Its last answer answers again once all are used (judge and embedding calls: how often
    # they are asked depends on the run's cache and timing, not on the suite).
    reuse: bool = False

    @property
    def key(self) -> RequestKey:
        return self.upstream, self.method.upper(), normal_path(self.path), canonical_body(self.body)[1]

    def json_body(self) -> Any:
        return canonical_body(self.body)[0]


@dataclass
class Cassette:
    upstreams: dict[str, str] = field(default_factory=dict)
    interactions: list[Interaction] = field(default_factory=list)
    recorded: str = ""
    path: Path | None = None


def safe_url(url: str) -> str:
    """A base URL fit for a cassette: no user info, query or fragment (where tokens hide)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


# ------------------------------------------------------------------------------ writing


def _escape(char: str) -> str:
    code = ord(char)
    if char in _ESCAPES:
        return _ESCAPES[char]
    if 0xD800 <= code <= 0xDFFF:
        return "\\ufffd"  # a lone surrogate (not text at all): YAML has no escape for it
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


_ESCAPES: Final = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NEEDS_ESCAPE = re.compile('[\\\\"]|' + _UNPRINTABLE_LINE.pattern)


def _quote(text: str) -> str:
    """A one-line YAML scalar for any string: single-quoted when YAML allows it, else
    double-quoted with YAML escapes for what is not printable (valid YAML for any text,
    lone surrogates included)."""
    if not _UNPRINTABLE_LINE.search(text):
        return "'" + text.replace("'", "''") + "'"
    return '"' + _NEEDS_ESCAPE.sub(lambda m: _escape(m.group()), text) + '"'


def _block(key: str, text: str, indent: str) -> list[str]:
    """``key: |-`` and the text's lines, or a quoted scalar when a block cannot hold it exactly."""
    lines = text.split("\n")
    exact = (
        text
        and not text.endswith("\n")
        and not text[0].isspace()
        and not _UNPRINTABLE.search(text)
        and "\r" not in text
        and all(line == line.rstrip(" \t") for line in lines)
    )
    if not exact or len(lines) == 1:
        return [f"{indent}{key}: {_quote(text)}"]
    return [f"{indent}{key}: |-", *(f"{indent}  {line}" if line else "" for line in lines)]


def _body_lines(key: str, raw: bytes, indent: str) -> list[str]:
    """A body: pretty JSON (``json:``/``body:``), text, or base64 for bytes that are not UTF-8."""
    if not raw:
        return []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return [f"{indent}base64: {_quote(base64.b64encode(raw).decode('ascii'))}"]
    try:
        parsed = json.loads(text)
    except ValueError:
        return _block("text" if key == "json" else key, text, indent)
    pretty = _pretty(parsed, False)
    if _UNPRINTABLE.search(pretty):
        pretty = _pretty(parsed, True)
    return _block(key, pretty, indent)


def _pretty(value: Any, ascii_only: bool, indent: str = "") -> str:
    """JSON indented by two, except that a list of numbers stays on one line (an embedding
    is one line, not 2048)."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k, ensure_ascii=ascii_only)}: {_pretty(v, ascii_only, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and value:
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return json.dumps(value)
        return "[\n" + ",\n".join(inner + _pretty(v, ascii_only, inner) for v in value) + "\n" + indent + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


def _ms(value: float) -> str:
    return str(int(round(value)))


def _response_lines(resp: Response) -> list[str]:
    out = [f"  - status: {int(resp.status)}"]
    if resp.events is not None:
        out.append(f"    head_ms: {_ms(resp.head_ms)}")
    out.append(f"    ms: {_ms(resp.ms)}")
    headers = {k: v for k, v in resp.headers.items() if _HEADER_NAME.match(k)}
    if headers:
        out.append("    headers: {" + ", ".join(f"{k}: {_quote(v)}" for k, v in headers.items()) + "}")
    if resp.events is not None:
        out.append("    events:" if resp.events else "    events: []")
        out.extend(f"    - {{ms: {_ms(e.ms)}, sse: {_quote(e.sse)}}}" for e in resp.events)
        if not resp.complete:
            out.append("    complete: false")
        if resp.tail:
            out.append(f"    tail: {_quote(resp.tail)}")
    else:
        out.extend(_body_lines("json", resp.body, "    "))
    return out


def _comment(label: str) -> list[str]:
    return [f"# {_UNPRINTABLE_LINE.sub(' ', line)}" for line in label.split("\n") if line.strip()]


def dump_cassette(cassette: Cassette, secrets: Iterable[str] = ()) -> str:
    """The cassette as YAML text; every secret (and each half of an ``id.secret`` key) that
    would appear in it is replaced by ``***``."""
    out = [_HEAD.rstrip("\n"), f"format: {FORMAT}"]
    if cassette.recorded:
        out.append(f"recorded: {_quote(cassette.recorded)}")
    out.append("upstreams:")
    out.extend(f"  {name}: {_quote(safe_url(url))}" for name, url in cassette.upstreams.items())
    out.append("interactions:" if cassette.interactions else "interactions: []")
    for item in cassette.interactions:
        out.append("")
        out.extend(_comment(item.label))
        out.append(f"- upstream: {item.upstream}")
        path = normal_path(item.path)
        line = f"{item.method.upper()} {path}"
        out.append(f"  request: {line if _PLAIN_PATH.match(path) else _quote(line)}")
        body = item.body
        if body:
            parsed, canon = canonical_body(body)
            body = canon.encode("utf-8") if parsed is not None else body
        out.extend(_body_lines("body", body, "  "))
        if item.pending is not None:
            out.extend(_body_lines("pending", item.pending, "  "))
        if item.reuse:
            out.append("  reuse: true")
        out.append("  responses:" if item.responses else "  responses: []")
        for resp in item.responses:
            out.extend(_response_lines(resp))
    return _scrub("\n".join(out) + "\n", secrets)


def _scrub(text: str, secrets: Iterable[str]) -> str:
    parts: set[str] = set()
    for secret in secrets:
        secret = (secret or "").strip()
        if secret:
            parts.add(secret)
            parts.update(p for p in secret.split(".") if _RANDOM.search(p))
    for part in sorted(parts, key=len, reverse=True):
        if len(part) >= 6:
            for form in (part, json.dumps(part, ensure_ascii=True)[1:-1]):
                text = text.replace(form, "***")
    return text


def write_cassette(path: Path, cassette: Cassette, secrets: Iterable[str] = ()) -> None:
    """Write atomically (a temporary file renamed over the old one), so a failed write never
    leaves half a cassette behind."""
    text = dump_cassette(cassette, secrets)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise GlmevalError(f"cannot write the cassette {path}: {exc.strerror or exc}") from None


# ------------------------------------------------------------------------------ reading


class _Bad(Exception):
    """A structural problem in one interaction (turned into file:line messages)."""


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{what} must be text")
    return value


def _read_body(entry: dict[str, Any], key: str) -> bytes | None:
    """``json:``/``body:`` (text, JSON kept compact on the wire), ``text:`` or ``base64:``."""
    if key in entry:
        value = entry[key]
        if not isinstance(value, str):
            # A hand-written body may be a YAML mapping: it is JSON all the same.
            return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            parsed = json.loads(value)
        except ValueError:
            return value.encode("utf-8")
        return json.dumps(parsed, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if "text" in entry:
        return _text(entry["text"], "text").encode("utf-8")
    if "base64" in entry:
        try:
            return base64.b64decode(_text(entry["base64"], "base64"), validate=True)
        except ValueError:
            raise _Bad("base64 is not valid base64") from None
    return None


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise _Bad(f"{what} must be a number of milliseconds >= 0")
    return float(value)


def _read_response(entry: Any, n: int) -> Response:
    if not isinstance(entry, dict):
        raise _Bad(f"response {n} must be a mapping")
    status = entry.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise _Bad(f"response {n}: status must be an HTTP status code")
    headers = entry.get("headers") or {}
    if not isinstance(headers, dict):
        raise _Bad(f"response {n}: headers must be a mapping")
    resp = Response(status=status, headers={str(k).lower(): str(v) for k, v in headers.items()})
    resp.ms = _number(entry.get("ms", 0), f"response {n}: ms")
    if "events" in entry:
        events = entry["events"] or []
        if not isinstance(events, list):
            raise _Bad(f"response {n}: events must be a list")
        resp.events = []
        for i, event in enumerate(events, 1):
            if not isinstance(event, dict) or "sse" not in event:
                raise _Bad(f"response {n}, event {i}: needs ms and sse")
            resp.events.append(Event(_number(event.get("ms", 0), f"event {i}: ms"), _text(event["sse"], f"event {i}: sse")))
        resp.head_ms = _number(entry.get("head_ms", 0), f"response {n}: head_ms")
        resp.complete = entry.get("complete", True) is not False
        resp.tail = _text(entry.get("tail", ""), f"response {n}: tail")
    else:
        resp.body = _read_body(entry, "json") or b""
    return resp


def _read_interaction(entry: Any) -> Interaction:
    if not isinstance(entry, dict):
        raise _Bad("an interaction must be a mapping (upstream, request, responses)")
    request = _text(entry.get("request"), "request (e.g. 'POST /chat/completions')")
    method, _, path = request.strip().partition(" ")
    if method.upper() not in ("GET", "POST", "PUT", "DELETE", "PATCH") or not path.strip():
        raise _Bad(f"request {request!r} must be METHOD /path, e.g. 'POST /chat/completions'")
    responses = entry.get("responses")
    if not isinstance(responses, list):
        raise _Bad("responses must be a list")
    item = Interaction(
        upstream=str(entry.get("upstream") or "zhipu"),
        method=method.upper(),
        path=normal_path(path.strip()),
        body=_read_body(entry, "body") or b"",
        responses=[_read_response(r, i) for i, r in enumerate(responses, 1)],
    )
    item.pending = _read_body(entry, "pending")
    item.reuse = entry.get("reuse") is True
    return item


def load_cassette(path: Path) -> Cassette:
    """Read a cassette; every problem in it is reported at once as ``FILE:LINE: ...``."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GlmevalError(f"no cassette at {path}; record one with `glmeval run SUITE --record {path}`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GlmevalError(f"cannot read the cassette {path}: {exc}") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        node = yaml.compose(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise GlmevalError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    data = yaml.constructor.SafeConstructor().construct_document(node) if node is not None else None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise GlmevalError(f"{path}:1: not a glmeval cassette (it needs `format: {FORMAT}`)")
    upstreams = data.get("upstreams") or {}
    items = data.get("interactions") or []
    problems: list[str] = []
    if not isinstance(upstreams, dict) or not all(_UPSTREAM_NAME.match(str(k)) for k in upstreams):
        problems.append(f"{path}:1: upstreams must map names to base URLs")
        upstreams = {}
    if not isinstance(items, list):
        raise GlmevalError(f"{path}:1: interactions must be a list")
    lines = _item_lines(node, len(items))
    text_lines = text.splitlines()
    cassette = Cassette(upstreams={str(k): str(v) for k, v in upstreams.items()}, recorded=str(data.get("recorded") or ""), path=path)
    for entry, line in zip(items, lines):
        try:
            item = _read_interaction(entry)
        except _Bad as exc:
            problems.append(f"{path}:{line}: {exc}")
            continue
        item.line = line
        item.label = _label_above(text_lines, line)
        cassette.interactions.append(item)
    if problems:
        raise GlmevalError("\n".join(problems))
    return cassette


def _label_above(lines: list[str], line: int) -> str:
    """The comment lines right above an interaction (its case and variant), without ``# ``."""
    found: list[str] = []
    n = line - 2
    while n >= 0 and lines[n].startswith("#"):
        found.append(lines[n][1:].strip())
        n -= 1
    return "\n".join(reversed(found))


def _item_lines(node: Any, count: int) -> list[int]:
    """The 1-based line of each interaction, from the composed YAML."""
    for key, value in getattr(node, "value", []):
        if getattr(key, "value", None) == "interactions" and isinstance(value.value, list):
            return [item.start_mark.line + 1 for item in value.value]
    return [1] * count
