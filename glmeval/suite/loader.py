"""Loading a suite file: every problem at once, each as ``file:line: what was expected``.

A suite is glmeval's user interface, so loading is built around the mistakes people make.
It collects every problem (not just the first) and reports each with its place; a problem in
a CSV/JSONL/YAML case file names that file and its line. Loading never touches the network
and never lets an exception other than :class:`SuiteError` escape.

Loading runs in four passes over the same data, and each runs whatever the passes before it
found, as long as it has something to look at:

1. *entries*: ``cases:`` entries that name files are read and flattened into plain case
   mappings, each remembering its :class:`~glmeval.suite.yamlsrc.Origin` (file and line);
2. *raw checks* on the plain data, independent of the pydantic models, so a wrong request
   parameter or check is reported even when another key has the wrong type;
3. *structure* through the pydantic models, then the checks that need the typed suite
   (matrix fan-out, derived ids, conversations, model limits) and the warnings;
4. *rendering*, only when a problem was found already: every template that compiles is
   rendered with each case's variables (as the planner will), so a syntax error in one
   message does not hide an undefined variable in the next (:func:`render_problems`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from glmeval.catalogue.models import lookup
from glmeval.catalogue.prices import _as_price
from glmeval.checks import CheckRegistry, suite_registry
from glmeval.errors import GlmevalError, SuiteError
from glmeval.hints import did_you_mean
from glmeval.records import CheckSpec
from glmeval.suite.capabilities import check_capabilities, suite_models
from glmeval.suite.cases import (
    Locator,
    RawCase,
    case_entries,
    check_matrix,
    list_len,
    matrix_combos,
    matrix_size,
    show_value,
    source_bytes,
)
from glmeval.suite.checks import check_checks, declared_tools, grid_tools, load_check_files, offered_tools, parse_checks
from glmeval.suite.content import ImageFiles, check_content, static_images
from glmeval.suite.gcpause import paused_gc
from glmeval.suite.grid import GRID_RULES, check_grid, check_params_map, check_tools_value
from glmeval.suite.model import ROLES, Case, Suite, allowed_keys
from glmeval.suite.problems import Problems, is_int, pydantic_problem, report_all
from glmeval.suite.providers import check_providers
from glmeval.suite.templating import (
    TemplateProblem,
    check_template,
    compile_template,
    content_templates,
    has_template_markup,
    render_value,
    template_strings,
    templated_check_args,
)
from glmeval.suite.yamlsrc import Origin, load_yaml

__all__ = ["MAX_CASES", "MAX_JOBS", "MAX_VARIANTS", "load_suite"]

MAX_VARIANTS = 10_000
MAX_CASES = 100_000
MAX_JOBS = 500_000
_INTERNAL_KEYS = ("path", "content_hash", "check_specs", "warnings")


def load_suite(path: str | Path) -> Suite:
    """Load and validate a suite file, raising SuiteError with every problem found."""
    try:
        with paused_gc():
            return _load(Path(path))
    except GlmevalError:
        raise
    except RecursionError:
        raise SuiteError([f"{path}: the suite is nested too deeply to check"]) from None


def _load(path: Path) -> Suite:
    source = load_yaml(path)
    data = source.data
    root = Origin(path, source)
    if data is None:
        raise SuiteError([f"{path}:1: the suite is empty; expected a mapping with name, messages and cases"])
    if not isinstance(data, dict):
        raise SuiteError(
            [f"{source.where()}: a suite must be a mapping (name:, messages:, cases:); got {type(data).__name__}"]
        )
    problems = Problems(path)
    data = dict(data)
    for key in _INTERNAL_KEYS:
        if key in data:
            problems.error(root, f"unknown key {key!r} in the suite (glmeval fills it in)", (key,))
            data.pop(key)
    if "name" not in data:
        data["name"] = path.name.split(".")[0] or "suite"
    hash_parts: list[bytes] = [source_bytes(path)]
    registry = suite_registry(str(path))
    load_check_files(data.get("check-files"), root, problems, path.parent, hash_parts, registry)
    system_prompts = _text_prompts(data)
    entries = case_entries(data, root, problems, path.parent, hash_parts)
    if entries is not None:
        data["cases"] = [e.data for e in entries]
    locate = Locator(root, entries)
    _raw_checks(data, entries or [], root, problems, registry, path.parent)

    suite: Suite | None = None
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        seen: set[tuple[Any, ...]] = set()
        for err in exc.errors():
            loc, text = pydantic_problem(err, allowed_keys)
            if loc in seen:
                continue
            seen.add(loc)
            problems.add(f"{locate.origin(loc).where()}: {text}")
    if suite is None:
        problems.raise_if_any()
    assert suite is not None
    # The structure is sound, so the typed checks run even when the raw pass found problems:
    # a bad value in params must not hide a max_tokens above the model's limit.
    suite.path = path
    suite.content_hash = hashlib.sha256(b"\0".join(hash_parts)).hexdigest()[:16]
    suite._system_prompts = system_prompts
    suite._origin = root
    suite._checks = registry
    _attach_origins(suite, entries or [], root)
    earlier = len(problems.problems)
    try:
        _typed_checks(suite, entries or [], root, problems)
    except (TypeError, ValueError, KeyError, AttributeError):
        if not earlier:  # a value the raw pass let through: a bug to see, not to hide
            raise
        # A value the raw pass already reported broke a later check; what is found suffices.
    if problems.problems:
        render_problems(suite, problems)
    problems.raise_if_any()
    suite.warnings = problems.sorted(problems.warnings)
    return suite


def render_problems(suite: Suite, problems: Problems) -> None:
    """The template problems planning would find, for a suite that already has others.

    The planner renders templates only once a suite loads, so without this pass a syntax
    error in one message would hide an undefined variable in the next until the next run of
    ``validate``. Templates that do not compile were reported already and are skipped; the
    lines read as the planner's.
    """
    templated = suite.templating
    if not templated:
        return
    for case in suite.cases:
        variables = {**suite.vars, **case.vars}
        prompts: list[str | None] = [case.prompt] if case.prompt else (list(suite.prompt_axis()) or [None])
        seen: set[int] = set()
        for prompt in prompts:
            for i, message in enumerate(suite.conversation(case, prompt) or []):
                if id(message) in seen or message.template is False:
                    continue
                seen.add(id(message))
                texts = content_templates(message.content)
                texts += template_strings([(c.get("function") or {}).get("arguments") for c in message.tool_calls or [] if isinstance(c, dict)])
                where = message._origin.where(("content",)) if message._origin is not None else str(suite.path)
                for text in texts:
                    problem = _render_problem(text, variables)
                    if problem:
                        problems.add(f"{where}: case {case.id!r}: message {i + 1} ({message.role}): {problem}")
        pairs = [*zip(suite.check_specs.get("*", []), suite._check_origins.get("*", [])),
                 *zip(suite.check_specs.get(case.id or "", []), suite._check_origins.get(case.id or "", []))]
        for spec, origin in pairs:
            for key in templated_check_args(spec):
                problem = next(filter(None, (_render_problem(t, variables) for t in template_strings(spec.args[key]))), None)
                if problem:
                    problems.add(f"{origin.where()}: case {case.id!r}: check {spec.type}: {problem}")


def _render_problem(text: str, variables: dict[str, Any]) -> str | None:
    try:
        if compile_template(text) is None:
            return None
    except TemplateProblem:
        return None  # a syntax error, reported where it was written
    try:
        render_value(text, variables)
    except TemplateProblem as exc:
        return str(exc)
    return None


def _text_prompts(data: dict[Any, Any]) -> set[str]:
    """Turn text prompts into one-message conversations, remembering which they were."""
    prompts = data.get("prompts")
    if not isinstance(prompts, dict):
        return set()
    names = {name for name, value in prompts.items() if isinstance(value, str)}
    if names:
        data["prompts"] = {
            name: ([{"role": "system", "content": value}] if name in names else value) for name, value in prompts.items()
        }
    return {str(n) for n in names}


def _raw_checks(
    data: dict[Any, Any], cases: list[RawCase], root: Origin, problems: Problems, registry: CheckRegistry, suite_dir: Path | None = None
) -> None:
    """Semantic problems found on the plain data, whatever else is wrong with its structure."""
    prompts = data.get("prompts")
    prompt_names = [str(n) for n in prompts] if isinstance(prompts, dict) else []
    templating = data.get("templating", True) is not False
    check_params_map(data.get("params"), root.at("params"), problems)
    check_tools_value(data.get("tools"), root.at("tools"), problems)
    if isinstance(data.get("params"), dict) and "tools" in data["params"] and data.get("tools") is not None:
        problems.error(root, "tools are given twice: as tools: and as params.tools; keep one", ("tools",))
    check_grid(data.get("grid"), root.at("grid"), problems, prompt_names, "prompts" in data)
    check_providers(data, root, problems)
    check_matrix(data.get("matrix"), root.at("matrix"), problems)
    suite_tools = declared_tools(data)
    axis_tools = grid_tools(data.get("grid"))
    case_tools = [
        suite_tools if type(raw.data) is dict and raw.data.keys() <= _ID_AND_VARS or (own := declared_tools(raw.data)) is None else own
        for raw in cases
    ]
    # Suite-level checks apply to every case: any tools a case or variant offers will do.
    check_checks(
        data.get("checks"),
        [root.at("checks", i) for i in range(list_len(data.get("checks")))],
        problems,
        templating,
        registry,
        suite_dir,
        offered_tools([suite_tools, *axis_tools, *case_tools]),
    )
    images = ImageFiles(suite_dir or Path.cwd())
    _check_messages(data.get("messages"), root.at("messages"), problems, templating, images)
    if isinstance(prompts, dict):
        for name, messages in prompts.items():
            _check_messages(messages, root.at("prompts", name), problems, templating, images)
    _check_prices(data.get("prices"), root.at("prices"), problems)
    ids: dict[str, Origin] = {}
    for raw, tools in zip(cases, case_tools):
        case = raw.data
        if not isinstance(case, dict):
            continue
        if case.keys() <= _ID_AND_VARS:  # a case-file row, most often: only its id to check
            _check_id(raw, ids, problems)
            continue
        # Each check of a key the case has (a case-file row often has none but its variables).
        if case.get("params") is not None:
            check_params_map(case["params"], _key_origin(raw, "params"), problems)
        if case.get("tools") is not None:
            check_tools_value(case["tools"], _key_origin(raw, "tools"), problems)
        if case.get("matrix") is not None:
            check_matrix(case["matrix"], _key_origin(raw, "matrix"), problems)
        if case.get("checks") is not None:
            check_checks(case["checks"], raw.check_origins, problems, templating, registry, suite_dir, offered_tools([tools, *axis_tools]))
        if case.get("messages") is not None:
            _check_messages(case["messages"], _key_origin(raw, "messages"), problems, templating, images)
        prompt = case.get("prompt")
        if isinstance(prompt, str) and prompt not in prompt_names:
            where = "prompts:" if prompt_names else "prompts: (the suite defines none)"
            problems.error(
                _key_origin(raw, "prompt"),
                f"case {case.get('id', raw.auto_id)!r} names prompt {prompt!r}, which is not under {where}"
                f"{did_you_mean(prompt, prompt_names)}",
            )
        _check_id(raw, ids, problems)


_ID_AND_VARS = frozenset({"id", "vars"})


def _check_id(raw: RawCase, ids: dict[str, Origin], problems: Problems) -> None:
    """A case's id against the ids before it (duplicates named with the first one's line)."""
    case_id = raw.data.get("id")
    if isinstance(case_id, (str, int)) and not isinstance(case_id, bool):
        key = case_id.strip() if type(case_id) is str else str(case_id).strip()
        if key in ids:
            problems.error(
                _key_origin(raw, "id") if raw.file is None else raw.origin,
                f"duplicate case id {key!r} (first at {ids[key].where()}); ids must be unique",
            )
        else:
            ids[key] = raw.origin if raw.file is not None else _key_origin(raw, "id")


def _key_origin(raw: RawCase, key: str) -> Origin:
    return raw.key_origins.get(key) or raw.origin.at(key)


def _check_messages(messages: Any, origin: Origin, problems: Problems, templating: bool, images: ImageFiles) -> None:
    if not isinstance(messages, list):
        return
    if not messages:
        problems.error(origin, "the conversation is empty; give at least one message")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            continue
        content = message.get("content")
        found = check_content(content, message.get("role"))
        report_all(problems, origin.at(i, "content"), found)
        templated = templating and message.get("template") is not False
        for j, written in static_images(content, templated, has_template_markup):
            problem = images.problem(written)
            if problem:
                problems.error(origin.at(i, "content", j, "image"), problem)
        if not templated:
            continue
        texts = content_templates(content)
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            texts += template_strings([c.get("function", {}).get("arguments") for c in calls if isinstance(c, dict) and isinstance(c.get("function"), dict)])
        for text in texts:
            check_template(text, origin.at(i, "content"), problems, f"message {i + 1}")


def _check_prices(prices_map: Any, origin: Origin, problems: Problems) -> None:
    if not isinstance(prices_map, dict):
        return
    for model, value in prices_map.items():
        try:
            _as_price(value)
        except (ValueError, TypeError) as exc:
            problems.error(origin.at(model), f"price of {str(model)!r}: {exc}")


def _attach_origins(suite: Suite, entries: list[RawCase], root: Origin) -> None:
    """Give every message its place, so a template error can name its line after planning."""
    for i, message in enumerate(suite.messages or []):
        message._origin = root.at("messages", i)
    for name, messages in suite.prompts.items():
        for i, message in enumerate(messages):
            message._origin = root.at("prompts", name) if name in suite._system_prompts else root.at("prompts", name, i)
    locate = Locator(root, entries)
    for c, case in enumerate(suite.cases):
        for i, message in enumerate(case.messages or []):
            message._origin = locate.origin(("cases", c, "messages", i))


def _typed_checks(suite: Suite, entries: list[RawCase], root: Origin, problems: Problems) -> None:
    """Fan-out, ids, conversations, check specs, model limits and warnings on the typed suite.

    After problems in the raw pass only what cannot be a consequence of them is reported (a
    duplicate id or a missing prompt there would also show here as a duplicate or an empty
    conversation); model limits and capabilities always are."""
    after_problems = bool(problems.problems)
    locate = Locator(root, entries)
    specs: dict[str, list[CheckSpec]] = {}
    origins: dict[str, list[Origin]] = {}
    suite_checks = [root.at("checks", i) for i in range(len(suite.checks))]
    specs["*"], origins["*"] = parse_checks(suite.checks, suite_checks, suite.check_registry, problems)
    if not suite.cases:
        if not after_problems:  # else a case file that could not be read explains it
            problems.error(root, "the suite has no cases; add at least one under cases:", ("cases",))
        return

    expanded: list[Case] = []
    case_origin: list[Origin] = []
    case_checks: list[list[Origin]] = []
    case_entry: list[int] = []
    total = 0
    suite_matrix = suite.matrix
    for i, case in enumerate(suite.cases):
        raw = entries[i] if i < len(entries) else RawCase(None, root.at("cases", i))
        if case.id is None:
            case.id = raw.auto_id or f"case-{i + 1}"
        if case.matrix is None and suite_matrix is None:  # most cases: one copy, the case itself
            total += 1
            if total > MAX_CASES:
                problems.error(root, f"the matrices expand to more than {MAX_CASES:,} cases; split the suite", ("matrix",))
                return
            case_origin.append(raw.origin if i < len(entries) else locate.origin(("cases", i)))
            case_entry.append(i)
            case_checks.append(raw.check_origins or [locate.origin(("cases", i, "checks", k)) for k in range(len(case.checks))])
            expanded.append(case)
            continue
        own_keys = set(case.vars) | (set(case.matrix) if isinstance(case.matrix, dict) else set())
        if isinstance(case.matrix, list):
            own_keys |= {k for e in case.matrix for k in e}
        total += matrix_size(case.matrix) * matrix_size(suite.matrix)
        if total > MAX_CASES:
            problems.error(root, f"the matrices expand to more than {MAX_CASES:,} cases; split the suite", ("matrix",))
            return
        for combo_case in matrix_combos(case.matrix):
            for combo_suite in matrix_combos(suite.matrix, own_keys):
                combo = {**combo_case, **combo_suite}
                copy = case
                if combo:
                    label = ",".join(f"{k}={show_value(v)}" for k, v in combo.items())
                    copy = case.model_copy(update={"id": f"{case.id}[{label}]", "vars": {**case.vars, **combo}, "matrix": None})
                elif case.matrix is not None:
                    copy = case.model_copy(update={"matrix": None})
                case_origin.append(locate.origin(("cases", i)))
                case_entry.append(i)
                case_checks.append(raw.check_origins or [locate.origin(("cases", i, "checks", k)) for k in range(len(case.checks))])
                expanded.append(copy)
    suite.cases = expanded
    suite._case_entries = case_entry

    first: dict[str, Origin] = {}
    registry = suite.check_registry
    sound: set[tuple[str, ...]] = set()
    for n, case in enumerate(suite.cases):
        origin = case_origin[n]
        assert case.id is not None
        if case.id in first:
            if after_problems:
                continue
            problems.error(
                origin,
                f"duplicate case id {case.id!r} (first at {first[case.id].where()}); ids must be unique "
                "(check ids given by matrix fan-out and default ids like case-N)",
            )
            continue
        first[case.id] = origin
        if case.checks:  # a case without checks of its own has no entry (100,000 empty lists are 10 MB)
            specs[case.id], origins[case.id] = parse_checks(case.checks, case_checks[n], registry, problems)
        if not after_problems:
            _check_conversations(suite, case, origin, problems, sound)
        if isinstance(case.skip, str) and not case.skip.strip():
            case.skip = False
    suite.check_specs = specs
    suite._check_origins = origins
    _check_model_limits(suite, locate, problems)
    check_capabilities(suite, locate.origin, problems)
    _suite_warnings(suite, locate, problems)


def _check_conversations(suite: Suite, case: Case, origin: Origin, problems: Problems, sound: set[tuple[str, ...]]) -> None:
    """The conversations a case sends can be sent. ``sound`` holds the prompt lists already
    found so for cases without messages of their own (each of those sends the same ones)."""
    if case.messages is None and not case.prompt and _AXIS in sound:
        return  # the common case, answered before the prompt axis is listed again
    prompts: list[str | None] = [case.prompt] if case.prompt else (list(suite.prompt_axis()) or [None])
    shared = tuple(str(p) for p in prompts) if case.messages is None else None
    if shared is not None and shared in sound:
        return
    before = (len(problems.problems), len(problems.warnings))
    _check_each_conversation(suite, case, origin, problems, prompts)
    if shared is not None and (len(problems.problems), len(problems.warnings)) == before:
        sound.add(shared)
        if not case.prompt:
            sound.add(_AXIS)


_AXIS = ("\0the prompt axis",)  # in ``sound``: cases without messages that run the whole prompt axis are sound


def _check_each_conversation(suite: Suite, case: Case, origin: Origin, problems: Problems, prompts: list[str | None]) -> None:
    for prompt in prompts:
        messages = suite.conversation(case, prompt)
        label = f"case {case.id!r}" + (f" with prompt {prompt!r}" if prompt else "")
        if not messages:
            problems.error(origin, f"{label} has no messages: give it messages:, or give the suite messages: or prompts:")
            return
        if all(m.role in ("system", "assistant") for m in messages):
            problems.error(
                origin,
                f"{label}: the conversation has only system/assistant messages; the API needs a user message",
            )
            return
        called: set[str] = set()
        for message in messages:
            for call in message.tool_calls or []:
                called.add(str(call.get("id")))
            if message.role == "tool" and message.tool_call_id not in called:
                where = message._origin or origin
                problems.warn(
                    where,
                    f"tool message answers tool_call_id {message.tool_call_id!r}, which no earlier assistant "
                    "message's tool_calls declare",
                    sub=("tool_call_id",),
                )


def _check_model_limits(suite: Suite, locate: Locator, problems: Problems) -> None:
    """max_tokens against each model's maximum output, wherever either is stated."""
    models = suite_models(suite)
    include = suite.effective_grid().get("include") or []
    sources: list[tuple[Any, tuple[Any, ...], list[str]]] = []
    if "max_tokens" in suite.params:
        sources.append((suite.params["max_tokens"], ("params", "max_tokens"), models))
    values = suite.grid.get("max_tokens")
    for i, value in enumerate(values if isinstance(values, list) else [values] if values is not None else []):
        sources.append((value, ("grid", "max_tokens", i) if isinstance(values, list) else ("grid", "max_tokens"), models))
    for i, entry in enumerate(include):
        if "max_tokens" in entry:
            sources.append((entry["max_tokens"], ("grid", "include", i, "max_tokens"), [entry["model"]] if isinstance(entry.get("model"), str) else models))
    for case, entry in suite.cases_with_entries():
        if "max_tokens" in case.params:
            sources.append((case.params["max_tokens"], ("cases", entry, "params", "max_tokens"), models))
    for value, loc, which in sources:
        if not is_int(value):
            continue
        for model in dict.fromkeys(which):
            spec = lookup(model)
            limit = getattr(spec, "max_output", 0) if spec is not None else 0
            if limit and value > limit:
                problems.error(locate.origin(loc), f"max_tokens {value} is more than {model} can write (at most {limit} tokens)")


def _suite_warnings(suite: Suite, locate: Locator, problems: Problems) -> None:
    if suite.model is not None and "model" in suite.grid:
        problems.warn(locate.origin(("model",)), "model: is ignored because the grid has a model axis")
    if suite.messages is not None and suite.prompts and not (set(suite.prompt_axis()) & suite._system_prompts):
        problems.warn(locate.origin(("messages",)), "messages: is unused: every prompt variant is a whole conversation")
    axes = set(suite.grid) - set(GRID_RULES)
    for case, entry in suite.cases_with_entries() if axes else []:
        if not case.params:
            continue
        shadowed = sorted(axes & set(case.params))
        for key in shadowed:
            problems.warn(
                locate.origin(("cases", entry, "params", key)),
                f"case {case.id!r} sets {key}, which is a grid axis; the grid's value is sent",
                key=f"shadow:{case.id}:{key}",
            )
