"""The grid and request-parameter maps as a suite writes them.

``params:`` of a suite or case, ``tools:``, and each axis value and include/exclude entry of
``grid:`` are checked value by value against the parameter rules in
:mod:`glmeval.suite.params`, so a wrong value is named where it is written, and a value the
SDK will change (temperature 0) warns there.
"""

from __future__ import annotations

from typing import Any

from glmeval.checks.args import got, short
from glmeval.hints import did_you_mean
from glmeval.records import MODES
from glmeval.suite.params import CLAMP_REASON, PARAMS, REQUEST_PARAMS, check_param, check_tools, sdk_params
from glmeval.suite.problems import Problems, report_all
from glmeval.suite.yamlsrc import Origin

__all__ = ["GRID_AXES", "GRID_RULES", "check_grid", "check_params_map", "check_tools_value"]

GRID_AXES = ("model", "provider", "mode", "prompt", *REQUEST_PARAMS)
GRID_RULES = ("include", "exclude")


def _clamp_warnings(name: str, value: Any, origin: Origin, problems: Problems) -> None:
    """Warn where a temperature or top_p is written that the SDK will send changed."""
    if name not in ("temperature", "top_p"):
        return
    _, notes = sdk_params({name: value})
    for note in notes:
        problems.warn(origin, f"{note}: {CLAMP_REASON}", key=f"clamp:{name}:{value!r}")


def check_params_map(params: Any, origin: Origin, problems: Problems) -> None:
    """A ``params:`` mapping: each key a request parameter (not model, mode or messages, which
    have their own places), each value what that parameter takes."""
    if not isinstance(params, dict):
        if params is not None:
            problems.error(origin, f"params must be a mapping of request parameters; {got(params)}")
        return
    for key, value in params.items():
        if key in ("model", "messages", "stream", "mode"):
            hint = "a grid axis (grid: {model: [...]}) or model:" if key == "model" else (
                "mode: or a grid axis" if key in ("mode", "stream") else "messages: of the suite or case"
            )
            problems.error(origin, f"{key!r} is not a request parameter here; use {hint}", (key,))
            continue
        if key not in PARAMS:
            problems.error(origin, f"unknown request parameter {str(key)!r}{did_you_mean(key, REQUEST_PARAMS)}", (key,))
            continue
        report_all(problems, origin.at(key), check_param(key, value))
        _clamp_warnings(key, value, origin.at(key), problems)


def check_tools_value(tools: Any, origin: Origin, problems: Problems) -> None:
    """A ``tools:`` list of a suite or case, by the same rules as ``params.tools``."""
    if tools is not None:
        report_all(problems, origin, check_tools(tools))


def check_grid(grid: Any, origin: Origin, problems: Problems, prompt_names: list[str], has_prompts: bool) -> None:
    """Axis names, every axis value, and include/exclude entries."""
    if not isinstance(grid, dict):
        if grid is not None:
            problems.error(origin, f"grid must be a mapping of axes to lists of values; {got(grid)}")
        return
    axes = [k for k in grid if k not in GRID_RULES]
    for axis in axes:
        values = grid[axis]
        at = origin.at(axis)
        if axis not in GRID_AXES:
            problems.error(at, f"unknown grid axis {str(axis)!r}{did_you_mean(axis, GRID_AXES)}; an axis is model, provider, mode, prompt or a request parameter")
            continue
        if isinstance(values, list) and not values:
            problems.error(at, f"grid axis {axis!r} has no values")
            continue
        items = values if isinstance(values, list) else [values]
        for i, value in enumerate(items):
            _check_axis_value(axis, value, at.at(i) if isinstance(values, list) else at, problems, prompt_names, has_prompts)
    for rule in GRID_RULES:
        if rule not in grid:
            continue
        entries = grid[rule]
        at = origin.at(rule)
        if not isinstance(entries, list) or not all(isinstance(e, dict) and e for e in entries):
            problems.error(at, f"grid.{rule} must be a list of mappings of axis values, like - {{model: glm-4, temperature: 0.5}}")
            continue
        for i, entry in enumerate(entries):
            for key, value in entry.items():
                key_at = at.at(i, key)
                if key not in GRID_AXES:
                    problems.error(key_at, f"unknown grid axis {str(key)!r} in grid.{rule}{did_you_mean(key, GRID_AXES)}")
                elif rule == "exclude" and key not in axes:
                    problems.error(key_at, f"grid.exclude names {key!r}, which is not an axis of the grid ({', '.join(map(str, axes)) or 'none'})")
                else:
                    _check_axis_value(key, value, key_at, problems, prompt_names, has_prompts)


def _check_axis_value(axis: str, value: Any, at: Origin, problems: Problems, prompt_names: list[str], has_prompts: bool) -> None:
    if axis == "model":
        if not isinstance(value, str) or not value.strip():
            problems.error(at, f"a model must be a model name like glm-4; {got(value)}")
    elif axis == "provider":
        return  # checked against the suite's providers: (glmeval.suite.providers.check_providers)
    elif axis == "mode":
        if value not in MODES:
            problems.error(at, f"mode must be one of {', '.join(MODES)}; got {short(value)}{did_you_mean(value, MODES)}")
    elif axis == "prompt":
        if not isinstance(value, str) or value not in prompt_names:
            where = "prompts:" if has_prompts else "prompts: (the suite defines none)"
            problems.error(at, f"grid prompt {short(value)} is not defined under {where}{did_you_mean(value, prompt_names)}")
    else:
        report_all(problems, at, check_param(axis, value))
        _clamp_warnings(axis, value, at, problems)
