"""The ``python`` check: suite-written Python decides, for what no built-in check covers.

``value`` is either an inline expression (or a function body with ``return``), evaluated with
the names ``output``, ``completion``, ``vars``, ``tool_calls``, ``job``, ``context``, ``json``
and ``re``; or ``path/to/file.py:function`` (relative to the suite's folder), called as
``function(output, context)`` with ``context = {vars, completion, job, tool_calls, suite_dir}``.

This runs the suite author's code with full Python rights, exactly like promptfoo's python
assertions or a pytest test: a suite is code, so only run suites you would run as code.
It returns a bool, a score in [0, 1], ``(bool or score, reason)``, ``{pass, score, reason}``
or a CheckResult.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from glmeval.checks.args import did_you_mean, file_beside, got, unknown_args
from glmeval.checks.context import CheckContext
from glmeval.checks.registry import register
from glmeval.records import CheckResult, CheckSpec, Completion

_FILE_REF = re.compile(r"^(?:file://)?(?P<path>[^\n]+?\.py):(?P<func>[A-Za-z_]\w*)$")
_modules: dict[tuple[str, float], ModuleType] = {}


def _short(source: str, limit: int = 60) -> str:
    text = " ".join(source.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tool_calls(completion: Completion) -> list[dict[str, Any]]:
    """Tool calls as plain dicts with arguments already parsed (the raw string if it is not JSON)."""
    out = []
    for call in completion.tool_calls:
        try:
            arguments: Any = call.parsed_arguments()
        except json.JSONDecodeError:
            arguments = call.arguments
        out.append({"name": call.name, "arguments": arguments, "id": call.id})
    return out


def _context(completion: Completion, ctx: CheckContext) -> dict[str, Any]:
    return {
        "vars": ctx.vars,
        "completion": completion,
        "job": ctx.job,
        "tool_calls": _tool_calls(completion),
        "suite_dir": Path(ctx.suite_dir),
    }


def _load_function(path_text: str, func: str, suite_dir: Path) -> Callable[..., Any]:
    """Import ``func`` from a .py file beside the suite, re-importing when the file changes."""
    path = Path(path_text)
    path = (path if path.is_absolute() else Path(suite_dir) / path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"python check file {path_text!r} not found (looked for {path})")
    key = (str(path), path.stat().st_mtime)
    module = _modules.get(key)
    if module is None:
        name = "glmeval_python_check_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _modules[key] = module
    fn = getattr(module, func, None)
    if not callable(fn):
        raise AttributeError(f"{path_text} has no function {func!r}")
    return fn


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> tuple[str, Any]:
    """Compile an inline check once per suite, not once per answer: an expression
    (``"eval"``), or else the text as the body of a function (``"exec"``)."""
    try:
        return "eval", compile(source.strip(), "<python check>", "eval")
    except SyntaxError:
        body = textwrap.indent(textwrap.dedent(source).strip("\n"), "    ")
        return "exec", compile(f"def __check__():\n{body}\n", "<python check>", "exec")


def _run_inline(source: str, names: dict[str, Any]) -> Any:
    """Evaluate an expression; failing that, run the text as the body of a function."""
    mode, code = _compiled(source)
    namespace = dict(names)
    if mode == "exec":
        exec(code, namespace)
        return namespace["__check__"]()
    return eval(code, namespace)


def _interpret(raw: Any, spec: CheckSpec, what: str) -> CheckResult:
    """Turn what the user's code returned into a result whose reason names the code."""
    if isinstance(raw, CheckResult):
        return raw
    if isinstance(raw, dict):
        if not any(k in raw for k in ("pass", "passed", "score")):
            raise ValueError(f"{what} returned a dict without 'pass' or 'score': {raw!r}")
        score_value = raw.get("score")
        passed_value = raw.get("pass", raw.get("passed"))
        score = None if score_value is None else max(0.0, min(1.0, float(score_value)))
        threshold = spec.threshold if spec.threshold is not None else 0.5
        passed = bool(passed_value) if passed_value is not None else (score or 0.0) >= threshold
        score = (1.0 if passed else 0.0) if score is None else score
        reason = str(raw.get("reason") or f"{what} returned {'pass' if passed else 'fail'}")
        return CheckResult(spec.type, passed, score, reason)
    reason = ""
    if isinstance(raw, tuple) and len(raw) == 2:
        raw, reason = raw[0], str(raw[1])
    if raw is None:
        raise ValueError(f"{what} returned None; return a bool, a score, (bool, reason) or {{pass, score, reason}}")
    if isinstance(raw, bool):
        return CheckResult(spec.type, raw, 1.0 if raw else 0.0, reason or f"{what} returned {raw}")
    if isinstance(raw, (int, float)):
        score = max(0.0, min(1.0, float(raw)))
        threshold = spec.threshold if spec.threshold is not None else 0.5
        passed = score >= threshold
        default = f"{what} returned score {score:.2f} {'>=' if passed else '<'} threshold {threshold:g}"
        return CheckResult(spec.type, passed, score, reason or default)
    raise ValueError(
        f"{what} returned {type(raw).__name__} {raw!r:.60}; return a bool, a score, (bool, reason) or {{pass, score, reason}}"
    )


def _syntax_problem(exc: SyntaxError, where: str, line_offset: int = 0) -> str:
    line = (exc.lineno or 0) - line_offset
    at = f" (line {line})" if line > 0 else ""
    return f"{where} is not valid Python: {exc.msg}{at}"


def inline_problem(source: str) -> str | None:
    """Why inline check code does not compile, trying it the way it runs: an expression, else
    a function body; None when it compiles. Compiling runs nothing."""
    try:
        compile(source.strip(), "<python check>", "eval")
        return None
    except SyntaxError as exc:
        first = exc
    except (ValueError, TypeError) as exc:  # a NUL byte in the source
        return f"the code cannot be compiled ({exc})"
    body = textwrap.indent(textwrap.dedent(source).strip("\n"), "    ")
    try:
        compile(f"def __check__():\n{body}\n", "<python check>", "exec")
        return None
    except SyntaxError as exc:
        # A one-line expression is best explained by its own error; a body by the body's.
        if "\n" not in source.strip():
            return _syntax_problem(first, "the expression")
        return _syntax_problem(exc, "the code", line_offset=1)
    except (ValueError, TypeError) as exc:
        return f"the code cannot be compiled ({exc})"


_DEFINES_CACHE: dict[tuple[str, int, int], tuple[str | None, set[str], bool]] = {}


def _module_names(path: Path) -> tuple[str | None, set[str], bool]:
    """``(syntax problem, top-level names, has a star import)`` of a Python file, by parsing it
    (never importing it: a suite loads without running its code). Cached per file version."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    cached = _DEFINES_CACHE.get(key)
    if cached is not None:
        return cached
    names: set[str] = set()
    star = False
    problem: str | None = None
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as exc:
        problem = f"is not valid Python: {exc.msg} (line {exc.lineno})"
        tree = None
    except (ValueError, UnicodeDecodeError) as exc:
        problem = f"cannot be read as Python ({exc})"
        tree = None
    for node in tree.body if tree is not None else []:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    star = True
                names.add((alias.asname or alias.name).split(".")[0])
        else:
            # assignments, and names bound inside if/try/with at module level
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.add(sub.id)
                elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(sub.name)
                elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                    for alias in sub.names:
                        star = star or alias.name == "*"
                        names.add((alias.asname or alias.name).split(".")[0])
                elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id in ("globals", "setattr", "exec"):
                    star = True  # names made at run time: trust the file
    result = (problem, names, star)
    _DEFINES_CACHE[key] = result
    return result


def _validate_python(spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    """Inline code compiles; a ``file.py:function`` reference names a file that parses and defines it."""
    problems = unknown_args(spec, ("value", "code"))
    if "value" in spec.args and "code" in spec.args:
        problems.append("give the code as value or as code, not both")
    source = spec.args.get("value", spec.args.get("code"))
    if not isinstance(source, str) or not source.strip():
        return problems + [f"needs an expression (`python: \"'北京' in output\"`) or `path/to/file.py:function`; {got(source)}"]
    ref = _FILE_REF.match(source.strip())
    if ref is None:
        problem = inline_problem(source)
        return problems + ([problem] if problem else [])
    name, func = ref.group("path"), ref.group("func")
    path, found = file_beside(name, suite_dir)
    if not found:
        return problems + [f"python check file {name!r} not found (looked for {path})"]
    problem, names, star = _module_names(path)
    if problem:
        return problems + [f"{name} {problem}"]
    if func not in names and not star:
        defined = sorted(n for n in names if not n.startswith("_"))
        hint = did_you_mean(func, defined)
        return problems + [f"{name} defines no function {func!r}{hint}"]
    return problems


@register("python", validate=_validate_python)
def python(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> CheckResult:
    """Suite-written Python decides: an inline expression over `output`, or file.py:function."""
    source = spec.args.get("value", spec.args.get("code"))
    if not isinstance(source, str) or not source.strip():
        raise ValueError("python needs an expression or `path/to/file.py:function` as its value")
    context = _context(completion, ctx)
    ref = _FILE_REF.match(source.strip())
    if ref:
        what = f"python {ref.group('path')}:{ref.group('func')}"
        fn = _load_function(ref.group("path"), ref.group("func"), Path(ctx.suite_dir))
        call: Callable[[], Any] = lambda: fn(completion.text, context)  # noqa: E731
    else:
        what = f"python `{_short(source)}`"
        names = {
            "output": completion.text,
            "completion": completion,
            "vars": ctx.vars,
            "tool_calls": context["tool_calls"],
            "job": ctx.job,
            "context": context,
            "json": json,
            "re": re,
        }
        call = lambda: _run_inline(source, names)  # noqa: E731
    try:
        raw = call()
    except Exception as exc:
        return CheckResult(spec.type, False, 0.0, f"{what} raised {type(exc).__name__}: {exc}", error=True)
    return _interpret(raw, spec, what)
