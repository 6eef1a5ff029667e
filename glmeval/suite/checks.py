"""Checks as a suite writes them: parsing each entry, validating its arguments, check files.

A check entry is parsed at load time against the suite's own registry (its check files over
the built-ins and plugins), and its type's validator looks at the arguments (a bad regex, a
missing schema file), so a wrong check stops the load before any call is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from glmeval.checks import CheckRegistry, file_beside, known_types, load_builtin, load_local_checks, validate_check
from glmeval.checks.args import got, short
from glmeval.hints import did_you_mean
from glmeval.records import CHECK_TARGETS, CheckSpec, CheckTarget
from glmeval.suite.problems import Problems, is_number
from glmeval.suite.templating import check_template, template_strings, templated_check_args
from glmeval.suite.yamlsrc import Origin

__all__ = [
    "COMMON_CHECK_OPTIONS",
    "check_checks",
    "declared_tools",
    "grid_tools",
    "load_check_files",
    "offered_tools",
    "parse_check",
    "parse_checks",
]

COMMON_CHECK_OPTIONS = {"type", "not", "weight", "metric", "threshold", "on", "target"}


def _pop_target(item: dict[Any, Any], where: str) -> CheckTarget:
    """``on: reasoning`` (or ``target: reasoning``). YAML 1.1 reads a bare ``on`` key as the
    boolean true, so that key counts as ``on`` too."""
    given = [(name, item.pop(key)) for key, name in (("on", "on"), (True, "on"), ("target", "target")) if key in item]
    if len(given) > 1:
        raise ValueError(f"{where}: give on or target, not both")
    if not given:
        return "answer"
    name, value = given[0]
    text = value.strip().lower() if isinstance(value, str) else None
    for target in CHECK_TARGETS:
        if text == target:
            return target
    hint = did_you_mean(text, CHECK_TARGETS) if text else ""
    raise ValueError(f"{where}: {name} must be answer or reasoning; {got(value)}{hint}")


def parse_check(item: Any, where: str, line: int | None, registry: CheckRegistry | None = None) -> CheckSpec:
    """Turn one YAML check entry into a CheckSpec.

    Accepted shapes: ``{type: contains, value: x}``, the shorthand ``{contains: x}``, a
    shorthand with a mapping (``{tool-call: {name: f}}``), a bare name (``- is-json``), and
    ``not-<type>`` for negation. Common options (not, weight, metric, threshold, and on /
    target, which points a text check at the reasoning) may sit beside either form.
    ``registry`` is the suite's (its check files over the built-ins).
    """

    if isinstance(item, str):
        item = {"type": item}
    if not isinstance(item, dict):
        raise ValueError(f"{where}: a check must be a mapping like {{contains: text}}; {got(item)}")
    item = dict(item)
    negate = item.pop("not", False)
    weight = item.pop("weight", 1.0)
    metric = item.pop("metric", None)
    threshold = item.pop("threshold", None)
    on = _pop_target(item, where)
    if "type" in item:
        ctype = item.pop("type")
        args = item
    else:
        if not item:
            raise ValueError(f"{where}: empty check; write it like {{contains: text}}")
        ctype = next(iter(item))
        value = item.pop(ctype)
        if isinstance(value, dict) and "value" not in value and ctype != "json-field":
            args = {**value, **item}
        else:
            args = {"value": value, **item}
    if not isinstance(ctype, str):
        raise ValueError(f"{where}: check type must be text; {got(ctype)}")
    types = registry if registry is not None else load_builtin()
    if ctype not in types and ctype.startswith("not-") and ctype[4:] in types:
        ctype, negate = ctype[4:], not negate
    if ctype not in types:
        raise ValueError(f"{where}: unknown check type {ctype!r}{did_you_mean(ctype, known_types(types))}")
    if not isinstance(negate, bool):
        raise ValueError(f"{where}: not must be true or false; {got(negate)}")
    if not is_number(weight) or weight < 0:
        raise ValueError(f"{where}: weight must be a number >= 0; {got(weight)}")
    if threshold is not None and (not is_number(threshold) or not 0 <= threshold <= 1):
        raise ValueError(f"{where}: threshold must be a number from 0 to 1; {got(threshold)}")
    if metric is not None and not isinstance(metric, str):
        raise ValueError(f"{where}: metric must be text (a name for reports); {got(metric)}")
    bad_keys = [k for k in args if not isinstance(k, str)]
    if bad_keys:
        raise ValueError(f"{where}: check arguments must be named by text; got {short(bad_keys[0])}")
    definition = types.get(ctype)
    if on != "answer" and definition is not None and not definition.text_check:
        raise ValueError(
            f"{where}: check {ctype} does not judge text, so on: {on} does not apply to it; it works on text checks "
            "(contains, regex, max-chars, is-json, llm-rubric, ...), and reasoning-contains, max-reasoning-tokens "
            "and no-reasoning look at the reasoning themselves"
        )
    return CheckSpec(
        type=ctype, args=args, negate=negate, weight=float(weight), metric=metric, threshold=threshold, line=line, on=on
    )


def declared_tools(data: Any) -> list[Any] | None:
    """The tools a suite or case mapping declares itself (``tools:`` before ``params.tools``);
    None when it declares none."""
    if not isinstance(data, dict):
        return None
    if data.get("tools") is not None:
        return data["tools"]
    params = data.get("params")
    return params.get("tools") if isinstance(params, dict) else None


def grid_tools(grid: Any) -> list[list[Any] | None]:
    """Every tools list a grid's ``tools`` axis or include entries may send."""
    if not isinstance(grid, dict):
        return []
    out: list[list[Any] | None] = []
    axis = grid.get("tools")
    if axis is not None:
        # one tools list, or a list of them (each value of the axis is a tools list)
        out += axis if isinstance(axis, list) and axis and all(isinstance(v, list) or v is None for v in axis) else [axis]
    include = grid.get("include")
    if isinstance(include, list):
        out += [entry["tools"] for entry in include if isinstance(entry, dict) and "tools" in entry]
    return out


def offered_tools(candidates: list[Any]) -> list[Any] | None:
    """Every tool any of the candidate tools lists offers, for the tool-call validator: None when
    none is declared anywhere (nothing to compare with) or one is malformed (reported elsewhere)."""
    declared = [c for c in candidates if c is not None]
    if not declared:
        return None
    if not all(isinstance(c, list) for c in declared):
        return None
    return [tool for tools in declared for tool in tools]


def load_check_files(
    files: Any, origin: Origin, problems: Problems, base: Path, hash_parts: list[bytes], registry: CheckRegistry
) -> None:
    """Import a suite's local check modules into its own registry before its checks are parsed,
    so their names are known check types to this suite alone; their source joins the suite's
    content hash."""
    if files is None:
        return
    if isinstance(files, str):
        files = [files]
    if not isinstance(files, list):
        problems.error(origin.at("check-files"), f"check-files must be a list of Python file paths; {got(files)}")
        return
    for i, name in enumerate(files):
        where = origin.at("check-files").at(i)
        if not isinstance(name, str) or not name.endswith(".py"):
            problems.error(where, f"check-files entries are paths to .py files; got {short(name)}")
            continue
        file, found = file_beside(name, base)
        if not found:
            problems.error(where, f"check file {name!r} not found (looked for {file})")
            continue
        try:
            load_local_checks(file, registry)
        except Exception as exc:
            problems.error(where, f"cannot load check file {name!r}: {type(exc).__name__}: {exc}")
            continue
        hash_parts.append(file.read_bytes())


def check_checks(
    items: Any,
    origins: list[Origin],
    problems: Problems,
    templating: bool,
    registry: CheckRegistry,
    suite_dir: Path | None = None,
    tools: list[Any] | None = None,
) -> None:
    """Parse each check and ask its type's validator about its arguments (bad regex, missing
    schema file, a limit that is not a number...), so they stop the load before any call."""
    if not isinstance(items, list):
        return
    for item, origin in zip(items, origins):
        try:
            spec = parse_check(item, origin.where(), origin.line(), registry)
        except ValueError as exc:
            problems.add(str(exc))
            continue
        for problem in validate_check(spec, suite_dir if suite_dir is not None else Path.cwd(), tools, registry):
            problems.error(origin, f"check {spec.type}: {problem}")
        if templating:
            for key in templated_check_args(spec):
                for text in template_strings(spec.args[key]):
                    check_template(text, origin, problems, f"check {spec.type}")


def parse_checks(
    items: list[Any], origins: list[Origin], registry: CheckRegistry, problems: Problems | None = None
) -> tuple[list[CheckSpec], list[Origin]]:
    """The specs of the entries that parse, each with where it was written (the planner names
    that place when a check's template fails for one case)."""
    out: list[CheckSpec] = []
    kept: list[Origin] = []
    for item, origin in zip(items, origins):
        try:
            out.append(parse_check(item, origin.where(), origin.line(), registry))
        except ValueError as exc:
            if problems is not None:
                problems.add(str(exc))
            continue
        kept.append(origin)
    return out, kept
