"""Credentials out of everything glmeval writes: the store, reports, logs, error messages.

Reports go into pull-request comments and CI job summaries, and the database is shared and
exported, so a password in ``--base-url http://user:PASS@host/``, a ``?token=`` in a proxy's
URL or an API key quoted back by an error must be gone before any of them sees the text.

* :func:`redact_url`: one URL with its user info, key-like query parameters and token-looking
  query values replaced by ``***``; scheme, host, port and path stay, so the text still says
  where a run went.
* :func:`register_secret`: a key glmeval loaded (``ZHIPUAI_API_KEY``, ``ZAI_API_KEY``, a
  provider's key); the client registers every key it uses.
* :func:`redact`: free text (an error message, a settings line) with every URL in it redacted
  and every registered secret, its halves (``id.secret``) and its escaped forms removed.

This module imports nothing from glmeval, so every layer may call it.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

__all__ = ["MASK", "forget_secrets", "redact", "redact_url", "register_secret", "remove_secret"]

MASK = "***"

KEY_LIKE = re.compile(
    r"(key|token|secret|sig|signature|pass|pwd|auth|credential|session|jwt|bearer|code)", re.IGNORECASE
)
"""Query parameter names whose value is a credential: ``api_key``, ``access_token``, ``sig``,
``X-Amz-Signature``, ``password``, ``auth``..."""

_TOKEN_VALUE = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9._~+/=-]{24,}$")
"""A query value that looks like a credential whatever its name: long, letters and digits."""

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>`]+")
_USERINFO = re.compile(r"(?<=://)[^/\s@'\"<>`]+@")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_MIN_SECRET = 6

_secrets: set[str] = set()
_lock = threading.Lock()


def redact_url(url: str, keep_user: bool = False) -> str:
    """``url`` without credentials: user info, key-like parameters and token-looking values
    become ``***``. Anything that does not parse as a URL is returned with at least its user
    info cut. ``keep_user`` keeps a user name and masks only its password
    (``postgresql://alice:***@host/db``): a database URL's user tells people which
    database it is, where an HTTP URL's user info is usually a token."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
    except ValueError:
        return _USERINFO.sub(f"{MASK}@", url)
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        if keep_user:
            user, colon, _ = userinfo.partition(":")
            netloc = f"{user}:{MASK}@{host}" if colon else netloc
        else:
            netloc = f"{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_is_secret(name, value) for name, value in pairs):
            query = "&".join(
                f"{quote(name, safe='')}={MASK if _is_secret(name, value) else quote(value, safe='')}" for name, value in pairs
            )
    fragment = parts.fragment
    if fragment and ("=" in fragment or _TOKEN_VALUE.match(fragment)):
        fragment = MASK
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _is_secret(name: str, value: str) -> bool:
    return bool(value) and (bool(KEY_LIKE.search(name)) or bool(_TOKEN_VALUE.match(value)))


def register_secret(value: str | None) -> None:
    """Remember a key so :func:`redact` removes it from any text from now on."""
    if not value or len(value.strip()) < _MIN_SECRET:
        return
    with _lock:
        _secrets.add(value.strip())


def forget_secrets() -> None:
    """Drop every registered secret (for tests that check a process starting afresh)."""
    with _lock:
        _secrets.clear()


def remove_secret(text: str, secret: str | None) -> str:
    """``text`` without ``secret``, its halves (a Zhipu key is ``id.secret``) or the forms it
    takes escaped in a repr of header bytes."""
    if not secret:
        return text
    for part in sorted({secret, secret.strip(), *secret.strip().split(".")}, key=len, reverse=True):
        if len(part) >= _MIN_SECRET:
            for form in (part, repr(part)[1:-1], part.encode("unicode_escape").decode("ascii", "replace")):
                text = text.replace(form, MASK)
    return text


def redact(text: str) -> str:
    """``text`` with every URL in it redacted, bearer tokens masked and every registered
    secret removed."""
    if not text:
        return text
    if "://" in text:
        text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    if "earer" in text:
        text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = remove_secret(text, secret)
    return text
