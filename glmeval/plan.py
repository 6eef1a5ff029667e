"""The plan: grid x cases x repeats expanded into fully rendered Jobs.

Each Job is one request exactly as it will be sent, with a stable id (so a resumed run can
tell which jobs already have results) and a cache key (so the same request is never paid twice).
Templates render in Jinja2's sandbox with strict undefined variables.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any, Iterator

from jinja2 import StrictUndefined, TemplateError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from glmeval.errors import SuiteError
from glmeval.records import CheckSpec, Job
from glmeval.suite import Case, Message, Suite

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def render(template: str, variables: dict[str, Any]) -> str:
    """Render one template string; plain strings without Jinja markers skip the engine."""
    if "{" not in template:
        return template
    return _env.from_string(template).render(**variables)


def variant_label(variant: dict[str, Any]) -> str:
    """A readable, stable label: ``glm-4 temperature=0.2 prompt=terse``."""
    parts = []
    if "model" in variant:
        parts.append(str(variant["model"]))
    for key, value in variant.items():
        if key == "model":
            continue
        shown = value if isinstance(value, (str, int, float, bool)) or value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)
        parts.append(f"{key}={shown}")
    return " ".join(parts) if parts else "default"


def expand_grid(grid: dict[str, Any]) -> list[dict[str, Any]]:
    """The product of the axes, trimmed by ``exclude`` and extended by ``include``,
    following GitHub Actions' matrix rules: an include entry that matches existing
    combinations on all original axes it names adds its extra keys to them; otherwise it is
    a new combination."""
    axes = {k: (v if isinstance(v, list) else [v]) for k, v in grid.items() if k not in ("include", "exclude")}
    combos = [dict(zip(axes, values)) for values in itertools.product(*axes.values())] if axes else [{}]
    for rule in grid.get("exclude", []) or []:
        combos = [c for c in combos if not all(c.get(k) == v for k, v in rule.items())]
    for rule in grid.get("include", []) or []:
        original = {k: v for k, v in rule.items() if k in axes}
        matched = False
        if original:
            for combo in combos:
                if all(combo.get(k) == v for k, v in original.items()):
                    combo.update(rule)
                    matched = True
        if not matched:
            combos.append(dict(rule))
    return combos


@dataclass
class Plan:
    suite: Suite
    jobs: list[Job]
    variants: list[str]

    def __iter__(self) -> Iterator[Job]:
        return iter(self.jobs)

    def __len__(self) -> int:
        return len(self.jobs)


def _cache_key(model: str, mode: str, messages: list[dict[str, Any]], params: dict[str, Any], repeat: int) -> str:
    payload = json.dumps(
        {"model": model, "stream": mode == "stream", "messages": messages, "params": params, "sample": repeat},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _job_id(suite: str, case_id: str, variant_id: str, repeat: int) -> str:
    raw = f"{suite}\x00{case_id}\x00{variant_id}\x00{repeat}"
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()[:16]


def _render_messages(
    messages: list[Message], variables: dict[str, Any], templating: bool, where: str
) -> list[dict[str, Any]]:
    out = []
    for i, message in enumerate(messages):
        wire = message.wire()
        if templating and message.template and isinstance(wire.get("content"), str):
            try:
                wire["content"] = render(wire["content"], variables)
            except UndefinedError as exc:
                raise SuiteError([f"{where}: message {i + 1} ({message.role}): undefined variable: {exc.message}"]) from None
            except TemplateError as exc:
                raise SuiteError([f"{where}: message {i + 1} ({message.role}): template error: {exc}"]) from None
        out.append(wire)
    return out


def _render_check(spec: CheckSpec, variables: dict[str, Any], templating: bool, where: str) -> CheckSpec:
    if not templating:
        return spec
    args = {}
    for key, value in spec.args.items():
        if isinstance(value, str) and "{" in value and spec.type not in ("python", "llm-rubric-prompt"):
            try:
                value = render(value, variables)
            except TemplateError as exc:
                raise SuiteError([f"{where}: check {spec.type}: template error: {exc}"]) from None
        args[key] = value
    return CheckSpec(spec.type, args, spec.negate, spec.weight, spec.metric, spec.threshold, spec.line)


def build_plan(suite: Suite, model_override: list[str] | None = None, mode_override: str | None = None) -> Plan:
    """Expand a loaded suite into its Jobs, in a stable order (case, variant, repeat)."""
    grid = dict(suite.grid)
    if model_override:
        grid["model"] = list(model_override)
    if "model" not in grid:
        grid["model"] = [suite.model or "glm-4"]
    if mode_override:
        grid["mode"] = [mode_override]
    variants = expand_grid(grid)
    cases: list[Case] = suite.cases
    if any(c.only for c in cases):
        cases = [c for c in cases if c.only]
    jobs: list[Job] = []
    labels: list[str] = []
    for variant in variants:
        label = variant_label(variant)
        if label not in labels:
            labels.append(label)
    for case in cases:
        if case.skip:
            continue
        case_id = case.id or "case"
        where = f"{suite.path}: case {case_id!r}"
        variables = {**suite.vars, **case.vars}
        for variant in variants:
            label = variant_label(variant)
            model = str(variant.get("model"))
            mode = str(variant.get("mode", suite.mode))
            prompt = case.prompt or variant.get("prompt")
            if case.messages is not None:
                template = case.messages
            elif prompt is not None:
                template = suite.prompts[prompt]
            elif suite.messages is not None:
                template = suite.messages
            else:
                template = next(iter(suite.prompts.values()))
            messages = _render_messages(template, variables, suite.templating, where)
            params: dict[str, Any] = {**suite.params, **case.params}
            for key, value in variant.items():
                if key not in ("model", "mode", "prompt"):
                    params[key] = value
            tools = case.tools if case.tools is not None else suite.tools
            if tools is not None and "tools" not in variant:
                params["tools"] = tools
            specs = [
                _render_check(s, variables, suite.templating, where)
                for s in [*suite.check_specs.get("*", []), *suite.check_specs.get(case_id, [])]
            ]
            repeat = case.repeat or suite.repeat
            for r in range(repeat):
                jobs.append(
                    Job(
                        id=_job_id(suite.name, case_id, label, r),
                        suite=suite.name,
                        case_id=case_id,
                        variant_id=label,
                        variant=dict(variant),
                        repeat=r,
                        model=model,
                        mode=mode,
                        messages=messages,
                        params=params,
                        checks=specs,
                        vars=variables,
                        tags=[*suite.tags, *case.tags],
                        threshold=case.threshold if case.threshold is not None else suite.threshold,
                        min_score=case.min_score,
                        cache_key=_cache_key(model, mode, messages, params, r),
                        description=case.description,
                    )
                )
    return Plan(suite=suite, jobs=jobs, variants=labels)
