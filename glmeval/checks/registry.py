"""Check registries: YAML check names mapped to check functions, one layered registry per suite.

Three layers resolve a name, nearest first: the suite's own ``check-files:``, then entry-point
plugins and the built-ins (one process-wide layer, :data:`BUILTIN`). A suite's registry is a
child of the built-in layer, so what one suite's check file defines (even a replacement for
``contains``) is visible to that suite alone, however many suites one process loads.

``@register`` writes to the registry being filled: a suite's while its check file is being
imported, else the built-in layer (built-in modules and plugins register on import).
"""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import importlib.util
import sys
import warnings
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glmeval.hints import closest
from glmeval.records import CheckSpec, Completion

if TYPE_CHECKING:
    from glmeval.checks.evaluate import CheckContext

CheckFn = Callable[[Completion, CheckSpec, "CheckContext"], Any]

# A check type's argument validator: ``(spec, suite_dir, tools) -> problems``. It runs when a
# suite loads, before anything is sent, and must be pure and quick (no network, no user code
# run). ``tools`` are the tools the check's case may offer the model (every variant's, merged),
# ``[]`` when the suite declares none, or ``None`` when that is unknown. Each problem is a short
# sentence without file or line; the suite loader prefixes ``file:line: check <type>:``.
Validator = Callable[[CheckSpec, Path, "list[Any] | None"], list[str]]


@dataclass(frozen=True)
class CheckDef:
    """A registered check type. ``text_check``: it judges ``completion.text``, so ``on: reasoning``
    may point it at the reasoning; checks on measurements, tool calls or the reasoning itself
    clear it, and a suite giving them ``on: reasoning`` is an error when it loads."""

    name: str
    fn: CheckFn
    doc: str = ""
    needs_answer: bool = True
    graded: bool = False
    validate: Validator | None = None
    text_check: bool = True


class CheckRegistry(MutableMapping[str, CheckDef]):
    """Check definitions by name: this layer's own, then its parent's.

    Writing touches this layer only; deleting a name removes this layer's definition and lets
    the parent's show through again.
    """

    def __init__(self, name: str, parent: CheckRegistry | None = None) -> None:
        self.name = name
        self.parent = parent
        self._own: dict[str, CheckDef] = {}
        self.pending_validators: dict[str, Validator] = {}

    def __getitem__(self, key: str) -> CheckDef:
        if key in self._own:
            return self._own[key]
        if self.parent is not None:
            return self.parent[key]
        raise KeyError(key)

    def __setitem__(self, key: str, value: CheckDef) -> None:
        self._own[key] = value

    def __delitem__(self, key: str) -> None:
        del self._own[key]

    def __iter__(self) -> Iterator[str]:
        seen = set(self._own)
        yield from self._own
        if self.parent is not None:
            yield from (k for k in self.parent if k not in seen)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def own(self) -> dict[str, CheckDef]:
        """This layer's definitions alone (what a check file added or replaced)."""
        return dict(self._own)

    def child(self, name: str) -> CheckRegistry:
        return CheckRegistry(name, self)

    def __repr__(self) -> str:
        chain = [self.name]
        parent = self.parent
        while parent is not None:
            chain.append(parent.name)
            parent = parent.parent
        return f"<CheckRegistry {' > '.join(chain)}: {len(self)} checks>"


BUILTIN = CheckRegistry("builtin")

_target: contextvars.ContextVar[CheckRegistry] = contextvars.ContextVar("glmeval_check_target", default=BUILTIN)


def register(
    name: str,
    *aliases: str,
    needs_answer: bool = True,
    graded: bool = False,
    validate: Validator | None = None,
    text_check: bool = True,
) -> Callable[[CheckFn], CheckFn]:
    """Register ``fn`` under ``name`` (and aliases) in the registry being filled.

    Later registrations replace earlier ones, so a suite's local checks can override a
    built-in on purpose (and do not inherit its argument validator). ``validate`` checks the
    arguments when a suite loads; see :data:`Validator` and :func:`validator`. A check that
    does not judge ``completion.text`` passes ``text_check=False`` so ``on: reasoning`` is
    refused for it (a plugin's check reads the text unless it says otherwise)."""

    def wrap(fn: CheckFn) -> CheckFn:
        target = _target.get()
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        for key in (name, *aliases):
            check_validator = validate or target.pending_validators.pop(key, None)
            target[key] = CheckDef(key, fn, doc, needs_answer, graded, check_validator, text_check)
        return fn

    return wrap


def validator(name: str, *aliases: str) -> Callable[[Validator], Validator]:
    """Decorator form: ``@validator("polite")`` attaches an argument validator to a check type,
    whether it is registered before or after (the next registration of that name takes it)."""

    def wrap(fn: Validator) -> Validator:
        target = _target.get()
        for key in (name, *aliases):
            definition = target.own().get(key)
            if definition is None:
                target.pending_validators[key] = fn
            else:
                target[key] = dataclasses.replace(definition, validate=fn)
        return fn

    return wrap


def register_object(registry: CheckRegistry, name: str, obj: Any, replace: bool) -> list[str]:
    """Register what a plugin or check file exposes: a check function, or a ``{name: fn}`` mapping."""
    added: list[str] = []
    token = _target.set(registry)
    try:
        if isinstance(obj, dict):
            for key, fn in obj.items():
                if callable(fn) and (replace or key not in registry):
                    register(str(key))(fn)
                    added.append(str(key))
        elif callable(obj) and not isinstance(obj, type) and (replace or name not in registry):
            register(name)(obj)
            added.append(name)
    finally:
        _target.reset(token)
    return added


def load_entry_points(registry: CheckRegistry) -> list[str]:
    """Load plugins from the ``glmeval.checks`` entry-point group into ``registry``.

    An entry point may name a check function (registered under the entry point's name), a
    ``{name: fn}`` dict, or a module whose functions use ``@register`` (importing it is
    enough). Plugins never replace a built-in of the same name; a plugin that fails to import
    is reported as a warning so one broken package does not stop every run.
    """
    from importlib.metadata import entry_points

    added: list[str] = []
    for ep in entry_points(group="glmeval.checks"):
        before = registry.own()
        token = _target.set(registry)
        try:
            obj = ep.load()
        except Exception as exc:
            warnings.warn(f"glmeval.checks plugin {ep.name!r} ({ep.value}) failed to load: {exc}", stacklevel=2)
            continue
        finally:
            _target.reset(token)
        added += register_object(registry, ep.name, obj, replace=False)
        for key, definition in before.items():
            if registry.own().get(key) is not definition:
                registry[key] = definition
                warnings.warn(f"glmeval.checks plugin {ep.name!r} tried to replace check {key!r}; kept the existing one", stacklevel=2)
        added += [k for k, v in registry.own().items() if before.get(k) is not v and k not in added]
    return added


def load_check_file(path: str | Path, registry: CheckRegistry) -> list[str]:
    """Import a Python file of checks into ``registry`` and return the names it registered.

    Functions decorated with ``@glmeval.checks.register("name")`` register themselves on import;
    a module-level ``CHECKS = {"name": fn}`` dict is registered too. The built-ins must be loaded
    first (so a check file that imports a built-in module does not pull its checks into the
    suite's layer); names may replace a built-in on purpose.
    """
    file = Path(path).resolve()
    if not file.is_file():
        raise FileNotFoundError(f"local checks file {str(path)!r} not found (looked for {file})")
    module_name = "glmeval_local_checks_" + hashlib.sha1(str(file).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {file} as a Python module")
    module = importlib.util.module_from_spec(spec)
    before = registry.own()
    sys.modules[module_name] = module
    token = _target.set(registry)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    finally:
        _target.reset(token)
    added = [k for k, v in registry.own().items() if before.get(k) is not v]
    checks = getattr(module, "CHECKS", None)
    if isinstance(checks, dict):
        added += [k for k in register_object(registry, "", checks, replace=True) if k not in added]
    return added


def unknown_type_message(name: str, registry: CheckRegistry) -> str:
    """``unknown check type 'contain'; did you mean 'contains'?`` for suite errors and results."""
    close = closest(name, sorted(registry), n=3)
    quoted = [repr(c) for c in close]
    options = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    hint = f"; did you mean {options}?" if close else "; run `glmeval checks` to list them"
    return f"unknown check type {name!r}{hint}"


def validate_with(registry: CheckRegistry, spec: CheckSpec, suite_dir: Path, tools: list[Any] | None) -> list[str]:
    """The problems with one check's arguments, by its type's validator ([] when it has none).

    A validator that crashes is reported as a problem of its own rather than stopping the load
    with a traceback."""
    definition = registry.get(spec.type)
    if definition is None or definition.validate is None:
        return []
    try:
        problems = definition.validate(spec, suite_dir, tools)
    except Exception as exc:
        return [f"cannot check its arguments ({type(exc).__name__}: {exc})"]
    return [str(p) for p in problems or []]
