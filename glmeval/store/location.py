"""Where a history lives: a SQLite file or a PostgreSQL URL, told apart before anything connects.

``--db`` and ``GLMEVAL_DB`` take either. A URL must reach the store unchanged (a ``Path``
would fold its ``//``), and its password must never reach a message, a report or an export:
:func:`redact_url` is what every message shows instead. (``glmeval/redact.py`` from the
hygiene branch generalises this; until it is merged the store redacts with its own helper.)
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

from glmeval.store.runinfo import DEFAULT_DB

URL_SCHEMES = ("postgresql://", "postgres://")

# Query parameters of a libpq URL that carry a secret.
_SECRET_PARAMS = {"password", "passfile", "sslpassword", "sslkey"}


def is_postgres_url(value: object) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith(URL_SCHEMES)


def database_location(value: str | Path | None) -> str | Path:
    """``--db``'s value (or ``GLMEVAL_DB``, or the default file) as the store opens it: a
    PostgreSQL URL as the text it is, anything else as a path."""
    if value is None:
        value = os.environ.get("GLMEVAL_DB") or DEFAULT_DB
    if is_postgres_url(value):
        return str(value).strip()
    return Path(value)


def redact_url(url: str) -> str:
    """``postgresql://user:***@host/db``: the password (in the user info or a ``password=``
    parameter) replaced, everything a person needs to recognise the database kept."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url.split("://", 1)[0] + "://***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = parts.query
    if query:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        query = "&".join(
            f"{key}={'***' if key.lower() in _SECRET_PARAMS else urllib.parse.quote(value, safe='/:,=-')}"
            for key, value in pairs
        )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_password(url: str) -> str | None:
    """The password a URL carries (to scrub it from driver messages), or None."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return None
    if parts.password:
        return urllib.parse.unquote(parts.password)
    for key, value in urllib.parse.parse_qsl(parts.query):
        if key.lower() == "password" and value:
            return value
    return None


__all__ = ["URL_SCHEMES", "database_location", "is_postgres_url", "redact_url", "url_password"]
