"""What the catalogue says each model takes, held against what a suite asks of it.

Everything here is a warning, never an error: the catalogue is dated and partly unconfirmed, and
the API has the last word. A model name the catalogue does not know may be one released after it
(``glm-4.8-preview``), so it is named with a did-you-mean and sent; thinking asked of a model that
cannot think, or ``reasoning_effort`` for a model that does not take it, is sent as written, with
a warning at the line that asks for it. Images are the exception the planner makes an error
(:mod:`glmeval.suite.content`): the API's answer to them (400/1210) is documented.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from glmeval.catalogue.models import MODELS, chat_models, lookup
from glmeval.hints import did_you_mean
from glmeval.suite.grid import GRID_RULES
from glmeval.suite.model import Suite
from glmeval.suite.params import thinking_state
from glmeval.suite.problems import Problems
from glmeval.suite.yamlsrc import Origin

__all__ = ["check_capabilities", "effort_models", "suite_models", "unknown_model_text"]


def unknown_model_text(model: str) -> str:
    """The warning for a model name the catalogue does not know."""
    return (
        f"model {model!r} is not in glmeval's model table{did_you_mean(model, chat_models())}; "
        "it is sent as written (the API decides whether it exists) and its cost shows as unknown"
    )


def effort_models() -> list[str]:
    """Models the catalogue says take ``reasoning_effort``."""
    return [name for name, info in MODELS.items() if info.reasoning_effort is True]


def suite_models(suite: Suite) -> list[str]:
    """Every model a suite names: the model axis (or model:) and include entries."""
    grid = suite.effective_grid()
    axis = grid.get("model")
    models = [m for m in (axis if isinstance(axis, list) else [axis]) if isinstance(m, str)]
    models += [e["model"] for e in grid.get("include") or [] if isinstance(e, dict) and isinstance(e.get("model"), str)]
    return list(dict.fromkeys(models))


def _names(models: list[str]) -> str:
    return models[0] if len(models) == 1 else f"{', '.join(models[:-1])} and {models[-1]}"


def _they(models: list[str]) -> str:
    return "it" if len(models) == 1 else "they"


def _thinking_notes(models: list[str], value: Any) -> list[str]:
    state = thinking_state(value)
    infos = [(m, lookup(m)) for m in models]
    out = []
    cannot = [m for m, info in infos if state == "on" and info is not None and info.thinking is False]
    if cannot:
        out.append(f"thinking on for {_names(cannot)}: the catalogue says {_they(cannot)} cannot think; it is sent as written")
    always = [m for m, info in infos if state == "off" and info is not None and info.thinking_mode == "always"]
    if always:
        out.append(f"thinking off for {_names(always)}: the catalogue says {_they(always)} always think{'s' if len(always) == 1 else ''}; it is sent, but the model may reason anyway")
    return out


def _effort_notes(models: list[str], value: Any) -> list[str]:
    without = [m for m in models if (info := lookup(m)) is not None and info.reasoning_effort is False]
    if not without:
        return []
    takes = _names(effort_models()) if effort_models() else "no model"
    return [f"reasoning_effort for {_names(without)}: the catalogue lists it only for {takes}; it is sent as written"]


_NOTES: dict[str, Callable[[list[str], Any], list[str]]] = {"thinking": _thinking_notes, "reasoning_effort": _effort_notes}


def check_capabilities(suite: Suite, origin_of: Callable[[tuple[Any, ...]], Origin], problems: Problems) -> None:
    """Warnings for models the catalogue does not know, and for thinking or reasoning_effort
    asked of a model that the catalogue says does not take it, each at the line asking for it."""
    models = suite_models(suite)
    axis = suite.effective_grid().get("model")
    axis_models = [m for m in (axis if isinstance(axis, list) else [axis]) if isinstance(m, str)]
    model_at = ("grid", "model") if "model" in suite.grid else ("model",)
    for model in models:
        if lookup(model) is None:
            problems.warn(origin_of(model_at), unknown_model_text(model), key=f"model:{model}")
    axes = set(suite.grid) - set(GRID_RULES)
    for name, note in _NOTES.items():
        sources: list[tuple[Any, tuple[Any, ...], list[str]]] = []
        if name in suite.params and name not in axes:
            sources.append((suite.params[name], ("params", name), models))
        values = suite.grid.get(name)
        if values is not None:
            listed = values if isinstance(values, list) else [values]
            sources += [(v, ("grid", name, i) if isinstance(values, list) else ("grid", name), axis_models) for i, v in enumerate(listed)]
        for i, entry in enumerate(suite.grid.get("include") or []):
            if isinstance(entry, dict) and name in entry:
                which = [entry["model"]] if isinstance(entry.get("model"), str) else models
                sources.append((entry[name], ("grid", "include", i, name), which))
        for case, entry in suite.cases_with_entries():
            if name in case.params and name not in axes:
                sources.append((case.params[name], ("cases", entry, "params", name), models))
        for value, loc, which in sources:
            for text in note(list(dict.fromkeys(which)), value):
                problems.warn(origin_of(loc), text)
