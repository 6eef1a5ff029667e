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

import hashlib
import importlib.util
import json
import re
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from glmeval.checks import CheckContext, register
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


def _run_inline(source: str, names: dict[str, Any]) -> Any:
    """Evaluate an expression; failing that, run the text as the body of a function."""
    try:
        code = compile(source.strip(), "<python check>", "eval")
    except SyntaxError:
        body = textwrap.indent(textwrap.dedent(source).strip("\n"), "    ")
        namespace = dict(names)
        exec(compile(f"def __check__():\n{body}\n", "<python check>", "exec"), namespace)  # noqa: S102 - suite code, see module docstring
        return namespace["__check__"]()
    return eval(code, dict(names))  # noqa: S307 - suite code, see module docstring


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


@register("python")
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
    except Exception as exc:  # noqa: BLE001 - the user's code failing is reported, not raised
        return CheckResult(spec.type, False, 0.0, f"{what} raised {type(exc).__name__}: {exc}", error=True)
    return _interpret(raw, spec, what)
