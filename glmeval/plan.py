"""The plan: grid x cases x repeats expanded into fully rendered Jobs.

Each Job is one request exactly as it will be sent, with a stable id (so a resumed run can
tell which jobs already have results) and a cache key (so the same request is never paid twice).
Its ``params`` are what the SDK puts on the wire, after the SDK's own clamping, so the store
records the temperature the model really got. Readable values become the API's: ``thinking: on``
is sent as ``{type: enabled}`` (``auto`` sends nothing) and labelled ``thinking=on``; image files
are embedded as data URLs. ``Job.thinking`` records the state each request runs with, the
catalogue's default for the model when the suite names none.

Templates render in the sandbox of :mod:`glmeval.suite.templating`. Every template problem of
every case is collected and reported at once, each with the file and line of the message or
check.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from glmeval.catalogue.models import lookup
from glmeval.errors import SuiteError
from glmeval.hints import did_you_mean
from glmeval.records import MODES, CheckSpec, Job, Mode, Thinking
from glmeval.suite import GRID_RULES, MAX_JOBS, MAX_VARIANTS, REQUEST_PARAMS, Case, Message, Suite, sdk_params, show_value
from glmeval.suite.capabilities import suite_models, unknown_model_text
from glmeval.suite.content import ContentProblem, ImageFiles, has_media, text_only_model, vision_models, wire_content
from glmeval.suite.params import thinking_state, wire_params
from glmeval.suite.providers import DEFAULT_PROVIDER, ProviderInfo
from glmeval.suite.templating import TemplateLimit, TemplateProblem, render, render_value, templated_check_args
from glmeval.suite.yamlsrc import Origin

__all__ = [
    "Plan",
    "TemplateProblem",
    "build_plan",
    "cache_key",
    "expand_grid",
    "job_id",
    "job_thinking",
    "render",
    "variant_label",
]


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
        key = _identity(combo)
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


def _identity(variant: dict[str, Any]) -> str:
    return json.dumps(sorted(variant.items(), key=lambda kv: str(kv[0])), default=str, ensure_ascii=False)


@dataclass
class Plan:
    """The jobs of one suite, the variant labels in order, and what a person should know first:
    ``warnings`` (values the SDK changes, include entries that matched nothing...) and
    ``skipped`` cases with their reason."""

    suite: Suite
    jobs: list[Job]
    variants: list[str]
    warnings: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    providers: dict[str, ProviderInfo] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Job]:
        return iter(self.jobs)

    def __len__(self) -> int:
        return len(self.jobs)


def cache_key(
    model: str, mode: str, messages: list[dict[str, Any]], params: dict[str, Any], repeat: int,
    provider: dict[str, Any] | None = None,
) -> str:
    """Everything that decides the answer: the same key means the same request (and sample).
    ``provider`` is the identity of a provider other than the default zhipu one (its name,
    SDK, base URL, dialect and model spelling): keys without one are what they always were."""
    body: dict[str, Any] = {"model": model, "stream": mode == "stream", "messages": messages, "params": params, "sample": repeat}
    if provider is not None:
        body["provider"] = provider
    payload = json.dumps(
        body,
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def job_id(suite: str, case_id: str, variant_id: str, repeat: int) -> str:
    """Stable across runs and edits of the prompt, so history and --resume can match jobs."""
    raw = f"{suite}\x00{case_id}\x00{variant_id}\x00{repeat}"
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()[:16]


class _Problems:
    """Template and plan problems, gathered so ``validate`` shows all of them at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, text: str) -> None:
        if text not in self.items:
            self.items.append(text)


def _where(origin: Origin | None, suite: Suite, sub: tuple[Any, ...] = ()) -> str:
    if origin is not None:
        return origin.where(sub)
    return str(suite.path or suite.name)


def _render_messages(
    suite: Suite, case: Case, messages: list[Message], variables: dict[str, Any], problems: _Problems, images: ImageFiles
) -> list[dict[str, Any]] | None:
    """The conversation as sent: templates rendered, content parts in the API's form (image
    files embedded), or None when a problem was recorded."""
    out = []
    ok = True
    for i, message in enumerate(messages):
        wire = message.wire()
        templated = suite.templating and message.template
        content = wire.get("content")
        try:
            if templated and isinstance(content, str):
                wire["content"] = render(content, variables)
            elif isinstance(content, list):
                wire["content"] = wire_content(content, (lambda text: render(text, variables)) if templated else str, images)
            if templated and wire.get("tool_calls"):
                wire["tool_calls"] = [_render_call(call, variables) for call in wire["tool_calls"]]
        except (TemplateProblem, ContentProblem) as exc:
            where = _where(message._origin, suite, ("content",))
            who = "" if isinstance(exc, TemplateLimit) else f"case {case.id!r}: "  # the template's fault: one line
            problems.add(f"{where}: {who}message {i + 1} ({message.role}): {exc}")
            ok = False
        out.append(wire)
    return out if ok else None


def _check_vision(suite: Suite, model: str, messages: list[Message], problems: _Problems) -> bool:
    """An image for a model the catalogue says reads text only is refused by the API (400/1210):
    one problem per message and model, naming the vision models to use."""
    if not text_only_model(model):
        return True
    ok = True
    for i, message in enumerate(messages):
        if has_media(message.content):
            where = _where(message._origin, suite, ("content",))
            problems.add(
                f"{where}: message {i + 1} ({message.role}) sends an image to {model}, which reads text only; "
                f"use a vision model: {', '.join(vision_models())}"
            )
            ok = False
    return ok


def _copy_data(value: Any) -> Any:
    """A copy of plain JSON-like data: each job owns its messages (the SDK rewrites image
    data URLs in place), and this is several times faster than copy.deepcopy."""
    if isinstance(value, list):
        return [_copy_data(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy_data(v) for k, v in value.items()}
    return value


def _render_call(call: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    return {**call, "function": {**function, "arguments": render(function["arguments"], variables)}}


def _render_check(spec: CheckSpec, variables: dict[str, Any], templating: bool, where: str = "") -> CheckSpec:
    """A check with its string arguments rendered (code and judge-prompt templates excepted)."""
    if not templating:
        return spec
    args = dict(spec.args)
    for key in templated_check_args(spec):
        try:
            args[key] = render_value(args[key], variables)
        except TemplateProblem as exc:
            raise SuiteError([f"{where}: check {spec.type}: {exc}"]) from None
    return replace(spec, args=args)


def _case_checks(suite: Suite, case: Case, variables: dict[str, Any], problems: _Problems) -> list[CheckSpec] | None:
    pairs = [
        *zip(suite.check_specs.get("*", []), suite._check_origins.get("*", [])),
        *zip(suite.check_specs.get(case.id or "", []), suite._check_origins.get(case.id or "", [])),
    ]
    out: list[CheckSpec] = []
    ok = True
    for spec, origin in pairs:
        try:
            out.append(_render_check(spec, variables, suite.templating, origin.where()))
        except SuiteError as exc:
            for text in exc.problems:
                head, _, tail = text.partition(": check ")
                problems.add(f"{head}: case {case.id!r}: check {tail}")
            ok = False
    return out if ok else None


def _variants_for(case: Case, variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The variants a case runs in: all, or those of the prompt it pins (added if the grid lacks it)."""
    if not case.prompt:
        return variants
    pinned = [v for v in variants if v.get("prompt") == case.prompt]
    if pinned:
        return pinned
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for v in variants:
        new = {**v, "prompt": case.prompt}
        if _identity(new) not in seen:
            seen.add(_identity(new))
            out.append(new)
    return out


def _selected_variants(
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
        if _identity(variant) not in seen:
            seen.add(_identity(variant))
            out.append(variant)
    return out


def _provider_variants(variants: list[dict[str, Any]], wanted: list[str]) -> list[dict[str, Any]]:
    """The variants of the ``wanted`` providers; a provider no variant has gets a copy of
    every variant, with its name."""
    kept = [v for v in variants if v.get("provider", DEFAULT_PROVIDER) in wanted]
    present = {v.get("provider", DEFAULT_PROVIDER) for v in kept}
    seen = {_identity(v) for v in kept}
    for name in (p for p in wanted if p not in present):
        for variant in variants:
            copy = {**variant, "provider": name}
            if _identity(copy) not in seen:
                seen.add(_identity(copy))
                kept.append(copy)
    return kept


def _check_provider_override(suite: Suite, names: list[str] | None) -> None:
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


def build_plan(
    suite: Suite, model_override: list[str] | None = None, mode_override: str | None = None,
    provider_override: list[str] | None = None,
) -> Plan:
    """Expand a loaded suite into its Jobs, in a stable order (case, variant, repeat).

    Raises SuiteError with every template problem of every case (each naming the case and the
    file and line of the message or check), so ``validate`` can show them all at once.
    """
    _check_provider_override(suite, provider_override)
    table = suite.provider_table
    used: dict[str, ProviderInfo] = {}
    variants = _selected_variants(suite, model_override, mode_override, provider_override)
    labels = list(dict.fromkeys(variant_label(v) for v in variants))
    cases: list[Case] = suite.cases
    skipped: list[tuple[str, str]] = []
    if any(c.only for c in cases):
        skipped += [(c.id or "", "not marked only") for c in cases if not c.only]
        cases = [c for c in cases if c.only]
    for case in cases:
        if case.skip:
            skipped.append((case.id or "", case.skip if isinstance(case.skip, str) else "skip: true"))
    cases = [c for c in cases if not c.skip]
    total = sum(len(_variants_for(c, variants)) * (c.repeat or suite.repeat) for c in cases)
    if total > MAX_JOBS:
        raise SuiteError([f"{suite.path}: the suite expands to {total:,} jobs; the limit is {MAX_JOBS:,} (split it, or narrow the grid)"])

    problems = _Problems()
    warnings = list(suite.warnings) + _override_warnings(suite, model_override)
    images = ImageFiles(suite.base_dir)
    seen_vision: dict[tuple[tuple[int, ...], str], bool] = {}
    jobs: list[Job] = []
    for case in cases:
        case_id = case.id or "case"
        variables = {**suite.vars, **case.vars}
        specs = _case_checks(suite, case, variables, problems)
        rendered: dict[str | None, list[dict[str, Any]] | None] = {}
        for variant in _variants_for(case, variants):
            label = variant_label(variant)
            if label not in labels:
                labels.append(label)
            prompt = variant.get("prompt")
            conversation = suite.conversation(case, prompt)
            if prompt not in rendered:
                rendered[prompt] = (
                    _render_messages(suite, case, conversation, variables, problems, images) if conversation else None
                )
                if not conversation:
                    problems.add(f"{_where(suite._origin, suite)}: case {case_id!r} has no messages")
            messages = rendered[prompt]
            model = str(variant.get("model") or suite.default_model)
            if conversation:
                key = (tuple(id(m) for m in conversation), model)
                if key not in seen_vision:
                    seen_vision[key] = _check_vision(suite, model, conversation, problems)
                if not seen_vision[key]:
                    continue
            if messages is None or specs is None:
                continue
            mode = _mode(variant.get("mode", mode_override or suite.mode))
            provider = table[str(variant.get("provider", DEFAULT_PROVIDER))]
            used[provider.name] = provider
            if mode == "async" and provider.sdk == "openai":
                problems.add(
                    f"{_where(suite._origin, suite)}: provider {provider.name!r} speaks the OpenAI wire (sdk openai), "
                    f"which has no async mode; run its variants in sync or stream mode"
                )
                continue
            if mode == "batch" and provider.name != DEFAULT_PROVIDER:
                problems.add(
                    f"{_where(suite._origin, suite)}: mode batch goes through Zhipu's Batch API with the default "
                    f"provider zhipu; provider {provider.name!r} runs in sync, stream or async mode"
                )
                continue
            params = _params(suite, case, variant)
            _check_limits(suite, model, params, problems)
            sent, _ = sdk_params(wire_params(params))
            thinking = job_thinking(model, params)
            repeat = case.repeat or suite.repeat
            for r in range(repeat):
                job_messages = _copy_data(messages)
                jobs.append(
                    Job(
                        id=job_id(suite.name, case_id, label, r),
                        suite=suite.name,
                        case_id=case_id,
                        variant_id=label,
                        variant=dict(variant),
                        repeat=r,
                        model=model,
                        mode=mode,
                        messages=job_messages,
                        params=dict(sent),
                        checks=list(specs),
                        vars=dict(variables),
                        tags=list(dict.fromkeys([*suite.tags, *case.tags])),
                        threshold=case.threshold if case.threshold is not None else suite.threshold,
                        min_score=case.min_score if case.min_score is not None else suite.min_score,
                        cache_key=cache_key(model, mode, job_messages, sent, r, provider.cache_identity(model)),
                        description=case.description,
                        thinking=thinking,
                        provider=provider.name,
                    )
                )
    if problems.items:
        raise SuiteError(problems.items)
    warnings += _unmatched_rules(suite)
    return Plan(
        suite=suite, jobs=jobs, variants=labels, warnings=list(dict.fromkeys(warnings)), skipped=skipped, providers=used
    )


def _mode(value: Any) -> Mode:
    """The call mode of a job: the grid's, --mode's or the suite's (each already one of MODES)."""
    for mode in MODES:
        if value == mode:
            return mode
    raise SuiteError([f"unknown call mode {value!r}; use one of {', '.join(MODES)}"])


def _params(suite: Suite, case: Case, variant: dict[str, Any]) -> dict[str, Any]:
    """Request parameters by precedence: suite, suite tools, case, case tools, then the grid."""
    params: dict[str, Any] = dict(suite.params)
    if suite.tools is not None:
        params["tools"] = suite.tools
    params.update(case.params)
    if case.tools is not None:
        params["tools"] = case.tools
    for key, value in variant.items():
        if key in REQUEST_PARAMS:
            params[key] = value
    if "clear_thinking" in variant and thinking_state(variant.get("thinking")) is not None:
        params["thinking"] = {"type": "enabled" if variant["thinking"] == "on" else "disabled", "clear_thinking": variant["clear_thinking"]}
    return params


def job_thinking(model: str, params: dict[str, Any]) -> Thinking | None:
    """The thinking state a job runs with: what the suite asked for, else the model's default
    in the catalogue (None for a model that never thinks or that the catalogue does not know)."""
    asked = thinking_state(params.get("thinking"))
    if asked is not None:
        return asked
    info = lookup(model)
    if info is None or info.thinking is not True:
        return None
    return _DEFAULT_STATE.get(info.thinking_default or "")


_DEFAULT_STATE: dict[str, Thinking] = {"enabled": "on", "disabled": "off", "auto": "auto"}


def _check_limits(suite: Suite, model: str, params: dict[str, Any], problems: _Problems) -> None:
    """max_tokens against the model actually used (loading checked the suite's own models;
    this catches a --model override)."""
    value = params.get("max_tokens")
    spec = lookup(model)
    limit = getattr(spec, "max_output", 0) if spec is not None else 0
    if isinstance(value, int) and limit and value > limit:
        problems.add(f"{suite.path}: max_tokens {value} is more than {model} can write (at most {limit} tokens)")


def _override_warnings(suite: Suite, models: list[str] | None) -> list[str]:
    """--model names the catalogue does not know: a warning, as in the suite (the API decides)."""
    own = set(suite_models(suite))
    return [f"--model {m}: {unknown_model_text(m)}" for m in dict.fromkeys(models or []) if m not in own and lookup(m) is None]


def _unmatched_rules(suite: Suite) -> list[str]:
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
