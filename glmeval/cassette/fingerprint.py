"""What makes two requests "the same" for a cassette: the fingerprint.

A fingerprint is the upstream's name, the method, the path under the base URL and the
request body as canonical JSON (keys sorted, no whitespace) without the fields that change
from call to call without changing the answer (:data:`VOLATILE_FIELDS`) and without top-level
fields sent as ``null`` (zhipuai always sends ``"thinking": null`` and ``"response_format":
null``, other SDKs leave them out: the API reads both as "not given"), so a recording made with
one SDK replays for another. Headers never take
part: they carry the key, SDK versions and other noise, never the question. The host and any
mount in front of the API (``/api/paas/v4``, ``/p/<provider>/``) are not in the path either,
so a cassette recorded against the official API replays behind any base URL.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Final

__all__ = ["VOLATILE_FIELDS", "RequestKey", "canonical_body", "fingerprint", "is_poll", "normal_path", "request_key"]

# Top-level body fields that differ per call (a request id, an end-user id) and say nothing
# about the answer. They are left out of the fingerprint and never written to a cassette.
VOLATILE_FIELDS: Final = frozenset({"request_id", "user_id"})

_SLASHES = re.compile(r"/{2,}")

RequestKey = tuple[str, str, str, str]
"""(upstream, method, path, canonical body): what a recorded response is filed under."""


def normal_path(path: str) -> str:
    """The path under the base URL as a fingerprint uses it: no query string (the Zhipu
    endpoints take none, and a query is where a proxy's token would hide), single slashes,
    no trailing slash."""
    path = _SLASHES.sub("/", path.partition("?")[0].partition("#")[0])
    if len(path) > 1:
        path = path.rstrip("/")
    return path if path.startswith("/") else "/" + path


def is_poll(method: str, path: str) -> bool:
    """An async task's result poll (``GET /async-result/{id}``), which replays by time, not by count."""
    return method == "GET" and path.startswith("/async-result/")


def canonical_body(raw: bytes) -> tuple[Any, str]:
    """The body as (parsed JSON without volatile fields, its canonical text).

    A body that is not a JSON object is kept as its text (parsed is None); an empty body is "".
    """
    if not raw:
        return None, ""
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None, raw.decode("utf-8", "replace")
    if isinstance(parsed, dict):
        parsed = {k: v for k, v in parsed.items() if k not in VOLATILE_FIELDS and v is not None}
    return parsed, json.dumps(parsed, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def request_key(upstream: str, method: str, path: str, raw: bytes) -> RequestKey:
    """The key a request is recorded and looked up under."""
    return upstream, method.upper(), normal_path(path), canonical_body(raw)[1]


def fingerprint(key: RequestKey) -> str:
    """A short stable id of a request key, for messages ("fingerprint 3f2a9c01d4e5")."""
    return hashlib.sha256("\n".join(key).encode("utf-8")).hexdigest()[:12]
