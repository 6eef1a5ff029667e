"""Templating: the Jinja2 sandbox that renders suite messages and check arguments.

Templates render in Jinja2's sandbox with strict undefined variables: a suite is often copied
from someone else, and a template must not reach Python internals (``''.__class__.__mro__``)
or quietly render a missing variable as nothing. The sandbox also bounds what a template may
build (``{{ 'x' * 10**10 }}``), so rendering stays quick and small.

The loader compiles every template it can see (:func:`check_template`), so a syntax error
stops the load with its file and line; the planner renders them per case (:func:`render`).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.runtime import Undefined
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from glmeval.records import CheckSpec
from glmeval.suite.content import part_templates
from glmeval.suite.problems import Problems
from glmeval.suite.yamlsrc import Origin

__all__ = [
    "MAX_TEMPLATE_OUTPUT",
    "UNTEMPLATED_CHECK_ARGS",
    "TemplateProblem",
    "check_template",
    "compile_template",
    "content_templates",
    "has_template_markup",
    "render",
    "render_value",
    "template_strings",
    "templated_check_args",
]

MAX_TEMPLATE_OUTPUT = 1_000_000
_PRINTABLE = (str, int, float, bool, list, dict, tuple, dt.date, dt.datetime, dt.time, Markup, Undefined)


class TemplateProblem(Exception):
    """A template that cannot be compiled or rendered; ``str()`` says why in plain words."""


def _finalize(value: Any) -> Any:
    """Refuse to print functions, classes and other objects: their repr leaks internals."""
    if value is None or isinstance(value, _PRINTABLE):
        return value
    raise SecurityError(f"a template may print text, numbers, lists and mappings, not a {type(value).__name__}")


class _Sandbox(SandboxedEnvironment):
    """The sandbox, plus limits on ``*`` and ``**`` so ``{{ 'x' * 10**10 }}`` cannot eat the memory."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_TEMPLATE_OUTPUT:
                    raise SecurityError(f"a template may not build a value longer than {MAX_TEMPLATE_OUTPUT:,}")
        if operator == "**" and isinstance(right, (int, float)) and isinstance(left, (int, float)):
            if abs(right) > 10_000 or (abs(left) > 1 and abs(right) * math.log10(abs(left)) > 10_000):
                raise SecurityError("a template may not compute numbers that large")
        return super().call_binop(context, operator, left, right)


_env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, finalize=_finalize)
_UNDEFINED_NAME = re.compile(r"^'([^']+)' is undefined$")


def has_template_markup(text: str) -> bool:
    """Whether Jinja2 would treat the text as more than a literal (``{{``, ``{%`` or ``{#``)."""
    return "{{" in text or "{%" in text or "{#" in text


@functools.lru_cache(maxsize=4096)
def _compile(text: str) -> Template:
    return _env.from_string(text)


def compile_template(text: str) -> Template | None:
    """The compiled template, or None for plain text; syntax errors become TemplateProblem."""
    if not has_template_markup(text):
        return None
    try:
        return _compile(text)
    except TemplateSyntaxError as exc:
        where = f" (template line {exc.lineno})" if "\n" in text.strip() and exc.lineno else ""
        raise TemplateProblem(
            f"template syntax error: {exc.message}{where}; to send {{{{ or {{% literally, write {{{{ '{{{{' }}}}, "
            "wrap the text in {% raw %}...{% endraw %}, or set template: false"
        ) from None
    except (TemplateError, RecursionError, MemoryError, ValueError, OverflowError) as exc:
        raise TemplateProblem(f"template error: {exc}") from None


def render(template: str, variables: dict[str, Any]) -> str:
    """Render one template string; plain text skips the engine. Problems become TemplateProblem."""
    compiled = compile_template(template)
    if compiled is None:
        return template
    try:
        return compiled.render(variables)
    except SecurityError as exc:
        raise TemplateProblem(f"the template tried something the sandbox forbids: {exc}") from None
    except UndefinedError as exc:
        raise TemplateProblem(_undefined_text(str(exc.message or exc), variables)) from None
    except TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}") from None
    except RecursionError:
        raise TemplateProblem("template error: recursion too deep") from None
    except Exception as exc:
        raise TemplateProblem(f"template error: {type(exc).__name__}: {exc}") from None


def _undefined_text(message: str, variables: dict[str, Any]) -> str:
    names = sorted(str(k) for k in variables)
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    defined = f"; defined here: {shown}" if names else "; no variables are defined here"
    match = _UNDEFINED_NAME.match(message)
    if match:
        return f"undefined variable {match.group(1)!r}{defined}"
    return f"undefined value: {message}{defined}"



def render_value(value: Any, variables: dict[str, Any]) -> Any:
    """Every string inside plain data rendered as a template."""
    if isinstance(value, str):
        return render(value, variables)
    if isinstance(value, list):
        return [render_value(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: render_value(v, variables) for k, v in value.items()}
    return value


def check_template(text: str, origin: Origin, problems: Problems, what: str) -> None:
    """Compile one template at load time, so a syntax error names its file and line."""
    try:
        compile_template(text)
    except TemplateProblem as exc:
        problems.error(origin, f"{what}: {exc}")


def template_strings(value: Any) -> list[str]:
    """Every string inside plain data (a check argument may nest lists and mappings)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in template_strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in template_strings(v)]
    return []


def content_templates(content: Any) -> list[str]:
    """The template texts of a message content: the text, or each part's text, image path or URL."""
    return part_templates(content)


# Check arguments that are not Jinja2 templates of the case variables: code, and templates
# that another stage renders with its own variables.
UNTEMPLATED_CHECK_ARGS: dict[str, tuple[str, ...] | None] = {"python": None, "llm-rubric": ("prompt",)}


def templated_check_args(spec: CheckSpec) -> list[str]:
    """Names of a check's arguments whose strings are rendered as templates."""
    skip = UNTEMPLATED_CHECK_ARGS.get(spec.type, ())
    if skip is None:
        return []
    return [k for k in spec.args if k not in skip]
