"""Templating: the Jinja2 sandbox that renders suite messages and check arguments.

Templates render in Jinja2's sandbox with strict undefined variables: a suite is often copied
from someone else, and a template must not reach Python internals (``''.__class__.__mro__``)
or quietly render a missing variable as nothing. The sandbox also bounds what a template may
build (``{{ 'x' * 10**10 }}``), how many loop iterations it may run (nested loops that write
nothing included), how long a ``range()`` may be and how long a render may take, so a copied
suite cannot make ``validate`` spin or eat the memory (the ``MAX_TEMPLATE_*`` constants).

The loader compiles every template it can see (:func:`check_template`), so a syntax error
stops the load with its file and line; the planner renders them per case (:func:`render`).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import itertools
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, UndefinedError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS as DEFAULT_FILTERS
from jinja2.runtime import Context, Undefined, new_context
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from glmeval.records import CheckSpec
from glmeval.suite.content import part_templates
from glmeval.suite.problems import Problems
from glmeval.suite.yamlsrc import Origin

__all__ = [
    "MAX_TEMPLATE_ITERATIONS",
    "MAX_TEMPLATE_OUTPUT",
    "MAX_TEMPLATE_RANGE",
    "MAX_TEMPLATE_SECONDS",
    "UNTEMPLATED_CHECK_ARGS",
    "TemplateLimit",
    "TemplateProblem",
    "check_template",
    "compile_template",
    "content_templates",
    "has_template_markup",
    "render",
    "render_value",
    "renders_simply",
    "simple_names",
    "template_strings",
    "templated_check_args",
]

MAX_TEMPLATE_OUTPUT = 1_000_000
"""Characters one render may produce, and the longest value it may build on the way
(``'x' * n``, ``a + b``, ``a ~ b``, a ``{% set %}`` block, a macro's output): a message is text
for a model, and a megabyte is already far beyond any context window."""

MAX_TEMPLATE_ITERATIONS = 1_000_000
"""Loop iterations one render may run, every ``{% for %}`` counted, inner loops of nested
loops once per pass. An empty inner loop writes nothing, so only a count stops
``{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}``."""

MAX_TEMPLATE_RANGE = 100_000
"""The longest ``range()`` a template may make (Jinja2's own sandbox limit, said plainly)."""

MAX_TEMPLATE_SECONDS = 2.0
"""Wall-clock seconds one render may take, checked in every loop and every call: the last
guard against work neither count sees (a recursive macro, a filter over a huge list). A
plan renders thousands of templates in well under a millisecond each."""

_PRINTABLE = (str, int, float, bool, list, dict, tuple, dt.date, dt.datetime, dt.time, Markup, Undefined)


class TemplateProblem(Exception):
    """A template that cannot be compiled or rendered; ``str()`` says why in plain words."""


class TemplateLimit(TemplateProblem):
    """A render that went past one of the limits above; the same template is refused at once
    afterwards (see :func:`render`)."""


def _finalize(value: Any) -> Any:
    """Refuse to print functions, classes and other objects: their repr leaks internals."""
    if value is None or isinstance(value, _PRINTABLE):
        return value
    raise SecurityError(f"a template may print text, numbers, lists and mappings, not a {type(value).__name__}")


class _Budget:
    """What one render has spent: loop iterations against the count, time against the deadline."""

    __slots__ = ("deadline", "iterations")

    def __init__(self) -> None:
        self.iterations = 0
        self.deadline = time.monotonic() + MAX_TEMPLATE_SECONDS

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateLimit(
                f"the template took more than {MAX_TEMPLATE_SECONDS:g} s to render; make its loops or macros smaller"
            )


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("glmeval_template_budget", default=None)


def _too_long(what: str = "value") -> TemplateLimit:
    return TemplateLimit(f"a template may not build a {what} longer than {MAX_TEMPLATE_OUTPUT:,} characters")


_SHORT_LOOP = 64
"""A loop over a list this short is counted whole as it starts, and runs unwrapped: most
loops in a prompt are this short, and a generator per item would double their cost."""


def _counted(iterable: Any) -> Iterable[Any]:
    """What every ``{% for %}`` iterates (see :class:`_BoundedCodeGenerator`): a loop cannot
    stop early in Jinja2, so a sized iterable is counted whole before the first pass."""
    budget = _BUDGET.get() or _Budget()
    budget.check_time()
    size = len(iterable) if isinstance(iterable, (list, tuple, range, dict, str)) else None
    if size is not None:
        _spend(budget, size)
        if size <= _SHORT_LOOP:
            return iterable
        return _timed(iterable, budget)
    return _each_counted(iterable, budget)


def _spend(budget: _Budget, iterations: int) -> None:
    budget.iterations += iterations
    if budget.iterations > MAX_TEMPLATE_ITERATIONS:
        raise TemplateLimit(
            f"the template ran more than {MAX_TEMPLATE_ITERATIONS:,} loop iterations (nested loops multiply); loop over less"
        )


def _timed(sized: Any, budget: _Budget) -> Iterator[Any]:
    """The items of a counted iterable, with the clock checked every :data:`_SHORT_LOOP` of
    them (slices chained in C: a generator step per item would double a loop's cost)."""
    items = list(sized) if isinstance(sized, dict) else sized
    return itertools.chain.from_iterable(_slices(items, budget))


def _slices(items: Any, budget: _Budget) -> Iterator[Any]:
    for start in range(0, len(items), _SHORT_LOOP):
        budget.check_time()
        yield items[start : start + _SHORT_LOOP]


def _each_counted(iterable: Iterable[Any], budget: _Budget) -> Iterator[Any]:
    for n, item in enumerate(iterable):
        _spend(budget, 1)
        if not n & 7:
            budget.check_time()
        yield item


def _range(*args: int) -> range:
    """``range()`` that says plainly how long it may be."""
    made = range(*args)
    if len(made) > MAX_TEMPLATE_RANGE:
        raise TemplateLimit(f"range() in a template may have at most {MAX_TEMPLATE_RANGE:,} numbers; got {len(made):,}")
    return made


def _concat(parts: Iterable[str]) -> str:
    """Join a block's output (``{% set %}`` blocks, macros, filter blocks) within the size limit."""
    if isinstance(parts, list) and sum(map(len, parts)) > MAX_TEMPLATE_OUTPUT:
        raise _too_long("text")
    return "".join(parts)


def _checked(value: Any) -> Any:
    if isinstance(value, (str, list, tuple)) and len(value) > MAX_TEMPLATE_OUTPUT:
        raise _too_long()
    return value


_WIDTH = re.compile(r"%[-+ #0]*(\d+)?(?:\.(\d+))?|\{[^{}]*?:[^{}]*?(\d+)(?:\.(\d+))?[^{}]*\}")


def _check_widths(fmt: Any) -> None:
    """Refuse ``'%999999999d' % 1`` and ``'{:>999999999}'.format(1)`` before they allocate."""
    if isinstance(fmt, str) and ("%" in fmt or "{" in fmt):
        for match in _WIDTH.finditer(fmt):
            if any(g and int(g) > MAX_TEMPLATE_OUTPUT for g in match.groups()):
                raise _too_long("formatted value")


def _width_filter(name: str, position: int) -> Callable[..., Any]:
    """A built-in filter whose ``position``-th argument is a width, refused past the size limit."""
    inner = DEFAULT_FILTERS[name]

    @functools.wraps(inner)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        width = kwargs.get("width", args[position] if len(args) > position else None)
        if isinstance(width, int) and width > MAX_TEMPLATE_OUTPUT:
            raise _too_long()
        return _checked(inner(*args, **kwargs))

    return bounded


def _format_filter(value: Any, *args: Any, **kwargs: Any) -> str:
    _check_widths(value)
    return _checked(DEFAULT_FILTERS["format"](value, *args, **kwargs))


_COUNTED = "glmeval counted"


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles every ``{% for %}`` over :func:`_counted` and every ``~`` through the size
    check, so the limits hold in code paths the sandbox's hooks never see (an empty loop body
    makes no call and writes nothing)."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        # A filter, not a call: filters skip the sandbox's per-call checks. Its name has a
        # space, so no template can name it.
        for loop in node.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _COUNTED, [], [], None, None, lineno=loop.lineno)
        super().visit_Template(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked(")
        super().visit_Concat(node, frame)
        self.write(")")


class _Sandbox(SandboxedEnvironment):
    """The sandbox with the limits above: values built by ``*``, ``+``, ``%`` and ``~``, numbers
    built by ``**``, loop iterations, ``range()``, block output and time."""

    intercepted_binops = frozenset(["*", "**", "+", "%"])
    code_generator_class = _BoundedCodeGenerator
    concat = staticmethod(_concat)
    checked = staticmethod(_checked)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _range
        self.filters[_COUNTED] = _counted
        self.filters.update(
            center=_width_filter("center", 1), indent=_width_filter("indent", 1), format=_format_filter,
            wordwrap=_width_filter("wordwrap", 2), truncate=_width_filter("truncate", 1),
        )

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_TEMPLATE_OUTPUT:
                    raise _too_long()
        elif operator == "**" and isinstance(right, (int, float)) and isinstance(left, (int, float)):
            if abs(right) > 10_000 or (abs(left) > 1 and abs(right) * math.log10(abs(left)) > 10_000):
                raise TemplateLimit("a template may not compute numbers that large")
        elif operator == "%":
            _check_widths(left)
        return _checked(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _BUDGET.get()
        if budget is not None:
            budget.check_time()
        return _checked(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_widths(value.__self__)
        return wrapped


_env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, finalize=_finalize)
_UNDEFINED_NAME = re.compile(r"^'([^']+)' is undefined$")


def has_template_markup(text: str) -> bool:
    """Whether Jinja2 would treat the text as more than a literal (``{{``, ``{%`` or ``{#``)."""
    return "{{" in text or "{%" in text or "{#" in text


@functools.lru_cache(maxsize=4096)
def _compile(text: str) -> Template:
    return _env.from_string(text)


@functools.lru_cache(maxsize=4096)
def _flat_globals(compiled: Template) -> dict[str, Any]:
    """A template's globals as one plain dict. Jinja2 keeps them as a ChainMap and copies it
    item by item on every render; a plan renders each template once per case."""
    return dict(compiled.globals)


def _context(compiled: Template, variables: dict[str, Any]) -> Context:
    """What ``compiled.new_context(variables)`` makes (the globals under the variables), built
    from the flat globals: a third of the cost of a short render."""
    flat = _flat_globals(compiled)
    return new_context(_env, compiled.name, compiled.blocks, {**flat, **variables}, True, flat)


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


_OVER_LIMIT: OrderedDict[str, str] = OrderedDict()
"""Templates that went past a limit, with the message: a suite-level message renders once per
case, and a template that ran for the whole time limit must not run again for each of
thousands of cases before ``validate`` can say so."""
_OVER_LIMIT_KEPT = 256


_OUTPUT_BATCH = 64


_MISSING = object()
_SIMPLE_VALUES = (str, int, float)
# Names the compiler gives a meaning of its own, whatever the variables hold.
_SPECIAL_NAMES = frozenset({"self", "loop", "varargs", "kwargs", "caller", "super"})


@functools.lru_cache(maxsize=4096)
def _simple_parts(text: str) -> tuple[tuple[bool, str], ...] | None:
    """A template of only text and ``{{ name }}`` as ``(is_name, text)`` parts; None for any
    other. Most prompts are this, and a plan renders each once per case."""
    try:
        tree = _env.parse(text)
    except (TemplateError, RecursionError, MemoryError, ValueError, OverflowError):
        return None
    if len(tree.body) != 1 or type(tree.body[0]) is not nodes.Output:
        return None
    parts: list[tuple[bool, str]] = []
    for node in tree.body[0].nodes:
        if type(node) is nodes.TemplateData:
            parts.append((False, node.data))
        elif type(node) is nodes.Name and node.ctx == "load" and node.name not in _SPECIAL_NAMES:
            parts.append((True, node.name))
        else:
            return None
    return tuple(parts)


def _render_simple(parts: tuple[tuple[bool, str], ...], variables: dict[str, Any]) -> str | None:
    """What the engine would write for a simple template whose names all hold text or
    numbers; None for anything else (a missing name, None, a list...): the engine renders
    those, with its own words for a problem."""
    out: list[str] = []
    for is_name, text in parts:
        if not is_name:
            out.append(text)
            continue
        value = variables.get(text, _MISSING)
        kind = type(value)
        if kind is str:
            out.append(value)
        elif kind in _SIMPLE_VALUES:
            out.append(str(value))
        else:
            return None
    result = "".join(out)
    return result if len(result) <= MAX_TEMPLATE_OUTPUT else None


def simple_names(text: str) -> tuple[tuple[bool, str], ...] | None:
    """The parts of a template :func:`render` writes without the engine (see
    :func:`renders_simply`); ``()`` for plain text, None for a template the engine renders."""
    if not has_template_markup(text):
        return ()
    try:
        compile_template(text)
    except TemplateProblem:
        return None
    return _simple_parts(text)


def renders_simply(parts: tuple[tuple[bool, str], ...], variables: dict[str, Any]) -> bool:
    """Whether :func:`render` writes these parts without the engine, so it cannot fail: a
    validating pass over 100,000 cases need not build the text to know that."""
    size = 0
    for is_name, text in parts:
        if not is_name:
            size += len(text)
            continue
        value = variables.get(text, _MISSING)
        kind = type(value)
        if kind is str:
            size += len(value)
        elif kind in _SIMPLE_VALUES:
            size += len(str(value))
        else:
            return False
    return size <= MAX_TEMPLATE_OUTPUT


def render(template: str, variables: dict[str, Any]) -> str:
    """Render one template string within the limits; plain text skips the engine, and so does
    a template of text and ``{{ name }}`` whose names hold text or numbers. Problems become
    TemplateProblem (TemplateLimit for a limit)."""
    compiled = compile_template(template)
    if compiled is None:
        return template
    parts = _simple_parts(template)
    if parts is not None:
        simple = _render_simple(parts, variables)
        if simple is not None:
            return simple
    known = _OVER_LIMIT.get(template)
    if known is not None:
        raise TemplateLimit(known)
    token = _BUDGET.set(_Budget())
    try:
        return _render(compiled, variables)
    except TemplateLimit as exc:
        _OVER_LIMIT[template] = str(exc)
        while len(_OVER_LIMIT) > _OVER_LIMIT_KEPT:
            _OVER_LIMIT.popitem(last=False)
        raise
    finally:
        _BUDGET.reset(token)


def _render(compiled: Template, variables: dict[str, Any]) -> str:
    try:
        # The chunks are measured as they come, a batch at a time (Template.render would
        # join them all first; one at a time in Python would double a loop's cost). The root
        # function directly: Template.generate only adds traceback rewriting.
        chunks = compiled.root_render_func(_context(compiled, variables))
        out: list[str] = []
        size = 0
        while True:
            batch = list(itertools.islice(chunks, _OUTPUT_BATCH))
            size += sum(map(len, batch))
            if size > MAX_TEMPLATE_OUTPUT:
                raise TemplateLimit(f"the template wrote more than {MAX_TEMPLATE_OUTPUT:,} characters; write less")
            out += batch
            if len(batch) < _OUTPUT_BATCH:
                return "".join(out)
    except TemplateProblem:
        raise
    except SecurityError as exc:
        raise TemplateProblem(f"the template tried something the sandbox forbids: {exc}") from None
    except UndefinedError as exc:
        raise TemplateProblem(_undefined_text(str(exc.message or exc), variables)) from None
    except TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}") from None
    except RecursionError:
        raise TemplateProblem("template error: recursion too deep") from None
    except MemoryError:
        raise TemplateLimit("the template needed more memory than there is; build smaller values") from None
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
