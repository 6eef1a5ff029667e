"""Model-written and user-written text made safe to show: controls and bidi overrides visible.

An answer (or a case id, a check message, a server's error) may hold ESC sequences that reset
or repaint a terminal (``\\x1bc``), BEL, backspaces that hide what came before, or bidi
overrides (U+202E, U+2066) that make a report line read differently from what it says.
:func:`visible` writes each such character as a visible escape (``\\x1b``, ``\\u202e``) for
Markdown, terminal output, JUnit XML and HTML; the store keeps the original text.

Newlines and tabs stay; every other C0 control, DEL, every C1 control and the bidi
embedding, override, isolate and mark characters are escaped. This module imports nothing
from glmeval.
"""

from __future__ import annotations

__all__ = ["BIDI", "visible"]

BIDI = frozenset([0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])
"""Arabic letter mark, LRM/RLM, the embeddings and overrides (U+202A..E) and the isolates (U+2066..9)."""


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_TABLE: dict[int, str] = {
    code: _escape(code) for code in [*range(0x20), 0x7F, *range(0x80, 0xA0), *BIDI] if code not in (0x09, 0x0A)
}


def visible(text: str) -> str:
    """``text`` with control and bidi characters as visible escapes (``\\x1b``, ``\\u202e``)."""
    return text.translate(_TABLE) if text else text
