"""The check registry: YAML check names mapped to small pure functions.

A check function takes ``(completion, spec, ctx)`` and returns a :class:`CheckResult`, a bool,
a float score in [0, 1], a ``(passed, reason)`` / ``(score, reason)`` tuple or a
``{pass, score, reason}`` dict; :func:`evaluate`
normalises that and applies the options every check shares (``not``, ``weight``, ``metric``,
``threshold``). Checks never open a connection: a model-graded check asks ``ctx.grader``, which
the runner provides, so judge calls share the client, cache, retries and rate limits.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from glmeval.records import CheckResult, CheckSpec, Completion, Job


class Grader(Protocol):
    """What a model-graded check may ask of the runner."""

    def chat(self, model: str, messages: list[dict[str, Any]], **params: Any) -> Completion: ...

    def embed(self, model: str, texts: list[str]) -> list[list[float]]: ...


@dataclass
class CheckContext:
    """Everything a check may look at besides the answer itself.

    ``prices`` are the suite's overrides of :mod:`glmeval.catalogue.prices` (``{model: {input, output}}``
    or ``{model: [input, output]}``, yuan per 1M tokens). ``cost`` is the answer's own cost as the runner computed it. Model-graded checks leave it
    alone and append each judge or embedding call to ``grader_usage`` as ``{check, kind, model,
    prompt_tokens, completion_tokens, cost}``, so the runner can count grading spend apart.
    Use one context per job.
    """

    job: Job
    suite_dir: Path = field(default_factory=Path.cwd)
    prices: dict[str, Any] | None = None
    grader: Grader | None = None
    judge_model: str = "glm-4"
    embedding_model: str = "embedding-3"
    cost: float = 0.0
    grader_usage: list[dict[str, Any]] = field(default_factory=list)

    @property
    def vars(self) -> dict[str, Any]:
        return self.job.vars


CheckFn = Callable[[Completion, CheckSpec, CheckContext], Any]

# A check type's argument validator: ``(spec, suite_dir, tools) -> problems``. It runs when a
# suite loads, before anything is sent, and must be pure and quick (no network, no user code
# run). ``tools`` are the tools the check's case may offer the model (every variant's, merged),
# ``[]`` when the suite declares none, or ``None`` when that is unknown. Each problem is a short
# sentence without file or line; the suite loader prefixes ``file:line: check <type>:``.
Validator = Callable[[CheckSpec, Path, "list[Any] | None"], list[str]]


@dataclass(frozen=True)
class CheckDef:
    name: str
    fn: CheckFn
    doc: str = ""
    needs_answer: bool = True
    graded: bool = False
    validate: Validator | None = None


REGISTRY: dict[str, CheckDef] = {}
_PENDING_VALIDATORS: dict[str, Validator] = {}


def register(
    name: str, *aliases: str, needs_answer: bool = True, graded: bool = False, validate: Validator | None = None
) -> Callable[[CheckFn], CheckFn]:
    """Register ``fn`` under ``name`` (and aliases). Later registrations replace earlier ones,
    so a suite's local checks can override a built-in on purpose (and do not inherit its
    argument validator). ``validate`` checks the arguments when a suite loads; see
    :data:`Validator` and :func:`validator`."""

    def wrap(fn: CheckFn) -> CheckFn:
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        for key in (name, *aliases):
            check_validator = validate or _PENDING_VALIDATORS.pop(key, None)
            REGISTRY[key] = CheckDef(key, fn, doc, needs_answer, graded, check_validator)
        return fn

    return wrap


def validator(name: str, *aliases: str) -> Callable[[Validator], Validator]:
    """Decorator form: ``@validator("polite")`` attaches an argument validator to a check type,
    whether it is registered before or after (the next registration of that name takes it)."""

    def wrap(fn: Validator) -> Validator:
        for key in (name, *aliases):
            definition = REGISTRY.get(key)
            if definition is None:
                _PENDING_VALIDATORS[key] = fn
            else:
                REGISTRY[key] = dataclasses.replace(definition, validate=fn)
        return fn

    return wrap


def file_beside(name: str, suite_dir: str | Path) -> tuple[Path, bool]:
    """A file a check names, relative to the suite unless absolute, and whether it exists
    (a name the OS cannot even look up counts as missing)."""
    path = Path(name)
    path = path if path.is_absolute() else Path(suite_dir) / path
    try:
        return path, path.is_file()
    except (OSError, ValueError):
        return path, False


def validate_check(spec: CheckSpec, suite_dir: str | Path | None = None, tools: list[Any] | None = None) -> list[str]:
    """The problems with one check's arguments, by its type's validator ([] when it has none).

    A validator that crashes is reported as a problem of its own rather than stopping the load
    with a traceback."""
    definition = load_builtin().get(spec.type)
    if definition is None or definition.validate is None:
        return []
    try:
        problems = definition.validate(spec, Path(suite_dir) if suite_dir is not None else Path.cwd(), tools)
    except Exception as exc:
        return [f"cannot check its arguments ({type(exc).__name__}: {exc})"]
    return [str(p) for p in problems or []]


# --------------------------------------------------------------------------------------------
# Small helpers validators share (plugins may use them too).


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


def got(value: Any) -> str:
    """``got str 'abc'``: what the suite gave, for a problem sentence."""
    text = repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"got {type(value).__name__} {text}"


def did_you_mean(word: Any, options: Any) -> str:
    """`` (did you mean 'value'?)`` for a near miss among ``options``, else ''."""
    import difflib

    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


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


BUILTIN_MODULES: tuple[str, ...] = ("text", "structured", "metrics", "custom", "graded")
_loaded = False
_loading = False
_load_lock = threading.RLock()


def load_builtin() -> dict[str, CheckDef]:
    """Import the built-in check modules and entry-point plugins once.

    Guarded by a lock because the runner's worker threads may be the first to ask, and none
    of them may see a half-filled registry.
    """
    global _loaded, _loading
    if _loaded:
        return REGISTRY
    with _load_lock:
        if _loaded or _loading:
            return REGISTRY
        _loading = True
        try:
            import importlib

            for mod in BUILTIN_MODULES:
                try:
                    importlib.import_module(f"glmeval.checks.{mod}")
                except ModuleNotFoundError as exc:
                    if exc.name != f"glmeval.checks.{mod}":
                        raise
            _load_entry_points()
            _loaded = True
        finally:
            _loading = False
    return REGISTRY


def _register_object(name: str, obj: Any, replace: bool) -> list[str]:
    """Register what a plugin exposes: a check function, or a ``{name: fn}`` mapping."""
    added: list[str] = []
    if isinstance(obj, dict):
        for key, fn in obj.items():
            if callable(fn) and (replace or key not in REGISTRY):
                register(str(key))(fn)
                added.append(str(key))
    elif callable(obj) and not isinstance(obj, type) and (replace or name not in REGISTRY):
        register(name)(obj)
        added.append(name)
    return added


def _load_entry_points() -> list[str]:
    """Load plugins from the ``glmeval.checks`` entry-point group.

    An entry point may name a check function (registered under the entry point's name), a
    ``{name: fn}`` dict, or a module whose functions use ``@register`` (importing it is
    enough). Plugins never replace a built-in of the same name; a plugin that fails to import
    is reported as a warning so one broken package does not stop every run.
    """
    import warnings
    from importlib.metadata import entry_points

    added: list[str] = []
    for ep in entry_points(group="glmeval.checks"):
        before = dict(REGISTRY)
        try:
            obj = ep.load()
        except Exception as exc:
            warnings.warn(f"glmeval.checks plugin {ep.name!r} ({ep.value}) failed to load: {exc}", stacklevel=2)
            continue
        added += _register_object(ep.name, obj, replace=False)
        for key, definition in before.items():
            if REGISTRY.get(key) is not definition:
                REGISTRY[key] = definition
                warnings.warn(f"glmeval.checks plugin {ep.name!r} tried to replace check {key!r}; kept the existing one", stacklevel=2)
        added += [k for k, v in REGISTRY.items() if before.get(k) is not v and k not in added]
    return added


def load_local_checks(path: str | Path) -> list[str]:
    """Import a suite's local Python file of checks and return the names it registered.

    Functions decorated with ``@glmeval.checks.register("name")`` register themselves on import;
    a module-level ``CHECKS = {"name": fn}`` dict is registered too. Local checks load after the
    built-ins and may replace one of the same name on purpose.
    """
    import hashlib
    import importlib.util
    import sys

    load_builtin()
    file = Path(path).resolve()
    if not file.is_file():
        raise FileNotFoundError(f"local checks file {str(path)!r} not found (looked for {file})")
    module_name = "glmeval_local_checks_" + hashlib.sha1(str(file).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {file} as a Python module")
    module = importlib.util.module_from_spec(spec)
    before = dict(REGISTRY)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    added = [k for k, v in REGISTRY.items() if before.get(k) is not v]
    checks = getattr(module, "CHECKS", None)
    if isinstance(checks, dict):
        added += [k for k in _register_object("", checks, replace=True) if k not in added]
    return added


def known_types() -> list[str]:
    return sorted(load_builtin())


def unknown_type_message(name: str) -> str:
    """``unknown check type 'contain'; did you mean 'contains'?`` for suite errors and results."""
    import difflib

    close = difflib.get_close_matches(name, known_types(), n=3, cutoff=0.6)
    quoted = [repr(c) for c in close]
    options = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    hint = f"; did you mean {options}?" if close else "; run `glmeval checks` to list them"
    return f"unknown check type {name!r}{hint}"


def _normalise(raw: Any, spec: CheckSpec) -> CheckResult:
    if isinstance(raw, CheckResult):
        return raw
    reason = ""
    if isinstance(raw, tuple):
        raw, reason = raw[0], str(raw[1]) if len(raw) > 1 else ""
    if isinstance(raw, bool):
        return CheckResult(spec.type, raw, 1.0 if raw else 0.0, reason or ("passed" if raw else "failed"))
    if isinstance(raw, (int, float)):
        score = max(0.0, min(1.0, float(raw)))
        threshold = spec.threshold if spec.threshold is not None else 0.5
        passed = score >= threshold
        return CheckResult(
            spec.type, passed, score, reason or f"score {score:.2f} {'>=' if passed else '<'} threshold {threshold:g}"
        )
    if isinstance(raw, dict):
        passed = bool(raw.get("pass", raw.get("passed", False)))
        score = raw.get("score")
        score = (1.0 if passed else 0.0) if score is None else max(0.0, min(1.0, float(score)))
        return CheckResult(spec.type, passed, score, str(raw.get("reason", "")) or ("passed" if passed else "failed"))
    raise TypeError(
        f"check {spec.type!r} returned {type(raw).__name__}; expected bool, a score, (bool, reason), "
        "{pass, score, reason} or a CheckResult"
    )


def evaluate(completion: Completion, spec: CheckSpec, ctx: CheckContext) -> CheckResult:
    """Run one check and apply ``not``, ``threshold``, ``weight`` and ``metric``.

    Order: the check runs; a ``threshold`` then decides pass/fail from the score (so
    ``threshold: 0.6`` on a similarity makes 0.62 pass, and on a plain check 1/0 decides as
    before); ``not`` then flips the verdict and the score. A check that raises, or that had no
    answer to look at, is an error: it fails, and ``not`` does not turn it into a pass.
    """
    registry = load_builtin()
    definition = registry.get(spec.type)
    if definition is None:
        result = CheckResult(spec.type, False, 0.0, unknown_type_message(spec.type), error=True)
    elif definition.needs_answer and completion.error is not None:
        result = CheckResult(spec.type, False, 0.0, f"no answer to check: {completion.error}", error=True)
    else:
        try:
            result = _normalise(definition.fn(completion, spec, ctx), spec)
            if spec.threshold is not None and not result.error:
                passed = result.score >= spec.threshold
                if passed != result.passed:
                    sign = ">=" if passed else "<"
                    result.reason = f"{result.reason}; score {result.score:.2f} {sign} threshold {spec.threshold:g}"
                result.passed = passed
        except Exception as exc:
            result = CheckResult(spec.type, False, 0.0, f"check raised {type(exc).__name__}: {exc}", error=True)
    if spec.negate and not result.error:
        result.passed = not result.passed
        result.score = 1.0 - result.score
        if result.passed:
            result.reason = f"not {spec.type}: the check failed, as required ({result.reason})"
        else:
            result.reason = f"not {spec.type}: expected the check to fail, but it passed ({result.reason})"
    result.type = spec.type
    result.weight = spec.weight
    result.metric = spec.metric
    result.label = spec.label()
    return result


def evaluate_all(
    completion: Completion, specs: list[CheckSpec], ctx: CheckContext, min_score: float | None = None
) -> tuple[list[CheckResult], bool, float]:
    """All checks of a job, then the job's verdict.

    The job passes when every check passes, or, when the case sets ``min-score``, when the
    weighted mean score reaches it. An error (no answer) never passes. With no checks at all
    an answer passes with score 1.
    """
    results = [evaluate(completion, spec, ctx) for spec in specs]
    total_weight = sum(r.weight for r in results)
    score = sum(r.score * r.weight for r in results) / total_weight if total_weight else 1.0
    if completion.error is not None:
        return results, False, 0.0
    passed = score >= min_score if min_score is not None else all(r.passed for r in results)
    return results, passed, score


class _CallableModule(types.ModuleType):
    """Lets ``glmeval.checks(db=..., run=...)`` return the check-results frame while
    ``glmeval.checks`` stays the registry package (a submodule import would otherwise
    replace a function of that name on the package)."""

    def __call__(self, db: Any = None, run: str | None = None) -> Any:
        from glmeval.analysis.frames import checks_frame

        return checks_frame(db=db, run=run)


sys.modules[__name__].__class__ = _CallableModule
