"""Small helpers that check-argument validators share (plugins may use them too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from glmeval.hints import did_you_mean
from glmeval.records import CheckSpec

__all__ = ["did_you_mean", "file_beside", "flag_problem", "got", "has_template", "is_template", "number_problem", "short", "unknown_args"]


def file_beside(name: str, suite_dir: str | Path) -> tuple[Path, bool]:
    """A file a check names, relative to the suite unless absolute, and whether it exists
    (a name the OS cannot even look up counts as missing)."""
    path = Path(name)
    path = path if path.is_absolute() else Path(suite_dir) / path
    try:
        return path, path.is_file()
    except (OSError, ValueError):
        return path, False


def is_template(value: Any) -> bool:
    """True for text the planner renders per case (``{{ var }}`` or ``{% ... %}``): its final
    value is only known then, so type checks a rendered value could pass are skipped."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def has_template(value: Any) -> bool:
    """True when ``value`` or any text nested in it is a template."""
    if isinstance(value, str):
        return is_template(value)
    if isinstance(value, (list, tuple)):
        return any(has_template(v) for v in value)
    if isinstance(value, dict):
        return any(has_template(k) or has_template(v) for k, v in value.items())
    return False


def short(value: Any) -> str:
    """``'abc'``: a value's repr cut to 40 characters, so a long value cannot drown the sentence."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def got(value: Any) -> str:
    """``got str 'abc'``: what the suite gave, for a problem sentence."""
    return f"got {type(value).__name__} {short(value)}"


def unknown_args(spec: CheckSpec, allowed: Any) -> list[str]:
    """One problem per argument the check type does not take, with the likely intended one."""
    names = list(allowed)
    out = []
    for key in spec.args:
        if key not in names:
            takes = ", ".join(names) if names else "no arguments"
            out.append(f"unknown argument {key!r}{did_you_mean(key, names)}; {spec.type} takes {takes}")
    return out


def number_problem(
    value: Any, what: str, *, whole: bool = False, minimum: float | None = 0, example: str = ""
) -> str | None:
    """Why ``value`` is not a usable number (whole, at least ``minimum``), or None.

    Text that reads as a number is accepted (a rendered template is text); a template itself
    is left to run time."""
    if is_template(value):
        return None
    hint = f", e.g. `{example}`" if example else ""
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return f"{what} must be {kind}{hint}; {got(value)}"
    try:
        number = float(value) if not isinstance(value, str) else float(value.strip())
        if whole and isinstance(value, str):
            int(value.strip())
    except ValueError:
        return f"{what} must be {kind}{hint}; {got(value)}"
    if number != number or number in (float("inf"), float("-inf")):
        return f"{what} must be a finite number; {got(value)}"
    if whole and not float(number).is_integer():
        return f"{what} must be {kind}{hint}; {got(value)}"
    if minimum is not None and number < minimum:
        return f"{what} must be at least {minimum:g}; {got(value)}"
    return None


def flag_problem(spec: CheckSpec, *names: str) -> list[str]:
    """Problems for on/off arguments (``ignore_case``, ``strict``...) given as anything but true/false."""
    return [
        f"{name} must be true or false; {got(spec.args[name])}"
        for name in names
        if name in spec.args and not isinstance(spec.args[name], bool) and not is_template(spec.args[name])
    ]
