"""The plan: grid x cases x repeats expanded into fully rendered Jobs, made as they are needed.

Each Job is one request exactly as it will be sent, with a stable id (so a resumed run can
tell which jobs already have results) and a cache key (so the same request is never paid twice).
Its ``params`` are what the SDK puts on the wire, after the SDK's own clamping, so the store
records the temperature the model really got. Readable values become the API's: ``thinking: on``
is sent as ``{type: enabled}`` (``auto`` sends nothing) and labelled ``thinking=on``; image files
are embedded as data URLs. ``Job.thinking`` records the state each request runs with, the
catalogue's default for the model when the suite names none.

:func:`build_plan` renders every template of every case once, up front, so every problem is
reported at once (each with the file and line of the message or check) before anything is
sent. It keeps none of the Jobs: a :class:`Plan` holds the suite's cases and the count of
jobs each makes, and renders a case's jobs again when they are iterated, so a 100,000-job
plan costs the cases it is made of, and the runner's first request leaves before the last
Job exists. Templates are pure, so every pass makes the same jobs.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from bisect import bisect_right
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, overload

from glmeval.catalogue.models import lookup
from glmeval.errors import SuiteError
from glmeval.records import MODES, CheckSpec, Job, Mode, Thinking
from glmeval.suite import MAX_JOBS, REQUEST_PARAMS, Case, Message, Suite, sdk_params
from glmeval.suite.capabilities import suite_models, unknown_model_text
from glmeval.suite.content import ContentProblem, ImageFiles, has_media, text_only_model, vision_models, wire_content
from glmeval.suite.gcpause import paused_gc
from glmeval.suite.params import thinking_state, wire_params
from glmeval.suite.providers import DEFAULT_PROVIDER, ProviderInfo
from glmeval.suite.soundness import SharedTemplates
from glmeval.suite.templating import (
    TemplateLimit,
    TemplateProblem,
    has_template_markup,
    render,
    render_value,
    template_strings,
    templated_check_args,
)
from glmeval.suite.yamlsrc import Origin
from glmeval.variants import check_provider_override, expand_grid, identity, selected_variants, unmatched_rules, variant_label

__all__ = [
    "JobList",
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
        self.items: dict[str, None] = {}

    def add(self, text: str) -> None:
        self.items.setdefault(text)


@dataclass(slots=True)
class _Slot:
    """One case under one variant: what its repeats share."""

    variant: dict[str, Any]
    label: str
    model: str
    mode: Mode
    provider: ProviderInfo
    params: dict[str, Any]
    messages: list[dict[str, Any]]


@dataclass(eq=False)
class _Shared:
    """What every case of one plan reads, looked up once: the suite's values (a pydantic
    private attribute costs a microsecond a read), each message's wire form, each variant's
    label, and the conversation of each prompt for cases without messages of their own."""

    suite: Suite
    variants: list[dict[str, Any]]
    mode_override: str | None
    images: ImageFiles
    origin: Origin | None = None
    check_specs: dict[str, list[CheckSpec]] = field(default_factory=dict)
    check_origins: dict[str, list[Origin]] = field(default_factory=dict)
    table: dict[str, ProviderInfo] = field(default_factory=dict)
    suite_messages: set[int] = field(default_factory=set)
    _wire: dict[int, dict[str, Any]] = field(default_factory=dict)
    _for_prompt: dict[str | None, list[tuple[dict[str, Any], str]]] = field(default_factory=dict)
    _conversations: dict[str | None, list[Message] | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.origin = self.suite._origin
        self.check_specs = self.suite.check_specs
        self.check_origins = self.suite._check_origins
        self.table = self.suite.provider_table
        self.suite_messages = {id(m) for m in [*(self.suite.messages or []), *(m for ms in self.suite.prompts.values() for m in ms)]}

    def where(self, origin: Origin | None, sub: tuple[Any, ...] = ()) -> str:
        if origin is not None:
            return origin.where(sub)
        return str(self.suite.path or self.suite.name)

    def wire(self, message: Message) -> dict[str, Any]:
        """A fresh top-level copy of the message's wire form (the suite's own messages are
        dumped once; callers replace keys, never edit nested values)."""
        if id(message) not in self.suite_messages:
            return message.wire()
        cached = self._wire.get(id(message))
        if cached is None:
            cached = self._wire[id(message)] = message.wire()
        return dict(cached)

    def variants_for(self, case: Case) -> list[tuple[dict[str, Any], str]]:
        """The variants a case runs in, with their labels: all, or those of the prompt it pins
        (added if the grid lacks it)."""
        key = case.prompt or None
        found = self._for_prompt.get(key)
        if found is None:
            found = self._for_prompt[key] = [(v, variant_label(v)) for v in _variants_for(key, self.variants)]
        return found

    def conversation(self, case: Case, prompt: str | None) -> list[Message] | None:
        if case.messages is not None:
            return self.suite.conversation(case, prompt)
        if prompt not in self._conversations:
            self._conversations[prompt] = self.suite.conversation(case, prompt)
        return self._conversations[prompt]

    def repeats(self, case: Case) -> int:
        return case.repeat or self.suite.repeat


def _variants_for(prompt: str | None, variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not prompt:
        return variants
    pinned = [v for v in variants if v.get("prompt") == prompt]
    if pinned:
        return pinned
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for v in variants:
        new = {**v, "prompt": prompt}
        if identity(new) not in seen:
            seen.add(identity(new))
            out.append(new)
    return out


def _render_messages(
    sh: _Shared, case: Case, messages: list[Message], variables: dict[str, Any], problems: _Problems
) -> list[dict[str, Any]] | None:
    """The conversation as sent: templates rendered, content parts in the API's form (image
    files embedded), or None when a problem was recorded."""
    out = []
    ok = True
    templating = sh.suite.templating
    for i, message in enumerate(messages):
        wire = sh.wire(message)
        templated = templating and message.template
        content = wire.get("content")
        try:
            if templated and isinstance(content, str):
                wire["content"] = render(content, variables)
            elif isinstance(content, list):
                wire["content"] = wire_content(content, (lambda text: render(text, variables)) if templated else str, sh.images)
            if templated and wire.get("tool_calls"):
                wire["tool_calls"] = [_render_call(call, variables) for call in wire["tool_calls"]]
        except (TemplateProblem, ContentProblem) as exc:
            where = sh.where(message._origin, ("content",))
            who = "" if isinstance(exc, TemplateLimit) else f"case {case.id!r}: "  # the template's fault: one line
            problems.add(f"{where}: {who}message {i + 1} ({message.role}): {exc}")
            ok = False
        out.append(wire)
    return out if ok else None


def _check_vision(sh: _Shared, model: str, messages: list[Message], problems: _Problems) -> bool:
    """An image for a model the catalogue says reads text only is refused by the API (400/1210):
    one problem per message and model, naming the vision models to use."""
    if not text_only_model(model):
        return True
    ok = True
    for i, message in enumerate(messages):
        if has_media(message.content):
            where = sh.where(message._origin, ("content",))
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


def _render_check(spec: CheckSpec, variables: dict[str, Any], make: bool) -> CheckSpec:
    """A check with its string arguments rendered (code and judge-prompt templates excepted);
    the spec itself when none of them is a template, or when only rendering is asked (``make``
    false: the validating pass keeps nothing)."""
    keys = _templated_keys(spec)
    if not keys:
        return spec
    args = dict(spec.args)
    for key in keys:
        args[key] = render_value(args[key], variables)
    return replace(spec, args=args) if make else spec


_TEMPLATED: dict[int, tuple[CheckSpec, list[str]]] = {}


def _templated_keys(spec: CheckSpec) -> list[str]:
    """The arguments of ``spec`` that hold a template, found once per spec (a suite-level
    check is rendered for every case)."""
    found = _TEMPLATED.get(id(spec))
    if found is None or found[0] is not spec:
        keys = [k for k in templated_check_args(spec) if any(has_template_markup(t) for t in template_strings(spec.args[k]))]
        if len(_TEMPLATED) > 4096:
            _TEMPLATED.clear()
        found = _TEMPLATED[id(spec)] = (spec, keys)
    return found[1]


def _case_checks(
    sh: _Shared, case: Case, variables: dict[str, Any], problems: _Problems, make: bool = True
) -> list[CheckSpec] | None:
    case_key = case.id or ""
    pairs = [
        *zip(sh.check_specs.get("*", []), sh.check_origins.get("*", [])),
        *zip(sh.check_specs.get(case_key, []), sh.check_origins.get(case_key, [])),
    ]
    if not sh.suite.templating:
        return [spec for spec, _ in pairs]
    out: list[CheckSpec] = []
    ok = True
    for spec, origin in pairs:
        try:
            out.append(_render_check(spec, variables, make))
        except TemplateProblem as exc:
            problems.add(f"{origin.where()}: case {case.id!r}: check {spec.type}: {exc}")
            ok = False
    return out if ok else None


def _case_slots(
    sh: _Shared, case: Case, problems: _Problems, vision: dict[tuple[tuple[int, ...], str], bool] | None
) -> tuple[dict[str, Any], list[CheckSpec], list[_Slot]]:
    """A case's variables, rendered checks and one slot per variant it runs in, recording
    every problem. ``vision`` (the checks already made) is given on the validating pass,
    which also checks model limits; the later passes only make what it found sound."""
    case_id = case.id or "case"
    variables = {**sh.suite.vars, **case.vars} if sh.suite.vars else dict(case.vars)
    specs = _case_checks(sh, case, variables, problems, make=vision is None)
    rendered: dict[str | None, list[dict[str, Any]] | None] = {}
    slots: list[_Slot] = []
    for variant, label in sh.variants_for(case):
        prompt = variant.get("prompt")
        conversation = sh.conversation(case, prompt)
        if prompt not in rendered:
            rendered[prompt] = _render_messages(sh, case, conversation, variables, problems) if conversation else None
            if not conversation:
                problems.add(f"{sh.where(sh.origin)}: case {case_id!r} has no messages")
        messages = rendered[prompt]
        model = str(variant.get("model") or sh.suite.default_model)
        if conversation and vision is not None:
            key = (tuple(id(m) for m in conversation), model)
            if key not in vision:
                vision[key] = _check_vision(sh, model, conversation, problems)
            if not vision[key]:
                continue
        if messages is None or specs is None:
            continue
        mode = _mode(variant.get("mode", sh.mode_override or sh.suite.mode))
        provider = sh.table[str(variant.get("provider", DEFAULT_PROVIDER))]
        if mode == "async" and provider.sdk == "openai":
            problems.add(
                f"{sh.where(sh.origin)}: provider {provider.name!r} speaks the OpenAI wire (sdk openai), "
                f"which has no async mode; run its variants in sync or stream mode"
            )
            continue
        if mode == "batch" and provider.name != DEFAULT_PROVIDER:
            problems.add(
                f"{sh.where(sh.origin)}: mode batch goes through Zhipu's Batch API with the default "
                f"provider zhipu; provider {provider.name!r} runs in sync, stream or async mode"
            )
            continue
        params = _params(sh.suite, case, variant)
        if vision is not None:
            _check_limits(sh.suite, model, params, problems)
        slots.append(_Slot(variant, label, model, mode, provider, params, messages))
    return variables, specs or [], slots


class _Maker:
    """The cases of a validated plan and the jobs each makes, made again on each pass."""

    def __init__(self, sh: _Shared, cases: list[Case], counts: list[int]) -> None:
        self.sh = sh
        self.cases = cases
        self.ends = array("q")
        total = 0
        for n in counts:
            total += n
            self.ends.append(total)
        self.total = total

    def case_jobs(self, case: Case) -> list[Job]:
        problems = _Problems()
        variables, specs, slots = _case_slots(self.sh, case, problems, None)
        if problems.items:  # the validating pass found none: a template that is not pure
            raise SuiteError(list(problems.items))
        suite = self.sh.suite
        case_id = case.id or "case"
        tags = list(dict.fromkeys([*suite.tags, *case.tags]))
        threshold = case.threshold if case.threshold is not None else suite.threshold
        min_score = case.min_score if case.min_score is not None else suite.min_score
        jobs: list[Job] = []
        for slot in slots:
            sent, _ = sdk_params(wire_params(slot.params))
            thinking = job_thinking(slot.model, slot.params)
            provider_key = slot.provider.cache_identity(slot.model)
            for r in range(self.sh.repeats(case)):
                job_messages = _copy_data(slot.messages)
                jobs.append(
                    Job(
                        id=job_id(suite.name, case_id, slot.label, r),
                        suite=suite.name,
                        case_id=case_id,
                        variant_id=slot.label,
                        variant=dict(slot.variant),
                        repeat=r,
                        model=slot.model,
                        mode=slot.mode,
                        messages=job_messages,
                        params=dict(sent),
                        checks=list(specs),
                        vars=dict(variables),
                        tags=list(tags),
                        threshold=threshold,
                        min_score=min_score,
                        cache_key=cache_key(slot.model, slot.mode, job_messages, sent, r, provider_key),
                        description=case.description,
                        thinking=thinking,
                        provider=slot.provider.name,
                    )
                )
        return jobs

    def __iter__(self) -> Iterator[Job]:
        for case in self.cases:
            yield from self.case_jobs(case)

    def job_ids(self) -> Iterator[str]:
        """Every job's id in plan order, without rendering anything."""
        name = self.sh.suite.name
        for case in self.cases:
            case_id = case.id or "case"
            repeats = self.sh.repeats(case)
            for _, label in self.sh.variants_for(case):
                for r in range(repeats):
                    yield job_id(name, case_id, label, r)

    def at(self, index: int) -> Job:
        n = bisect_right(self.ends, index)
        start = self.ends[n - 1] if n else 0
        return self.case_jobs(self.cases[n])[index - start]


class JobList(Sequence[Job]):
    """A plan's jobs as a sequence: its length is known, each job is made when it is read
    (and made anew each time: a job's messages are its own to change)."""

    def __init__(self, maker: _Maker) -> None:
        self._maker = maker

    def __len__(self) -> int:
        return self._maker.total

    def __iter__(self) -> Iterator[Job]:
        return iter(self._maker)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (list, tuple, JobList)):
            return NotImplemented
        return len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # equal to a list, so unhashable like one

    @overload
    def __getitem__(self, index: int) -> Job: ...

    @overload
    def __getitem__(self, index: slice) -> list[Job]: ...

    def __getitem__(self, index: int | slice) -> Job | list[Job]:
        if isinstance(index, slice):
            return [self._maker.at(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("plan job index out of range")
        return self._maker.at(index)


class MissingJobs:
    """The jobs of a plan whose ids are not in ``done``: counted without rendering a job,
    made one case at a time as they are iterated (``--resume`` of a large run)."""

    def __init__(self, maker: _Maker, done: Collection[str]) -> None:
        self._maker = maker
        self._done = done
        self._count = sum(1 for i in maker.job_ids() if i not in done)

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __iter__(self) -> Iterator[Job]:
        if not self._count:
            return
        done = self._done
        for case in self._maker.cases:
            for job in self._maker.case_jobs(case):
                if job.id not in done:
                    yield job


@dataclass(eq=False)
class Plan:
    """The jobs of one suite, the variant labels in order, and what a person should know first:
    ``warnings`` (values the SDK changes, include entries that matched nothing...) and
    ``skipped`` cases with their reason. ``modes`` are the call modes its jobs use.

    Iterating makes the jobs one case at a time (see the module's docstring); ``len()`` and
    :meth:`job_ids` render nothing; ``jobs`` is the same as a sequence."""

    suite: Suite
    variants: list[str]
    _maker: _Maker = field(repr=False)
    warnings: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    providers: dict[str, ProviderInfo] = field(default_factory=dict)
    modes: frozenset[str] = frozenset()

    @property
    def jobs(self) -> JobList:
        return JobList(self._maker)

    def __iter__(self) -> Iterator[Job]:
        return iter(self._maker)

    def __len__(self) -> int:
        return self._maker.total

    def job_ids(self) -> Iterator[str]:
        return self._maker.job_ids()

    def missing(self, done: Collection[str]) -> MissingJobs:
        """The jobs without a result in ``done`` (a set of job ids), in plan order."""
        return MissingJobs(self._maker, done)


def build_plan(
    suite: Suite, model_override: list[str] | None = None, mode_override: str | None = None,
    provider_override: list[str] | None = None,
) -> Plan:
    """Validate a loaded suite's jobs, in a stable order (case, variant, repeat).

    Raises SuiteError with every template problem of every case (each naming the case and the
    file and line of the message or check), so ``validate`` can show them all at once.
    """
    with paused_gc():
        return _build(suite, model_override, mode_override, provider_override)


def _build(
    suite: Suite, model_override: list[str] | None, mode_override: str | None, provider_override: list[str] | None
) -> Plan:
    check_provider_override(suite, provider_override)
    variants = selected_variants(suite, model_override, mode_override, provider_override)
    sh = _Shared(suite, variants, mode_override, ImageFiles(suite.base_dir))
    labels = dict.fromkeys(variant_label(v) for v in variants)
    cases: list[Case] = suite.cases
    skipped: list[tuple[str, str]] = []
    if any(c.only for c in cases):
        skipped += [(c.id or "", "not marked only") for c in cases if not c.only]
        cases = [c for c in cases if c.only]
    for case in cases:
        if case.skip:
            skipped.append((case.id or "", case.skip if isinstance(case.skip, str) else "skip: true"))
    cases = [c for c in cases if not c.skip]
    counts = [len(sh.variants_for(c)) * sh.repeats(c) for c in cases]
    total = sum(counts)
    if total > MAX_JOBS:
        raise SuiteError([f"{suite.path}: the suite expands to {total:,} jobs; the limit is {MAX_JOBS:,} (split it, or narrow the grid)"])

    problems = _Problems()
    warnings = list(suite.warnings) + _override_warnings(suite, model_override)
    vision: dict[tuple[tuple[int, ...], str], bool] = {}
    used: dict[str, ProviderInfo] = {}
    modes: set[str] = set()
    shared: SharedTemplates | None = None
    learned = False
    for case in cases:
        plain = _plain(sh, case)
        if plain and shared is not None and shared.sound({**suite.vars, **case.vars} if suite.vars else case.vars):
            continue  # the slots of the first such case, and templates that cannot fail
        before = len(problems.items)
        for slot in _case_slots(sh, case, problems, vision)[2]:
            labels.setdefault(slot.label)
            used.setdefault(slot.provider.name, slot.provider)
            modes.add(slot.mode)
        if plain and not learned:
            learned = True
            conversations = [sh.conversation(case, v.get("prompt")) for v, _ in sh.variants_for(case)]
            shared = SharedTemplates.for_plain(suite, conversations) if len(problems.items) == before else None
    if problems.items:
        raise SuiteError(list(problems.items))
    warnings += unmatched_rules(suite)
    return Plan(
        suite=suite, variants=list(labels), _maker=_Maker(sh, cases, counts), warnings=list(dict.fromkeys(warnings)),
        skipped=skipped, providers=used, modes=frozenset(modes),
    )


def _plain(sh: _Shared, case: Case) -> bool:
    """A case with no keys of its own but variables (a case-file row, most often): it makes
    the same slots as every other such case."""
    return case.messages is None and not case.params and case.tools is None and not case.prompt and (case.id or "") not in sh.check_specs


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
    if not isinstance(value, int):
        return
    spec = lookup(model)
    limit = getattr(spec, "max_output", 0) if spec is not None else 0
    if limit and value > limit:
        problems.add(f"{suite.path}: max_tokens {value} is more than {model} can write (at most {limit} tokens)")


def _override_warnings(suite: Suite, models: list[str] | None) -> list[str]:
    """--model names the catalogue does not know: a warning, as in the suite (the API decides)."""
    own = set(suite_models(suite))
    return [f"--model {m}: {unknown_model_text(m)}" for m in dict.fromkeys(models or []) if m not in own and lookup(m) is None]
