"""Problems found while loading a suite, and pydantic's errors in plain words.

Loading collects every problem instead of stopping at the first, so a person fixes a suite in
one pass; :class:`Problems` gathers them and orders them by file and line for printing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeGuard

from glmeval.checks.args import got, short
from glmeval.errors import SuiteError
from glmeval.hints import did_you_mean
from glmeval.suite.yamlsrc import Origin

__all__ = ["PathProblem", "Problems", "is_int", "is_number", "pydantic_problem", "report_all"]

PathProblem = tuple[tuple[Any, ...], str]
"""One problem inside a value: the path to the part that is wrong, and the message."""


def is_number(value: Any) -> TypeGuard[int | float]:
    """A number as YAML gives it; ``true`` is not 1 here."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


_PLACE = re.compile(r"^(?P<path>.*?):(?P<line>\d+)(?::\d+)?: ")


class Problems:
    """Problems and warnings collected while loading, ordered by file and line for printing."""

    def __init__(self, main: Path) -> None:
        self.main = str(main)
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self._warned: set[str] = set()

    def error(self, origin: Origin, text: str, sub: Iterable[Any] = ()) -> None:
        self.problems.append(f"{origin.where(tuple(sub))}: {text}")

    def add(self, text: str) -> None:
        """Add a problem whose text already names its place (``file:line: ...``)."""
        self.problems.append(text)

    def extend(self, texts: Iterable[str]) -> None:
        self.problems.extend(texts)

    def warn(self, origin: Origin, text: str, key: str | None = None, sub: Iterable[Any] = ()) -> None:
        """Add a warning once per ``key`` (default: the text), so a repeated value warns once."""
        key = key or text
        if key in self._warned:
            return
        self._warned.add(key)
        self.warnings.append(f"{origin.where(tuple(sub))}: {text}")

    def sorted(self, items: list[str]) -> list[str]:
        def order(text: str) -> tuple[bool, str, int]:
            match = _PLACE.match(text)
            if not match:
                return (not text.startswith(self.main), text.split(":", 1)[0], 0)
            return (match["path"] != self.main, match["path"], int(match["line"]))

        return sorted(dict.fromkeys(items), key=order)

    def raise_if_any(self) -> None:
        if self.problems:
            raise SuiteError(self.sorted(self.problems))


def report_all(problems: Problems, origin: Origin, found: list[PathProblem]) -> None:
    """Record problems found inside the value written at ``origin``."""
    for sub, text in found:
        problems.error(origin, text, sub)


_TYPE_WORDS = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "literal_error": "one of the listed values",
}
_BOUND_WORDS = {"greater_than_equal": "at least", "greater_than": "more than", "less_than_equal": "at most", "less_than": "less than"}


def _dotted(loc: tuple[Any, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


_PYDANTIC_TAG = re.compile(r"^(\[key\]|[a-z][a-z_-]*\[.*\])$")


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The data path without pydantic's own markers (``[key]``, ``function-after[...]``)."""
    return tuple(p for p in loc if not (isinstance(p, str) and _PYDANTIC_TAG.match(p)))


def pydantic_problem(err: Mapping[str, Any], allowed_keys: Callable[[tuple[Any, ...]], list[str]]) -> PathProblem:
    """One pydantic error as (location, message in plain words); ``allowed_keys`` names the keys
    a mapping at a location may have, for did-you-mean hints on unknown keys."""
    loc = _clean_loc(tuple(err["loc"]))
    kind = err["type"]
    what = _dotted(loc) or "the suite"
    if kind == "extra_forbidden" and loc:
        key = loc[-1]
        parent = _dotted(loc[:-1]) or "the suite"
        return loc, f"unknown key {str(key)!r} in {parent}{did_you_mean(key, allowed_keys(loc[:-1]))}"
    if kind == "missing" and loc:
        parent = _dotted(loc[:-1]) or "the suite"
        return loc, f"{parent}: required key {str(loc[-1])!r} is missing"
    given = err.get("input")
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        options = re.findall(r"'([^']*)'", str(expected))
        return loc, f"{what} must be one of {', '.join(options)}; got {short(given)}{did_you_mean(given, options)}"
    if kind in _TYPE_WORDS:
        hint = " (put it in quotes)" if _TYPE_WORDS[kind] == "text" and is_number(given) else ""
        return loc, f"{what} must be {_TYPE_WORDS[kind]}; {got(given)}{hint}"
    if kind in _BOUND_WORDS:
        limit = next(iter(err.get("ctx", {}).values()), "")
        return loc, f"{what} must be {_BOUND_WORDS[kind]} {limit}; got {short(given)}"
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return loc, f"{what}: {msg}"
