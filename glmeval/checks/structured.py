"""Checks on structure: JSON in the answer, JSON Schema, fields inside it, tool calls, finish reason.

Models wrap JSON in prose or Markdown fences, so these checks look for it the way a reader
would: the whole answer, then a fenced ```json block, then the first ``{...}`` or ``[...]``
that parses. Schemas are validated with the ``jsonschema`` library (draft from ``$schema``,
2020-12 by default, with format checks), and reasons name the JSON path that failed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from glmeval.checks.args import (
    did_you_mean,
    file_beside,
    flag_problem,
    got,
    has_template,
    is_template,
    number_problem,
    unknown_args,
)
from glmeval.checks.context import CheckContext
from glmeval.checks.registry import register
from glmeval.records import CheckSpec, Completion, ToolCall

_FENCE = re.compile(r"```[ \t]*(?:json5?|JSON|javascript|js)?[ \t]*\r?\n(.*?)```", re.DOTALL)
_MAX_SCAN = 200


def _excerpt(text: str, limit: int = 80) -> str:
    text = text.replace("\n", " ")
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _show(value: Any, limit: int = 60) -> str:
    """A value as JSON (Chinese left readable), shortened for a reason line."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def extract_json(text: str, strict: bool = False) -> tuple[bool, Any, str]:
    """Find JSON in an answer: ``(found, value, where or why not)``.

    Looks at the whole answer, then fenced blocks, then the first ``{``/``[`` from which a
    complete JSON value decodes. ``strict`` accepts only an answer that is JSON as a whole.
    """
    stripped = text.strip()
    try:
        return True, json.loads(stripped), "the whole answer"
    except json.JSONDecodeError as exc:
        first_error = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if strict:
        return False, None, first_error
    for match in _FENCE.finditer(text):
        try:
            return True, json.loads(match.group(1).strip()), "a ``` fenced block"
        except json.JSONDecodeError:
            continue
    decoder = json.JSONDecoder()
    tried = 0
    for i, ch in enumerate(text):
        if ch not in "{[":
            continue
        tried += 1
        if tried > _MAX_SCAN:
            break
        try:
            value, _ = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            continue
        if isinstance(value, (dict, list)):
            return True, value, f"a {'{...}' if ch == '{' else '[...]'} block at character {i}"
    return False, None, first_error


def _place(where: str, subject: str) -> str:
    """Where :func:`extract_json` found JSON, worded for what was judged (the answer or the reasoning)."""
    return where.replace("the whole answer", f"the whole {subject}")


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _validate_is_json(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    problems = unknown_args(spec, ("strict", "value")) + flag_problem(spec, "strict")
    if spec.args.get("value") not in (None, True):
        problems.append(f"is-json takes no value; write `- is-json`, or `{{is-json: {{strict: true}}}}`; {got(spec.args['value'])}")
    return problems


@register("is-json", validate=_validate_is_json)
def is_json(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The answer is or contains valid JSON (in a ```json fence or a {...} block unless strict)."""
    strict = bool(spec.args.get("strict", False))
    found, value, where = extract_json(completion.text, strict)
    subject = ctx.subject
    if found:
        return True, f"valid JSON {_kind(value)} in {_place(where, subject)}"
    scope = f"the whole {subject} to be JSON" if strict else f"JSON in the {subject}"
    return False, f"expected {scope}; none parsed ({where}); {subject} was {_excerpt(completion.text)}"


def _load_schema(value: Any, ctx: CheckContext, check: str) -> dict[str, Any]:
    """A schema given inline (mapping or JSON text) or as a .json/.yaml file beside the suite."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            return json.loads(text)
        path = Path(text.removeprefix("file://"))
        path = path if path.is_absolute() else Path(ctx.suite_dir) / path
        if not path.is_file():
            raise ValueError(f"{check}: schema file {text!r} not found (looked for {path})")
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(loaded, dict):
            raise ValueError(f"{check}: schema file {text!r} does not hold a JSON Schema object")
        return loaded
    raise ValueError(f"{check} needs a schema (a mapping, JSON text or a file path), got {value!r}")


def schema_errors(instance: Any, schema: dict[str, Any]) -> list[str]:
    """Every violation as ``$.path: message``, the most relevant first; [] when valid.

    Raises ValueError when the schema itself is not a valid JSON Schema, so a typo in the
    suite reads as a suite problem and not as a model failure.
    """
    import jsonschema  # ~0.1 s of imports, paid only by a suite that validates against a schema

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    problem = schema_problem(schema)
    if problem:
        raise ValueError(problem)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    errors = list(validator.iter_errors(instance))
    if not errors:
        return []
    best = jsonschema.exceptions.best_match(errors)
    ordered = [best] + [e for e in errors if e is not best]
    return [f"{e.json_path}: {e.message}" for e in ordered]


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` is not a valid JSON Schema (by its ``$schema`` draft, 2020-12 by default), or None."""
    if not isinstance(schema, (dict, bool)):
        return f"a JSON Schema must be a mapping; {got(schema)}"
    import jsonschema

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)  # type: ignore[arg-type]  # a bare true/false is a valid schema too
    except jsonschema.exceptions.SchemaError as exc:
        where = exc.json_path if hasattr(exc, "json_path") else "$"
        return f"invalid JSON Schema at {where}: {exc.message}"
    return None


def _schema_reason(errors: list[str]) -> str:
    more = f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{errors[0]}{more}"


_SCHEMA_KEYWORDS = ("type", "properties", "$schema", "$ref", "items", "enum")


def _schema_arg(args: dict[str, Any]) -> Any:
    """The schema a json-schema check names: ``schema``/``value``, or its own keys written inline."""
    schema_arg = args.get("schema", args.get("value"))
    if schema_arg is None and any(k in args for k in _SCHEMA_KEYWORDS):
        schema_arg = {k: v for k, v in args.items() if k != "strict"}
    return schema_arg


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "problem", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _validate_json_schema(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    """The schema exists, reads, and is itself a valid JSON Schema."""
    args = spec.args
    problems = flag_problem(spec, "strict")
    if "schema" in args or "value" in args:
        problems += unknown_args(spec, ("schema", "value", "strict"))
        if "schema" in args and "value" in args:
            problems.append("give the schema as value or as schema, not both")
    schema_arg = _schema_arg(args)
    if schema_arg is None:
        return problems + [
            "needs a schema: a mapping (`value: {type: object, ...}`), JSON text, or a .json/.yaml file beside the suite"
        ]
    if has_template(schema_arg):
        return problems
    schema: Any
    if isinstance(schema_arg, dict):
        schema = schema_arg
    elif isinstance(schema_arg, str) and schema_arg.strip().startswith("{"):
        try:
            schema = json.loads(schema_arg.strip())
        except json.JSONDecodeError as exc:
            return problems + [f"the schema is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"]
    elif isinstance(schema_arg, str) and schema_arg.strip():
        text = schema_arg.strip()
        path, found = file_beside(text.removeprefix("file://"), suite_dir)
        if not found:
            return problems + [f"schema file {text!r} not found (looked for {path})"]
        try:
            schema = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            return problems + [f"cannot read schema file {text!r}: {_first_line(exc)}"]
        if not isinstance(schema, dict):
            return problems + [f"schema file {text!r} does not hold a JSON Schema object; {got(schema)}"]
    else:
        return problems + [f"the schema must be a mapping, JSON text or a file path; {got(schema_arg)}"]
    problem = schema_problem(schema)
    return problems + ([problem] if problem else [])


@register("json-schema", validate=_validate_json_schema)
def json_schema(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The JSON in the answer validates against a JSON Schema (inline, or a file beside the suite)."""
    schema = _load_schema(_schema_arg(spec.args), ctx, "json-schema")
    found, value, where = extract_json(completion.text, bool(spec.args.get("strict", False)))
    if not found:
        return False, f"json-schema: expected JSON; none parsed ({where}); {ctx.subject} was {_excerpt(completion.text)}"
    errors = schema_errors(value, schema)
    if errors:
        return False, f"json-schema: {_schema_reason(errors)}"
    return True, f"JSON in {_place(where, ctx.subject)} matches the schema"


_PATH_TOKEN = re.compile(r"\.?([^.\[\]\s]+)|\[\s*(-?\d+)\s*\]|\[\s*(['\"])(.*?)\3\s*\]")


def parse_path(path: str) -> list[str | int]:
    """``a.b[0].c``, ``$.a.b``, ``$['键'][1]`` into keys and indexes; ValueError on junk."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    parts: list[str | int] = []
    pos = 0
    while pos < len(text):
        match = _PATH_TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"cannot read JSON path {path!r} at {text[pos:]!r}")
        name, index, _, quoted = match.groups()
        parts.append(int(index) if index is not None else quoted if quoted is not None else name)
        pos = match.end()
    return parts


def _format_path(parts: list[str | int]) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}" if re.fullmatch(r"[\w-]+", p) else f"[{p!r}]"
    return out


def resolve_path(data: Any, parts: list[str | int]) -> tuple[bool, Any, str]:
    """Walk ``parts`` into ``data``: ``(found, value, why not)``."""
    current = data
    for i, part in enumerate(parts):
        here = _format_path(parts[:i])
        if isinstance(current, dict):
            if part not in current and str(part) not in current:
                keys = ", ".join(map(str, list(current)[:10])) or "none"
                return False, None, f"no key {str(part)!r} in {here} (keys: {keys})"
            current = current[part] if part in current else current[str(part)]
        elif isinstance(current, list):
            try:
                index = int(part)
            except ValueError:
                return False, None, f"{here} is an array; cannot take key {part!r}"
            if not -len(current) <= index < len(current):
                return False, None, f"index {index} out of range in {here} (length {len(current)})"
            current = current[index]
        else:
            return False, None, f"{here} is a {_kind(current)} ({_show(current)}); cannot go into it"
    return True, current, ""


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, ``1`` equals ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _field_verdict(data: Any, args: dict[str, Any]) -> tuple[bool, str]:
    """Judge one ``path`` with its ``equals`` / ``matches`` / ``contains`` / ``one_of`` conditions."""
    path_text = args.get("path", args.get("field"))
    if not path_text:
        raise ValueError("json-field needs a path, e.g. `path: user.name` or `path: $.items[0].id`")
    parts = parse_path(str(path_text))
    shown = _format_path(parts)
    exists, value, why = resolve_path(data, parts)
    if not exists:
        return False, f"json-field {shown}: {why}"
    passes: list[str] = []
    if "equals" in args or "value" in args:
        expected = args.get("equals", args.get("value"))
        if not _same(value, expected):
            return False, f"json-field {shown}: expected {_show(expected)}, got {_show(value)}"
        passes.append(f"equals {_show(expected)}")
    if "matches" in args:
        pattern = str(args["matches"])
        subject = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if not re.search(pattern, subject):
            return False, f"json-field {shown}: expected to match /{pattern}/, got {_show(value)}"
        passes.append(f"matches /{pattern}/")
    if "contains" in args:
        needle = args["contains"]
        if isinstance(value, str):
            ok = str(needle) in value
        elif isinstance(value, list):
            ok = any(_same(item, needle) for item in value)
        elif isinstance(value, dict):
            ok = str(needle) in value
        else:
            ok = False
        if not ok:
            return False, f"json-field {shown}: expected to contain {_show(needle)}, got {_show(value)}"
        passes.append(f"contains {_show(needle)}")
    if "one_of" in args or "one-of" in args:
        options = args.get("one_of", args.get("one-of"))
        if not isinstance(options, list):
            raise ValueError(f"json-field one_of needs a list, got {options!r}")
        if not any(_same(value, o) for o in options):
            return False, f"json-field {shown}: expected one of {_show(options)}, got {_show(value)}"
        passes.append(f"is one of {_show(options)}")
    if not passes:
        return True, f"json-field {shown} exists ({_show(value)})"
    return True, f"json-field {shown} {' and '.join(passes)}"


_FIELD_ARGS = ("path", "field", "equals", "value", "matches", "contains", "one_of", "one-of", "strict")
_FIELD_EXAMPLE = "`{type: json-field, path: user.name, equals: 张三}`"


def _path_problem(path: Any) -> str | None:
    if is_template(path):
        return None
    if not isinstance(path, (str, int)) or isinstance(path, bool) or not str(path).strip():
        return f"path must be a JSON path like user.tags[0]; {got(path)}"
    try:
        parse_path(str(path))
    except ValueError as exc:
        return str(exc)
    return None


def _condition_problems(condition: dict[str, Any]) -> list[str]:
    """One json-field condition: a readable path and comparators of the right kind."""
    problems = [
        f"unknown argument {key!r}{did_you_mean(key, _FIELD_ARGS)}; json-field takes {', '.join(_FIELD_ARGS)}"
        for key in condition
        if key not in _FIELD_ARGS
    ]
    if "path" in condition and "field" in condition:
        problems.append("give path or field, not both")
    path = condition.get("path", condition.get("field"))
    if path is None or path == "":
        problems.append(f"needs a path to the field, e.g. {_FIELD_EXAMPLE}")
    else:
        problem = _path_problem(path)
        if problem:
            problems.append(problem)
    if "equals" in condition and "value" in condition:
        problems.append("give equals or value, not both")
    if "matches" in condition:
        pattern = condition["matches"]
        if isinstance(pattern, (dict, list, bool)) or pattern is None:
            problems.append(f"matches must be a regular expression (text); {got(pattern)}")
        elif not is_template(pattern):
            try:
                re.compile(str(pattern))
            except re.error as exc:
                problems.append(f"matches: invalid regular expression /{pattern}/: {exc}")
    if "contains" in condition and condition["contains"] is None:
        problems.append("contains needs a value (the text, list item or key to look for)")
    for key in ("one_of", "one-of"):
        if key in condition and not isinstance(condition[key], list):
            problems.append(f"{key} must be a list of allowed values, e.g. `{key}: [a, b]`; {got(condition[key])}")
    if "one_of" in condition and "one-of" in condition:
        problems.append("give one_of or one-of, not both")
    return problems


def _validate_json_field(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    """Each condition has a path that parses and comparators of the right kind (see json_field's forms)."""
    args = dict(spec.args)
    problems = flag_problem(spec, "strict")
    if isinstance(args.get("value"), dict) and "path" not in args and "field" not in args:
        inner = args.pop("value")
        if "path" in inner or "field" in inner:
            return problems + _condition_problems({**args, **inner})
        problems += [f"unknown argument {key!r} beside a {{path: value}} mapping; json-field takes strict there" for key in args if key != "strict"]
        if not inner:
            problems.append(f"the mapping of paths to values is empty; give at least one path, e.g. {_FIELD_EXAMPLE}")
        for path in inner:
            problem = _path_problem(path)
            if problem:
                problems.append(problem)
        return problems
    return problems + _condition_problems(args)


@register("json-field", validate=_validate_json_field)
def json_field(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """A field of the JSON answer (path `a.b[0].c`) exists and equals / matches / contains / is one of a value."""
    args = dict(spec.args)
    conditions: list[dict[str, Any]]
    if isinstance(args.get("value"), dict) and "path" not in args and "field" not in args:
        inner = args.pop("value")
        if "path" in inner or "field" in inner:
            conditions = [{**args, **inner}]
        else:
            conditions = [{"path": path, "equals": expected} for path, expected in inner.items()]
    else:
        conditions = [args]
    found, data, where = extract_json(completion.text, bool(args.get("strict", False)))
    if not found:
        first = conditions[0].get("path", conditions[0].get("field")) if conditions else None
        path = _format_path(parse_path(str(first))) if first else "$"
        return False, f"json-field {path}: expected JSON; none parsed ({where}); {ctx.subject} was {_excerpt(completion.text)}"
    reasons = []
    for condition in conditions:
        ok, reason = _field_verdict(data, condition)
        if not ok:
            return False, reason
        reasons.append(reason)
    return True, "; ".join(reasons)


def _argument_diff(expected: Any, got: Any, partial: bool, path: str = "") -> str | None:
    """The first difference between expected and actual arguments, or None when they match."""
    where = path or "arguments"
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"{where}: expected an object, got {_show(got)}"
        for key, want in expected.items():
            sub = f"{path}.{key}" if path else str(key)
            if key not in got:
                return f"missing argument {sub} (expected {_show(want)})"
            diff = _argument_diff(want, got[key], partial, sub)
            if diff:
                return diff
        if not partial:
            for key in got:
                if key not in expected:
                    sub = f"{path}.{key}" if path else str(key)
                    return f"unexpected argument {sub}={_show(got[key])} (use partial: true to allow extra arguments)"
        return None
    if isinstance(expected, list) and isinstance(got, list):
        if partial:
            for want in expected:
                if not any(_argument_diff(want, item, True, "") is None for item in got):
                    return f"{where}: expected an item matching {_show(want)}, got {_show(got)}"
            return None
        if len(expected) != len(got):
            return f"{where}: expected {len(expected)} items, got {len(got)} ({_show(got)})"
        for i, (want, item) in enumerate(zip(expected, got)):
            diff = _argument_diff(want, item, partial, f"{where}[{i}]")
            if diff:
                return diff
        return None
    if not _same(expected, got):
        return f"{where}: expected {_show(expected)}, got {_show(got)}"
    return None


def declared_tool(ctx: CheckContext, name: str) -> tuple[bool, dict[str, Any] | None, list[str]]:
    """Look a function up in the job's ``tools``: ``(declared, parameters schema, all names)``."""
    tools = ctx.job.params.get("tools") or []
    names: list[str] = []
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            continue
        function = tool.get("function") or {}
        names.append(str(function.get("name")))
        if function.get("name") == name:
            return True, function.get("parameters"), names
    return False, None, names


def _describe_call(call: ToolCall) -> str:
    args = call.arguments if len(call.arguments) <= 60 else call.arguments[:59] + "…"
    return f"{call.name}({args})"


def _judge_call(call: ToolCall, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    try:
        arguments = call.parsed_arguments()
    except json.JSONDecodeError as exc:
        return False, f"tool-call {call.name}: arguments are not valid JSON ({exc.msg}): {call.arguments!r}"
    notes: list[str] = []
    if "arguments" in spec.args:
        partial = bool(spec.args.get("partial", False))
        diff = _argument_diff(spec.args["arguments"], arguments, partial)
        if diff:
            return False, f"tool-call {call.name}: {diff}"
        notes.append("arguments match" + (" (subset)" if partial else ""))
    if spec.args.get("validate", True) and ctx.job.params.get("tools") is not None:
        declared, schema, names = declared_tool(ctx, call.name)
        if not declared:
            listed = ", ".join(names) or "none"
            return False, f"tool-call: model called {call.name}, which the job does not declare (declared: {listed})"
        if isinstance(schema, dict):
            errors = schema_errors(arguments, schema)
            if errors:
                return False, f"tool-call {call.name}: arguments break the declared parameters schema: {_schema_reason(errors)}"
            notes.append("arguments valid against the declared schema")
    return True, f"model called {_describe_call(call)}" + (f"; {', '.join(notes)}" if notes else "")


_TOOL_CALL_ARGS = ("name", "value", "index", "arguments", "partial", "validate")


def declared_functions(tools: list[Any]) -> list[str]:
    """The function names a ``tools`` list declares."""
    names = []
    for tool in tools or []:
        if isinstance(tool, dict) and tool.get("type", "function") == "function" and isinstance(tool.get("function"), dict):
            name = tool["function"].get("name")
            if isinstance(name, str):
                names.append(name)
    return names


def _validate_tool_call(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    """Arguments of the right kind, and a name the case's tools declare: a model offered no
    such function can never make the call, so the check could only fail."""
    args = spec.args
    problems = unknown_args(spec, _TOOL_CALL_ARGS) + flag_problem(spec, "partial", "validate")
    if "name" in args and "value" in args:
        problems.append("give the function as name or as value, not both")
    name = args.get("name", args.get("value"))
    if name is not None and not is_template(name) and (not isinstance(name, str) or not name.strip()):
        problems.append(f"name must be a function name like get_weather; {got(name)}")
        name = None
    if "index" in args:
        problem = number_problem(args["index"], "index", whole=True, minimum=None, example="index: 0")
        if problem:
            problems.append(problem)
    if "arguments" in args and not isinstance(args["arguments"], dict):
        problems.append(f"arguments must be a mapping of argument names to values, e.g. `arguments: {{city: 北京}}`; {got(args['arguments'])}")
    checks_declared = args.get("validate", True) is not False and not spec.negate
    if isinstance(name, str) and not is_template(name) and checks_declared:
        names = declared_functions(tools or [])
        if name not in names:
            if names:
                problems.append(
                    f"names function {name!r}, which the case's tools do not declare (declared: {', '.join(names)})"
                    f"{did_you_mean(name, names)}; the model cannot call it"
                )
            else:
                problems.append(f"expects a call to {name!r}, but the case offers the model no functions; declare it under tools:")
    return problems


@register("tool-call", validate=_validate_tool_call, text_check=False)
def tool_call(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The model called the named function, with matching arguments valid against the tool's declared schema."""
    name = spec.args.get("name", spec.args.get("value"))
    calls = completion.tool_calls
    if "index" in spec.args:
        index = int(spec.args["index"])
        calls = calls[index : index + 1] if -len(calls) <= index < len(calls) else []
    wanted = str(name) if name else "a tool call"
    if not calls:
        return False, f"tool-call: expected {wanted}, model called no tool; answer was {_excerpt(completion.text)}"
    matching = [c for c in calls if not name or c.name == name]
    if not matching:
        called = ", ".join(c.name for c in calls)
        return False, f"tool-call: expected {wanted}, model called {called}"
    verdicts = [_judge_call(c, spec, ctx) for c in matching]
    for verdict in verdicts:
        if verdict[0]:
            return verdict
    return verdicts[0]


def _validate_no_tool_call(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    problems = unknown_args(spec, ("value",))
    if spec.args.get("value") not in (None, True):
        problems.append(f"no-tool-call takes no value; write `- no-tool-call`; {got(spec.args['value'])}")
    return problems


@register("no-tool-call", validate=_validate_no_tool_call, text_check=False)
def no_tool_call(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The model answered in text and called no function."""
    if not completion.tool_calls:
        return True, "no tool called"
    calls = ", ".join(_describe_call(c) for c in completion.tool_calls)
    return False, f"expected no tool call; model called {calls}"


FINISH_REASONS = ("stop", "length", "tool_calls", "sensitive", "network_error", "model_context_window_exceeded")


def _validate_finish_reason(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    problems = unknown_args(spec, ("value",))
    value = spec.args.get("value")
    if value is None:
        return problems + ["needs a value, e.g. `finish-reason: stop` (stop, length, tool_calls, sensitive, network_error)"]
    if isinstance(value, list) and not value:
        problems.append("the list of finish reasons is empty; give at least one, e.g. `finish-reason: [stop, length]`")
    for item in value if isinstance(value, list) else [value]:
        if is_template(item):
            continue
        if not isinstance(item, str) or item not in FINISH_REASONS:
            problems.append(
                f"finish reason must be one of {', '.join(FINISH_REASONS[:5])}; {got(item)}{did_you_mean(item, FINISH_REASONS)}"
            )
    return problems


@register("finish-reason", validate=_validate_finish_reason, text_check=False)
def finish_reason(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> tuple[bool, str]:
    """The call ended for the given reason (stop, length, tool_calls, sensitive, network_error)."""
    value = spec.args.get("value")
    if value is None:
        raise ValueError("finish-reason needs a value, e.g. `finish-reason: stop`")
    wanted = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    got = completion.finish_reason
    if got in wanted:
        return True, f"finish reason {got}"
    return False, f"finish reason: expected {' or '.join(wanted)}, got {got or 'none'}"
