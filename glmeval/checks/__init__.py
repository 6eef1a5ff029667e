"""The check registry: YAML check names mapped to small pure functions.

A check function takes ``(completion, spec, ctx)`` and returns a :class:`CheckResult`, a bool,
a float score in [0, 1], a ``(passed, reason)`` / ``(score, reason)`` tuple or a
``{pass, score, reason}`` dict; :func:`evaluate`
normalises that and applies the options every check shares (``not``, ``weight``, ``metric``,
``threshold``). Checks never open a connection: a model-graded check asks ``ctx.grader``, which
the runner provides, so judge calls share the client, cache, retries and rate limits.
"""

from __future__ import annotations

import sys
import types

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from glmeval.records import CheckResult, CheckSpec, Completion, Job


class Grader(Protocol):
    """What a model-graded check may ask of the runner."""

    def chat(self, model: str, messages: list[dict[str, Any]], **params: Any) -> Completion: ...

    def embed(self, model: str, texts: list[str]) -> list[list[float]]: ...


@dataclass
class CheckContext:
    """Everything a check may look at besides the answer itself.

    ``prices`` are the suite's overrides of :mod:`glmeval.prices` (``{model: {input, output}}``
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


@dataclass(frozen=True)
class CheckDef:
    name: str
    fn: CheckFn
    doc: str = ""
    needs_answer: bool = True
    graded: bool = False


REGISTRY: dict[str, CheckDef] = {}


def register(
    name: str, *aliases: str, needs_answer: bool = True, graded: bool = False
) -> Callable[[CheckFn], CheckFn]:
    """Register ``fn`` under ``name`` (and aliases). Later registrations replace earlier ones,
    so a suite's local checks can override a built-in on purpose."""

    def wrap(fn: CheckFn) -> CheckFn:
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        for key in (name, *aliases):
            REGISTRY[key] = CheckDef(key, fn, doc, needs_answer, graded)
        return fn

    return wrap


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
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break every run
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
        except Exception as exc:  # noqa: BLE001 - a failing check is a verdict, not a crash
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
        from glmeval.frames import checks_frame

        return checks_frame(db=db, run=run)


sys.modules[__name__].__class__ = _CallableModule
