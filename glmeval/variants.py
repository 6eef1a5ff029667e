"""The variants a plan runs: the grid expanded, labelled and narrowed by ``--model`` / ``--provider``.

A variant is one combination of grid axis values (model, prompt, mode, temperature...). Its
label (``glm-4 temperature=0.2``) is part of every job id, so it must stay the same across
runs and edits of anything but the grid.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

from glmeval.errors import SuiteError
from glmeval.hints import did_you_mean
from glmeval.suite import GRID_RULES, MAX_VARIANTS, Suite, show_value
from glmeval.suite.params import thinking_state
from glmeval.suite.providers import DEFAULT_PROVIDER

__all__ = ["check_provider_override", "expand_grid", "identity", "selected_variants", "unmatched_rules", "variant_label"]


def variant_label(variant: dict[str, Any]) -> str:
    """A readable, stable label: ``glm-4 temperature=0.2 prompt=terse``, ``glm-4.7 thinking=on``."""
    parts = []
    if "model" in variant:
        parts.append(str(variant["model"]))
    for key, value in variant.items():
        if key == "model":
            continue
        if key == "thinking" and thinking_state(value) is not None:
            value = thinking_state(value)
        shown = value if isinstance(value, (int, float, bool)) or value is None else show_value(value)
        parts.append(f"{key}={shown}")
    return " ".join(parts) if parts else "default"


def _axes(grid: dict[str, Any]) -> dict[str, list[Any]]:
    return {k: (v if isinstance(v, list) else [v]) for k, v in grid.items() if k not in ("include", "exclude")}


def expand_grid(grid: dict[str, Any]) -> list[dict[str, Any]]:
    """The product of the axes, trimmed by ``exclude`` and extended by ``include``, following
    GitHub Actions' matrix rules.

    ``exclude`` drops every combination that matches all of an entry's values. Each
    ``include`` entry is then added to every original combination whose original axis values
    it does not contradict (its new keys are added; they may overwrite keys that an earlier
    include added); an entry that fits no original combination becomes a combination of its
    own. A grid with no axes is one empty combination.
    """
    axes = _axes(grid)
    size = math.prod(len(v) for v in axes.values()) if axes else 1
    if size > MAX_VARIANTS:
        raise SuiteError([f"the grid has {size:,} combinations; the limit is {MAX_VARIANTS:,} (split the suite or use --model)"])
    combos = [dict(zip(axes, values)) for values in itertools.product(*axes.values())] if axes else []
    for rule in _rules(grid, "exclude"):
        combos = [c for c in combos if not all(k in c and _same(c[k], v) for k, v in rule.items())]
    added: list[dict[str, Any]] = []
    for rule in _rules(grid, "include"):
        matched = False
        for combo in combos:
            if all(_same(combo[k], v) for k, v in rule.items() if k in axes):
                combo.update(rule)
                matched = True
        if not matched:
            added.append(dict(rule))
    result: list[dict[str, Any]] = []
    seen: set[str] = set()
    for combo in [*combos, *added]:
        key = identity(combo)
        if key not in seen:
            seen.add(key)
            result.append(combo)
    return result or [{}]


def _rules(grid: dict[str, Any], name: str) -> list[dict[str, Any]]:
    entries = grid.get(name) or []
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _same(a: Any, b: Any) -> bool:
    """Equality that tells true from 1, so ``do_sample: true`` never matches ``seed: 1``."""
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def identity(variant: dict[str, Any]) -> str:
    return json.dumps(sorted(variant.items(), key=lambda kv: str(kv[0])), default=str, ensure_ascii=False)


def selected_variants(
    suite: Suite, model_override: list[str] | None, mode_override: str | None, provider_override: list[str] | None = None
) -> list[dict[str, Any]]:
    """The variants to run. ``--model`` keeps the suite's own variants of those models (so
    their labels match a full run's in the history) and gives a model the grid lacks the
    grid's other axes; ``--provider`` does the same for providers. A variant names its
    provider when the grid has a provider axis or the provider is not the default, so a
    suite without providers keeps its labels and job ids."""
    grid = _readable_grid(suite.effective_grid())
    variants = expand_grid(grid)
    default_model = suite.default_model
    if model_override:
        wanted = list(dict.fromkeys(model_override))
        variants = [v for v in variants if v.get("model", default_model) in wanted]
        present = {v.get("model", default_model) for v in variants}
        missing = [m for m in wanted if m not in present]
        if missing:
            extra = {**grid, "model": missing, "include": [e for e in _rules(grid, "include") if "model" not in e]}
            variants += expand_grid(extra)
        default_model = wanted[0]
    if provider_override:
        variants = _provider_variants(variants, list(dict.fromkeys(provider_override)))
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for variant in variants:
        head = {"model": variant.get("model", default_model)}
        if "provider" in variant:
            head["provider"] = variant["provider"]
        variant = {**head, **{k: v for k, v in variant.items() if k not in head}}
        _split_thinking(variant)
        if mode_override and "mode" in variant:
            variant["mode"] = mode_override
        if identity(variant) not in seen:
            seen.add(identity(variant))
            out.append(variant)
    return out


def _provider_variants(variants: list[dict[str, Any]], wanted: list[str]) -> list[dict[str, Any]]:
    """The variants of the ``wanted`` providers; a provider no variant has gets a copy of
    every variant, with its name."""
    kept = [v for v in variants if v.get("provider", DEFAULT_PROVIDER) in wanted]
    present = {v.get("provider", DEFAULT_PROVIDER) for v in kept}
    seen = {identity(v) for v in kept}
    for name in (p for p in wanted if p not in present):
        for variant in variants:
            copy = {**variant, "provider": name}
            if identity(copy) not in seen:
                seen.add(identity(copy))
                kept.append(copy)
    return kept


def check_provider_override(suite: Suite, names: list[str] | None) -> None:
    """``--provider`` names the suite cannot reach: one line each, naming what it can."""
    table = suite.provider_table
    unknown = [n for n in dict.fromkeys(names or []) if n not in table]
    if unknown:
        raise SuiteError([
            f"--provider {n}: suite {suite.name!r} has no provider {n!r}{did_you_mean(n, list(table))}; "
            f"its providers: {', '.join(table)} (define others under providers:)"
            for n in unknown
        ])


def _readable_thinking(value: Any) -> Any:
    """A thinking axis value in one spelling, so ``on``, ``true`` and ``enabled`` are one
    variant and an exclude entry matches whichever was written; a mapping with clear_thinking
    keeps it."""
    state = thinking_state(value)
    if state is None:
        return value
    if isinstance(value, dict) and "clear_thinking" in value:
        return {"thinking": state, "clear_thinking": value["clear_thinking"]}
    return state


def _readable_grid(grid: dict[str, Any]) -> dict[str, Any]:
    """The grid with each thinking value read as on, off or auto."""
    out = dict(grid)
    if "thinking" in out:
        values = out["thinking"]
        out["thinking"] = [_readable_thinking(v) for v in values] if isinstance(values, list) else _readable_thinking(values)
    for rule in GRID_RULES:
        entries = out.get(rule)
        if isinstance(entries, list):
            out[rule] = [
                {**e, "thinking": _readable_thinking(e["thinking"])} if isinstance(e, dict) and "thinking" in e else e
                for e in entries
            ]
    return out


def _split_thinking(variant: dict[str, Any]) -> None:
    """``variant["thinking"]`` holds on, off or auto; clear_thinking, when an axis value gave
    it, becomes its own key right after (so its label reads ``thinking=on clear_thinking=False``)."""
    value = variant.get("thinking")
    if not isinstance(value, dict) or set(value) != {"thinking", "clear_thinking"}:
        return
    items = list(variant.items())
    variant.clear()
    for key, item in items:
        if key == "thinking":
            variant["thinking"] = value["thinking"]
            variant["clear_thinking"] = value["clear_thinking"]
        else:
            variant[key] = item


def unmatched_rules(suite: Suite) -> list[str]:
    """Warnings for exclude entries that remove nothing: usually a typo in a value."""
    grid = _readable_grid(suite.effective_grid())
    axes = _axes(grid)
    combos = [dict(zip(axes, values)) for values in itertools.product(*axes.values())] if axes else []
    out = []
    origin = suite._origin
    for i, rule in enumerate(_rules(grid, "exclude")):
        if not any(all(k in c and _same(c[k], v) for k, v in rule.items()) for c in combos):
            where = origin.where(("grid", "exclude", i)) if origin else str(suite.path)
            out.append(f"{where}: grid.exclude entry {rule} matches no variant")
    return out
