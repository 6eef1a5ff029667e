"""The suite: the typed, validated form of a YAML suite file.

Loading collects every problem (not just the first) and reports each as
``file:line: where: what was expected``; nothing here touches the network.
"""

from __future__ import annotations

import difflib
import hashlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from glmeval.errors import SuiteError
from glmeval.records import MODES, CheckSpec
from glmeval.yamlsrc import Source, load_yaml

ROLES = ("system", "user", "assistant", "tool")
COMMON_CHECK_OPTIONS = {"type", "not", "weight", "metric", "threshold"}

# Request parameters of chat.completions.create that a suite may set or use as a grid axis.
REQUEST_PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "do_sample",
    "seed",
    "tools",
    "tool_choice",
    "response_format",
    "user_id",
    "request_id",
    "thinking",
    "meta",
    "sensitive_word_check",
)
GRID_AXES = ("model", "mode", "prompt", *REQUEST_PARAMS)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Message(_Strict):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None
    template: bool = Field(True, description="Render content with Jinja2; false sends it verbatim.")

    @model_validator(mode="after")
    def _role_fields(self) -> "Message":
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id (the id of the assistant's tool call)")
        if self.role != "tool" and self.tool_call_id:
            raise ValueError(f"tool_call_id belongs on a tool message, not on role {self.role}")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("tool_calls belong on an assistant message")
        if self.content is None and not self.tool_calls:
            raise ValueError(f"a {self.role} message needs content")
        return self

    def wire(self) -> dict[str, Any]:
        """The message as the API takes it (no glmeval-only keys, no empty fields)."""
        data = self.model_dump(exclude_none=True, exclude={"template"})
        return data


class Settings(_Strict):
    concurrency: int = Field(8, ge=1, le=1024)
    timeout: float = Field(60.0, gt=0, description="Seconds per call attempt.")
    retries: int = Field(4, ge=0, le=20)
    poll_timeout: float = Field(300.0, gt=0, description="Seconds to wait for an async task.")
    judge_model: str = "glm-4"
    embedding_model: str = "embedding-3"


class Case(_Strict):
    id: str | None = None
    description: str | None = None
    vars: dict[str, Any] = Field(default_factory=dict)
    messages: list[Message] | None = None
    prompt: str | None = None
    tools: list[dict[str, Any]] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    checks: list[Any] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    skip: bool | str = False
    only: bool = False
    repeat: int | None = Field(None, ge=1, le=1000)
    threshold: float | None = Field(None, ge=0, le=1)
    min_score: float | None = Field(None, ge=0, le=1, alias="min-score")


class Suite(_Strict):
    name: str
    description: str | None = None
    mode: Literal["sync", "stream", "async"] = "sync"
    model: str | None = None
    grid: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    repeat: int = Field(1, ge=1, le=1000)
    threshold: float | None = Field(None, ge=0, le=1)
    vars: dict[str, Any] = Field(default_factory=dict)
    messages: list[Message] | None = None
    prompts: dict[str, list[Message]] = Field(default_factory=dict)
    tools: list[dict[str, Any]] | None = None
    checks: list[Any] = Field(default_factory=list)
    cases: list[Case] = Field(default_factory=list)
    settings: Settings = Field(default_factory=Settings)
    prices: dict[str, dict[str, float]] = Field(default_factory=dict)
    templating: bool = True
    tags: list[str] = Field(default_factory=list)
    # Filled by the loader, not by the user.
    path: Path | None = Field(None, exclude=True)
    content_hash: str = Field("", exclude=True)
    check_specs: dict[str, list[CheckSpec]] = Field(default_factory=dict, exclude=True)

    @field_validator("grid")
    @classmethod
    def _grid_axes(cls, grid: dict[str, Any]) -> dict[str, Any]:
        for axis, values in grid.items():
            if axis in ("include", "exclude"):
                if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
                    raise ValueError(f"grid.{axis} must be a list of mappings of axis values")
                continue
            if axis not in GRID_AXES:
                raise ValueError(f"unknown grid axis {axis!r}{_did_you_mean(axis, GRID_AXES)}")
            if isinstance(values, list) and not values:
                raise ValueError(f"grid axis {axis!r} has no values")
        return grid

    @field_validator("params")
    @classmethod
    def _params(cls, params: dict[str, Any]) -> dict[str, Any]:
        for key in params:
            if key not in REQUEST_PARAMS:
                raise ValueError(f"unknown request parameter {key!r}{_did_you_mean(key, REQUEST_PARAMS)}")
        return params

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()


def _did_you_mean(word: str, options: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_fields(model: type[BaseModel]) -> list[str]:
    names = []
    for name, info in model.model_fields.items():
        if info.exclude:
            continue
        names.append(info.alias or name)
    return names


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """Keys allowed in the mapping at ``loc``, for "did you mean" hints."""
    if not loc:
        return _model_fields(Suite)
    if loc[0] == "cases" and len(loc) == 2:
        return _model_fields(Case)
    if loc[0] == "settings":
        return _model_fields(Settings)
    if "messages" in loc or loc[0] == "prompts":
        return _model_fields(Message)
    return []


def _format_error(source: Source, err: dict[str, Any]) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
    kind = err["type"]
    where = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
    if kind == "extra_forbidden":
        key = str(loc[-1])
        hint = _did_you_mean(key, _allowed_keys(loc[:-1]))
        parent = ".".join(map(str, loc[:-1])).replace(".[", "[") or "the suite"
        return f"{source.where(loc)}: unknown key {key!r} in {parent}{hint}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if kind == "literal_error" and "role" in loc:
        msg = f"role must be one of {', '.join(ROLES)}; got {err.get('input')!r}"
    elif kind == "literal_error" and loc and loc[-1] == "mode":
        msg = f"mode must be one of {', '.join(MODES)}; got {err.get('input')!r}"
    elif kind == "missing":
        msg = "required key is missing"
    elif "input" in err and kind.endswith("_type"):
        msg = f"{msg}; got {type(err['input']).__name__} {_short(err['input'])}"
    return f"{source.where(loc)}: {where or 'suite'}: {msg}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_check(item: Any, where: str, line: int | None) -> CheckSpec:
    """Turn one YAML check entry into a CheckSpec.

    Accepted shapes: ``{type: contains, value: x}``, the shorthand ``{contains: x}``, a
    shorthand with a mapping (``{tool-call: {name: f}}``), and ``not-<type>`` for negation.
    Common options (not, weight, metric, threshold) may sit beside either form.
    """
    from glmeval.checks import known_types

    if isinstance(item, str):
        item = {"type": item}
    if not isinstance(item, dict):
        raise ValueError(f"{where}: a check must be a mapping like {{contains: text}}; got {_short(item)}")
    item = dict(item)
    negate = bool(item.pop("not", False))
    weight = item.pop("weight", 1.0)
    metric = item.pop("metric", None)
    threshold = item.pop("threshold", None)
    if "type" in item:
        ctype = item.pop("type")
        args = item
    else:
        if not item:
            raise ValueError(f"{where}: empty check")
        names = [k for k in item]
        ctype = names[0]
        value = item.pop(ctype)
        if isinstance(value, dict) and not any(k in value for k in ("value",)) and ctype != "json-field":
            args = {**value, **item}
        else:
            args = {"value": value, **item}
    if not isinstance(ctype, str):
        raise ValueError(f"{where}: check type must be a string; got {_short(ctype)}")
    types = known_types()
    if ctype not in types and ctype.startswith("not-") and ctype[4:] in types:
        ctype, negate = ctype[4:], not negate
    if ctype not in types:
        raise ValueError(f"{where}: unknown check type {ctype!r}{_did_you_mean(ctype, types)}")
    if not isinstance(weight, (int, float)) or weight < 0:
        raise ValueError(f"{where}: weight must be a number >= 0; got {_short(weight)}")
    if threshold is not None and (not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1):
        raise ValueError(f"{where}: threshold must be a number between 0 and 1; got {_short(threshold)}")
    return CheckSpec(
        type=ctype, args=args, negate=negate, weight=float(weight), metric=metric, threshold=threshold, line=line
    )


def load_suite(path: str | Path) -> Suite:
    """Load and validate a suite file, raising SuiteError with every problem found."""
    path = Path(path)
    source = load_yaml(path)
    data = source.data
    if data is None:
        raise SuiteError([f"{path}:1: the suite is empty; expected a mapping with name, messages and cases"])
    if not isinstance(data, dict):
        raise SuiteError([f"{source.where()}: a suite must be a mapping (name:, messages:, cases:); got {type(data).__name__}"])
    data = dict(data)
    data.setdefault("name", path.name.split(".")[0])
    problems: list[str] = []
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        problems = [_format_error(source, e) for e in exc.errors()]
        raise SuiteError(_dedupe(problems)) from None
    suite.path = path
    suite.content_hash = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    problems.extend(_semantic_checks(suite, source))
    if problems:
        raise SuiteError(_dedupe(problems))
    return suite


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _semantic_checks(suite: Suite, source: Source) -> list[str]:
    """Problems pydantic cannot see: ids, references between keys, check types."""
    problems: list[str] = []
    specs: dict[str, list[CheckSpec]] = {}

    def checks_for(items: list[Any], loc: tuple[Any, ...]) -> list[CheckSpec]:
        out = []
        for i, item in enumerate(items):
            line = source.line((*loc, i))
            try:
                out.append(parse_check(item, f"{source.path}:{line}", line))
            except ValueError as exc:
                problems.append(str(exc))
        return out

    specs["*"] = checks_for(suite.checks, ("checks",))
    if not suite.cases:
        problems.append(f"{source.where(('cases',))}: the suite has no cases; add at least one under cases:")
    seen: dict[str, int] = {}
    for i, case in enumerate(suite.cases):
        if case.id is None:
            case.id = f"case-{i + 1}"
        line = source.line(("cases", i))
        if case.id in seen:
            problems.append(
                f"{source.path}:{line}: duplicate case id {case.id!r} (first at line {seen[case.id]}); ids must be unique"
            )
        seen.setdefault(case.id, line or 0)
        specs[case.id] = checks_for(case.checks, ("cases", i, "checks"))
        if case.messages is None and suite.messages is None and not suite.prompts:
            problems.append(f"{source.path}:{line}: case {case.id!r} has no messages and the suite defines none")
        if case.prompt is not None and case.prompt not in suite.prompts:
            problems.append(
                f"{source.where(('cases', i, 'prompt'))}: case {case.id!r} names prompt {case.prompt!r}, "
                f"which is not under prompts:{_did_you_mean(case.prompt, suite.prompts)}"
            )
    prompt_axis = suite.grid.get("prompt")
    if prompt_axis is not None:
        for name in prompt_axis if isinstance(prompt_axis, list) else [prompt_axis]:
            if name not in suite.prompts:
                problems.append(
                    f"{source.where(('grid', 'prompt'))}: grid prompt {name!r} is not defined under prompts:"
                    f"{_did_you_mean(str(name), suite.prompts)}"
                )
    modes = suite.grid.get("mode")
    for mode in modes if isinstance(modes, list) else ([modes] if modes is not None else []):
        if mode not in MODES:
            problems.append(f"{source.where(('grid', 'mode'))}: mode must be one of {', '.join(MODES)}; got {mode!r}")
    suite.check_specs = specs
    return problems
