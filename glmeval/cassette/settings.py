"""How a run that recorded or replayed a cassette says so: its stored settings and their words.

``glmeval show``, report.md and report.html print a run's settings through
``report.markdown.setting_text``, which asks :func:`setting_words` for the ``cassette`` entry,
so every place reads "replayed from cassette FILE; latency as recorded" from this one source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["cassette_settings", "setting_words"]


def cassette_settings(record: Path | None, cassette: Path | None, miss: str) -> dict[str, Any]:
    """The settings a run stores for ``--record`` / ``--cassette`` (none without either)."""
    if cassette is not None:
        return {"base_url": "cassette", "cassette": {"mode": "replay", "file": str(cassette), "miss": miss}}
    if record is not None:
        return {"cassette": {"mode": "record", "file": str(record)}}
    return {}


def setting_words(value: Any) -> str:
    """The ``cassette`` setting in words."""
    if not isinstance(value, dict):
        return f"cassette {value}"
    file = value.get("file", "?")
    if value.get("mode") == "record":
        return f"recorded to cassette {file}"
    rules = "; requests it lacks answered by the local server's rules (simulated)" if value.get("miss") == "rules" else ""
    return f"replayed from cassette {file}; latency as recorded{rules}"
