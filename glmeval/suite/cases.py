"""Cases: the ``cases:`` entries of a suite flattened into case mappings, and matrix fan-out.

A ``cases:`` entry may be a case, or ``{file: ...}`` naming a CSV, JSONL or YAML case file
whose rows become cases (its other keys are defaults for every row). Each case mapping keeps
where it was written (:class:`RawCase`), so a problem found later names the file and line of
the row, not of the suite.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from glmeval.checks.args import got, short
from glmeval.errors import SuiteError
from glmeval.hints import did_you_mean, typo_of
from glmeval.suite.model import Matrix, as_tags
from glmeval.suite.problems import Problems
from glmeval.suite.yamlsrc import Origin, Row, read_rows

__all__ = [
    "CASE_KEYS",
    "CSV_COLUMNS",
    "Locator",
    "RawCase",
    "case_entries",
    "list_len",
    "check_matrix",
    "matrix_combos",
    "matrix_size",
    "show_value",
    "source_bytes",
]

# Keys of a case; in a case file every other column or key becomes a variable.
CASE_KEYS = (
    "id", "description", "vars", "matrix", "messages", "prompt", "tools", "params", "checks",
    "tags", "skip", "only", "repeat", "threshold", "min-score",
)
# CSV cells are text: these columns are parsed into case fields, every other column is a variable.
CSV_COLUMNS = ("id", "description", "tags", "skip", "only", "checks", "params", "repeat", "threshold", "min-score", "prompt")


@dataclass
class RawCase:
    """A case mapping before validation, with where each part of it was written."""

    data: Any
    origin: Origin
    check_origins: list[Origin] = field(default_factory=list)
    key_origins: dict[str, Origin] = field(default_factory=dict)
    file: Path | None = None
    auto_id: str = ""


class Locator:
    """Maps a location in the validated data (``cases[3].checks[0]``) to a file and line."""

    def __init__(self, root: Origin, cases: list[RawCase] | None) -> None:
        self.root = root
        self.cases = cases or []

    def origin(self, loc: tuple[Any, ...]) -> Origin:
        if len(loc) >= 2 and loc[0] == "cases" and isinstance(loc[1], int) and 0 <= loc[1] < len(self.cases):
            raw = self.cases[loc[1]]
            sub = loc[2:]
            if len(sub) >= 2 and sub[0] == "checks" and isinstance(sub[1], int) and 0 <= sub[1] < len(raw.check_origins):
                return raw.check_origins[sub[1]].at(*sub[2:])
            if sub and sub[0] in raw.key_origins:
                return raw.key_origins[sub[0]].at(*sub[1:])
            return raw.origin.at(*sub)
        return self.root.at(*loc)


def case_entries(
    data: dict[Any, Any], root: Origin, problems: Problems, base_dir: Path, hash_parts: list[bytes]
) -> list[RawCase] | None:
    """Flatten ``cases:`` (inline cases, ``{file: ...}`` entries, or one file path) into case mappings."""
    if "cases" not in data:
        return None
    raw = data["cases"]
    where = root.at("cases")
    if isinstance(raw, str):
        items: list[Any] = [{"file": raw}]
        origins = [where]
    elif isinstance(raw, list):
        items = raw
        origins = [where.at(i) for i in range(len(raw))]
    elif raw is None:
        return []
    else:
        problems.error(where, f"cases must be a list of cases, or the path of a case file; {got(raw)}")
        data.pop("cases")
        return None
    out: list[RawCase] = []
    for i, (item, origin) in enumerate(zip(items, origins)):
        if isinstance(item, dict) and "file" in item:
            out.extend(_file_cases(item, origin, problems, base_dir, hash_parts))
            continue
        checks = item.get("checks") if isinstance(item, dict) else None
        check_origins = [origin.at("checks", k) for k in range(len(checks))] if isinstance(checks, list) else []
        out.append(RawCase(item, origin, check_origins, auto_id=f"case-{i + 1}"))
    return out


def _file_cases(
    entry: dict[Any, Any], origin: Origin, problems: Problems, base_dir: Path, hash_parts: list[bytes]
) -> list[RawCase]:
    """The cases of one ``{file: ...}`` entry; its other keys are defaults for every row."""
    name = entry.get("file")
    file_origin = origin.at("file")
    if not isinstance(name, str) or not name.strip():
        problems.error(file_origin, f"file must be the path of a case file (.csv, .jsonl, .yaml); {got(name)}")
        return []
    defaults = {k: v for k, v in entry.items() if k != "file"}
    bad = False
    for key in defaults:
        if key == "id" or key not in CASE_KEYS:
            why = "each case from a file has its own id" if key == "id" else f"not a case key{did_you_mean(key, CASE_KEYS)}"
            problems.error(origin, f"unknown key {str(key)!r} in a case file entry ({why})", (key,))
            bad = True
    path = base_dir / name
    try:
        exists = path.is_file()
    except (OSError, ValueError):
        exists = False
    if not exists:
        problems.error(file_origin, f"case file {name!r} not found (looked for {path})")
        return []
    try:
        rows = read_rows(path)
    except SuiteError as exc:
        problems.extend(exc.problems)
        return []
    hash_parts.append(source_bytes(path))
    if bad:
        return []
    if not rows:
        problems.warn(file_origin, f"case file {name!r} has no cases")
    csv_file = path.suffix.lower() == ".csv"
    out: list[RawCase] = []
    stem = path.stem
    default_origins = {str(k): origin.at(k) for k in defaults}
    default_checks = [origin.at("checks", k) for k in range(list_len(defaults.get("checks")))]
    columns = _csv_columns(rows[0], problems) if csv_file and rows else None
    for n, row in enumerate(rows, start=1):
        case, row_checks = _csv_row_case(row, *columns, problems) if columns else _row_case(row, csv_file, problems)
        if case is None:
            continue
        merged = _merged(defaults, case) if defaults else case
        key_origins = {k: o for k, o in default_origins.items() if k not in case} if defaults else {}
        check_origins = default_checks  # shared by the rows without checks of their own; never changed
        if isinstance(row_checks, list):
            check_origins = [*default_checks, *(row.origin.at(*_row_checks_loc(row, csv_file), k) for k in range(len(row_checks)))]
        out.append(RawCase(merged, row.origin, check_origins, key_origins, path, auto_id=f"{stem}-{n}"))
    return out


def _merged(defaults: dict[Any, Any], case: dict[str, Any]) -> dict[str, Any]:
    """A row over its file entry's defaults: checks and tags added, vars and params merged."""
    merged: dict[str, Any] = dict(defaults)
    for key, value in case.items():
        base = merged.get(key)
        if key == "checks" and isinstance(base, list) and isinstance(value, list):
            merged[key] = [*base, *value]
        elif key == "tags" and isinstance(as_tags(base), list) and isinstance(as_tags(value), list):
            merged[key] = [*as_tags(base), *as_tags(value)]
        elif key in ("vars", "params") and isinstance(base, dict) and isinstance(value, dict):
            merged[key] = {**base, **value}
        else:
            merged[key] = value
    return merged


def _row_checks_loc(row: Row, csv_file: bool) -> tuple[Any, ...]:
    return () if csv_file else ("checks",)


def _row_case(row: Row, csv_file: bool, problems: Problems) -> tuple[dict[str, Any] | None, Any]:
    """A case-file row as a case mapping: reserved keys become case keys, the rest variables."""
    reserved = CSV_COLUMNS if csv_file else CASE_KEYS
    known = _CSV_SET if csv_file else _KEY_SET
    case: dict[str, Any] = {}
    variables: dict[str, Any] = {}
    ok = True
    for key, value in row.data.items():
        name = key if type(key) is str else str(key)
        if name in known:
            if csv_file:
                ok = _put_cell(case, name, value, row, problems) and ok
            else:
                case[name] = value
        else:
            variables[name] = value
            typo = _typo(name, reserved)
            if typo:
                what = "column" if csv_file else "key"
                problems.warn(
                    row.origin,
                    f"{what} {name!r} is used as a template variable (did you mean {typo!r}?)",
                    key=f"{row.origin.path}:{name}",
                )
    if variables:
        own = case.get("vars")
        case["vars"] = {**variables, **own} if isinstance(own, dict) else (own if "vars" in case else variables)
    return (case if ok else None), case.get("checks")


def _put_cell(case: dict[str, Any], name: str, value: Any, row: Row, problems: Problems) -> bool:
    """Put a CSV cell of a reserved column into ``case`` as its typed value (an empty cell is
    left out); False, with the problem recorded, when the cell does not parse."""
    try:
        parsed = _csv_cell(name, value)
    except ValueError as exc:
        problems.error(row.origin, f"column {name!r}: {exc}")
        return False
    if parsed is not _EMPTY:
        case[name] = parsed
    return True


def _csv_columns(first: Row, problems: Problems) -> tuple[list[str], list[str]]:
    """A CSV file's reserved columns and variables, with the warnings for names that look like
    a misspelt column (every row has the header's columns, so they are sorted out once)."""
    names = [str(key) for key in first.data]
    for name in names:
        typo = None if name in _CSV_SET else _typo(name, CSV_COLUMNS)
        if typo:
            problems.warn(
                first.origin,
                f"column {name!r} is used as a template variable (did you mean {typo!r}?)",
                key=f"{first.origin.path}:{name}",
            )
    return [n for n in names if n in _CSV_SET], [n for n in names if n not in _CSV_SET]


def _csv_row_case(row: Row, reserved: list[str], variables: list[str], problems: Problems) -> tuple[dict[str, Any] | None, Any]:
    """:func:`_row_case` of a CSV row, its columns sorted out by :func:`_csv_columns`."""
    data = row.data
    case: dict[str, Any] = {}
    ok = True
    for name in reserved:
        ok = _put_cell(case, name, data[name], row, problems) and ok
    if variables:
        case["vars"] = {name: data[name] for name in variables}
    return (case if ok else None), case.get("checks")


@functools.lru_cache(maxsize=1024)
def _typo(name: str, reserved: tuple[str, ...]) -> str | None:
    """:func:`typo_of` once per column name: every row of a file has the same columns."""
    return typo_of(name, reserved)


_CSV_SET = frozenset(CSV_COLUMNS)
_KEY_SET = frozenset(CASE_KEYS)
_EMPTY = object()
_TRUE = ("true", "yes", "y", "1", "on")
_FALSE = ("false", "no", "n", "0", "off", "")


def _csv_cell(name: str, text: Any) -> Any:
    """A reserved CSV cell as the case field it fills; an empty cell leaves the field unset."""
    text = "" if text is None else str(text)
    stripped = text.strip()
    if not stripped and name != "skip":
        return _EMPTY
    if name in ("id", "description", "prompt"):
        return stripped
    if name == "tags":
        return as_tags(stripped)
    if name == "skip":
        if stripped.lower() in _TRUE:
            return True
        return False if stripped.lower() in _FALSE else stripped
    if name == "only":
        if stripped.lower() in _TRUE:
            return True
        if stripped.lower() in _FALSE:
            return False
        raise ValueError(f"only must be true or false; got {stripped!r}")
    if name == "repeat":
        try:
            return int(stripped)
        except ValueError:
            raise ValueError(f"repeat must be a whole number; got {stripped!r}") from None
    if name in ("threshold", "min-score"):
        try:
            return float(stripped)
        except ValueError:
            raise ValueError(f"{name} must be a number from 0 to 1; got {stripped!r}") from None
    try:
        value = yaml.safe_load(stripped)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "invalid"
        raise ValueError(f"not valid YAML or JSON ({problem})") from None
    except (ValueError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
        raise ValueError(f"cannot read it ({exc})") from None
    if name == "checks":
        if isinstance(value, (dict, str)):
            return [value]
        if not isinstance(value, list):
            raise ValueError(f"checks must be a YAML/JSON list or mapping of checks; {got(value)}")
        return value
    if not isinstance(value, dict):
        raise ValueError(f"params must be a YAML/JSON mapping of request parameters; {got(value)}")
    return value


def list_len(value: Any) -> int:
    """How many entries a value has if it is a list (a wrong type is reported elsewhere)."""
    return len(value) if isinstance(value, list) else 0


def source_bytes(path: Path) -> bytes:
    """A file's bytes for the content hash; a file that cannot be read adds nothing."""
    try:
        return path.read_bytes()
    except (OSError, ValueError):
        return b""


def check_matrix(matrix: Any, origin: Origin, problems: Problems) -> None:
    """A matrix as written; the typed suite's :data:`~glmeval.suite.model.Matrix` relies on it."""
    if matrix is None:
        return
    if isinstance(matrix, dict):
        if not matrix:
            problems.error(origin, "matrix is empty; give {variable: [values...]}")
        for key, values in matrix.items():
            if not isinstance(key, str):
                problems.error(origin, f"matrix variable names must be text; got {short(key)}")
            elif not isinstance(values, list) or not values:
                problems.error(origin.at(key), f"matrix.{key} must be a non-empty list of values; {got(values)}")
        return
    if isinstance(matrix, list) and matrix and all(isinstance(e, dict) and e for e in matrix):
        for i, entry in enumerate(matrix):
            bad = [k for k in entry if not isinstance(k, str)]
            if bad:
                problems.error(origin.at(i), f"matrix variable names must be text; got {short(bad[0])}")
        return
    problems.error(
        origin,
        "matrix must be a mapping {variable: [values...]} (every combination) or a list of "
        f"{{variable: value}} mappings (one case each); {got(matrix)}",
    )


def matrix_combos(matrix: Matrix | None, skip_keys: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The combinations a matrix fans out to; ``[{}]`` for none."""
    skip = set(skip_keys)
    if isinstance(matrix, dict):
        keys = [k for k in matrix if k not in skip]
        return [dict(zip(keys, values)) for values in itertools.product(*(matrix[k] for k in keys))] or [{}]
    if isinstance(matrix, list):
        combos = [{k: v for k, v in entry.items() if k not in skip} for entry in matrix]
        unique: list[dict[str, Any]] = []
        for combo in combos:
            if combo not in unique:
                unique.append(combo)
        return unique or [{}]
    return [{}]


def matrix_size(matrix: Matrix | None) -> int:
    """How many copies a matrix makes, counted before any are built (to refuse huge fan-outs)."""
    if isinstance(matrix, dict):
        size = 1
        for values in matrix.values():
            size *= max(1, len(values)) if isinstance(values, list) else 1
        return size
    return len(matrix) if isinstance(matrix, list) else 1


def show_value(value: Any) -> str:
    """A value as it appears in a derived id or a variant label."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)
