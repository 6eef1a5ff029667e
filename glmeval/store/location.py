"""Where a history lives: a SQLite file or a PostgreSQL URL, told apart before anything connects.

``--db`` and ``GLMEVAL_DB`` take either. A URL must reach the store unchanged (a ``Path``
would fold its ``//``), and its password must never reach a message, a report or an export:
:func:`redact_url` (:func:`glmeval.redact.redact_url` keeping the user name) is what every
message shows instead.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

from glmeval import redact
from glmeval.store.runinfo import DEFAULT_DB

URL_SCHEMES = ("postgresql://", "postgres://")

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
    """``postgresql://user:***@host/db``: the password (in the user info or a secret
    parameter such as ``password=``) replaced, everything a person needs to recognise the
    database kept."""
    return redact.redact_url(url, keep_user=True)


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
